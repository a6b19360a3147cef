import EngramData
import EngramTensor
import Foundation
import Testing

@Suite("DataLoader")
struct DataLoaderTests {
    func splitMNIST(_ scenario: Scenario = .taskIncremental, seed: UInt64 = 1, fraction: Double = 0.05) throws -> ContinualBenchmark {
        try ContinualBenchmark.splitMNIST(try sharedMNIST.get(), options: BenchmarkOptions(seed: seed, scenario: scenario, fraction: fraction))
    }

    @Test("batches have [b, 1, 28, 28] or [b, 784] inputs, and a short last batch unless dropped")
    func shapes() throws {
        let bench = try splitMNIST()
        let n = bench.tasks[0].train.count
        let loader = try DataLoader(benchmark: bench, task: 0, split: .train, options: LoaderOptions(batchSize: 100))
        let batches = Array(loader.batches(epoch: 0))
        #expect(batches.count == (n + 99) / 100 && batches.count == loader.batchCount)
        #expect(batches[0].inputs.shape == [100, 1, 28, 28])
        #expect(batches.last?.inputs.shape == [n % 100, 1, 28, 28])
        let flat = try DataLoader(benchmark: bench, task: 0, split: .train,
                                  options: LoaderOptions(batchSize: 100, dropLast: true, layout: .flat))
        let flatBatches = Array(flat.batches(epoch: 0))
        #expect(flatBatches.count == n / 100)
        #expect(flatBatches.allSatisfy { $0.inputs.shape == [100, 784] })
    }

    @Test("each epoch visits every sample once, in the order of \"shuffle/task t/epoch e\"")
    func deterministicShuffle() throws {
        let bench = try splitMNIST(seed: 9)
        let loader = try DataLoader(benchmark: bench, task: 2, split: .train, options: LoaderOptions(batchSize: 64))
        let epoch0 = loader.batches(epoch: 0).flatMap(\.indices)
        let epoch1 = loader.batches(epoch: 1).flatMap(\.indices)
        #expect(epoch0.sorted() == bench.tasks[2].train)
        #expect(epoch1.sorted() == bench.tasks[2].train)
        #expect(epoch0 != epoch1)
        #expect(epoch0 == loader.batches(epoch: 0).flatMap(\.indices))
        var rng = RandomGenerator(seed: 9, label: "shuffle/task 2/epoch 1")
        var expected = bench.tasks[2].train
        rng.shuffle(&expected)
        #expect(epoch1 == expected)
        #expect(loader.batch(3, epoch: 1).indices == Array(expected[192..<256]))
        let unshuffled = try DataLoader(benchmark: bench, task: 2, split: .test, options: LoaderOptions(batchSize: 64, shuffle: false))
        #expect(unshuffled.batches().flatMap(\.indices) == bench.tasks[2].test)
    }

    @Test("labels follow the scenario and the batch carries its task")
    func labelsAndTask() throws {
        let data = try sharedMNIST.get()
        for scenario in Scenario.allCases {
            let bench = try splitMNIST(scenario)
            let batch = try DataLoader(benchmark: bench, task: 3, split: .test, options: LoaderOptions(batchSize: 50)).batch(0)
            for (label, index) in zip(batch.labels, batch.indices) {
                let digit = data.test.label(at: Int(index))
                #expect(label == (scenario == .classIncremental ? digit : digit - 6))
            }
            #expect(batch.taskID == 3)
            #expect(batch.visibleTaskID == (scenario == .taskIncremental ? 3 : nil))
        }
    }

