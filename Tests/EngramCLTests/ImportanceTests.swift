import EngramTensor
import EngramNN
import EngramData
import EngramCL
import Testing

@Suite struct MASImportanceTests {
    /// A trained-for-a-few-steps MLP and some real MNIST inputs.
    func fixture(hidden: [Int] = [32]) throws -> (Classifier, [Tensor]) {
        let data = try sharedMNIST.get()
        var rng = RandomGenerator(seed: 3)
        let model = Models.mlp(input: 784, hidden: hidden, classes: 10, using: &rng)
        let inputs = (0..<3).map { b in
            Tensor(shape: [8, 784], scalars: (0..<(8 * 784)).map { i in Float(data.train.pixels[b * 8 * 784 + i]) / 255 })
        }
        return (model, inputs)
    }

    /// Models whose exact importance comes from one batched pass: every parameter sits in a Linear, a Conv2d or a
    /// BatchNorm (evaluation mode, running statistics moved away from 0 and 1).
    static let batchedModels = ["mlp", "cnn with BatchNorm", "cnn with per-task BatchNorm", "resnet20"]

    func batchedFixture(_ kind: String) throws -> (Classifier, [Tensor]) {
        if kind == "mlp" { return try fixture() }
        let data = try sharedMNIST.get()
        var rng = RandomGenerator(seed: 4)
        let model: Classifier
        switch kind {
        case "resnet20": model = Models.cifarResNet(depth: 20, inputChannels: 1, classes: 10, using: &rng)
        case "cnn with per-task BatchNorm":
            model = Models.cnn(inputChannels: 1, channels: [6, 8], hidden: [16], classes: 10, taskNorms: 2, using: &rng)
            for (_, m) in model.namedModules() { (m as? TaskBatchNorm)?.activeTask = 1 }
        default: model = Models.cnn(inputChannels: 1, channels: [6, 8], hidden: [16], classes: 10, using: &rng)
        }
        for (_, m) in model.namedModules() {
            guard let bn = m as? BatchNorm else { continue }
            bn.runningMean.scalars = (0..<bn.channels).map { _ in Float(rng.nextInt(below: 100)) / 200 - 0.25 }
            bn.runningVariance.scalars = (0..<bn.channels).map { _ in 0.5 + Float(rng.nextInt(below: 100)) / 100 }
        }
        let inputs = (0..<2).map { b in
            Tensor(shape: [5, 1, 28, 28], scalars: (0..<(5 * 784)).map { i in Float(data.train.pixels[b * 5 * 784 + i]) / 255 })
        }
        return (model, inputs)
    }

    @Test("exact MAS importance from one batched pass equals the mean over samples of |∂‖F(x)‖²/∂θ| computed one sample at a time",
          arguments: batchedModels)
    func exactMatchesPerSampleLoop(kind: String) throws {
        let (model, inputs) = try batchedFixture(kind)
        #expect(Importance.hasBatchedPerSampleStatistics(model))
        let fast = Importance.mas(model: model, inputs: inputs, mode: .exact).mean
        var reference = ParameterMap.zeros(like: model.namedParameters())
        model.eval()
        var n = 0
        for x in inputs {
            for k in 0..<x.shape[0] {
                model.zeroGrad()
                Losses.squaredL2Norm(model(x.indexSelect([k])), reduction: .sum).backward()
                for (name, p) in model.namedParameters() {
                    guard let g = p.grad?.scalars else { continue }
                    for i in 0..<g.count { reference[name]![i] += abs(g[i]) }
                }
                n += 1
            }
        }
        for (name, values) in reference {
            let expected = values.map { $0 / Float(n) }
            let got = fast[name]!
            let scale = expected.map(abs).max()!
            for i in 0..<expected.count {
                #expect(abs(got[i] - expected[i]) <= 1e-4 * max(scale, 1e-12), "\(kind) \(name)[\(i)]: \(got[i]) vs \(expected[i])")
            }
        }
    }

