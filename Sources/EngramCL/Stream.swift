import EngramTensor
import EngramNN
import EngramData

/// A stream of tasks, as the trainer and the strategies see it.
public protocol TaskStream {
    /// Number of tasks.
    var taskCount: Int { get }
    /// How labels and heads relate across tasks.
    var scenario: Scenario { get }
    /// Shape of one input sample, e.g. [784] or [3, 32, 32].
    var inputShape: [Int] { get }
    /// The samples' image geometry [channels, height, width], whatever the layout the model takes them in.
    var imageShape: [Int] { get }
    /// Output units of each task's head (task-incremental) or of the shared head (others, same for every task).
    func headSize(task: Int) -> Int
    /// Output units a task's labels live in (its classes in the class-incremental head; all units otherwise).
    func outputClasses(task: Int) -> [Int]
    /// The training batches of `task` for `epoch`, shuffled deterministically from the stream's seed.
    func trainingBatches(task: Int, epoch: Int, batchSize: Int) -> Batches
    /// Batches mixing the training data of several tasks (joint training), shuffled from the seed;
    /// each sample keeps its own task's transform and target.
    func mixedTrainingBatches(tasks: [Int], epoch: Int, batchSize: Int) -> Batches
    /// The test batches of `task`, in a fixed order.
    func testBatches(task: Int, batchSize: Int) -> Batches
    /// Number of training samples of `task`.
    func trainingCount(task: Int) -> Int
    /// Bytes one stored sample's input takes in a replay memory (its pixels as the dataset stores them).
    var storedSampleBytes: Int { get }
    /// The stored form of a training batch's inputs: each sample's pixels as the dataset stores them (before its
    /// task's transform), `storedSampleBytes` per sample, in the batch's order.
    func storedPixels(of batch: Batch) -> [UInt8]
    /// A training batch rebuilt from stored samples: each sample's pixels through its task's transform, the
    /// normalisation and the training augmentation (drawing from `random`); `labels` are scenario targets.
    func replayBatch(pixels: [UInt8], tasks: [Int], labels: [Int], random: inout RandomGenerator) -> Batch
}

/// An epoch of batches, produced one at a time (a whole epoch is never held in memory), with its length.
public struct Batches: Sequence {
    /// Number of batches.
    public let count: Int
    private let base: AnySequence<Batch>

    public init<S: Sequence>(count: Int, _ batches: S) where S.Element == Batch {
        self.count = count
        base = AnySequence(batches)
    }

    /// Batches already in memory.
    public init(_ batches: [Batch]) { self.init(count: batches.count, batches) }

    public func makeIterator() -> AnyIterator<Batch> { base.makeIterator() }
    public var isEmpty: Bool { count == 0 }
}

/// A `TaskStream` over a benchmark of the data layer, batching through its `DataLoader`.
public struct BenchmarkStream: TaskStream {
    public let benchmark: ContinualBenchmark
    /// Flat inputs for MLPs, images for convolutional networks.
    public let layout: InputLayout
    public let normalization: Normalization
    /// Training augmentation (CIFAR crop and flip), if any.
    public let augmentation: Augmentation?
    /// The split `testBatches` serves: `.test`, or `.validation` for hyper-parameter selection.
    public let evaluationSplit: TaskSplit

    /// Builds replay batches (nil when the options cannot build batches at all; every loader then fails the same way).
    private let replayAssembler: BatchAssembler?

    public init(benchmark: ContinualBenchmark, layout: InputLayout, normalization: Normalization? = nil,
                augmentation: Augmentation? = nil, evaluationSplit: TaskSplit = .test) {
        self.benchmark = benchmark
        self.layout = layout
        self.normalization = normalization ?? .unitRange
        self.augmentation = augmentation
        self.evaluationSplit = evaluationSplit
        replayAssembler = try? BatchAssembler(benchmark: benchmark, split: .train,
                                              options: LoaderOptions(layout: layout, normalization: self.normalization,
                                                                     augmentation: augmentation))
    }

    public var taskCount: Int { benchmark.taskCount }
    public var scenario: Scenario { benchmark.scenario }
    public var inputShape: [Int] {
        let d = benchmark.train
        return layout == .flat ? [d.sampleSize] : [d.channels, d.height, d.width]
    }

    public var imageShape: [Int] { [benchmark.train.channels, benchmark.train.height, benchmark.train.width] }

    public func headSize(task: Int) -> Int {
        let heads = benchmark.headSizes
        return scenario == .taskIncremental ? heads[task] : heads[0]
    }

    public func outputClasses(task: Int) -> [Int] {
        let t = benchmark.tasks[task]
        return scenario == .classIncremental ? Array(t.classOffset..<(t.classOffset + t.classes.count))
                                             : Array(0..<headSize(task: task))
    }

    public func trainingCount(task: Int) -> Int { benchmark.tasks[task].train.count }

    public var storedSampleBytes: Int { benchmark.train.sampleSize }

    public func storedPixels(of batch: Batch) -> [UInt8] {
        precondition(batch.indices.count == batch.count, "only batches of the dataset (with sample indices) can be stored")
        let d = storedSampleBytes, train = benchmark.train
        var bytes = [UInt8](); bytes.reserveCapacity(batch.count * d)
        for index in batch.indices { bytes += train.pixels[Int(index) * d ..< (Int(index) + 1) * d] }
        return bytes
    }

    public func replayBatch(pixels: [UInt8], tasks: [Int], labels: [Int], random: inout RandomGenerator) -> Batch {
        guard let replayAssembler else { preconditionFailure("replay batches for \(benchmark.name): the loader options are invalid") }
        return replayAssembler.assemble(storedPixels: pixels, tasks: tasks, labels: labels, augmentationRandom: &random)
    }

    public func trainingBatches(task: Int, epoch: Int, batchSize: Int) -> Batches {
        batches(task: task, split: .train, epoch: epoch, batchSize: batchSize, shuffle: true)
    }

    public func testBatches(task: Int, batchSize: Int) -> Batches {
        batches(task: task, split: evaluationSplit, epoch: 0, batchSize: batchSize, shuffle: false)
    }

    public func mixedTrainingBatches(tasks: [Int], epoch: Int, batchSize: Int) -> Batches {
        batches(tasks: tasks, split: .train, epoch: epoch, batchSize: batchSize, shuffle: true)
    }

    private func batches(task: Int, split: TaskSplit, epoch: Int, batchSize: Int, shuffle: Bool) -> Batches {
        batches(tasks: [task], split: split, epoch: epoch, batchSize: batchSize, shuffle: shuffle)
    }

    private func batches(tasks: [Int], split: TaskSplit, epoch: Int, batchSize: Int, shuffle: Bool) -> Batches {
        let options = LoaderOptions(batchSize: batchSize, shuffle: shuffle, layout: layout, normalization: normalization,
                                    augmentation: split == .train ? augmentation : nil)
        do {
            let loader = tasks.count == 1
                ? try DataLoader(benchmark: benchmark, task: tasks[0], split: split, options: options)
                : try DataLoader(benchmark: benchmark, tasks: tasks, split: split, options: options)
            return Batches(count: loader.batchCount, loader.batches(epoch: epoch))
        } catch {
            preconditionFailure("loader for tasks \(tasks) of \(benchmark.name): \(error)")
        }
    }
}
