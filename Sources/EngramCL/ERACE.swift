import EngramTensor
import EngramData
import EngramNN

/// Experience replay with asymmetric cross-entropy, ER-ACE (Caccia et al., ICLR 2022; Mammoth's `er_ace`).
///
/// From the second task on, the incoming batch's cross-entropy is taken over the classes present in that batch
/// only (old classes' logits masked), so new samples do not push old classes' logits down; a batch of
/// `replay_batch_size` samples drawn from the memory adds its own cross-entropy over every class seen so far:
///
///     L = CE_{classes in B}(f(x_B), y_B) + CE(f(x_M), y_M)
///
/// The memory is a reservoir of `buffer_size` samples (the incoming batch offered after the draw). Deviation: the
/// authors' code and Mammoth replace the last layer by a cosine classifier (scale 10) by default; Engram keeps the
/// run's model, so ER-ACE compares with ER on the same network. Mammoth also leaves unmasked the classes at and above
/// the highest seen so far; Engram's task loss never involves classes not seen yet, so that only keeps the highest
/// seen class, which the current batch holds in the standard class orders.
public final class ERACE: RegisteredStrategy {
    public static let descriptors = [StrategyDescriptor(
        name: "er-ace", summary: "ER with asymmetric cross-entropy: incoming samples compete only with their batch's classes",
        paper: "Caccia et al., ICLR 2022 (New Insights on Reducing Abrupt Representation Change in Online Continual Learning)",
        hyperparameters: [.bufferSize(default: 500), .replayBatchSize(default: 10)],
        scenarios: [.taskIncremental, .classIncremental], replacesCriterion: true,
        make: { o in ERACE(bufferSize: o.integer("buffer_size"), replayBatchSize: o.integer("replay_batch_size")) })]

    public let replayBatchSize: Int
    let memory: ReplayMemory

    public init(bufferSize: Int, replayBatchSize: Int) {
        self.replayBatchSize = replayBatchSize
        memory = ReplayMemory(capacity: bufferSize, policy: .reservoir, owner: "er-ace")
    }

    public var name: String { "er-ace" }
    /// The memory (nil before the first batch).
    public var buffer: ReplayBuffer? { memory.buffer }

    public func beforeTask(_ task: Int, context: TrainingContext) throws { try memory.check(context) }

    /// From the second task on: the cross-entropy over the classes present in the batch.
    public func criterion(taskLoss: Tensor, output: Tensor, batch: Batch, context: TrainingContext) -> Tensor? {
        guard context.task > 0 else { return nil }
        return Losses.crossEntropy(output, targets: batch.labels, allowedClasses: Array(Set(batch.labels)).sorted())
    }

    /// From the second task on: the cross-entropy of a replayed batch; then the batch is offered to the memory.
    public func penalty(output: Tensor, batch: Batch, context: TrainingContext) -> Tensor? {
        defer { memory.buffer(context).offer(batch, stream: context.stream) }
        guard context.task > 0, let (_, replayed) = memory.draw(replayBatchSize, context: context) else { return nil }
        let out = ReplayMemory.forward(replayed, context: context)
        return Losses.crossEntropy(out, targets: replayed.labels, allowedClasses: context.activeClasses)
    }

    public var memoryBytes: Int { memory.bytes }
    public func saveState() throws -> StrategyState { try memory.saveState() }
    public func loadState(_ state: StrategyState, context: TrainingContext) throws { try memory.loadState(state, context: context) }
}
