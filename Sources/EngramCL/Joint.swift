import EngramNN

/// Joint training: each task is trained on the data of every task seen so far — the upper bound.
///
/// Task-incremental streams interleave whole batches of the tasks (each batch runs its own head);
/// domain- and class-incremental streams mix samples of all tasks within batches.
public final class Joint: Strategy {
    public init() {}
    public var name: String { "joint" }
    public var changesTrainingData: Bool { true }

    public func trainingBatches(task: Int, epoch: Int, context: TrainingContext) -> Batches {
        let stream = context.stream, size = context.configuration.batchSize
        var rng = context.generator("joint/task \(task)/epoch \(epoch)")
        let perTask = (0...task).map { stream.trainingBatches(task: $0, epoch: epoch, batchSize: size) }
        var batches = perTask.flatMap { Array($0) }
        if stream.scenario == .taskIncremental || task == 0 {
            rng.shuffle(&batches)
            return Batches(batches)
        }
        // Mix samples across tasks: one pass over all samples in a seeded order.
        let inputs = Tensor.concatenate(batches.map(\.inputs), axis: 0)
        let labels = batches.flatMap(\.labels)
        let indices = batches.flatMap(\.indices)
        let order = rng.permutation(labels.count)
        return Batches(stride(from: 0, to: order.count, by: size).map { start in
            let idx = Array(order[start..<min(start + size, order.count)])
            return Batch(inputs: inputs.indexSelect(idx), labels: idx.map { labels[$0] }, taskID: task,
                         scenario: stream.scenario, indices: idx.map { indices[$0] })
        })
    }
}