    @Test("normalises by /255 or by the dataset's mean and standard deviation")
    func normalisation() throws {
        let bench = try splitMNIST()
        let pixels = bench.train.pixels
        let plain = try DataLoader(benchmark: bench, task: 0, split: .train, options: LoaderOptions(batchSize: 8, layout: .flat)).batch(0)
        let standard = try DataLoader(benchmark: bench, task: 0, split: .train,
                                      options: LoaderOptions(batchSize: 8, layout: .flat, normalization: .dataset(.mnist))).batch(0)
        #expect(plain.indices == standard.indices)
        for s in 0..<8 {
            let base = Int(plain.indices[s]) * 784
            for i in stride(from: 0, to: 784, by: 13) {
                let byte = Float(pixels[base + i])
                #expect(plain.inputs.scalars[s * 784 + i] == byte / 255)
                #expect(abs(standard.inputs.scalars[s * 784 + i] - (byte / 255 - 0.1307) / 0.3081) < 1e-5)
            }
        }
        #expect(throws: DataError.self) {
            try DataLoader(benchmark: bench, task: 0, split: .train,
                           options: LoaderOptions(normalization: .standardize(mean: [0.5, 0.5], std: [1, 1])))
        }
    }

    @Test("the normalisation constants match the statistics of the real training sets")
    func datasetStatistics() throws {
        for (dataset, id) in [(try sharedMNIST.get().train, DatasetID.mnist), (try sharedFashion.get().train, .fashionMNIST)] {
            var sum = 0.0, squares = 0.0
            dataset.pixels.withUnsafeBufferPointer { for p in $0 { let v = Double(p) / 255; sum += v; squares += v * v } }
            let n = Double(dataset.pixels.count)
            let mean = sum / n, std = (squares / n - mean * mean).squareRoot()
            #expect(abs(mean - Double(id.channelMean[0])) < 5e-4, "\(id) mean \(mean)")
            #expect(abs(std - Double(id.channelStd[0])) < 5e-4, "\(id) std \(std)")
        }
    }

    @Test("applies each task's permutation and rotation when assembling")
    func appliesTransforms() throws {
        let data = try sharedMNIST.get()
        let options = BenchmarkOptions(seed: 4, fraction: 0.01)
        let permuted = try ContinualBenchmark.permutedMNIST(data, tasks: 2, options: options)
        guard case .permutation(let p) = permuted.tasks[1].transform else { Issue.record("no permutation"); return }
        let batch = try DataLoader(benchmark: permuted, task: 1, split: .train, options: LoaderOptions(batchSize: 4, layout: .flat)).batch(0)
        for s in 0..<4 {
            let image = data.train.image(at: Int(batch.indices[s]))
            #expect(Array(batch.inputs.scalars[s * 784 ..< (s + 1) * 784]) == p.map { Float(image[$0]) / 255 })
        }
        let rotated = try ContinualBenchmark.rotatedMNIST(data, tasks: 3, options: options)  // 0°, 60°, 120°
        let rbatch = try DataLoader(benchmark: rotated, task: 2, split: .test, options: LoaderOptions(batchSize: 4)).batch(0)
        let map = RotationMap(height: 28, width: 28, degrees: 120)
        for s in 0..<4 {
            let expected = map.apply(data.test.image(at: Int(rbatch.indices[s]))).map { $0 / 255 }
            let actual = Array(rbatch.inputs.scalars[s * 784 ..< (s + 1) * 784])
            #expect(zip(actual, expected).allSatisfy { abs($0 - $1) < 1e-5 })
            #expect(actual != data.test.image(at: Int(rbatch.indices[s])).map { Float($0) / 255 })
        }
    }

    @Test("CIFAR augmentation is a seeded random crop of the zero-padded image plus a flip")
    func augmentation() throws {
        let train = try syntheticDataset(count: 200, classes: 100, channels: 3, side: 32)
        let bench = try ContinualBenchmark.splitCIFAR100(DatasetPair(train: train, test: train), tasks: 10,
                                                         options: BenchmarkOptions(seed: 2))
        let options = LoaderOptions(batchSize: 20, normalization: .dataset(.cifar100), augmentation: .cifar)
        let loader = try DataLoader(benchmark: bench, task: 0, split: .train, options: options)
        let batch = loader.batch(0, epoch: 5)
        #expect(batch.inputs.scalars == loader.batch(0, epoch: 5).inputs.scalars)
        #expect(batch.inputs.scalars != loader.batch(0, epoch: 6).inputs.scalars)
        let mean: [Float] = [0.5071, 0.4865, 0.4409], std: [Float] = [0.2673, 0.2564, 0.2762]
        var shifted = 0, flipped = 0
        for s in 0..<batch.count {
            let image = train.image(at: Int(batch.indices[s]))
            let actual = Array(batch.inputs.scalars[s * 3072 ..< (s + 1) * 3072])
            // Find the crop offset and flip that reproduce this sample.
            var match: (Int, Int, Bool)? = nil
            search: for dy in -4...4 { for dx in -4...4 { for flip in [false, true] {
                var ok = true
                check: for c in 0..<3 { for y in 0..<32 { for x in 0..<32 {
                    let sy = y + dy, sx = (flip ? 31 - x : x) + dx
                    let byte: Float = (0..<32).contains(sy) && (0..<32).contains(sx) ? Float(image[c * 1024 + sy * 32 + sx]) : 0
                    if abs(actual[c * 1024 + y * 32 + x] - (byte / 255 - mean[c]) / std[c]) > 1e-4 { ok = false; break check }
                } } }
                if ok { match = (dy, dx, flip); break search }
            } } }
            #expect(match != nil, "sample \(s) is not a padded crop/flip of its image")
            if let m = match { if m.0 != 0 || m.1 != 0 { shifted += 1 }; if m.2 { flipped += 1 } }
        }
        #expect(shifted > 0 && flipped > 0 && flipped < batch.count)
    }

    @Test("a joint loader mixes tasks, each sample with its own transform and target")
    func jointLoader() throws {
        let data = try sharedMNIST.get()
        let bench = try ContinualBenchmark.permutedMNIST(data, tasks: 3, options: BenchmarkOptions(seed: 6, scenario: .classIncremental, fraction: 0.01))
        let loader = try DataLoader(benchmark: bench, tasks: [0, 2], split: .train, options: LoaderOptions(batchSize: 64, layout: .flat))
        #expect(loader.sampleCount == 2 * bench.tasks[0].train.count && loader.taskID == nil)
        var rng = RandomGenerator(seed: 6, label: "shuffle/tasks 0+2/epoch 0")
        var expected = loader.samples
        rng.shuffle(&expected)
        #expect(loader.order(epoch: 0) == expected)
        guard case .permutation(let p) = bench.tasks[2].transform else { Issue.record("task 2 not permuted"); return }
        var mixed = false
        for batch in loader.batches(epoch: 0) {
            if batch.taskID == nil { mixed = true }
            #expect(batch.visibleTaskIDs == nil)
            for s in 0..<batch.count {
                let digit = data.train.label(at: Int(batch.indices[s]))
                #expect(batch.labels[s] == batch.taskIDs[s] * 10 + digit)
                let image = data.train.image(at: Int(batch.indices[s]))
                let row = Array(batch.inputs.scalars[s * 784 ..< (s + 1) * 784])
                #expect(row == (batch.taskIDs[s] == 2 ? p.map { Float(image[$0]) / 255 } : image.map { Float($0) / 255 }))
            }
        }
        #expect(mixed)
        #expect(throws: DataError.self) { try DataLoader(benchmark: bench, tasks: [0, 0], split: .train) }
    }

    @Test("the batch assembler builds replay batches from arbitrary task samples")
    func assemblerForReplay() throws {
        let data = try sharedMNIST.get()
        let bench = try ContinualBenchmark.rotatedMNIST(data, tasks: 2, schedule: .explicit([0, 90]), options: BenchmarkOptions(fraction: 0.01))
        let assembler = try BatchAssembler(benchmark: bench, split: .train, options: LoaderOptions(layout: .flat))
        let i = bench.tasks[0].train[0], j = bench.tasks[1].train[5]
        var rng = RandomGenerator(seed: 0, label: "replay")
        let batch = assembler.assemble([TaskSample(task: 1, index: j), TaskSample(task: 0, index: i)], augmentationRandom: &rng)
        #expect(batch.taskIDs == [1, 0] && batch.indices == [j, i] && batch.visibleTaskIDs == [1, 0])
        let turned = RotationMap(height: 28, width: 28, degrees: 90).apply(data.train.image(at: Int(j))).map { $0 / 255 }
        #expect(zip(batch.inputs.scalars[0..<784], turned).allSatisfy { abs($0 - $1) < 1e-6 })
        #expect(Array(batch.inputs.scalars[784..<1568]) == data.train.image(at: Int(i)).map { Float($0) / 255 })
        #expect(batch.labels == [data.train.label(at: Int(j)), data.train.label(at: Int(i))])
    }

    @Test("a batch rebuilt from stored pixel bytes equals the loader's batch of the same samples, augmentation included")
    func assemblesStoredPixels() throws {
        let train = try syntheticDataset(count: 200, classes: 100, channels: 3, side: 32)
        let bench = try ContinualBenchmark.splitCIFAR100(DatasetPair(train: train, test: train), tasks: 10, options: BenchmarkOptions(seed: 2))
        let assembler = try BatchAssembler(benchmark: bench, split: .train,
                                           options: LoaderOptions(normalization: .dataset(.cifar100), augmentation: .cifar))
        let samples = [TaskSample(task: 3, index: bench.tasks[3].train[1]), TaskSample(task: 0, index: bench.tasks[0].train[4])]
        var a = RandomGenerator(seed: 9, label: "replay"), b = a
        let loaded = assembler.assemble(samples, augmentationRandom: &a)
        let d = train.sampleSize
        let bytes = samples.flatMap { train.pixels[Int($0.index) * d ..< (Int($0.index) + 1) * d] }
        let rebuilt = assembler.assemble(storedPixels: bytes, tasks: loaded.taskIDs, labels: loaded.labels, augmentationRandom: &b)
        #expect(rebuilt.inputs.scalars == loaded.inputs.scalars && rebuilt.inputs.shape == [2, 3, 32, 32])
        #expect(rebuilt.labels == loaded.labels && rebuilt.taskIDs == [3, 0] && rebuilt.indices.isEmpty)
        #expect(a == b, "the same augmentation draws")
    }

    @Test("rejects a task or batch size that does not exist")
    func rejectsBadConfiguration() throws {
        let bench = try splitMNIST()
        #expect(throws: DataError.self) { try DataLoader(benchmark: bench, task: 5, split: .train) }
        #expect(throws: DataError.self) { try DataLoader(benchmark: bench, task: 0, split: .train, options: LoaderOptions(batchSize: 0)) }
    }

    @Test("measures its own throughput in batches per second")
    func throughput() throws {
        let data = try sharedMNIST.get()
        let bench = try ContinualBenchmark.permutedMNIST(data, tasks: 2, options: BenchmarkOptions(fraction: 0.2))
        let loader = try DataLoader(benchmark: bench, task: 1, split: .train, options: LoaderOptions(batchSize: 128, layout: .flat))
        let result = loader.measureThroughput(batches: 60)
        #expect(result.batches == 60 && result.samples == 60 * 128)
        #expect(result.batchesPerSecond > 0)
        print("loader (permuted MNIST, batch 128): \(Int(result.batchesPerSecond)) batches/s, \(Int(result.samplesPerSecond)) samples/s")
    }
}
