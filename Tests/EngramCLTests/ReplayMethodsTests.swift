import EngramTensor
import EngramNN
import EngramData
import EngramCL
import Testing
import Foundation

/// Class-incremental Split MNIST on a fraction of the data, online (batch 10, one epoch), as Buzzega et al.
private func onlineSplitMNIST(strategy: String, fraction: Double, seed: UInt64 = 0) -> ExperimentConfiguration {
    var c = smallSplitMNIST(strategy: strategy, fraction: fraction, seed: seed)
    c.scenario = "class"
    c.training.batchSize = 10
    c.training.learningRate = 0.1
    c.training.momentum = 0
    return c
}

/// Records the outputs the trainer passes to `penalty`, batch by batch.
private final class OutputRecorder: Strategy {
    var name: String { "recorder" }
    var outputs: [[Float]] = []
    func penalty(output: Tensor, batch: Batch, context: TrainingContext) -> Tensor? {
        outputs.append(output.scalars)
        return nil
    }
}

@Suite struct AGEMTests {
    @Test("a conflicting gradient is projected to a non-negative dot product with the memory gradient; an agreeing one is kept")
    func projection() {
        // g = (1, −2), r = (0, 1): gᵀr = −2 < 0, g̃ = g − (−2 / 1)·r = (1, 0).
        let projected = AGEM.project([[1, -2]], onto: [[0, 1]])
        #expect(projected == [[1, 0]])
        #expect(AGEM.project([[1, 2]], onto: [[0, 1]]) == nil, "gᵀr = 2 ≥ 0: the gradient stays")
        var rng = RandomGenerator(seed: 7)
        for _ in 0..<50 {
            let g = [(0..<5).map { _ in rng.nextNormal() }, (0..<3).map { _ in rng.nextNormal() }]
            let r = [(0..<5).map { _ in rng.nextNormal() }, (0..<3).map { _ in rng.nextNormal() }]
            let dot = { (a: [[Float]], b: [[Float]]) in zip(a.joined(), b.joined()).reduce(Float(0)) { $0 + $1.0 * $1.1 } }
            if let p = AGEM.project(g, onto: r) {
                #expect(dot(g, r) < 0 && abs(dot(p, r)) < 1e-4, "g̃ᵀr = \(dot(p, r))")
            } else {
                #expect(dot(g, r) >= 0)
            }
        }
    }

    @Test("the memory holds ⌊M / T⌋ samples of each finished task, and gradients are projected while later tasks train")
    func memoryAndProjection() throws {
        let agem = AGEM(bufferSize: 100, replayBatchSize: 32)
        _ = try makeTrainer(onlineSplitMNIST(strategy: "agem", fraction: 0.02), strategy: agem).run()
        let tasks = agem.buffer.map { $0.tasks.map(Int.init) } ?? []
        #expect(tasks.count == 100 && (0..<5).allSatisfy { t in tasks.filter { $0 == t }.count == 20 })
        #expect(agem.referenceSteps > 0 && agem.projectedSteps > 0 && agem.projectedSteps < agem.referenceSteps)
    }
}

@Suite struct DarkExperienceReplayTests {
    @Test("DER stores each sample with the logits of the step at which it entered")
    func storesTheLogitsOfItsStep() throws {
        let recorder = OutputRecorder()
        let der = DarkExperienceReplay(.derpp, bufferSize: 10_000, replayBatchSize: 10, alpha: 0.3, beta: 0.5)
        let result = try makeTrainer(onlineSplitMNIST(strategy: "derpp", fraction: 0.01), strategy: CompositeStrategy([recorder, der])).run()
        let buffer = try #require(der.buffer)
        // Nothing was evicted (capacity above the stream's size): slot k holds the k-th sample seen.
        let stored = buffer.logits
        let seen = recorder.outputs.joined()
        #expect(buffer.count * 10 == seen.count && stored == Array(seen))
        #expect(stored[0..<10] != stored[stored.count - 10 ..< stored.count], "logits change as the network trains")
        #expect(result.strategyMemoryBytes.last == buffer.count * (784 + 8 + 40))
    }
}

@Suite struct ExperienceReplayTests {
    @Test("ER with a memory of 500 beats fine-tuning by at least 40 points of class-incremental ACC on Split MNIST")
    func beatsFinetuning() throws {
        let configuration = onlineSplitMNIST(strategy: "er", fraction: 0.2)
        let replay = try runExperiment(configuration)  // buffer_size 500, replay_batch_size 10 (the defaults)
        let finetune = try runExperiment(configuration) { $0.strategy = "finetune" }
        let acc = { (r: RunResults) in r.matrix.averageAccuracy ?? 0 }
        #expect(acc(replay) - acc(finetune) >= 0.40, "ER \(acc(replay)), finetune \(acc(finetune))")
    }

