import EngramTensor
import EngramData
import EngramNN

/// Gradient Episodic Memory, GEM (Lopez-Paz & Ranzato, NeurIPS 2017; the authors' code and Mammoth's `gem`).
///
/// The memory keeps ⌊buffer_size / T⌋ samples of each finished task (T tasks; drawn at random from the task's
/// training data when it ends — the authors' code fixes a number of memories per task too). At every step, with g
/// the gradient of the current batch's loss and g_k the gradient of the loss on task k's memory (every past task),
/// a step that would increase some memory loss — ⟨g, g_k⟩ < 0 for some k — uses instead the projection
///
///     g̃ = Gᵀv + g,   v = argmin_{v ≥ γ} ½ vᵀ(GGᵀ + εI)v + (Gg)ᵀv,
///
/// the dual of min ½‖g̃ − g‖² subject to Gg̃ ≥ 0, with G the rows g_k, the margin γ (`gamma`, the authors'
/// "memory strength", 0.5) bounding v from below, and ε = 1e-3 (the authors' regularization of GGᵀ). The dual has
/// as many variables as past tasks; ``solveDual(_:_:margin:)`` solves it by projected coordinate descent (the
/// reference calls quadprog). In the task-incremental scenario memory samples go through their own heads.
public final class GEM: RegisteredStrategy {
    public static let descriptors = [StrategyDescriptor(
        name: "gem", summary: "GEM: project the gradient so no past task's memory loss increases (a small dual QP)",
        paper: "Lopez-Paz & Ranzato, NeurIPS 2017 (Gradient Episodic Memory for Continual Learning)",
        hyperparameters: [
            .bufferSize(default: 500),
            .real("gamma", symbol: "γ", default: 0.5, range: .nonNegative,
                  help: "γ, the margin of the dual variables (the authors' memory strength): v ≥ γ."),
        ],
        make: { o in GEM(bufferSize: o.integer("buffer_size"), margin: o.float("gamma")) })]

    public let bufferSize: Int
    /// γ, the lower bound of the dual variables.
    public let margin: Float
    /// ε, added to GGᵀ's diagonal (the authors' value).
    public let regularization: Double = 1e-3
    let memory: ReplayMemory
    /// Steps whose gradient was projected (for the log and tests).
    public private(set) var projectedSteps = 0

    public init(bufferSize: Int, margin: Float = 0.5) {
        self.bufferSize = bufferSize; self.margin = margin
        memory = ReplayMemory(capacity: bufferSize, policy: .reservoir, owner: "gem")
    }

    public var name: String { "gem" }
    /// The memory (nil before the first task ends).
    public var buffer: ReplayBuffer? { memory.buffer }

    public func beforeTask(_ task: Int, context: TrainingContext) throws { try memory.check(context) }

    /// g ← Gᵀv + g when g conflicts with some past task's memory gradient.
    public func afterBackward(context: TrainingContext) {
        guard let buffer = memory.buffer, !buffer.isEmpty else { return }
        let parameters = context.model.namedParameters()
        let g = Array(ReplayMemory.gradients(of: parameters).joined())
        var rows: [[Float]] = []
        var random = context.generator("gem/memory/task \(context.task)/step \(context.stepInTask)")
        for task in Set(buffer.tasks.map(Int.init)).sorted() where task < context.task {
            let slots = buffer.tasks.indices.filter { Int(buffer.tasks[$0]) == task }
            let batch = buffer.batch(slots, stream: context.stream, random: &random)
            rows.append(Array(ReplayMemory.lossGradient(batch, parameters: parameters, context: context).joined()))
        }
        let projected = Self.project(g, onto: rows, margin: Double(margin), regularization: regularization)
        if projected != nil { projectedSteps += 1 }
        ReplayMemory.setGradients(projected ?? g, of: parameters)
    }

    /// Gᵀv + g with v the solution of the dual, when ⟨g, g_k⟩ < 0 for some row g_k of G; nil when g already agrees
    /// with every row.
    public static func project(_ g: [Float], onto rows: [[Float]], margin: Double, regularization: Double) -> [Float]? {
        let dots = rows.map { row in zip(row, g).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } }
        guard dots.contains(where: { $0 < 0 }) else { return nil }
        let t = rows.count
        var gram = [[Double]](repeating: [Double](repeating: 0, count: t), count: t)
        for i in 0..<t {
            for j in i..<t {
                let value = zip(rows[i], rows[j]).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                gram[i][j] = value; gram[j][i] = value
            }
            gram[i][i] += regularization
        }
        let v = solveDual(gram, dots, margin: margin)
        var result = g.map(Double.init)
        for (k, row) in rows.enumerated() { for i in row.indices { result[i] += v[k] * Double(row[i]) } }
        return result.map(Float.init)
    }

    /// argmin_{v ≥ margin} ½ vᵀPv + bᵀv for a symmetric positive semi-definite P with a positive diagonal, by
    /// projected coordinate descent (each coordinate minimized exactly in turn, then clipped at the bound) until no
    /// coordinate moves by more than 1e-12 (relative) or 100 000 sweeps.
    public static func solveDual(_ p: [[Double]], _ b: [Double], margin: Double) -> [Double] {
        let t = b.count
        var v = [Double](repeating: margin, count: t)
        for _ in 0..<100_000 {
            var largest = 0.0
            for k in 0..<t where p[k][k] > 0 {
                var gradient = b[k]
                for j in 0..<t { gradient += p[k][j] * v[j] }
                let updated = max(margin, v[k] - gradient / p[k][k])
                largest = max(largest, abs(updated - v[k]) / max(1, abs(v[k])))
                v[k] = updated
            }
            if largest < 1e-12 { break }
        }
        return v
    }

    /// Stores ⌊buffer_size / T⌋ random training samples of the task that ended.
    public func afterTask(_ task: Int, context: TrainingContext) throws {
        memory.storeRandomSamples(bufferSize / context.stream.taskCount, ofTask: task, context: context)
    }

    public var memoryBytes: Int { memory.bytes }
    public func saveState() throws -> StrategyState {
        var state = try memory.saveState()
        try state.record(projectedSteps, as: "projected_steps")
        return state
    }
    public func loadState(_ state: StrategyState, context: TrainingContext) throws {
        var memoryState = state
        memoryState.records["projected_steps"] = nil
        try memory.loadState(memoryState, context: context)
        projectedSteps = try state.count("projected_steps")
    }
}
