import EngramTensor
import EngramData
import EngramNN

/// Averaged Gradient Episodic Memory, A-GEM (Chaudhry et al., ICLR 2019; the authors' `agem` code and Mammoth's).
///
/// With g the gradient of the current batch's loss and g_ref that of a batch of `replay_batch_size` samples drawn
/// from the episodic memory, the step uses
///
///     g̃ = g − (gᵀ g_ref / g_refᵀ g_ref) · g_ref   when gᵀ g_ref < 0,   g̃ = g otherwise,
///
/// so that, to first order, the step does not increase the loss on the memory (g̃ᵀ g_ref ≥ 0). The memory holds
/// ⌊buffer_size / T⌋ samples of each finished task (T tasks), drawn at random from the task's training data when
/// it ends, as the paper's episodic memory. Deviation: Mammoth's `agem` stores the first training batch of each task
/// only (its `samples_per_task` is computed but unused); Engram fills the quota the paper describes. In the
/// task-incremental scenario memory samples go through their own heads.
public final class AGEM: RegisteredStrategy {
    public static let descriptors = [StrategyDescriptor(
        name: "agem", summary: "A-GEM: project the gradient when it would increase the loss on an episodic memory",
        paper: "Chaudhry et al., ICLR 2019 (Efficient Lifelong Learning with A-GEM)",
        hyperparameters: [.bufferSize(default: 500), .replayBatchSize(default: 128)],
        make: { o in AGEM(bufferSize: o.integer("buffer_size"), replayBatchSize: o.integer("replay_batch_size")) })]

    public let bufferSize: Int
    public let replayBatchSize: Int
    let memory: ReplayMemory
    /// Steps whose gradient was projected, and steps that drew a reference gradient (for the log and tests).
    public private(set) var projectedSteps = 0, referenceSteps = 0

    public init(bufferSize: Int, replayBatchSize: Int) {
        self.bufferSize = bufferSize; self.replayBatchSize = replayBatchSize
        memory = ReplayMemory(capacity: bufferSize, policy: .reservoir, owner: "agem")
    }

    public var name: String { "agem" }
    /// The memory (nil before the first task ends).
    public var buffer: ReplayBuffer? { memory.buffer }

    public func beforeTask(_ task: Int, context: TrainingContext) throws { try memory.check(context) }

    /// g ← the projection of g when it conflicts with the memory's gradient.
    public func afterBackward(context: TrainingContext) {
        guard let (_, reference) = memory.draw(replayBatchSize, context: context) else { return }
        let parameters = context.model.namedParameters()
        let g = ReplayMemory.gradients(of: parameters)
        let r = ReplayMemory.lossGradient(reference, parameters: parameters, context: context)
        referenceSteps += 1
        let projected = Self.project(g, onto: r)
        if projected != nil { projectedSteps += 1 }
        ReplayMemory.setGradients(Array((projected ?? g).joined()), of: parameters)
    }

    /// g − (gᵀr / rᵀr) r when gᵀr < 0 (over all parameters as one vector), nil when g already agrees with r.
    public static func project(_ g: [[Float]], onto r: [[Float]]) -> [[Float]]? {
        var dot: Double = 0, norm: Double = 0
        for (gp, rp) in zip(g, r) {
            for i in gp.indices { dot += Double(gp[i]) * Double(rp[i]); norm += Double(rp[i]) * Double(rp[i]) }
        }
        guard dot < 0, norm > 0 else { return nil }
        let scale = Float(dot / norm)
        return zip(g, r).map { gp, rp in zip(gp, rp).map { $0 - scale * $1 } }
    }

    /// Stores ⌊buffer_size / T⌋ random training samples of the task that ended.
    public func afterTask(_ task: Int, context: TrainingContext) throws {
        memory.storeRandomSamples(bufferSize / context.stream.taskCount, ofTask: task, context: context)
    }

    public var memoryBytes: Int { memory.bytes }
    public func saveState() throws -> StrategyState {
        var state = try memory.saveState()
        try state.record([projectedSteps, referenceSteps], as: "steps")
        return state
    }
    public func loadState(_ state: StrategyState, context: TrainingContext) throws {
        var memoryState = state
        memoryState.records["steps"] = nil
        try memory.loadState(memoryState, context: context)
        let steps = try state.optionalRecord([Int].self, "steps") ?? [0, 0]
        guard steps.count == 2, steps.allSatisfy({ $0 >= 0 }) else { throw StrategyError("record 'steps' is \(steps), not two counts") }
        (projectedSteps, referenceSteps) = (steps[0], steps[1])
    }
}
