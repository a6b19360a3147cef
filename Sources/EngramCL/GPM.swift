import EngramTensor
import EngramData
import EngramNN
import Foundation

/// Gradient Projection Memory, GPM (Saha, Garg & Roy, ICLR 2021), read against the authors' code (`main_pmnist.py`:
/// `get_representation_matrix`, `update_GPM`, `train_projected`).
///
/// After each task, every Linear layer l keeps an orthonormal basis Mₗ of the inputs its old tasks gave it. With Rₗ
/// the layer's inputs on `samples` random training samples of the task (one column per sample):
/// - first task: Rₗ = U Σ Vᵀ; Mₗ = the first k columns of U, k the smallest with ‖Σ_k‖²_F ≥ εₗ‖Σ‖²_F (eq. 7);
/// - later tasks: the residual R̂ₗ = Rₗ − Mₗ Mₗᵀ Rₗ = Û Σ̂ V̂ᵀ; Mₗ gains the first k columns of Û, k the smallest with
///   (‖Rₗ‖² − ‖R̂ₗ‖² + Σ_{i≤k} σ̂ᵢ²) ≥ εₗ‖Rₗ‖² (eq. 9–10); at most as many columns as the layer has inputs.
///
/// Every later step projects each layer's weight gradient off the span of Mₗ, ∇Wₗ ← ∇Wₗ − (∇Wₗ Mₗ) Mₗᵀ (eq. 8), so
/// to first order the layer's output on the old tasks' inputs does not change. εₗ is `input_threshold` for the
/// first layer and `threshold` for the others (the authors' 0.95 and 0.99 on Permuted MNIST), each raised by
/// `threshold_increment` per task (their CIFAR schedule, 0.97 + 0.003·t).
///
/// Deviations: (1) biases — the authors' networks have none; Engram treats a layer's bias as the weight of a
/// constant input 1 (Rₗ gains a row of ones, the projection acts on [W b] together), which is the same rule for the
/// affine map and reduces to theirs on a bias-free `mlp` (`bias: false`). (2) The first task's rank: their code
/// keeps one vector fewer than eq. 7 (`np.sum(np.cumsum(ratio) < ε)`, the `+1` commented out), so its basis holds
/// less than ε of the energy; Engram follows the paper's equation (the basis reaches ε). (3) The authors project
/// the output layer too on Permuted MNIST (one shared head); so does Engram for a shared head, while a task's own
/// head (multi-head) is used by no other task and is left free. Convolutional layers are not covered (`mlp` only).
public final class GPM: RegisteredStrategy {
    public static let descriptors = [StrategyDescriptor(
        name: "gpm", summary: "Gradient Projection Memory: project each layer's gradient off the span of the old tasks' inputs to it",
        paper: "Saha, Garg & Roy, ICLR 2021 (Gradient Projection Memory for Continual Learning)",
        hyperparameters: [
            .real("threshold", symbol: "ε", default: 0.99, range: .unitIntervalOpenBelow,
                  help: "ε, the fraction of each layer's input energy (Σσ²) its basis must hold (layers after the first)."),
            .real("input_threshold", symbol: "ε₁", default: 0.95, range: .unitIntervalOpenBelow,
                  help: "ε of the first layer (the authors' 0.95 on Permuted MNIST)."),
            .real("threshold_increment", default: 0, range: .nonNegative,
                  help: "Added to every ε after each task (the authors' CIFAR schedule: ε = 0.97 + 0.003·t)."),
            .integer("samples", default: 300, range: .atLeastOne, help: "Training samples of each task whose layer inputs form Rₗ."),
        ],
        models: ["mlp"],
        make: { o in
            GPM(threshold: o.double("threshold"), inputThreshold: o.double("input_threshold"),
                thresholdIncrement: o.double("threshold_increment"), samples: o.integer("samples"))
        })]

    public let threshold: Double, inputThreshold: Double, thresholdIncrement: Double, samples: Int
    /// The basis of each layer (by module path): rows are orthonormal vectors over the layer's inputs (and a
    /// trailing 1 for its bias), [k, in (+1)].
    public private(set) var bases: [String: Tensor] = [:]
    private var tasksDone = 0

    public init(threshold: Double = 0.99, inputThreshold: Double = 0.95, thresholdIncrement: Double = 0, samples: Int = 300) {
        self.threshold = threshold; self.inputThreshold = inputThreshold
        self.thresholdIncrement = thresholdIncrement; self.samples = samples
    }

    public var name: String { "gpm" }

    /// The Linear layers GPM constrains, in forward order: every layer but the heads of a multi-head model.
    static func layers(of model: any Module) -> [(String, Linear)] {
        model.namedModules().compactMap { path, m in
            guard let l = m as? Linear, !model.isInTaskHead(path) else { return nil }
            return (path, l)
        }
    }

    /// ∇[W b] ← ∇[W b] − (∇[W b] M) Mᵀ for every layer with a basis.
    public func afterBackward(context: TrainingContext) {
        for (path, layer) in Self.layers(of: context.model) {
            guard let basis = bases[path], let gw = layer.weight.grad else { continue }
            let out = layer.outFeatures, inputs = layer.inFeatures, width = basis.shape[1]
            let biasGradient = layer.bias.map { $0.grad?.scalars ?? [Float](repeating: 0, count: out) }
            let g = Self.project(Tensor(shape: [out, width], scalars: Self.augmented(gw.scalars, bias: biasGradient, rows: out, columns: inputs)),
                                 off: basis)
            let (w, b) = Self.split(g.scalars, rows: out, columns: inputs, hasBias: layer.bias != nil)
            layer.weight.grad = Tensor(shape: gw.shape, scalars: w)
            if let b, let bias = layer.bias { bias.grad = Tensor(shape: [out], scalars: b) }
        }
    }

