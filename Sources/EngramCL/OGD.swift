import EngramTensor
import EngramData
import EngramNN
import Foundation

/// Orthogonal Gradient Descent, OGD (Farajtabar, Azizan, Mott & Li, AISTATS 2020), read against the reference
/// implementation of Bennani, Doan & Sugiyama (`ogd/ogd_core_new.py`, `ogd/tools.py`, which the OGD+ paper and
/// CL-Gym build on).
///
/// After each task, for `memory_size` random training samples x of it, OGD stores the gradient of the model's
/// output with respect to the shared parameters θ:
/// `variant`:
/// - `gtl` (the paper's best variant, the reference's): ∇θ f_y(x), the logit of the true class y;
/// - `all`: ∇θ f_c(x) for every logit c of the task's head (one direction per logit);
/// - `average`: ∇θ (1/C) Σ_c f_c(x).
/// The new directions are orthonormalized against the stored ones and each other (Gram–Schmidt, run twice; a
/// direction whose remainder is below 10⁻⁵ of its norm is already spanned and dropped), and
/// every later step uses g̃ = g − Σᵢ ⟨g, vᵢ⟩ vᵢ, so to first order the step leaves the stored outputs unchanged.
///
/// Shared parameters: all of them with one head; with a head per task (task-incremental), the trunk — the task's
/// own head is free, as in the reference's split benchmarks. Memory (`strategy_memory_bytes`), growing with the
/// tasks: one float per shared parameter per stored direction — or, when every shared parameter belongs to a Linear
/// layer, the factored form (`FactoredDirections`): (2M + Σ_l (out + in + 1))·M doubles for M directions, the same
/// projection up to rounding at a fraction of the time (the explicit basis is read twice from memory every step).
/// Deviation: the reference orthonormalizes once with classical Gram–Schmidt; the second pass only removes rounding
/// (the issue asks for a numerically stable basis).
public final class OGD: RegisteredStrategy {
    /// The output whose gradient is stored.
    public enum Output: String, CaseIterable, Sendable { case gtl, all, average }

    public static let descriptors = [StrategyDescriptor(
        name: "ogd", summary: "Orthogonal Gradient Descent: step orthogonally to the stored gradients of old tasks' outputs",
        paper: "Farajtabar, Azizan, Mott & Li, AISTATS 2020 (Orthogonal Gradient Descent for Continual Learning)",
        hyperparameters: [
            .integer("memory_size", default: 100, range: .atLeastOne,
                     help: "Training samples of each task whose output gradients are stored (the reference's 100 on Permuted MNIST)."),
            .choice("variant", Output.self, default: .gtl,
                    help: "Whose gradient is stored: gtl (the true class's logit, OGD-GTL), all (every logit, OGD-ALL) or average (their mean, OGD-AVE)."),
        ],
        make: { o in OGD(memorySize: o.integer("memory_size"), output: o.choice("variant")) })]

    public let memorySize: Int
    public let output: Output
    /// The orthonormal directions, [K, P] over the shared parameters in the model's order (networks with shared
    /// parameters outside Linear layers; otherwise `factored` holds them).
    public private(set) var basis: Tensor?
    /// The directions as the Linear layers' factors and Gram–Schmidt coefficients (`FactoredDirections`), when every
    /// shared parameter belongs to a Linear layer: the same projection up to rounding at a fraction of the time and memory.
    public private(set) var factored: FactoredDirections?
    /// Whether the factored form may be used (tests compare it with the explicit basis).
    public var allowsFactoredDirections = true

    public init(memorySize: Int = 100, output: Output = .gtl) {
        self.memorySize = memorySize; self.output = output
    }

    public var name: String { "ogd" }
    public var directions: Int { factored?.count ?? basis?.shape[0] ?? 0 }

    /// The parameters every task uses: all but the heads of a multi-head model.
    static func sharedParameters(of model: any Module) -> [(String, Tensor)] {
        model.namedParameters().filter { name, _ in !model.isInTaskHead(name) }
    }

    /// g ← g − Σᵢ ⟨g, vᵢ⟩ vᵢ over the shared parameters.
    public func afterBackward(context: TrainingContext) {
        if let factored {
            factored.project(Dictionary(uniqueKeysWithValues: Self.sharedParameters(of: context.model)))
            return
        }
        guard let basis else { return }
        let parameters = Self.sharedParameters(of: context.model)
        let g = Tensor(shape: [1, basis.shape[1]], scalars: Array(ReplayMemory.gradients(of: parameters).joined()))
        ReplayMemory.setGradients(Self.project(g, off: basis).scalars, of: parameters)
    }

    /// g − (g Bᵀ) B for rows g [n, P] and orthonormal rows B [K, P].
    public static func project(_ g: Tensor, off basis: Tensor) -> Tensor { GramSchmidt.project(g, off: basis) }

