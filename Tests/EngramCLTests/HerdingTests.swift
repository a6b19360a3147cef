import EngramTensor
import EngramNN
import EngramData
import EngramCL
import Testing
import Foundation

@Suite struct HerdingTests {
    @Test("herding picks, on a hand-made set, the exemplars whose running mean is closest to the class mean")
    func handMadeSet() {
        // Points on a line: 0, 1, 2, 3, 10 (mean 3.2).
        // k = 1: |3.2 − p| is least for p = 3 (row 3).
        // k = 2: |3.2 − (3 + p)/2| → p = 3.4 wanted: 2 gives 0.7, 10 gives 3.3, 1 gives 1.2 → row 2.
        // k = 3: |3.2 − (5 + p)/3| → p = 4.6 wanted: 10 gives 1.8, 1 gives 1.2, 0 gives 1.53 → row 1.
        // k = 4: |3.2 − (6 + p)/4| → p = 6.8 wanted: 10 gives 0.8, 0 gives 1.7 → row 4.
        #expect(Herding.select([0, 1, 2, 3, 10], dimension: 1, count: 4) == [3, 2, 1, 4])
        // Two dimensions: the mean of (1, 0), (0, 1), (1, 1), (0, 0) is (½, ½); the first pick is the point nearest
        // to it (the first of four at equal distance), the second the point that completes it: (0, 1) after (1, 0).
        #expect(Herding.select([1, 0, 0, 1, 1, 1, 0, 0], dimension: 2, count: 2) == [0, 1])
        #expect(Herding.select([5, 6], dimension: 1, count: 5) == [0, 1], "never more than the class has; ties go to the first")
    }

    @Test("a herding memory keeps ⌊M / classes seen⌋ exemplars of every class, old classes their first ones")
    func fillsWhenATaskEnds() throws {
        var c = smallSplitMNIST(strategy: "er", fraction: 0.02)
        c.scenario = "class"
        let er = ExperienceReplay(bufferSize: 50, replayBatchSize: 10, policy: .herding)
        let trainer = try makeTrainer(c, strategy: er)
        try trainer.train(from: TrainingPosition(task: 0))
        let buffer = try #require(er.buffer)
        // After task 0 (classes 0 and 1): 25 of each.
        #expect(buffer.labels.filter { $0 == 0 }.count == 25 && buffer.labels.filter { $0 == 1 }.count == 25)
        let firstOfClass0 = Array(buffer.pixels[0 ..< 784])
        try trainer.train(from: TrainingPosition(task: 1))
        // Four classes seen: ⌊50 / 4⌋ = 12 each; class 0 keeps its first exemplar first.
        for label in Int32(0)...3 { #expect(buffer.labels.filter { $0 == label }.count == 12, "class \(label)") }
        #expect(Array(buffer.pixels[0 ..< 784]) == firstOfClass0)
        #expect(buffer.count == 48)
    }

    @Test("keepFirst keeps each class's first samples in order")
    func keepFirst() {
        let buffer = ReplayBuffer(capacity: 6, policy: .herding, sampleBytes: 1, random: RandomGenerator(seed: 0))
        for (i, label) in [0, 0, 0, 1, 1, 1].enumerated() { buffer.append(pixels: [UInt8(i)], label: label, task: 0) }
        buffer.keepFirst(perClass: 2)
        #expect(buffer.pixels == [0, 1, 3, 4] && buffer.labels == [0, 0, 1, 1])
    }
}

@Suite struct ICaRLTests {
    private func configuration() -> ExperimentConfiguration {
        var c = smallSplitMNIST(strategy: "icarl", fraction: 0.02)
        c.scenario = "class"
        c.training.batchSize = 10
        c.training.learningRate = 0.1
        c.training.momentum = 0
        return c
    }

    @Test("the loss is the mean binary cross-entropy with logits against the one-hot label on the first task")
    func binaryCrossEntropy() throws {
        let icarl = ICaRL(bufferSize: 20)
        let trainer = try makeTrainer(configuration(), strategy: icarl)
        let output = Tensor(shape: [1, 10], scalars: [2, -1, 0, 0, 0, 0, 0, 0, 0, 0])
        let batch = Batch(inputs: Tensor(shape: [1, 784], scalars: Array(repeating: 0, count: 784)), labels: [0], taskIDs: [0],
                          scenario: .classIncremental)
        let loss = try #require(icarl.criterion(taskLoss: output, output: output, batch: batch, context: trainer.context)).item
        // (log(1 + e⁻²) + log(1 + e¹) + 8 log 2) / 10
        let expected = (log1p(exp(-2.0)) + log1p(exp(-1.0)) + 8 * log(2.0)) / 10
        #expect(abs(Double(loss) - expected) < 1e-6)
    }

