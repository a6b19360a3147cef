import EngramTensor
import EngramData
import EngramNN

/// Experience replay (Chaudhry et al. 2019, "On Tiny Episodic Memories in Continual Learning"; Mammoth's `er`).
///
/// Every training batch B is trained together with a batch M of `replay_batch_size` samples drawn without
/// replacement from the memory: the loss is the cross-entropy over B ∪ M, one mean over all |B| + |M| samples
/// (Mammoth: `loss(net(cat(B, M)), cat(y_B, y_M))`). B is then offered to the memory, of `buffer_size` samples,
/// filled by reservoir sampling (or class-balanced). In the task-incremental scenario each replayed sample goes
/// through its own task's head. The memory draws from the current task's stored samples too, as the reference does.
public final class ExperienceReplay: RegisteredStrategy {
    public static let descriptors = [StrategyDescriptor(
        name: "er", summary: "Experience replay: each batch trained with a batch drawn from a reservoir memory",
        paper: "Chaudhry et al., arXiv 2019 (On Tiny Episodic Memories in Continual Learning)",
        hyperparameters: [.bufferSize(default: 500), .replayBatchSize(default: 10), .bufferPolicy],
        changesTrainingData: true,
        make: { o in ExperienceReplay(bufferSize: o.integer("buffer_size"), replayBatchSize: o.integer("replay_batch_size"),
                                      policy: o.choice("buffer_policy")) })]

    public let replayBatchSize: Int
    let memory: ReplayMemory

    public init(bufferSize: Int, replayBatchSize: Int, policy: ReplayPolicy = .reservoir) {
        self.replayBatchSize = replayBatchSize
        memory = ReplayMemory(capacity: bufferSize, policy: policy, owner: "er")
    }

    public var name: String { "er" }
    /// The memory (nil before the first batch).
    public var buffer: ReplayBuffer? { memory.buffer }

    public func beforeTask(_ task: Int, context: TrainingContext) throws { try memory.check(context) }

    /// B ∪ M, then B offered to the memory.
    public func beforeForward(_ batch: Batch, context: TrainingContext) throws -> Batch {
        let replayed = memory.draw(replayBatchSize, context: context)
        memory.buffer(context).offer(batch, stream: context.stream)
        return replayed.map { batch.appending($0.batch) } ?? batch
    }

    /// A herding memory takes the task's exemplars now (the other policies stored while training).
    public func afterTask(_ task: Int, context: TrainingContext) throws { memory.endTask(task, context: context) }

    public var memoryBytes: Int { memory.bytes }
    public func saveState() throws -> StrategyState { try memory.saveState() }
    public func loadState(_ state: StrategyState, context: TrainingContext) throws { try memory.loadState(state, context: context) }
}