    @Test("batch-mode MAS never exceeds exact MAS (|mean g| ≤ mean |g|) and agrees on a single sample")
    func batchModeIsBoundedByExact() throws {
        let (model, inputs) = try fixture()
        let exact = Importance.mas(model: model, inputs: inputs, mode: .exact).mean
        let batch = Importance.mas(model: model, inputs: inputs, mode: .batch).mean
        var strictlySmaller = 0
        for (name, e) in exact {
            let b = batch[name]!
            for i in 0..<e.count {
                #expect(b[i] <= e[i] * (1 + 1e-4) + 1e-7)
                if b[i] < e[i] * 0.99 { strictlySmaller += 1 }
            }
        }
        #expect(strictlySmaller > 0, "per-sample signs disagree somewhere, so batch mode must under-estimate")
        let one = [inputs[0].indexSelect([0])]
        let e1 = Importance.mas(model: model, inputs: one, mode: .exact).mean
        let b1 = Importance.mas(model: model, inputs: one, mode: .batch).mean
        for (name, e) in e1 { for i in 0..<e.count { #expect(abs(b1[name]![i] - e[i]) <= 1e-5 * max(1, e[i])) } }
    }

    @Test("MAS importance uses no labels: it depends only on the inputs")
    func importanceUsesNoLabels() throws {
        let (model, inputs) = try fixture()
        // The API takes inputs only; the same inputs give the same Ω, other inputs a different Ω.
        let a = Importance.mas(model: model, inputs: inputs).mean
        let b = Importance.mas(model: model, inputs: inputs).mean
        let c = Importance.mas(model: model, inputs: [inputs[0] * 0.5]).mean
        #expect(a == b)
        #expect(a != c)
    }

    @Test("local (Hebbian) MAS of a hidden Linear layer is the mean of |ReLU(z_i)·x_j| over samples")
    func localMatchesHebbianDefinition() throws {
        let (model, inputs) = try fixture(hidden: [16])
        let omega = Importance.masLocal(model: model, inputs: [inputs[0]]).mean
        let linear = (model.features as! Sequential).layers[1] as! Linear
        let x = inputs[0]
        let y = Tensor.linear(x, weight: linear.weight, bias: linear.bias).relu()
        let (n, o, i) = (x.shape[0], y.shape[1], x.shape[1])
        var expected = [Float](repeating: 0, count: o * i)
        for k in 0..<n { for a in 0..<o { for b in 0..<i { expected[a * i + b] += abs(y.scalars[k * o + a] * x.scalars[k * i + b]) / Float(n) } } }
        let got = omega["features.1.weight"]!
        let scale = expected.max()!
        for j in 0..<expected.count { #expect(abs(got[j] - expected[j]) <= 1e-4 * scale) }
    }

    @Test("local MAS on a hand-computed 2-2-2 network: a unit that ReLU silences gives its connections no importance")
    func localHandComputed() throws {
        var rng = RandomGenerator(seed: 1)
        let model = Models.mlp(input: 2, hidden: [2], classes: 2, using: &rng)
        let hidden = (model.features as! Sequential).layers[1] as! Linear, head = model.head as! Linear
        hidden.weight.scalars = [1, 2, -1, -1]; hidden.bias!.scalars = [0, 0]
        head.weight.scalars = [1, -1, 0.5, 2]; head.bias!.scalars = [0, 0]
        // x = (1, 1): z = (3, −2), ReLU → (3, 0); logits = (3, 1.5).
        let omega = Importance.masLocal(model: model, inputs: [Tensor(shape: [1, 2], scalars: [1, 1])]).mean
        #expect(omega["features.1.weight"] == [3, 3, 0, 0])      // |a_i·x_j|: the silenced unit's row is 0
        #expect(omega["features.1.bias"] == [3, 0])
        #expect(omega["head.weight"] == [9, 0, 4.5, 0])         // logits (no non-linearity) × hidden activations
        #expect(omega["head.bias"] == [3, 1.5])
    }
}

@Suite struct MASOnlineUpdateTests {
    @Test("updating Ω call by call with running-average accumulation equals one update on all the data")
    func streamedRunningAverageEqualsBatchAverage() throws {
        let data = try sharedMNIST.get()
        var rng = RandomGenerator(seed: 5)
        let model = Models.mlp(input: 784, hidden: [24], classes: 10, using: &rng)
        let inputs = (0..<4).map { b in
            Tensor(shape: [10, 784], scalars: (0..<(7840)).map { i in Float(data.test.pixels[b * 7840 + i]) / 255 })
        }
        let once = try MAS(lambda: 1, accumulation: .average)
        once.updateImportance(model: model, inputs: inputs)
        let streamed = try MAS(lambda: 1, accumulation: .average)
        for x in inputs { streamed.updateImportance(model: model, inputs: [x]) }
        #expect(streamed.state.samplesSeen == 40 && once.state.samplesSeen == 40)
        for (name, a) in once.state.importance {
            let b = streamed.state.importance[name]!
            for i in 0..<a.count { #expect(abs(a[i] - b[i]) <= 1e-5 * max(1, abs(a[i]))) }
        }
    }

    @Test("Ω measured in chunks equals Ω measured without, after two tasks, under both accumulation rules and both MAS versions",
          arguments: [ImportanceAccumulation.sum, .average], ["mas", "mas-local"])
    func chunksDoNotChangeOmega(accumulation: ImportanceAccumulation, name: String) throws {
        var config = smallSplitMNIST(strategy: name, fraction: 0.02)
        config.hidden = [20]
        func omega(chunk: Int?) throws -> ParameterMap {
            let strategy: any Strategy = name == "mas" ? try MAS(lambda: 1, accumulation: accumulation, chunk: chunk)
                                                       : try MASLocal(lambda: 1, accumulation: accumulation, chunk: chunk)
            let trainer = try makeTrainer(config, strategy: strategy)
            for task in 0..<2 { try strategy.afterTask(task, context: trainer.context) }
            return (strategy as? MAS)?.state.importance ?? (strategy as! MASLocal).state.importance
        }
        let whole = try omega(chunk: nil), chunked = try omega(chunk: 7)
        #expect(Set(whole.keys) == Set(chunked.keys))
        for (key, a) in whole {
            let b = chunked[key]!
            let scale = a.map(abs).max() ?? 1
            for i in 0..<a.count { #expect(abs(a[i] - b[i]) <= 1e-4 * max(scale, 1e-6), "\(key)[\(i)]: \(a[i]) vs \(b[i])") }
        }
    }

    @Test("MAS measured on test inputs (no labels) changes Ω but not the memory held")
    func testTimeImportance() throws {
        var config = smallPermutedMNIST(strategy: "mas", tasks: 2, fraction: 0.02)
        config.hidden = [32]
        let train = try ExperimentRun(configuration: config, directory: try temporaryDirectory("engram-mas-train")).run()
        config.hyperparameters["mas", "importance_data"] = "test"
        config.hyperparameters["mas", "importance_chunk"] = 50
        config.hyperparameters["mas", "accumulation"] = "average"
        let test = try ExperimentRun(configuration: config, directory: try temporaryDirectory("engram-mas-test")).run()
        #expect(test.strategyMemoryBytes == train.strategyMemoryBytes)
        #expect(test.matrix != train.matrix, "a different Ω must change the second task's training")
    }
}
