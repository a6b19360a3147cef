import EngramTensor
import EngramData
import EngramNN
import CEngramKernels

/// Riemannian Walk (Chaudhry, Dokania, Ajanthan & Torr, ECCV 2018), without its exemplar replay.
///
/// Every step, with g the gradient of the batch's *task* loss (empirical Fisher from the mini-batch
/// gradient; the penalty's own gradient 2λ(F̂ + ŝ)(θ − θ*) is taken out) and Δθ = θ(after) − θ(before):
///   online Fisher (eq. 10):  F ← α·g² + (1 − α)·F   (F = g² at the very first step),
///   path score (eq. 7–8):    s_t ← s_t + max(0, −g·Δθ / (½·F·Δθ² + ε)),
/// i.e. the loss decrease of the step over the KL divergence it moved the model by (second-order
/// approximation ½ΔθᵀFΔθ, diagonal); negative contributions are set to zero. After task t:
///   s̄ ← s_t for t = 0, s̄ ← ½(s̄ + s_t) afterwards (averaging against growing rigidity),
///   F̂ = (F − min F)/(max F − min F + 1e-32), ŝ likewise from s̄, min and max over all parameters,
///   θ* ← θ.
/// Loss for later tasks: L(θ) + λ Σᵢ (F̂ᵢ + ŝᵢ)(θᵢ − θ*ᵢ)². Memory: F, s_t, s̄, F̂ + ŝ and θ*
/// (five parameter-sized arrays, whatever the number of tasks). Defaults: λ = 1, α = 0.9, ε = 1e-3.
///
/// Differences from the authors' TensorFlow code (A-GEM repository): it accumulates g² and −g·Δθ over
/// intervals of 10 steps and updates F and s once per interval, and its score denominator has no ½;
/// here both are updated every step, with the paper's ½.
public final class RWalk: RegisteredStrategy {
    public static let descriptors = [StrategyDescriptor(
        name: "rwalk", summary: "Riemannian Walk: online Fisher plus a KL-normalized path score (without its exemplars)",
        paper: "Chaudhry, Dokania, Ajanthan & Torr, ECCV 2018",
        hyperparameters: [
            .strength(default: 1, help: "λ, the penalty's strength: L + λ Σ (F̂ + ŝ)(θ − θ*)²."),
            .real("alpha", symbol: "α", default: 0.9, range: .unitIntervalOpenBelow,
                  help: "α, the weight of the newest squared gradient in the Fisher's moving average."),
            .real("epsilon", symbol: "ε", default: 1e-3, range: .positive, aliases: ["xi"],
                  help: "ε, the damping of the path score's denominator."),
            .penaltyStep,
        ],
        make: { o in
            try RWalk(lambda: o.float("lambda"), alpha: o.float("alpha"), epsilon: o.float("epsilon"),
                      penaltyStep: o.choice("penalty_step"))
        })]

    /// λ, the regularization strength.
    public var lambda: Float
    /// α, the weight of the newest squared gradient in the Fisher's moving average.
    public var alpha: Float
    /// ε, the damping of the score's denominator.
    public var epsilon: Float
    /// F̂ + ŝ and θ*.
    public private(set) var state = AnchoredImportance(accumulation: .sum)
    /// F, the online Fisher.
    public private(set) var fisher: ParameterMap = [:]
    /// s_t, the score accumulated over the current task.
    public private(set) var taskScore: ParameterMap = [:]
    /// s̄, the running average of the tasks' scores.
    public private(set) var score: ParameterMap = [:]
    private var tasksDone = 0
    private var stepStart: ParameterMap = [:]
    private var taskGradient: ParameterMap = [:]

    public init(lambda: Float = 1, alpha: Float = 0.9, epsilon: Float = 1e-3, penaltyStep: PenaltyStep = .gradient) throws {
        self.lambda = try validatedStrength(lambda, flag: "--lambda")
        state.step = penaltyStep
        guard alpha > 0, alpha <= 1 else { throw StrategyError("rwalk.alpha must be in (0, 1], got \(alpha)") }
        guard epsilon > 0, epsilon.isFinite else { throw StrategyError("rwalk.epsilon must be positive, got \(epsilon)") }
        self.alpha = alpha
        self.epsilon = epsilon
    }

