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
