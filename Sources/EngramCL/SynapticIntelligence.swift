import EngramTensor
import EngramData
import EngramNN
import CEngramKernels

/// Synaptic Intelligence (Zenke, Poole & Ganguli, ICML 2017).
///
/// During a task, every step adds ωᵢ ← ωᵢ − gᵢ·Δθᵢ, with g the gradient of the *task* loss (the
/// penalty's own gradient 2cΩ(θ − θ*) is taken out of the total gradient) and Δθ the step's update.
/// After the task, Ωᵢ ← Ωᵢ + ωᵢ / (Δᵢ² + ξ), Δ = θ_end − θ_start, then ω ← 0 and θ* ← θ_end.
/// Loss: L(θ) + c Σᵢ Ωᵢ (θᵢ − θ*ᵢ)². Negative per-task contributions are clipped at 0, so the surrogate stays a penalty.
public final class SynapticIntelligence: RegisteredStrategy {
    public static let descriptors = [StrategyDescriptor(
        name: "si", summary: "Synaptic Intelligence: importance from each parameter's contribution to the loss's decrease along the path",
        paper: "Zenke, Poole & Ganguli, ICML 2017",
        hyperparameters: [
            .real("c", default: 0.1, range: .nonNegative, help: "c, the surrogate loss's strength: L + c Σ Ω (θ − θ*)²."),
            .real("xi", symbol: "ξ", default: 0.1, range: .positive,
                  help: "ξ, the damping of Ω = Σ ω/(Δ² + ξ) (0.1, van de Ven & Tolias's MNIST value; Zenke's CIFAR value is 1e-3)."),
            .penaltyStep,
        ],
        make: { o in try SynapticIntelligence(c: o.float("c"), xi: o.float("xi"), penaltyStep: o.choice("penalty_step")) })]

    /// c, the strength of the surrogate loss.
    public var c: Float
    /// ξ, the damping term.
    public var xi: Float
    public private(set) var state = AnchoredImportance(accumulation: .sum)
    /// ω, the running path integral of the current task.
    public private(set) var pathIntegral: ParameterMap = [:]
    private var taskStart: ParameterMap = [:]
    private var stepStart: ParameterMap = [:]
    private var taskGradient: ParameterMap = [:]

    public init(c: Float, xi: Float = 0.1, penaltyStep: PenaltyStep = .gradient) throws {
        self.c = try validatedStrength(c, flag: "si.c")
        state.step = penaltyStep
        guard xi > 0, xi.isFinite else { throw StrategyError("si.xi must be positive, got \(xi)") }
        self.xi = xi
    }

    public var name: String { "si" }

    public func beforeTask(_ task: Int, context: TrainingContext) throws {
        let parameters = context.model.namedParameters()
        taskStart = .values(of: parameters)
        pathIntegral = .zeros(like: parameters)
    }

    /// c Σ Ω (θ − θ*)².
    public func penalty(output: Tensor, batch: Batch, context: TrainingContext) -> Tensor? {
        state.penalty(strength: c, context: context)
    }

    public func afterBackward(context: TrainingContext) {
        (taskGradient, stepStart) = state.taskGradientsAndValues(strength: c, context: context)
    }

    /// With the proximal step the penalty moves θ after the optimizer; ω integrates the task gradient along the
    /// whole move (the gradient taken before the step).
    public func afterStep(context: TrainingContext) {
        state.afterStep(strength: c, context: context)
        for (name, p) in context.model.namedParameters() {
            guard let g = taskGradient[name], let before = stepStart[name] else { continue }
            let after = p.scalars
            pathIntegral[name]!.withUnsafeMutableBufferPointer { w in
                engram_path_integral_update(w.count, w.baseAddress, g, after, before)
            }
        }
    }

    public func afterTask(_ task: Int, context: TrainingContext) throws {
        let parameters = context.model.namedParameters()
        var contribution = ParameterMap()
        for (name, p) in parameters {
            let start = taskStart[name]!, end = p.scalars, w = pathIntegral[name]!
            contribution[name] = (0..<end.count).map { i in
                let d = end[i] - start[i]
                return max(w[i] / (d * d + xi), 0)
            }
        }
        state.importance.blend(1, 1, contribution)
        state.setAnchor(parameters)
        taskGradient = [:]
        stepStart = [:]
    }

    public var memoryBytes: Int { state.memoryBytes + pathIntegral.byteCount + taskStart.byteCount }

    /// Ω and θ*, the current task's path integral ω and its starting point.
    public func saveState() throws -> StrategyState {
        var saved = StrategyState(tensors: pathIntegral.tensors(prefix: "omega_path") + taskStart.tensors(prefix: "task_start"))
        try state.save(into: &saved)
        return saved
    }

    public func loadState(_ saved: StrategyState, context: TrainingContext) throws {
        try state.load(saved, model: context.model)
        pathIntegral = try saved.parameterMap("omega_path", model: context.model)
        taskStart = try saved.parameterMap("task_start", model: context.model)
    }
}
