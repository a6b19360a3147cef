import EngramTensor
import Foundation

/// How pixel bytes become input floats.
public enum Normalization: Sendable, Equatable {
    /// `x / 255`, in [0, 1].
    case unitRange
    /// `(x / 255 − mean[c]) / std[c]` per channel (one value is used for every channel).
    case standardize(mean: [Float], std: [Float])

    /// The usual per-channel statistics of `dataset` (e.g. MNIST 0.1307 / 0.3081).
    public static func dataset(_ dataset: DatasetID) -> Normalization {
        .standardize(mean: dataset.channelMean, std: dataset.channelStd)
    }

    /// A 256-entry table per channel (channel-major), computed as torchvision does:
    /// `Float(byte) / 255`, then `(x − mean) / std`.
    func lookupTable(channels: Int) throws -> [Float] {
        var table = [Float](repeating: 0, count: 256 * channels)
        switch self {
        case .unitRange:
            for c in 0..<channels { for v in 0..<256 { table[c * 256 + v] = Float(v) / 255 } }
        case .standardize(let mean, let std):
            _ = try affine(channels: channels)
            for c in 0..<channels {
                let m = mean.count == 1 ? mean[0] : mean[c], s = std.count == 1 ? std[0] : std[c]
                for v in 0..<256 { table[c * 256 + v] = (Float(v) / 255 - m) / s }
            }
        }
        return table
    }

    /// Per-channel (scale, bias) so that value ≈ byte · scale + bias (for interpolated values).
    func affine(channels: Int) throws -> (scale: [Float], bias: [Float]) {
        switch self {
        case .unitRange:
            return (Array(repeating: 1 / 255, count: channels), Array(repeating: 0, count: channels))
        case .standardize(let mean, let std):
            guard mean.count == channels || mean.count == 1, std.count == mean.count, std.allSatisfy({ $0 > 0 }) else {
                throw DataError.invalidConfiguration("normalisation mean \(mean) / std \(std) for \(channels) channel(s)")
            }
            let m = mean.count == 1 ? Array(repeating: mean[0], count: channels) : mean
            let s = std.count == 1 ? Array(repeating: std[0], count: channels) : std
            return (s.map { 1 / (255 * $0) }, zip(m, s).map { -$0 / $1 })
        }
    }
}

/// The shape of a batch's input tensor.
public enum InputLayout: String, Sendable, Codable {
    /// `[batch, channels · height · width]`, for MLPs.
    case flat
    /// `[batch, channels, height, width]`, for convolutional networks.
    case image
}

/// Random training augmentation (CIFAR style), seeded per task, epoch and batch.
public struct Augmentation: Sendable, Equatable {
    /// Zero padding around the image before a random crop back to the original size (0 = no crop).
    public var cropPadding: Int
    /// Whether to mirror left–right with probability ½.
    public var horizontalFlip: Bool

    /// Creates an augmentation.
    public init(cropPadding: Int = 4, horizontalFlip: Bool = true) {
        self.cropPadding = cropPadding
        self.horizontalFlip = horizontalFlip
    }

    /// Random 32×32 crops of the 4-pixel zero-padded image, and horizontal flips.
    public static let cifar = Augmentation(cropPadding: 4, horizontalFlip: true)
}

/// How a loader batches a split.
public struct LoaderOptions: Sendable, Equatable {
    /// Samples per batch (the last batch may be smaller unless `dropLast`).
    public var batchSize: Int
    /// Whether to visit samples in a fresh seeded order each epoch.
    public var shuffle: Bool
    /// Whether to drop a final partial batch.
    public var dropLast: Bool
    /// Flat vectors or images.
    public var layout: InputLayout
    /// Pixel scaling.
    public var normalization: Normalization
    /// Random augmentation, or `nil` (use it for training splits only).
    public var augmentation: Augmentation?

    /// Creates options.
    public init(batchSize: Int = 64, shuffle: Bool = true, dropLast: Bool = false, layout: InputLayout = .image,
                normalization: Normalization = .unitRange, augmentation: Augmentation? = nil) {
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.dropLast = dropLast
        self.layout = layout
        self.normalization = normalization
        self.augmentation = augmentation
    }
}

