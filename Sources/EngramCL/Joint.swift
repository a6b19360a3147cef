import EngramTensor
import EngramData
import EngramNN

/// Joint training: each task is trained on the data of every task seen so far — the upper bound.
///
/// Task-incremental streams interleave whole batches of the tasks in a seeded order (each batch runs
/// its own head); domain- and class-incremental streams mix samples of all tasks within batches.
public final class Joint: RegisteredStrategy {
    public static let descriptors = [StrategyDescriptor(
        name: "joint", summary: "Joint training: each task on the data of every task seen so far (the upper bound)", paper: "—",
        changesTrainingData: true, make: { _ in Joint() })]

    public init() {}
    public var name: String { "joint" }
    public var changesTrainingData: Bool { true }

    public func trainingBatches(task: Int, epoch: Int, context: TrainingContext) -> Batches {
        let stream = context.stream, size = context.configuration.batchSize
        if task == 0 { return stream.trainingBatches(task: 0, epoch: epoch, batchSize: size) }
        guard stream.scenario == .taskIncremental else {
            return stream.mixedTrainingBatches(tasks: Array(0...task), epoch: epoch, batchSize: size)
        }
        var rng = context.generator("joint/task \(task)/epoch \(epoch)")
        let perTask = (0...task).map { stream.trainingBatches(task: $0, epoch: epoch, batchSize: size) }
        // Interleave lazily: a seeded order of (task, batch position) pairs.
        var order = perTask.enumerated().flatMap { t, b in Array(repeating: t, count: b.count) }
        rng.shuffle(&order)
        let iterators = perTask.map { $0.makeIterator() }
        return Batches(count: order.count, order.lazy.map { iterators[$0].next()! })
    }
}
