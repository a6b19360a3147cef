import EngramTensor
import EngramData
import EngramNN

/// L2 regularization toward the previous task's parameters — the uniform-importance baseline of the
/// quadratic penalties (van de Ven, Tuytelaars & Tolias 2022 list it as "L2"; EWC's paper as "L2" too).
///
/// After task t the anchor θ* ← θ; while later tasks train the loss is L(θ) + (λ/2) Σᵢ (θᵢ − θ*ᵢ)², i.e. the
/// penalty of EWC or MAS with every importance equal to 1. `decay` γ ∈ [0, 1] makes the anchor a running
/// average of the task solutions, θ* ← γ θ* + (1 − γ) θ (γ = 0: the previous task's parameters, the usual
/// baseline). Memory: θ*, one value per parameter.
public final class L2: RegisteredStrategy {
    public static let descriptors = [StrategyDescriptor(
        name: "l2", summary: "L2 toward the previous task's parameters (every importance equal to 1)",
        paper: "Kirkpatrick et al., PNAS 2017 (the L2 baseline)",
        hyperparameters: [
            .real("lambda", symbol: "λ", default: 1, range: .nonNegative, help: "λ, the strength of (λ/2) Σ (θ − θ*)²."),
            .real("decay", symbol: "γ", default: 0, range: .unitInterval,
                  help: "γ, the anchor's running average θ* ← γ θ* + (1 − γ) θ after each task (0: the previous task's parameters)."),
        ],
        make: { o in L2(lambda: o.float("lambda"), decay: o.float("decay")) })]

    /// λ, the penalty's strength.
    public let lambda: Float
    /// γ, the weight of the older anchor when a task ends.
    public let decay: Float
    /// θ* (empty during the first task).
    public private(set) var anchor: ParameterMap = [:]

    public init(lambda: Float, decay: Float = 0) {
        self.lambda = lambda
        self.decay = decay
    }

    public var name: String { "l2" }

    /// (λ/2) Σ (θ − θ*)² over the parameters the current task may change (added to the task loss).
    public func penalty(output: Tensor, batch: Batch, context: TrainingContext) -> Tensor? {
        guard lambda > 0, !anchor.isEmpty else { return nil }
        return context.penalizedParameters.compactMap { name, parameter in
            anchor[name].map { (parameter - Tensor(shape: parameter.shape, scalars: $0)).squared().sum() * (lambda / 2) }
        }.summed
    }

    /// θ* ← γ θ* + (1 − γ) θ (θ* ← θ after the first task).
    public func afterTask(_ task: Int, context: TrainingContext) throws {
        let current = ParameterMap.values(of: context.model.namedParameters())
        if anchor.isEmpty { anchor = current } else { anchor.blend(decay, 1 - decay, current) }
    }

    public var memoryBytes: Int { anchor.byteCount }
    public func saveState() throws -> StrategyState { StrategyState(tensors: anchor.tensors(prefix: "anchor")) }
    public func loadState(_ state: StrategyState, context: TrainingContext) throws {
        anchor = try state.parameterMap("anchor", model: context.model)
    }
}
