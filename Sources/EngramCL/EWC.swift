import EngramTensor
import EngramData
import EngramNN

/// Elastic Weight Consolidation (Kirkpatrick et al., PNAS 2017).
///
/// After task t: the diagonal Fisher F_t = (1/N) Σₖ E_{y∼p(·|xₖ;θ)} (∂ log p(y|xₖ; θ)/∂θ)², from per-sample
/// gradients — by default the exact expectation over the classes (the paper's Fisher); `sampled` draws one
/// label per sample, `empirical` uses the true label (see `FisherEstimator`); θ*_t the parameters. Loss for
/// later tasks: L(θ) + (λ/2) Σ_{t' < t} Σᵢ F_{t',i} (θᵢ − θ*_{t',i})² — one penalty per past task, so
/// memory grows by 2 × the parameter count per task. The penalties are evaluated as one equivalent quadratic
/// (`ConsolidatedQuadratic`: Σ_t F_t, the F-weighted mean anchor and a constant; 2 × the parameters more memory), so
/// a training step costs the same after the twentieth task as after the first.
public final class EWC: RegisteredStrategy {
    public static let descriptors = [StrategyDescriptor(
        name: "ewc", summary: "Elastic Weight Consolidation: one Fisher-weighted quadratic penalty per past task",
        paper: "Kirkpatrick et al., PNAS 2017",
        hyperparameters: [.strength(default: 100, help: "λ, the penalty's strength: L + (λ/2) Σ_t Σ F_t (θ − θ*_t)²."),
                          .fisher, .penaltyStep],
        make: { o in try EWC(lambda: o.float("lambda"), fisher: o.choice("fisher"), penaltyStep: o.choice("penalty_step")) })]

    public var lambda: Float
    /// How the Fisher treats the label (exact expectation by default).
    public var fisherEstimator: FisherEstimator
    /// (F_t, θ*_t) of every finished task.
    public private(set) var penalties: [(fisher: ParameterMap, anchor: ParameterMap)] = [] {
        didSet { consolidated = ConsolidatedQuadratic(penalties.map { ($0.fisher, $0.anchor) }) }
    }
    /// The penalties as one quadratic (recomputed whenever a task's pair is added or the state is loaded; a single
    /// pair is used as it is, its arrays shared).
    public private(set) var consolidated = ConsolidatedQuadratic([])

    /// Gradient step (default) or proximal step of the penalties.
    public var penaltyStep: PenaltyStep

    public init(lambda: Float, fisher: FisherEstimator = .exact, penaltyStep: PenaltyStep = .gradient) throws {
        self.lambda = try validatedStrength(lambda, flag: "--lambda")
        self.fisherEstimator = fisher
        self.penaltyStep = penaltyStep
    }

    public var name: String { "ewc" }

    /// (λ/2) Σ_t Σ F_t (θ − θ*_t)².
    public func penalty(output: Tensor, batch: Batch, context: TrainingContext) -> Tensor? {
        guard penaltyStep == .gradient, !penalties.isEmpty else { return nil }
        return consolidated.penalty(parameters: context.penalizedParameters, strength: lambda / 2)
    }

    public func afterStep(context: TrainingContext) {
        guard penaltyStep == .proximal, !penalties.isEmpty else { return }
        proximalStep(penalties: [(consolidated.importance, consolidated.anchor)], strength: lambda / 2, context: context)
    }

    public func afterTask(_ task: Int, context: TrainingContext) throws {
        let fisher = EWC.fisher(task: task, estimator: fisherEstimator, context: context)
        penalties.append((fisher.mean, .values(of: context.model.namedParameters())))
    }

    /// Samples per pass of the Fisher's per-sample statistics at least: a sum over samples, so the chunk changes only
    /// the rounding, and at the online regime's batch 10 passes of 10 samples (× 10 classes) made the Fisher of a
    /// 6 000-sample task take 30 s.
    static let minimumFisherChunk = 128

    /// The task's diagonal Fisher from its training data (labels used only by the empirical Fisher), in chunks of
    /// max(batch size, `minimumFisherChunk`) samples.
    static func fisher(task: Int, estimator: FisherEstimator, context: TrainingContext) -> ImportanceEstimate {
        context.model.setActiveTask(task)
        let chunk = max(context.configuration.batchSize, minimumFisherChunk)
        let batches = context.stream.trainingBatches(task: task, epoch: 0, batchSize: chunk)
        var rng = context.generator("fisher/task \(task)")
        return Importance.fisher(model: context.model, batches: batches.lazy.map { ($0.inputs, $0.labels) },
                                 estimator: estimator, allowedClasses: context.activeClasses, rng: &rng)
    }

