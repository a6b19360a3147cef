import EngramTensor
import EngramData
import EngramNN

/// Dark Experience Replay, DER and DER++ (Buzzega et al., NeurIPS 2020; the authors' Mammoth `der`, `derpp`).
///
/// The memory (reservoir, `buffer_size` samples) keeps each sample with the logits z the network gave it in the
/// step it was stored (before that step's update). While training, with (x′, z′) and (x″, y″) two independent
/// draws of `replay_batch_size` samples from it:
///
///     DER:   L = CE(f(x), y) + α · mean((f(x′) − z′)²)
///     DER++: L = CE(f(x), y) + α · mean((f(x′) − z′)²) + β · CE(f(x″), y″)
///
/// the mean running over every logit of every replayed sample (PyTorch's `mse_loss`), each replayed batch run
/// through the network on its own forward pass (BatchNorm sees it apart, as in the reference). In the
/// task-incremental scenario replayed samples go through their own heads, and the heads must have equal widths
/// (the stored logits are one head's outputs). The cross-entropy on replayed labels uses the classes seen so far,
/// as the task loss does.
public final class DarkExperienceReplay: RegisteredStrategy {
    public enum Variant: String, Sendable { case der, derpp }

    static func descriptor(_ variant: Variant) -> StrategyDescriptor {
        var options: [HyperparameterSpec] = [
            .bufferSize(default: 500), .replayBatchSize(default: variant == .der ? 128 : 10),
            .real("alpha", symbol: "α", default: 1, range: .nonNegative, help: "α, the weight of the logit-matching term α · mean((f(x′) − z′)²)."),
        ]
        if variant == .derpp {
            options.append(.real("beta", symbol: "β", default: 0.5, range: .nonNegative,
                                 help: "β, the weight of the cross-entropy on replayed labels β · CE(f(x″), y″)."))
        }
        return StrategyDescriptor(
            name: variant.rawValue,
            summary: variant == .der ? "Dark experience replay: match the logits stored with replayed samples"
                                     : "DER++: logit matching plus cross-entropy on replayed labels",
            paper: "Buzzega et al., NeurIPS 2020 (Dark Experience for General Continual Learning)",
            hyperparameters: options,
            make: { o in DarkExperienceReplay(variant, bufferSize: o.integer("buffer_size"), replayBatchSize: o.integer("replay_batch_size"),
                                              alpha: o.float("alpha"), beta: variant == .derpp ? o.float("beta") : 0) })
    }
    public static let descriptors = [descriptor(.der), descriptor(.derpp)]

    public let variant: Variant
    public let replayBatchSize: Int
    /// α and β.
    public let alpha: Float, beta: Float
    private var memory: ReplayMemory?
    private let bufferSize: Int

    public init(_ variant: Variant, bufferSize: Int, replayBatchSize: Int, alpha: Float, beta: Float = 0) {
        self.variant = variant; self.bufferSize = bufferSize; self.replayBatchSize = replayBatchSize
        self.alpha = alpha; self.beta = beta
    }

    public var name: String { variant.rawValue }
    /// The memory (nil before the first batch).
    public var buffer: ReplayBuffer? { memory?.buffer }

    /// The memory, sized for the run's logits: the head's outputs (the widest head in a task-incremental model).
    private func memory(_ context: TrainingContext) -> ReplayMemory {
        if let memory { return memory }
        let width = (0..<context.stream.taskCount).map { context.stream.headSize(task: $0) }.max() ?? 1
        let made = ReplayMemory(capacity: bufferSize, policy: .reservoir, logitWidth: width, owner: variant.rawValue)
        memory = made
        return made
    }

    public func beforeTask(_ task: Int, context: TrainingContext) throws {
        try ReplayMemory.checkRoutable(context)
        let widths = Set((0..<context.stream.taskCount).map { context.stream.headSize(task: $0) })
        guard widths.count == 1 else {
            throw StrategyError("\(name) stores one head's logits per sample, but this stream's heads have \(widths.sorted()) outputs")
        }
    }

    /// α · mean((f(x′) − z′)²) (+ β · CE(f(x″), y″) for DER++); then the batch and its logits `output` (this step's,
    /// before the update) are offered to the memory.
    public func penalty(output: Tensor, batch: Batch, context: TrainingContext) -> Tensor? {
        let memory = memory(context)
        defer { memory.buffer(context).offer(batch, stream: context.stream, logits: output.detached()) }
        var terms: [Tensor] = []
        if alpha > 0, let (slots, replayed) = memory.draw(replayBatchSize, context: context, purpose: "logits") {
            let stored = memory.buffer(context).logits(slots)
            terms.append(Losses.mse(ReplayMemory.forward(replayed, context: context), stored) * alpha)
        }
        if variant == .derpp, beta > 0, let (_, replayed) = memory.draw(replayBatchSize, context: context, purpose: "labels") {
            let out = ReplayMemory.forward(replayed, context: context)
            terms.append(Losses.crossEntropy(out, targets: replayed.labels, allowedClasses: context.activeClasses) * beta)
        }
        return terms.summed
    }

    public var memoryBytes: Int { memory?.bytes ?? 0 }
    public func saveState() throws -> StrategyState { try memory?.saveState() ?? StrategyState() }
    public func loadState(_ state: StrategyState, context: TrainingContext) throws { try memory(context).loadState(state, context: context) }
}
