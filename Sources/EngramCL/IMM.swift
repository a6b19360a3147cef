import EngramTensor
import EngramData
import EngramNN

/// How IMM merges the per-task solutions.
public enum IMMMode: String, Sendable, Codable, CaseIterable {
    /// mean-IMM: θ = Σ_t α_t θ_t.
    case mean
    /// mode-IMM: θ = (Σ_t α_t F_t)⁻¹ Σ_t α_t F_t θ_t, elementwise with the diagonal Fisher F_t.
    case mode
}

/// Incremental Moment Matching (Lee, Kim, Jun, Ha & Zhang, NeurIPS 2017).
///
/// Task t is trained from θ_{t−1}, the previous task's *un-merged* solution (weight-transfer), with the
/// optional L2-transfer penalty λ‖θ − θ_{t−1}‖² (λ = `l2Transfer`, 0 = pure weight-transfer). After the
/// task, θ_t (and for mode-IMM its diagonal empirical Fisher F_t) is stored and the model is set to the merge
///   mean-IMM: θ = Σ_{k≤t} α_k θ_k,
///   mode-IMM: θᵢ = Σ_k α_k (F_k,ᵢ + ε) θ_k,ᵢ / Σ_k α_k (F_k,ᵢ + ε),
/// with α uniform (1/t) unless `alphas` gives weights (normalized to sum 1). ε (default 1e-8) keeps the
/// division defined and makes mode-IMM fall back to mean-IMM where every Fisher vanishes. The model is
/// evaluated merged; training of the next task restarts from θ_t. Task-specific heads (multi-head models)
/// are not merged: each keeps the value it was trained to. Memory: θ_k (and F_k) of every task.
public final class IMM: RegisteredStrategy {
    public static let descriptors = [
        StrategyDescriptor(
            name: "imm-mean", summary: "mean-IMM: the average of the tasks' solutions, each trained from the previous one",
            paper: "Lee, Kim, Jun, Ha & Zhang, NeurIPS 2017", hyperparameters: [l2TransferSpec],
            make: { o in try IMM(mode: .mean, l2Transfer: o.float("l2_transfer")) }),
        StrategyDescriptor(
            name: "imm-mode", summary: "mode-IMM: the Fisher-weighted merge of the tasks' solutions",
            paper: "Lee, Kim, Jun, Ha & Zhang, NeurIPS 2017", hyperparameters: [l2TransferSpec, .fisher],
            make: { o in try IMM(mode: .mode, l2Transfer: o.float("l2_transfer"), fisher: o.choice("fisher")) }),
    ]

    static let l2TransferSpec = HyperparameterSpec.real(
        "l2_transfer", symbol: "λ", default: 0, range: .nonNegative,
        help: "λ of the L2-transfer penalty λ‖θ − θ_{t−1}‖² (0: pure weight-transfer).")


    public let mode: IMMMode
    /// λ of the L2-transfer penalty λ‖θ − θ_{t−1}‖².
    public var l2Transfer: Float
    /// α_k for the merge (nil: uniform); only the first t entries are used after task t, normalized.
    public var alphas: [Float]?
    /// ε added to each Fisher in mode-IMM.
    public var epsilon: Float
    /// How F_k treats the label (as EWC: the exact expectation by default).
    public var fisherEstimator: FisherEstimator
    /// θ_k of every finished task (un-merged).
    public private(set) var solutions: [ParameterMap] = []
    /// F_k of every finished task (mode-IMM only).
    public private(set) var fishers: [ParameterMap] = []

    public init(mode: IMMMode, l2Transfer: Float = 0, alphas: [Float]? = nil, epsilon: Float = 1e-8,
                fisher: FisherEstimator = .exact) throws {
        self.mode = mode
        self.l2Transfer = try validatedStrength(l2Transfer, flag: "l2_transfer")
        if let alphas, alphas.contains(where: { !($0 >= 0) }) { throw StrategyError("IMM weights α must be ≥ 0, got \(alphas)") }
        self.alphas = alphas
        guard epsilon > 0 else { throw StrategyError("IMM ε must be positive, got \(epsilon)") }
        self.epsilon = epsilon
        self.fisherEstimator = fisher
    }

