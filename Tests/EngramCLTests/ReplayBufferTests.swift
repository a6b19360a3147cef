import EngramTensor
import EngramNN
import EngramData
import Testing
import Foundation
import EngramCL

/// One-byte "images" offered one at a time: sample i has pixel i % 256, label `label(i)`, task `task(i)`.
private func offerSequence(_ buffer: ReplayBuffer, count: Int, from start: Int = 0, label: (Int) -> Int = { $0 % 3 },
                           task: (Int) -> Int = { _ in 0 }) {
    for i in start..<(start + count) {
        buffer.offer(pixels: [UInt8(i % 256)], label: label(i), task: task(i))
    }
}

@Suite struct ReplayBufferTests {
    @Test("reservoir sampling keeps everything until full, then each offered sample with probability capacity / n")
    func reservoirIsUniform() {
        // 400 memories of 20 out of 200 offered: each sample's inclusion frequency is 20 / 200 = 0.1.
        var kept = [Int](repeating: 0, count: 200)
        for seed in 0..<400 {
            let buffer = ReplayBuffer(capacity: 20, policy: .reservoir, sampleBytes: 1, random: RandomGenerator(seed: UInt64(seed)))
            for i in 0..<200 { buffer.offer(pixels: [0], label: i, task: 0) }
            #expect(buffer.count == 20 && buffer.seen == 200)
            for label in buffer.labels { kept[Int(label)] += 1 }
        }
        // Early, middle and late quarters: 50 samples × 400 runs × 0.1 = 2000 expected each (binomial sd ≈ 42).
        for quarter in 0..<4 {
            let n = kept[quarter * 50 ..< (quarter + 1) * 50].reduce(0, +)
            #expect(abs(n - 2000) < 200, "quarter \(quarter) kept \(n) times")
        }
        let first = ReplayBuffer(capacity: 5, policy: .reservoir, sampleBytes: 1, random: RandomGenerator(seed: 1))
        offerSequence(first, count: 5)
        #expect(first.pixels == [0, 1, 2, 3, 4])
    }