    public var memoryBytes: Int {
        // A single pair's consolidated form is the pair itself (shared arrays): it adds memory from the second task.
        penalties.reduce(0) { $0 + $1.fisher.byteCount + $1.anchor.byteCount } + (penalties.count > 1 ? consolidated.byteCount : 0)
    }

    /// F_t and θ*_t of every finished task (`fisher.<t>.<parameter>`, `anchor.<t>.<parameter>`) and their number.
    public func saveState() throws -> StrategyState {
        var state = StrategyState(tensors: penalties.enumerated().flatMap { t, p in
            p.fisher.tensors(prefix: "fisher.\(t)") + p.anchor.tensors(prefix: "anchor.\(t)")
        })
        try state.record(penalties.count, as: "tasks")
        return state
    }

    public func loadState(_ state: StrategyState, context: TrainingContext) throws {
        penalties = try (0..<state.count("tasks")).map { t in
            let fisher = try state.parameterMap("fisher.\(t)", model: context.model)
            let anchor = try state.parameterMap("anchor.\(t)", model: context.model)
            try fisher.checkPaired(with: anchor, "fisher.\(t)", "anchor.\(t)")
            return (fisher, anchor)
        }
    }
}

/// Online EWC (Schwarz et al., "Progress & Compress", ICML 2018): one running Fisher
/// F̃ ← γ F̃ + F_t and the latest anchor θ*; loss L(θ) + (λ/2) Σᵢ F̃ᵢ (θᵢ − θ*ᵢ)². Memory stays 2 × parameters.
public final class OnlineEWC: RegisteredStrategy {
    public static let descriptors = [StrategyDescriptor(
        name: "online-ewc", summary: "Online EWC: one running, decayed Fisher and the latest anchor",
        paper: "Schwarz et al., \"Progress & Compress\", ICML 2018",
        hyperparameters: [.strength(default: 100, help: "λ, the penalty's strength: L + (λ/2) Σ F̃ (θ − θ*)²."),
                          .real("gamma", symbol: "γ", default: 1, range: .unitInterval,
                                help: "γ, the decay of older tasks' Fisher: F̃ ← γ F̃ + F_t."),
                          .fisher, .penaltyStep],
        make: { o in
            try OnlineEWC(lambda: o.float("lambda"), gamma: o.float("gamma"), fisher: o.choice("fisher"),
                          penaltyStep: o.choice("penalty_step"))
        })]

    public var lambda: Float
    /// γ, the decay of older tasks' Fisher information.
    public var gamma: Float
    public var fisherEstimator: FisherEstimator
    public private(set) var state = AnchoredImportance(accumulation: .sum)

    public init(lambda: Float, gamma: Float = 1, fisher: FisherEstimator = .exact, penaltyStep: PenaltyStep = .gradient) throws {
        self.lambda = try validatedStrength(lambda, flag: "--lambda")
        guard gamma >= 0, gamma <= 1 else { throw StrategyError(key: "gamma", "must be in [0, 1], got \(gamma)") }
        self.gamma = gamma
        self.fisherEstimator = fisher
        state.step = penaltyStep
    }

    public var name: String { "online-ewc" }

    /// (λ/2) Σ F̃ (θ − θ*)².
    public func penalty(output: Tensor, batch: Batch, context: TrainingContext) -> Tensor? {
        state.penalty(strength: lambda / 2, context: context)
    }

    public func afterStep(context: TrainingContext) { state.afterStep(strength: lambda / 2, context: context) }

    public func afterTask(_ task: Int, context: TrainingContext) throws {
        state.accumulate(EWC.fisher(task: task, estimator: fisherEstimator, context: context), decay: gamma)
        state.setAnchor(context.model.namedParameters())
    }

    public var memoryBytes: Int { state.memoryBytes }
    public func saveState() throws -> StrategyState { var saved = StrategyState(); try state.save(into: &saved); return saved }
    public func loadState(_ saved: StrategyState, context: TrainingContext) throws { try state.load(saved, model: context.model) }
}