    @Test("ER-ACE's incoming loss covers only the classes of the batch after the first task")
    func asymmetricCrossEntropy() throws {
        var configuration = onlineSplitMNIST(strategy: "er-ace", fraction: 0.01)
        configuration.tasks = 5
        let ace = ERACE(bufferSize: 50, replayBatchSize: 10)
        let trainer = try makeTrainer(configuration, strategy: ace)
        _ = try trainer.run()
        let context = trainer.context
        let logits = Tensor(shape: [2, 10], scalars: (0..<20).map { Float($0 % 7) })
        let batch = Batch(inputs: Tensor.zeros([2, 784]), labels: [8, 9], taskIDs: [4, 4], scenario: .classIncremental)
        let loss = try #require(ace.criterion(taskLoss: Tensor(0), output: logits, batch: batch, context: context))
        let expected = Losses.crossEntropy(logits, targets: [8, 9], allowedClasses: [8, 9])
        #expect(abs(loss.item - expected.item) < 1e-6)
    }
}

@Suite struct GEMTests {
    @Test("a hand-computed projection: g = (1, −1) against g₁ = (0, 1) with γ = 0 becomes (1, 0)")
    func handComputedProjection() throws {
        // Dual: min_{v ≥ 0} ½·1·v² + (g₁ᵀg)·v = ½v² − v → v = 1; g̃ = g + v·g₁ = (1, 0).
        let projected = try #require(GEM.project([1, -1], onto: [[0, 1]], margin: 0, regularization: 0))
        #expect(zip(projected, [1, 0] as [Float]).allSatisfy { abs($0 - $1) < 1e-6 })
        #expect(GEM.project([1, 1], onto: [[0, 1]], margin: 0.5, regularization: 0) == nil, "no violated constraint: g stays")
    }

    @Test("the dual solution satisfies every constraint and the optimality conditions on random instances")
    func dualSolutionIsFeasibleAndOptimal() {
        var rng = RandomGenerator(seed: 11)
        for instance in 0..<200 {
            let t = 1 + instance % 6, n = 20
            let rows = (0..<t).map { _ in (0..<n).map { _ in rng.nextNormal() } }
            let g = (0..<n).map { _ in rng.nextNormal() }
            let margin = instance % 2 == 0 ? 0.0 : 0.5
            guard let projected = GEM.project(g, onto: rows, margin: margin, regularization: 0) else {
                #expect(rows.allSatisfy { zip($0, g).reduce(0) { $0 + $1.0 * $1.1 } >= 0 })
                continue
            }
            // Primal feasibility: no past task's loss increases to first order, ⟨g̃, g_k⟩ ≥ 0.
            for row in rows {
                let dot = zip(row, projected).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                #expect(dot >= -1e-5 * Double(n), "instance \(instance): ⟨g̃, g_k⟩ = \(dot)")
            }
            // Dual: v ≥ γ, and the gradient Pv + Gg vanishes where v is above its bound (it is ≥ 0 everywhere).
            var p = [[Double]](repeating: [Double](repeating: 0, count: t), count: t)
            for i in 0..<t { for j in 0..<t { p[i][j] = zip(rows[i], rows[j]).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } } }
            let b = rows.map { row in zip(row, g).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } }
            let v = GEM.solveDual(p, b, margin: margin)
            for k in 0..<t {
                let gradient = b[k] + (0..<t).reduce(0.0) { $0 + p[k][$1] * v[$1] }
                #expect(v[k] >= margin - 1e-12)
                #expect(gradient >= -1e-5 && (v[k] <= margin + 1e-9 || abs(gradient) < 1e-5), "instance \(instance), k \(k): ∇ = \(gradient)")
            }
        }
    }

    @Test("GEM keeps ⌊M / T⌋ samples per finished task and projects while later tasks train")
    func memoryAndProjection() throws {
        let gem = GEM(bufferSize: 50, margin: 0.5)
        _ = try makeTrainer(smallSplitMNIST(strategy: "gem", fraction: 0.02), strategy: gem).run()
        let tasks = gem.buffer.map { $0.tasks.map(Int.init) } ?? []
        #expect(tasks.count == 50 && (0..<5).allSatisfy { t in tasks.filter { $0 == t }.count == 10 })
        #expect(gem.projectedSteps > 0)
    }
}

@Suite struct ReplayCompositionTests {
    @Test("in er+derpp, DER's memory is offered only the stream's samples, not those ER appended")
    func composedMemoriesStoreOnlyStreamSamples() throws {
        let configuration = onlineSplitMNIST(strategy: "er+derpp", fraction: 0.01)
        let er = ExperienceReplay(bufferSize: 50, replayBatchSize: 10)
        let der = DarkExperienceReplay(.derpp, bufferSize: 50, replayBatchSize: 10, alpha: 0.3, beta: 0.5)
        let trainer = try makeTrainer(configuration, strategy: CompositeStrategy([er, der]))
        _ = try trainer.run()
        let streamSamples = (0..<5).reduce(0) { $0 + trainer.context.stream.trainingCount(task: $1) }
        #expect(er.buffer?.seen == streamSamples && der.buffer?.seen == streamSamples)
        #expect(der.buffer?.count == 50)
    }
}
