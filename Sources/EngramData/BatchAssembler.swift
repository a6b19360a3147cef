import EngramTensor
import Foundation

/// Turns lists of `TaskSample`s into batches: each sample's task transform, normalisation and
/// optional augmentation are written straight into one preallocated buffer per batch (no
/// per-sample allocation). `DataLoader` uses it; replay strategies can call it directly with the
/// samples they keep.
public struct BatchAssembler: Sendable {
    /// The benchmark.
    public let benchmark: ContinualBenchmark
    /// The dataset samples are taken from (`train` for train/validation, `test` for test).
    public let source: ImageDataset
    /// Layout, normalisation and augmentation (batch size and shuffling are not used here).
    public let options: LoaderOptions

    private let transforms: [CompiledTransform]
    private let scale: [Float]
    private let bias: [Float]
    private let table: [Float]

    /// Prepares an assembler for samples of `split` (which selects the source dataset).
    public init(benchmark: ContinualBenchmark, split: TaskSplit, options: LoaderOptions = LoaderOptions()) throws {
        if let a = options.augmentation, a.cropPadding < 0 {
            throw DataError.invalidConfiguration("crop padding \(a.cropPadding)")
        }
        self.benchmark = benchmark
        self.options = options
        let source = split == .test ? benchmark.test : benchmark.train
        self.source = source
        (scale, bias) = try options.normalization.affine(channels: source.channels)
        table = try options.normalization.lookupTable(channels: source.channels)
        transforms = try benchmark.tasks.map { try CompiledTransform($0.transform, height: source.height, width: source.width) }
    }

    /// The input tensor's shape for a batch of `b` samples.
    public func inputShape(batch b: Int) -> [Int] {
        options.layout == .flat ? [b, source.sampleSize] : [b, source.channels, source.height, source.width]
    }

    /// Builds a batch from `samples`; augmentation (if any) draws from `augmentationRandom`.
    public func assemble(_ samples: [TaskSample], augmentationRandom rng: inout RandomGenerator) -> Batch {
        for sample in samples {
            precondition(benchmark.tasks.indices.contains(sample.task) && Int(sample.index) < source.count && sample.index >= 0,
                         "sample \(sample) outside the benchmark")
        }
        return assemble(samples[...], rng: &rng)
    }

    func assemble(_ samples: ArraySlice<TaskSample>, rng: inout RandomGenerator) -> Batch {
        let batchIndices = samples.map(\.index)
        let taskIDs = samples.map(\.task)
        let tasks = benchmark.tasks, scenario = benchmark.scenario
        let labels = source.labels.withUnsafeBufferPointer { sourceLabels in
            zip(batchIndices, taskIDs).map { index, task in
                tasks[task].target(forDatasetLabel: Int(sourceLabels[Int(index)]), scenario: scenario)
            }
        }
        let d = source.sampleSize
        let inputs = source.pixels.withUnsafeBufferPointer { pixels in
            writeInputs(count: samples.count, tasks: taskIDs, rng: &rng) { pixels.baseAddress! + Int(batchIndices[$0]) * d }
        }
        return Batch(inputs: inputs, labels: labels, taskIDs: taskIDs, scenario: scenario, indices: batchIndices)
    }

    /// Builds a batch from stored samples (a replay memory): `pixels` holds each sample's bytes as the source
    /// dataset stores them (before its task's transform), `source.sampleSize` bytes per sample; each sample gets
    /// its task's transform, the normalisation and (if any) the augmentation, drawing from `augmentationRandom`.
    /// `labels` are targets in the scenario's label space, as a `Batch` carries them.
    public func assemble(storedPixels pixels: [UInt8], tasks taskIDs: [Int], labels: [Int],
                         augmentationRandom rng: inout RandomGenerator) -> Batch {
        let d = source.sampleSize
        precondition(taskIDs.count == labels.count && pixels.count == labels.count * d,
                     "stored batch of \(labels.count) labels, \(taskIDs.count) tasks and \(pixels.count) bytes (\(d) per sample)")
        precondition(taskIDs.allSatisfy { benchmark.tasks.indices.contains($0) }, "stored sample of a task outside the benchmark")
        let inputs = pixels.withUnsafeBufferPointer { pixels in
            writeInputs(count: labels.count, tasks: taskIDs, rng: &rng) { pixels.baseAddress! + $0 * d }
        }
        return Batch(inputs: inputs, labels: labels, taskIDs: taskIDs, scenario: benchmark.scenario)
    }

    /// The input tensor of `b` samples: sample `s`'s bytes (at `bytes(s)`) through its task's transform, the
    /// normalisation and the optional augmentation, written straight into one buffer.
    private func writeInputs(count b: Int, tasks taskIDs: [Int], rng: inout RandomGenerator,
                             bytes: (Int) -> UnsafePointer<UInt8>) -> Tensor {
        let d = source.sampleSize, channels = source.channels, height = source.height, width = source.width
        let plane = height * width
        let augmentation = options.augmentation
        var scratch = [Float](repeating: 0, count: augmentation == nil ? 0 : d)
        let scalars = [Float](unsafeUninitializedCapacity: b * d) { out, initialized in
            scale.withUnsafeBufferPointer { scale in
            bias.withUnsafeBufferPointer { bias in
            table.withUnsafeBufferPointer { table in
            scratch.withUnsafeMutableBufferPointer { scratch in
                for s in 0..<b {
                    let src = bytes(s)
                    let dst = out.baseAddress! + s * d
                    let stage = augmentation == nil ? dst : scratch.baseAddress!
                    let transform = transforms[taskIDs[s]]
                    for c in 0..<channels {
                        transform.apply(src + c * plane, stage + c * plane, count: plane,
                                        table: table.baseAddress! + c * 256, scale: scale[c], bias: bias[c])
                    }
                    if let augmentation {
                        let p = augmentation.cropPadding
                        let dy = p > 0 ? rng.nextInt(below: 2 * p + 1) - p : 0
                        let dx = p > 0 ? rng.nextInt(below: 2 * p + 1) - p : 0
                        let flip = augmentation.horizontalFlip && rng.nextInt(below: 2) == 1
                        for c in 0..<channels {
                            let from = stage + c * plane, to = dst + c * plane, fill = table[c * 256]
                            for y in 0..<height {
                                let sy = y + dy
                                let row = to + y * width
                                guard sy >= 0 && sy < height else {
                                    row.update(repeating: fill, count: width)
                                    continue
                                }
                                let srcRow = from + sy * width
                                for x in 0..<width {
                                    let sx = (flip ? width - 1 - x : x) + dx
                                    row[x] = sx >= 0 && sx < width ? srcRow[sx] : fill
                                }
                            }
                        }
                    }
                }
            }
            }
            }
            }
            initialized = b * d
        }
        return Tensor(shape: inputShape(batch: b), scalars: scalars)
    }
}
