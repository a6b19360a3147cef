import EngramTensor
import Foundation

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