    public var name: String { "rwalk" }

    public func beforeTask(_ task: Int, context: TrainingContext) throws {
        taskScore = .zeros(like: context.model.namedParameters())
    }

    /// λ Σ (F̂ + ŝ)(θ − θ*)².
    public func penalty(output: Tensor, batch: Batch, context: TrainingContext) -> Tensor? {
        state.penalty(strength: lambda, context: context)
    }

    public func afterBackward(context: TrainingContext) {
        (taskGradient, stepStart) = state.taskGradientsAndValues(strength: lambda, context: context)
    }

    public func afterStep(context: TrainingContext) {
        state.afterStep(strength: lambda, context: context)
        for (name, p) in context.model.namedParameters() {
            guard let g = taskGradient[name], let before = stepStart[name] else { continue }
            let after = p.scalars
            let first = fisher[name] == nil
            if first { fisher[name] = [Float](repeating: 0, count: g.count) }
            if taskScore[name] == nil { taskScore[name] = [Float](repeating: 0, count: g.count) }
            // In place (no copy of F or s per step), vectorized and on the kernel threads: the arithmetic of
            // `updateFisher` then `accumulateScore`, element for element (tested against them).
            fisher[name]!.withUnsafeMutableBufferPointer { f in
                taskScore[name]!.withUnsafeMutableBufferPointer { s in
                    engram_rwalk_update(f.count, f.baseAddress, s.baseAddress, g, before, after, alpha, epsilon, first ? 1 : 0)
                }
            }
        }
    }

    /// F ← α g² + (1 − α) F (F ← g² when there is none yet).
    public static func updateFisher(_ fisher: inout [Float]?, gradient g: [Float], alpha: Float) {
        guard var f = fisher else { fisher = g.map { $0 * $0 }; return }
        for i in 0..<f.count { f[i] = alpha * g[i] * g[i] + (1 - alpha) * f[i] }
        fisher = f
    }

    /// s ← s + max(0, −g·Δθ / (½ F Δθ² + ε)), Δθ = after − before.
    public static func accumulateScore(_ score: inout [Float], gradient g: [Float], before: [Float], after: [Float],
                                       fisher f: [Float], epsilon: Float) {
        for i in 0..<score.count {
            let d = after[i] - before[i]
            score[i] += max(0, -g[i] * d / (0.5 * f[i] * d * d + epsilon))
        }
    }

    public func afterTask(_ task: Int, context: TrainingContext) throws {
        if tasksDone == 0 { score = taskScore } else { score.blend(0.5, 0.5, taskScore) }
        tasksDone += 1
        let f = Self.normalized(fisher), s = Self.normalized(score)
        var importance = f
        importance.blend(1, 1, s)
        state.importance = importance
        state.setAnchor(context.model.namedParameters())
        taskScore = .zeros(like: context.model.namedParameters())
        taskGradient = [:]
        stepStart = [:]
    }

    /// (x − min)/(max − min + 1e-32), min and max over all parameters.
    public static func normalized(_ map: ParameterMap) -> ParameterMap {
        var low = Float.infinity, high = -Float.infinity
        for v in map.values { for x in v { low = min(low, x); high = max(high, x) } }
        guard low.isFinite, high.isFinite else { return map }
        let scale = 1 / (high - low + 1e-32)
        return map.mapValues { $0.map { ($0 - low) * scale } }
    }

    public var memoryBytes: Int {
        state.memoryBytes + fisher.byteCount + taskScore.byteCount + score.byteCount
    }

    /// F̂ + ŝ and θ*, the online Fisher, the scores and the number of finished tasks.
    public func saveState() throws -> StrategyState {
        var saved = StrategyState(tensors: fisher.tensors(prefix: "fisher") + taskScore.tensors(prefix: "task_score")
                                  + score.tensors(prefix: "score"))
        try state.save(into: &saved)
        try saved.record(tasksDone, as: "tasks")
        return saved
    }

    public func loadState(_ saved: StrategyState, context: TrainingContext) throws {
        try state.load(saved, model: context.model)
        fisher = try saved.parameterMap("fisher", model: context.model)
        taskScore = try saved.parameterMap("task_score", model: context.model)
        score = try saved.parameterMap("score", model: context.model)
        tasksDone = try saved.count("tasks")
    }
}