    public var name: String { mode == .mean ? "imm-mean" : "imm-mode" }

    public func beforeTask(_ task: Int, context: TrainingContext) throws {
        // Weight-transfer: continue from θ_{t−1}, not from the merged model that was evaluated.
        guard let previous = solutions.last else { return }
        for (name, p) in context.model.namedParameters() { if let v = previous[name] { p.scalars = v } }
    }

    /// λ‖θ − θ_{t−1}‖² (L2-transfer).
    public func penalty(output: Tensor, batch: Batch, context: TrainingContext) -> Tensor? {
        guard l2Transfer > 0, let previous = solutions.last else { return nil }
        let ones = previous.mapValues { [Float](repeating: 1, count: $0.count) }
        return quadraticPenalty(parameters: context.penalizedParameters, importance: ones, anchor: previous, strength: l2Transfer)
    }

    public func afterTask(_ task: Int, context: TrainingContext) throws {
        let parameters = context.model.namedParameters()
        solutions.append(.values(of: parameters))
        if mode == .mode { fishers.append(EWC.fisher(task: task, estimator: fisherEstimator, context: context).mean) }
        let merged = mode == .mean ? Self.meanMerge(solutions, weights: weights(count: solutions.count))
                                   : Self.modeMerge(solutions, fishers: fishers, weights: weights(count: solutions.count), epsilon: epsilon)
        for (name, p) in parameters where !name.hasPrefix("head.heads.") {
            if let v = merged[name] { p.scalars = v }
        }
    }

    /// α_1 … α_n, summing to 1.
    func weights(count n: Int) -> [Float] {
        guard let alphas, alphas.count >= n else { return [Float](repeating: 1 / Float(n), count: n) }
        let a = Array(alphas.prefix(n)), s = a.reduce(0, +)
        return s > 0 ? a.map { $0 / s } : [Float](repeating: 1 / Float(n), count: n)
    }

    /// mean-IMM: Σ_k α_k θ_k.
    public static func meanMerge(_ solutions: [ParameterMap], weights: [Float]) -> ParameterMap {
        var merged = ParameterMap()
        for (theta, a) in zip(solutions, weights) { merged.blend(1, a, theta) }
        return merged
    }

    /// mode-IMM: Σ_k α_k (F_k + ε) θ_k / Σ_k α_k (F_k + ε), per element.
    public static func modeMerge(_ solutions: [ParameterMap], fishers: [ParameterMap], weights: [Float],
                                 epsilon: Float = 1e-8) -> ParameterMap {
        var merged = ParameterMap()
        guard let first = solutions.first else { return merged }
        for name in first.keys {
            let n = first[name]!.count
            var numerator = [Double](repeating: 0, count: n), denominator = [Double](repeating: 0, count: n)
            for (k, theta) in solutions.enumerated() {
                guard let t = theta[name] else { continue }
                let f = fishers[k][name] ?? [Float](repeating: 0, count: n)
                let a = Double(weights[k])
                for i in 0..<n {
                    let w = a * (Double(f[i]) + Double(epsilon))
                    numerator[i] += w * Double(t[i])
                    denominator[i] += w
                }
            }
            merged[name] = (0..<n).map { Float(numerator[$0] / denominator[$0]) }
        }
        return merged
    }

    public var memoryBytes: Int { solutions.reduce(0) { $0 + $1.byteCount } + fishers.reduce(0) { $0 + $1.byteCount } }

    /// θ_k (`theta.<k>.<parameter>`), for mode-IMM F_k (`fisher.<k>.<parameter>`), and their number.
    public func saveState() throws -> StrategyState {
        var state = StrategyState(tensors: solutions.enumerated().flatMap { $1.tensors(prefix: "theta.\($0)") }
                                  + fishers.enumerated().flatMap { $1.tensors(prefix: "fisher.\($0)") })
        try state.record(solutions.count, as: "tasks")
        return state
    }

    public func loadState(_ state: StrategyState, context: TrainingContext) throws {
        let n = try state.count("tasks")
        solutions = try (0..<n).map { try state.parameterMap("theta.\($0)", model: context.model) }
        fishers = mode == .mode ? try (0..<n).map { try state.parameterMap("fisher.\($0)", model: context.model) } : []
    }
}