    /// G − (G Mᵀ) M for G [n, d] and a basis M [k, d] with orthonormal rows.
    public static func project(_ g: Tensor, off basis: Tensor) -> Tensor { GramSchmidt.project(g, off: basis) }

    /// [W b] as rows of in (+1) values.
    static func augmented(_ w: [Float], bias: [Float]?, rows: Int, columns: Int) -> [Float] {
        guard let bias else { return w }
        var out = [Float](); out.reserveCapacity(rows * (columns + 1))
        for r in 0..<rows { out += w[r * columns ..< (r + 1) * columns]; out.append(bias[r]) }
        return out
    }

    static func split(_ g: [Float], rows: Int, columns: Int, hasBias: Bool) -> ([Float], [Float]?) {
        guard hasBias else { return (g, nil) }
        var w = [Float](), b = [Float]()
        w.reserveCapacity(rows * columns)
        for r in 0..<rows { w += g[r * (columns + 1) ..< r * (columns + 1) + columns]; b.append(g[r * (columns + 1) + columns]) }
        return (w, b)
    }

    /// The bases grow by each layer's inputs on `samples` training samples of the task that ended.
    public func afterTask(_ task: Int, context: TrainingContext) throws {
        let model = context.model
        let restore = model.enterEvaluationMode()
        defer { restore() }
        guard let batch = context.stream.trainingBatches(task: task, epoch: 0, batchSize: samples).first(where: { _ in true }) else { return }
        let layers = Self.layers(of: model)
        for (_, l) in layers { l.clearRecord(); l.recordsActivations = true }
        defer { for (_, l) in layers { l.recordsActivations = false; l.clearRecord() } }
        model.setActiveTask(task)
        GradMode.withoutGrad { _ = model(batch.inputs) }
        let increment = thresholdIncrement * Double(tasksDone)
        for (index, (path, layer)) in layers.enumerated() {
            guard let input = layer.lastInput else { continue }
            let x = input.rank == 2 ? input : input.flattened()
            let n = x.shape[0], d = x.shape[1] + (layer.bias == nil ? 0 : 1)
            // Rₗ column-major: sample k's inputs (and 1) are column k.
            var r = [Double](); r.reserveCapacity(n * d)
            for k in 0..<n {
                for j in 0..<x.shape[1] { r.append(Double(x.scalars[k * x.shape[1] + j])) }
                if layer.bias != nil { r.append(1) }
            }
            let epsilon = min((index == 0 ? inputThreshold : threshold) + increment, 1)
            let old = bases[path].map { b in (0..<b.shape[0]).map { i in b.scalars[i * d ..< (i + 1) * d].map(Double.init) } } ?? []
            let grown = try Self.grow(basis: old, representation: r, dimension: d, samples: n, threshold: epsilon)
            if grown.count > old.count {
                bases[path] = Tensor(shape: [grown.count, d], scalars: grown.flatMap { $0.map(Float.init) })
            }
        }
        tasksDone = task + 1
    }

    /// The basis `basis` (orthonormal vectors of `dimension` values) grown by the representation R (`samples`
    /// columns of `dimension` values, column-major) to hold at least `threshold` of R's energy (eq. 7, 9, 10).
    public static func grow(basis: [[Double]], representation r: [Double], dimension d: Int, samples n: Int,
                            threshold: Double) throws -> [[Double]] {
        let total = r.reduce(0) { $0 + $1 * $1 }
        guard total > 0, basis.count < d else { return basis }
        // R̂ = R − M Mᵀ R, column by column.
        var residual = r
        for k in 0..<n {
            for u in basis {
                var dot = 0.0
                for j in 0..<d { dot += u[j] * residual[k * d + j] }
                for j in 0..<d { residual[k * d + j] -= dot * u[j] }
            }
        }
        var held = total - residual.reduce(0) { $0 + $1 * $1 }
        guard held < threshold * total else { return basis }
        guard let svd = SingularValueDecomposition(columnMajor: residual, rows: d, columns: n) else {
            throw StrategyError("GPM's SVD of a \(d) × \(n) representation did not converge")
        }
        var grown = basis
        for (u, sigma) in zip(svd.leftVectors, svd.singularValues) where held < threshold * total && grown.count < d {
            grown.append(u)
            held += sigma * sigma
        }
        return grown
    }

    public var memoryBytes: Int { bases.values.reduce(0) { $0 + $1.count * MemoryLayout<Float>.size } }

    public func saveState() throws -> StrategyState {
        var state = StrategyState(tensors: bases.sorted { $0.key < $1.key }.map { ("basis.\($0.key)", $0.value) })
        try state.record(tasksDone, as: "tasks")
        return state
    }

    public func loadState(_ state: StrategyState, context: TrainingContext) throws {
        let layers = Dictionary(uniqueKeysWithValues: Self.layers(of: context.model))
        var loaded: [String: Tensor] = [:]
        for (key, tensor) in state.tensors where key.hasPrefix("basis.") {
            let path = String(key.dropFirst("basis.".count))
            guard let layer = layers[path] else { throw StrategyError("tensor '\(key)' names no Linear layer of the model") }
            let d = layer.inFeatures + (layer.bias == nil ? 0 : 1)
            guard tensor.shape.count == 2, tensor.shape[1] == d, tensor.shape[0] <= d else {
                throw StrategyError("tensor '\(key)' has shape \(tensor.shape), not [k ≤ \(d), \(d)]")
            }
            loaded[path] = tensor
        }
        bases = loaded
        tasksDone = try state.optionalRecord(Int.self, "tasks") ?? 0
    }
}