/// One sample of a stream: the task it is seen under (which fixes its transform and target) and
/// its index in the source dataset.
public struct TaskSample: Hashable, Sendable, Codable {
    /// The task.
    public var task: Int
    /// Index into the benchmark's `train` (train/validation splits) or `test` dataset.
    public var index: Int32

    /// Creates a sample reference.
    public init(task: Int, index: Int32) {
        self.task = task
        self.index = index
    }
}

/// One batch: inputs as a contiguous tensor, one target per sample, and the task(s) it came from.
public struct Batch: @unchecked Sendable {
    /// `[b, C·H·W]` or `[b, C, H, W]`, normalised and transformed.
    public let inputs: Tensor
    /// Targets in the scenario's label space (each relative to its sample's task).
    public let labels: [Int]
    /// The task of each sample.
    public let taskIDs: [Int]
    /// The benchmark's scenario.
    public let scenario: Scenario
    /// The samples' indices in the source dataset.
    public let indices: [Int32]

    /// The task all samples belong to, or `nil` for a batch mixing tasks (joint or replay batches).
    public var taskID: Int? {
        guard let first = taskIDs.first, taskIDs.allSatisfy({ $0 == first }) else { return nil }
        return first
    }
    /// The task identity a model may be told: the (single) task id under task-incremental
    /// learning, `nil` under domain- and class-incremental learning.
    public var visibleTaskID: Int? { scenario == .taskIncremental ? taskID : nil }
    /// Per-sample task identities a model may be told (task-incremental only).
    public var visibleTaskIDs: [Int]? { scenario == .taskIncremental ? taskIDs : nil }
    /// Number of samples.
    public var count: Int { labels.count }

    /// A batch assembled elsewhere (replay buffers, joint training, tests): one task id per sample.
    public init(inputs: Tensor, labels: [Int], taskIDs: [Int], scenario: Scenario, indices: [Int32] = []) {
        precondition(inputs.shape.first == labels.count && taskIDs.count == labels.count,
                     "batch of \(labels.count) labels and \(taskIDs.count) task ids with inputs \(inputs.shape)")
        self.inputs = inputs
        self.labels = labels
        self.taskIDs = taskIDs
        self.scenario = scenario
        self.indices = indices
    }
}

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
        let b = samples.count
        let d = source.sampleSize, channels = source.channels, height = source.height, width = source.width
        let plane = height * width
        let tasks = benchmark.tasks
        let scenario = benchmark.scenario
        var labels = [Int](repeating: 0, count: b)
        let batchIndices = samples.map(\.index)
        let taskIDs = samples.map(\.task)
        let augmentation = options.augmentation
        var scratch = [Float](repeating: 0, count: augmentation == nil ? 0 : d)
        let scalars = [Float](unsafeUninitializedCapacity: b * d) { out, initialized in
            source.pixels.withUnsafeBufferPointer { pixels in
            source.labels.withUnsafeBufferPointer { sourceLabels in
            scale.withUnsafeBufferPointer { scale in
            bias.withUnsafeBufferPointer { bias in
            table.withUnsafeBufferPointer { table in
            scratch.withUnsafeMutableBufferPointer { scratch in
                for s in 0..<b {
                    let index = Int(batchIndices[s]), task = taskIDs[s]
                    let src = pixels.baseAddress! + index * d
                    let dst = out.baseAddress! + s * d
                    let stage = augmentation == nil ? dst : scratch.baseAddress!
                    let transform = transforms[task]
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
                    labels[s] = tasks[task].target(forDatasetLabel: Int(sourceLabels[index]), scenario: scenario)
                }
            }
            }
            }
            }
            }
            }
            initialized = b * d
        }
        return Batch(inputs: Tensor(shape: inputShape(batch: b), scalars: scalars), labels: labels,
                     taskIDs: taskIDs, scenario: scenario, indices: batchIndices)
    }
}

/// Batches one split of one task (or the union of several tasks, for joint training): a
/// deterministic shuffle per epoch (`"shuffle/task t/epoch e"`; `"shuffle/tasks 0+1+2/epoch e"`
/// for several), the tasks' input transforms, normalisation and optional augmentation
/// (`"augment/task t/epoch e/batch b"`).
public struct DataLoader: Sendable {
    /// The benchmark.
    public let benchmark: ContinualBenchmark
    /// The tasks being loaded (usually one).
    public let tasks: [Int]
    /// The split being loaded.
    public let split: TaskSplit
    /// The options.
    public let options: LoaderOptions
    /// The samples, in stored order (task by task).
    public let samples: [TaskSample]
    /// Builds the batches.
    public let assembler: BatchAssembler

