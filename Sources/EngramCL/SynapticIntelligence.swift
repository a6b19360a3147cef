import EngramNN

/// Synaptic Intelligence (Zenke, Poole & Ganguli, ICML 2017).
///
/// During a task, every step adds ωᵢ ← ωᵢ − gᵢ·Δθᵢ, with g the gradient of the *task* loss (the
/// penalty's own gradient 2cΩ(θ − θ*) is taken out of the total gradient) and Δθ the step's update.
/// After the task, Ωᵢ ← Ωᵢ + ωᵢ / (Δᵢ² + ξ), Δ = θ_end − θ_start, then ω ← 0 and θ* ← θ_end.
/// Loss: L(θ) + c Σᵢ Ωᵢ (θᵢ − θ*ᵢ)². Negative per-task contributions are clipped at 0, so the surrogate stays a penalty.
public final class SynapticIntelligence: Strategy {
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
        self.c = try validatedStrength(c, flag: "--c")
        state.step = penaltyStep
        guard xi > 0, xi.isFinite else { throw StrategyError("--xi must be positive, got \(xi)") }
        self.xi = xi
    }

    public var name: String { "si" }

    public func beforeTask(_ task: Int, context: TrainingContext) throws {
        let parameters = context.model.namedParameters()
        taskStart = .values(of: parameters)
        pathIntegral = .zeros(like: parameters)
    }

    public func loss(taskLoss: Tensor, output: Tensor, batch: Batch, context: TrainingContext) -> Tensor {
        state.regularized(taskLoss, strength: c, context: context)
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
                for i in 0..<w.count { w[i] -= g[i] * (after[i] - before[i]) }
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

    public func stateTensors() -> [(String, Tensor)] {
        state.stateTensors() + pathIntegral.tensors(prefix: "omega_path") + taskStart.tensors(prefix: "task_start")
    }

    public func loadState(_ saved: [String: Tensor]) throws {
        state.loadState(saved)
        pathIntegral = .from(saved, prefix: "omega_path")
        taskStart = .from(saved, prefix: "task_start")
    }
}