    @Test("the class-balanced ring never holds more than ⌊capacity / classes⌋ of a class and keeps each class's newest")
    func classBalancedRing() {
        // 3 classes, capacity 10: a ring of 3 slots per class (one slot stays free).
        let buffer = ReplayBuffer(capacity: 10, policy: .classBalanced, sampleBytes: 1, classCount: 3, random: RandomGenerator(seed: 0))
        #expect(buffer.classQuota == 3)
        var rng = RandomGenerator(seed: 4)
        for i in 0..<300 {
            let label = rng.nextInt(below: 100) < 80 ? 0 : 1 + rng.nextInt(below: 2)  // imbalanced: 80 % class 0
            buffer.offer(pixels: [UInt8(i % 256)], label: label, task: 0)
            for c in 0..<3 { #expect(buffer.labels.filter { $0 == Int32(c) }.count <= 3) }
        }
        // Class 0's ring holds its three most recent samples.
        let zeros = (0..<buffer.count).filter { buffer.labels[$0] == 0 }.map { Int(buffer.pixels[$0]) }
        var recent: [Int] = []
        var replay = RandomGenerator(seed: 4)
        for i in 0..<300 where (replay.nextInt(below: 100) < 80 ? 0 : 1 + replay.nextInt(below: 2)) == 0 { recent.append(i % 256) }
        #expect(Set(zeros) == Set(recent.suffix(3)))
    }

    @Test("greedy balancing evens out an imbalanced stream: largest and smallest class differ by at most one")
    func greedyBalancedEvensOut() {
        let buffer = ReplayBuffer(capacity: 12, policy: .greedyBalanced, sampleBytes: 1, random: RandomGenerator(seed: 2))
        // 30 samples of class 0, then 10 of class 1, then 6 of class 2 (task 1).
        offerSequence(buffer, count: 30, label: { _ in 0 })
        #expect(buffer.labels.allSatisfy { $0 == 0 } && buffer.count == 12)
        offerSequence(buffer, count: 10, from: 30, label: { _ in 1 })
        offerSequence(buffer, count: 6, from: 40, label: { _ in 0 }, task: { _ in 1 })
        var counts: [String: Int] = [:]
        for i in 0..<buffer.count { counts["\(buffer.tasks[i])/\(buffer.labels[i])", default: 0] += 1 }
        #expect(counts == ["0/0": 4, "0/1": 4, "1/0": 4], "a class is a (task, target) pair: \(counts)")
    }

    @Test("bytes count one per pixel and four per target, task and logit")
    func reportsBytes() {
        let buffer = ReplayBuffer(capacity: 10, policy: .reservoir, sampleBytes: 784, logitWidth: 10, random: RandomGenerator(seed: 0))
        for i in 0..<3 { buffer.offer(pixels: ArraySlice(repeating: UInt8(i), count: 784), label: i, task: 0, logits: ArraySlice(repeating: 0.5, count: 10)) }
        #expect(buffer.bytes == 3 * (784 + 4 + 4 + 40))
        #expect(buffer.logits([2, 0]).shape == [2, 10])
    }

    @Test("a restored memory holds the same samples and makes the same choices afterwards")
    func stateRoundTrip() throws {
        for policy in ReplayPolicy.allCases {
            let ring = policy == .classBalanced
            let original = ReplayBuffer(capacity: ring ? 40 : 8, policy: policy, sampleBytes: 1, logitWidth: 2,
                                        classCount: ring ? 20 : nil, random: RandomGenerator(seed: 5))
            // A herding memory is filled when a task ends: appended to, and cut to its first samples per class.
            func store(_ buffer: ReplayBuffer, _ i: Int) {
                if policy != .herding {
                    buffer.offer(pixels: [UInt8(i)], label: i % 4, task: i / 10 % 5, logits: [Float(i), -1])
                } else if buffer.count < buffer.capacity {
                    buffer.append(pixels: [UInt8(i)], label: i % 4, task: i / 10 % 5, logits: [Float(i), -1])
                } else {
                    buffer.keepFirst(perClass: 1)
                }
            }
            for i in 0..<30 { store(original, i) }
            let restored = ReplayBuffer(capacity: ring ? 40 : 8, policy: policy, sampleBytes: 1, logitWidth: 2,
                                        classCount: ring ? 20 : nil, random: RandomGenerator(seed: 99))
            try restored.loadState(try original.saveState(), taskCount: 5)
            for buffer in [original, restored] {
                for i in 30..<60 { store(buffer, i) }
            }
            #expect(restored.pixels == original.pixels && restored.labels == original.labels && restored.tasks == original.tasks)
            #expect(restored.logits == original.logits && restored.seen == original.seen && (policy == .herding || original.seen == 60), "\(policy)")
        }
    }

    @Test("a state of another memory or a damaged one is refused, naming what is wrong")
    func refusesForeignStates() throws {
        let buffer = ReplayBuffer(capacity: 4, policy: .reservoir, sampleBytes: 2, random: RandomGenerator(seed: 0))
        for i in 0..<3 { buffer.offer(pixels: [UInt8(i), 7], label: i, task: i) }
        let state = try buffer.saveState()
        let other = ReplayBuffer(capacity: 5, policy: .reservoir, sampleBytes: 2, random: RandomGenerator(seed: 0))
        #expect(throws: StrategyError.self) { try other.loadState(state, taskCount: 3) }
        var damaged = state
        damaged.tensors["pixels"] = Tensor(shape: [3, 2], scalars: [0, 7, 1, 7, 300, 7])
        let fresh = ReplayBuffer(capacity: 4, policy: .reservoir, sampleBytes: 2, random: RandomGenerator(seed: 0))
        #expect { try fresh.loadState(damaged, taskCount: 3) } throws: { "\($0)" == "tensor 'pixels' holds 300.0" }
        #expect(throws: StrategyError.self) { try fresh.loadState(state, taskCount: 2) }  // a task this stream lacks
        #expect(fresh.isEmpty, "a refused state changes nothing")
    }

    @Test("stored samples turn back into the batch they came from")
    func rebuildsBatches() throws {
        let configuration = smallSplitMNIST(strategy: "finetune", fraction: 0.01)
        let benchmark = try configuration.makeBenchmark()
        let stream = BenchmarkStream(benchmark: benchmark, layout: .flat, normalization: .dataset(.mnist))
        let batch = stream.trainingBatches(task: 3, epoch: 0, batchSize: 16).first { _ in true }!
        let buffer = ReplayBuffer(capacity: 64, policy: .reservoir, sampleBytes: stream.storedSampleBytes, random: RandomGenerator(seed: 0))
        buffer.offer(batch, stream: stream)
        var random = RandomGenerator(seed: 0)
        let rebuilt = buffer.batch(Array(0..<16), stream: stream, random: &random)
        #expect(rebuilt.inputs.scalars == batch.inputs.scalars && rebuilt.labels == batch.labels && rebuilt.taskIDs == batch.taskIDs)
        let slots = buffer.sampleSlots(10, random: &random)
        #expect(slots.count == 10 && Set(slots).count == 10 && slots.allSatisfy { $0 < 16 })
        #expect(buffer.sampleSlots(100, random: &random).sorted() == Array(0..<16))
    }
}

/// A minimal replay method, for the data path's tests: stores every stream batch in a reservoir memory and
/// appends as many memory samples (from earlier tasks only once a task is done) to each batch.
final class ReplayProbe: Strategy {
    var name: String { "replay-probe" }
    var memory: ReplayBuffer?
    var mixedBatches = 0
    func beforeForward(_ batch: Batch, context: TrainingContext) throws -> Batch {
        let memory = self.memory ?? ReplayBuffer(capacity: 200, policy: .reservoir, sampleBytes: context.stream.storedSampleBytes,
                                                  random: context.generator("memory"))
        self.memory = memory
        var random = context.generator("replay/task \(context.task)/step \(context.stepInTask)")
        let old = memory.sampleSlots(batch.count, random: &random).filter { Int(memory.tasks[$0]) < context.task }
        defer { memory.offer(batch, stream: context.stream) }
        guard !old.isEmpty else { return batch }
        let replayed = memory.batch(old, stream: context.stream, random: &random)
        mixedBatches += 1
        return Batch(inputs: Tensor.concatenate([batch.inputs, replayed.inputs]), labels: batch.labels + replayed.labels,
                     taskIDs: batch.taskIDs + replayed.taskIDs, scenario: batch.scenario)
    }
    var memoryBytes: Int { memory?.bytes ?? 0 }
}

@Suite struct ReplayDataPathTests {
    @Test("the trainer routes each sample of a mixed replay batch to its own head, and replay forgets less than fine-tuning")
    func trainerRoutesReplayBatches() throws {
        var configuration = smallSplitMNIST(strategy: "finetune", fraction: 0.05)
        configuration.training.epochs = 1
        let probe = ReplayProbe()
        let replay = try makeTrainer(configuration, strategy: probe).run()
        let finetune = try makeTrainer(configuration, strategy: Finetune()).run()
        #expect(probe.mixedBatches > 0 && (probe.memory?.count ?? 0) == 200)
        #expect(replay.strategyMemoryBytes.last == 200 * (784 + 8))
        let mean = { (r: StreamResult) in r.accuracy.last!.reduce(0, +) / Float(r.accuracy.last!.count) }
        #expect(mean(replay) > mean(finetune), "replay \(mean(replay)) vs fine-tuning \(mean(finetune))")
    }

    @Test("a mixed batch in a model with per-task BatchNorm is a training error naming the module")
    func perTaskBatchNormIsRefused() throws {
        var configuration = smallSplitMNIST(strategy: "finetune", fraction: 0.02)
        configuration.model = "cnn"
        configuration.perTaskBatchNorm = true
        let trainer = try makeTrainer(configuration, strategy: ReplayProbe())
        #expect(throws: TrainingError.self) { try trainer.run() }
    }
}