    private let streamLabel: String

    /// Creates a loader for `split` of task `task`.
    /// - Throws: `DataError.invalidConfiguration` for a bad task, batch size, normalisation or a
    ///   transform that does not fit the images.
    public init(benchmark: ContinualBenchmark, task: Int, split: TaskSplit, options: LoaderOptions = LoaderOptions()) throws {
        try self.init(benchmark: benchmark, tasks: [task], split: split, options: options)
    }

    /// Creates a loader over the union of `split` of several tasks (joint training, or
    /// evaluation on all tasks seen so far). Each sample keeps its own task's transform and target.
    public init(benchmark: ContinualBenchmark, tasks: [Int], split: TaskSplit, options: LoaderOptions = LoaderOptions()) throws {
        guard !tasks.isEmpty, tasks.allSatisfy({ benchmark.tasks.indices.contains($0) }), Set(tasks).count == tasks.count else {
            throw DataError.invalidConfiguration("tasks \(tasks) of \(benchmark.name), which has \(benchmark.taskCount)")
        }
        guard options.batchSize > 0 else { throw DataError.invalidConfiguration("batch size \(options.batchSize)") }
        self.benchmark = benchmark
        self.tasks = tasks
        self.split = split
        self.options = options
        self.samples = tasks.flatMap { t in benchmark.tasks[t].indices(split).map { TaskSample(task: t, index: $0) } }
        self.assembler = try BatchAssembler(benchmark: benchmark, split: split, options: options)
        self.streamLabel = tasks.count == 1 ? "task \(tasks[0])" : "tasks " + tasks.map(String.init).joined(separator: "+")
    }

    /// The task, when the loader has exactly one.
    public var taskID: Int? { tasks.count == 1 ? tasks[0] : nil }
    /// The dataset the samples come from.
    public var source: ImageDataset { assembler.source }
    /// Number of samples in the split.
    public var sampleCount: Int { samples.count }
    /// Number of batches per epoch.
    public var batchCount: Int {
        options.dropLast ? samples.count / options.batchSize : (samples.count + options.batchSize - 1) / options.batchSize
    }
    /// The input tensor's shape for a batch of `b` samples.
    public func inputShape(batch b: Int) -> [Int] { assembler.inputShape(batch: b) }

    /// The order in which `epoch` visits the samples.
    public func order(epoch: Int) -> [TaskSample] {
        guard options.shuffle else { return samples }
        var rng = RandomGenerator(seed: benchmark.seed, label: "shuffle/\(streamLabel)/epoch \(epoch)")
        var order = samples
        rng.shuffle(&order)
        return order
    }

    /// The batches of `epoch`, in order.
    public func batches(epoch: Int = 0) -> BatchSequence {
        BatchSequence(loader: self, epoch: epoch, order: order(epoch: epoch))
    }

    /// Batch `b` of `epoch` (recomputes the epoch's order; iterate `batches(epoch:)` for a whole epoch).
    public func batch(_ b: Int, epoch: Int = 0) -> Batch {
        precondition(b >= 0 && b < batchCount, "batch \(b) of \(batchCount)")
        let order = order(epoch: epoch)
        let start = b * options.batchSize
        return assemble(order[start ..< min(start + options.batchSize, order.count)], epoch: epoch, batch: b)
    }

    /// A whole epoch's batches.
    public struct BatchSequence: Sequence, Sendable {
        let loader: DataLoader
        let epoch: Int
        let order: [TaskSample]

        public func makeIterator() -> Iterator { Iterator(sequence: self) }

        /// Produces the batches one at a time.
        public struct Iterator: IteratorProtocol {
            let sequence: BatchSequence
            var position = 0

            public mutating func next() -> Batch? {
                let loader = sequence.loader
                guard position < loader.batchCount else { return nil }
                let start = position * loader.options.batchSize
                let end = Swift.min(start + loader.options.batchSize, sequence.order.count)
                defer { position += 1 }
                return loader.assemble(sequence.order[start..<end], epoch: sequence.epoch, batch: position)
            }
        }
    }