    /// Stores the output gradients of `memory_size` random training samples of the task that ended.
    public func afterTask(_ task: Int, context: TrainingContext) throws {
        let model = context.model
        guard let batch = context.stream.trainingBatches(task: task, epoch: 0, batchSize: memorySize).first(where: { _ in true }) else { return }
        let restore = model.enterEvaluationMode()
        defer { restore(); model.zeroGrad() }
        model.setActiveTask(task)
        let shared = Self.sharedParameters(of: model)
        if basis == nil, allowsFactoredDirections, let layers = factored?.layers ?? FactoredDirections.layers(of: model, shared: shared) {
            var directions = factored ?? FactoredDirections(layers: layers)
            let width = GradMode.withoutGrad { model(batch.inputs.indexSelect([0])) }.shape[1]
            directions.extend(with: FactoredDirections.factors(of: model, inputs: batch.inputs,
                                                               seeds: Self.seeds(labels: batch.labels, width: width, output: output),
                                                               layers: layers))
            factored = directions
            return
        }
        let tangents = Self.tangents(of: model, inputs: batch.inputs, labels: batch.labels, output: output, parameters: shared)
        basis = Self.orthonormalize(tangents, against: basis)
    }

    /// The backward seeds of the stored outputs, one [n, width] matrix per direction a sample contributes: gtl the
    /// one-hot of each sample's label, all one matrix per logit, average 1/width everywhere.
    public static func seeds(labels: [Int], width: Int, output: Output) -> [[Float]] {
        let n = labels.count
        switch output {
        case .gtl: return [(0..<(n * width)).map { i in i % width == labels[i / width] ? 1 : 0 }]
        case .all: return (0..<width).map { c in (0..<(n * width)).map { i in i % width == c ? 1 : 0 } }
        case .average: return [[Float](repeating: 1 / Float(width), count: n * width)]
        }
    }

    /// The stored directions for each sample k of `inputs`: ∇θ(sᵀf(x_k)) over `parameters` (flattened in their
    /// order), s the one-hot of `labels[k]` (gtl), of each output (all, one direction per output) or 1/C everywhere
    /// (average). One forward pass per sample serves all its outputs.
    public static func tangents(of model: any Module, inputs: Tensor, labels: [Int], output: Output,
                                parameters: [(String, Tensor)]) -> [[Float]] {
        var tangents: [[Float]] = []
        for k in 0..<inputs.shape[0] {
            let logits = model(inputs.indexSelect([k]))
            let width = logits.shape[1]
            let seeds = Self.seeds(labels: [labels[k]], width: width, output: output)
            for (i, seed) in seeds.enumerated() {
                model.zeroGrad()
                logits.backward(seed: Tensor(shape: [1, width], scalars: seed), retainGraph: i < seeds.count - 1)
                tangents.append(Array(ReplayMemory.gradients(of: parameters).joined()))
            }
        }
        model.zeroGrad()
        return tangents
    }

    /// `basis`'s rows followed by the normalized part of each new vector they do not span (``GramSchmidt/extend(_:dimension:with:tolerance:)``:
    /// Gram–Schmidt twice, through BLAS); vectors already spanned (remainder < 10⁻⁵ of their norm) are dropped.
    public static func orthonormalize(_ vectors: [[Float]], against basis: Tensor?) -> Tensor? {
        guard let p = basis?.shape[1] ?? vectors.first?.count else { return basis }
        var rows = basis?.scalars ?? []
        GramSchmidt.extend(&rows, dimension: p, with: vectors)
        return rows.isEmpty ? nil : Tensor(shape: [rows.count / p, p], scalars: rows)
    }

    public var memoryBytes: Int { factored?.byteCount ?? (basis?.count ?? 0) * MemoryLayout<Float>.size }

    /// `basis` [K, P], or the factors of the kept tangents (`factors.<l>.deltas`, `factors.<l>.activations`).
    public func saveState() throws -> StrategyState {
        if let factored { return StrategyState(tensors: factored.tensors()) }
        return StrategyState(tensors: basis.map { [("basis", $0)] } ?? [])
    }

    public func loadState(_ state: StrategyState, context: TrainingContext) throws {
        factored = nil
        if state.tensors.keys.contains(where: { $0.hasPrefix("factors.") }) {
            guard let layers = FactoredDirections.layers(of: context.model, shared: Self.sharedParameters(of: context.model)) else {
                throw StrategyError("state holds factored directions, but this model's shared parameters are not all Linear layers'")
            }
            factored = try FactoredDirections.restored(from: state.tensors, layers: layers)
            basis = nil
            return
        }
        guard let b = state.tensors["basis"] else { basis = nil; return }
        let p = Self.sharedParameters(of: context.model).reduce(0) { $0 + $1.1.count }
        guard b.shape.count == 2, b.shape[1] == p else {
            throw StrategyError("tensor 'basis' has shape \(b.shape), not [directions, \(p)] (the model's shared parameters)")
        }
        basis = b
    }
}