    @Test("on a later task the units of earlier classes are distilled to the old network's sigmoid, the others are one-hot")
    func distillationTargets() throws {
        let icarl = ICaRL(bufferSize: 20)
        var checked = false
        // The first batch of task 1, before its first step: the live network is still the old one.
        let probe = FirstBatchProbe(icarl, task: 1) { _, _, batch, context in
            let model = context.model
            let restore = model.enterEvaluationMode()
            let old = GradMode.withoutGrad { model(batch.inputs).sigmoid() }.scalars
            restore()
            let rows = batch.count
            let targets = icarl.targets(output: Tensor(shape: [rows, 10], scalars: Array(repeating: 0, count: rows * 10)), batch: batch,
                                        context: context).scalars
            for r in 0..<rows {
                for o in 0..<10 {
                    let expected = o < 2 ? old[r * 10 + o] : (o == batch.labels[r] ? 1 : 0)
                    #expect(abs(targets[r * 10 + o] - expected) < 1e-6, "row \(r), unit \(o)")
                }
            }
            checked = true
        }
        let trainer = try makeTrainer(configuration(), strategy: probe)
        for task in 0..<2 { try trainer.train(from: TrainingPosition(task: task)) }
        #expect(checked)
    }

    @Test("classifies by the nearest mean of exemplars: each class mean classifies as its own class")
    func nearestMeanOfExemplars() throws {
        let icarl = ICaRL(bufferSize: 40)
        let trainer = try makeTrainer(configuration(), strategy: icarl)
        for task in 0..<2 { try trainer.train(from: TrainingPosition(task: task)) }
        let buffer = try #require(icarl.buffer)
        #expect(buffer.count == 40 && Set(buffer.labels) == [0, 1, 2, 3])
        // Scores on the stored exemplars themselves: classes 4…9 have no exemplars and never win.
        var random = RandomGenerator(seed: 0)
        let batch = buffer.batch(Array(0..<buffer.count), stream: trainer.context.stream, random: &random)
        let scores = icarl.evaluationScores(batch.inputs, task: 0, context: trainer.context)
        let predicted = (0..<batch.count).map { r in (0..<10).max { scores.scalars[r * 10 + $0] < scores.scalars[r * 10 + $1] }! }
        #expect(predicted.allSatisfy { $0 < 4 })
        let correct = zip(predicted, batch.labels).filter { $0 == $1 }.count
        #expect(Double(correct) / Double(batch.count) > 0.8, "NME accuracy on the exemplars \(correct) / \(batch.count)")
        #expect(try runExperiment(configuration()).metrics.averageAccuracy ?? 0 > 0.5)
    }
}

@Suite struct GDumbTests {
    @Test("the fitting schedule warms up for an epoch, then runs cosine cycles restarting at epochs 2, 4, 8, …")
    func schedule() {
        let gdumb = GDumb(bufferSize: 10, maxLearningRate: 0.05, minLearningRate: 0.0005)
        let expected: [Float] = [0.005, 0.05, 0.05, 0.02525, 0.05, 0.0005 + 0.0495 * 0.8535534, 0.02525, 0.0005 + 0.0495 * 0.1464466, 0.05]
        for (epoch, lr) in expected.enumerated() { #expect(abs(gdumb.learningRate(epoch: epoch) - lr) < 1e-6, "epoch \(epoch)") }
    }

    @Test("the gradient is clipped to a global norm: (3, 4) with bound 1 becomes (0.6, 0.8); within the bound it stays")
    func clipping() {
        let a = Tensor(shape: [1], scalars: [0]), b = Tensor(shape: [1], scalars: [0])
        a.grad = Tensor(shape: [1], scalars: [3]); b.grad = Tensor(shape: [1], scalars: [4])
        GDumb.clipGradientNorm([("a", a), ("b", b)], to: 1)
        #expect(abs(a.grad!.scalars[0] - 0.6) < 1e-6 && abs(b.grad!.scalars[0] - 0.8) < 1e-6)
        GDumb.clipGradientNorm([("a", a), ("b", b)], to: 10)
        #expect(abs(a.grad!.scalars[0] - 0.6) < 1e-6 && abs(b.grad!.scalars[0] - 0.8) < 1e-6)
    }

    @Test("the model learns only from the memory: the stream's learning rate changes nothing")
    func learnsOnlyFromTheMemory() throws {
        var c = smallSplitMNIST(strategy: "gdumb", fraction: 0.02)
        c.scenario = "class"
        c.hyperparameters["gdumb", "fitting_epochs"] = .int(3)
        let first = try runExperiment(c)
        c.training.learningRate = 0.5
        let second = try runExperiment(c)
        #expect(first.matrix == second.matrix)
        #expect((first.metrics.averageAccuracy ?? 0) > 0.5)
    }
}