    func assemble(_ slice: ArraySlice<TaskSample>, epoch: Int, batch: Int) -> Batch {
        var rng = RandomGenerator(seed: benchmark.seed, label: "augment/\(streamLabel)/epoch \(epoch)/batch \(batch)")
        return assembler.assemble(slice, rng: &rng)
    }

    /// Times the loader alone: assembles `batches` batches (default: one epoch), cycling epochs as
    /// needed, and reports the rate.
    public func measureThroughput(batches: Int? = nil) -> LoaderThroughput {
        let target = batches ?? batchCount
        guard target > 0, batchCount > 0 else { return LoaderThroughput(batches: 0, samples: 0, seconds: 0) }
        var done = 0, samples = 0, epoch = 0
        var checksum: Float = 0
        let start = DispatchTime.now().uptimeNanoseconds
        while done < target {
            for batch in self.batches(epoch: epoch) {
                samples += batch.count
                checksum += batch.inputs.scalars[0]  // keep the work observable
                done += 1
                if done == target { break }
            }
            epoch += 1
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        _ = checksum
        return LoaderThroughput(batches: done, samples: samples, seconds: seconds)
    }
}

/// The result of `DataLoader.measureThroughput`.
public struct LoaderThroughput: Sendable, Codable, Equatable {
    /// Batches assembled.
    public var batches: Int
    /// Samples assembled.
    public var samples: Int
    /// Wall-clock seconds taken.
    public var seconds: Double
    /// Batches per second.
    public var batchesPerSecond: Double { seconds > 0 ? Double(batches) / seconds : 0 }
    /// Samples per second.
    public var samplesPerSecond: Double { seconds > 0 ? Double(samples) / seconds : 0 }
}

/// A task transform prepared for the inner loop.
enum CompiledTransform: Sendable {
    case identity
    case permutation([Int32])
    /// Like a permutation, but −1 marks pixels outside the source (background, byte 0).
    case gather([Int32])
    case rotation(RotationMap)

    init(_ transform: InputTransform, height: Int, width: Int) throws {
        switch transform {
        case .identity:
            self = .identity
        case .permutation(let p):
            guard p.count == height * width, Set(p) == Set(0 ..< height * width) else {
                throw DataError.invalidConfiguration("pixel permutation of length \(p.count) for \(height)×\(width) images")
            }
            self = .permutation(p.map(Int32.init))
        case .rotation(let degrees):
            let map = RotationMap(height: height, width: width, degrees: degrees)
            // Rotations by multiples of 90° land on the grid: each output pixel copies one source
            // pixel (or is outside), so they become exact gathers through the lookup table.
            var gather = [Int32](repeating: -1, count: height * width)
            var onGrid = true
            for i in 0 ..< height * width {
                let w = map.weights[4 * i ..< 4 * i + 4]
                if let k = w.firstIndex(of: 1) { gather[i] = map.indices[k] }
                else if !w.allSatisfy({ $0 == 0 }) { onGrid = false; break }
            }
            self = onGrid ? .gather(gather) : .rotation(map)
        }
    }

    /// Writes one transformed, normalised plane: `dst[i] = table[byte]` for pixels taken as they are,
    /// `value · scale + bias` for interpolated ones.
    @inline(__always)
    func apply(_ src: UnsafePointer<UInt8>, _ dst: UnsafeMutablePointer<Float>, count: Int,
               table: UnsafePointer<Float>, scale: Float, bias: Float) {
        switch self {
        case .identity:
            for i in 0..<count { dst[i] = table[Int(src[i])] }
        case .permutation(let p):
            p.withUnsafeBufferPointer { p in
                for i in 0..<count { dst[i] = table[Int(src[Int(p[i])])] }
            }
        case .gather(let g):
            g.withUnsafeBufferPointer { g in
                for i in 0..<count { let k = Int(g[i]); dst[i] = table[k < 0 ? 0 : Int(src[k])] }
            }
        case .rotation(let map):
            map.indices.withUnsafeBufferPointer { idx in
                map.weights.withUnsafeBufferPointer { w in
                    for i in 0..<count {
                        let o = 4 * i
                        let v = w[o] * Float(src[Int(idx[o])]) + w[o + 1] * Float(src[Int(idx[o + 1])])
                            + w[o + 2] * Float(src[Int(idx[o + 2])]) + w[o + 3] * Float(src[Int(idx[o + 3])])
                        dst[i] = v * scale + bias
                    }
                }
            }
        }
    }
}
