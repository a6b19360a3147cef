import EngramNN

/// Progressive Neural Networks (Rusu et al. 2016): one MLP column per task, with lateral connections
/// h_i^(k) = ReLU(W_i^(k) h_{i−1}^(k) + Σ_{j<k} U_i^(k:j) h_{i−1}^(j)) from all earlier columns (eq. 1).
///
/// The model is a `ProgressiveMLP` (built by `ExperimentConfiguration.makeModel` when the strategy is `pnn`)
/// with a column for every task allocated up front, because the trainer builds its optimizer once from the
/// model's parameters. Before task t every parameter outside column t is put in the optimizer's `frozen`
/// set; the earlier columns also run without gradient recording, so they cannot change and nothing is ever
/// forgotten. Inference is task-aware only (the task picks the column): task-incremental scenario.
///
/// `memoryBytes` is the size of the frozen, finished columns (the network grows by one column per task);
/// `parametersPerColumn` lists what each column adds.
public final class ProgressiveNets: Strategy {
    public init() {}
    public var name: String { "pnn" }

    /// Columns finished (and frozen) so far.
    public private(set) var finishedColumns = 0
    /// Parameters of each column of the model (column k adds its layers and k sets of laterals).
    public private(set) var parametersPerColumn: [Int] = []
    private var frozenForTask: Int?

    /// The progressive network inside a model, with the name prefix of its parameters.
    public static func network(in model: Classifier) throws -> (prefix: String, network: ProgressiveMLP) {
        for (path, module) in model.namedModules() {
            if let p = module as? ProgressiveMLP { return (path.isEmpty ? "" : path + ".", p) }
        }
        throw StrategyError("pnn needs a progressive network (the pnn strategy builds one from --model mlp)")
    }

    public func beforeTask(_ task: Int, context: TrainingContext) throws {
        try freeze(for: task, context: context)
    }

    public func afterBackward(context: TrainingContext) {
        // After a resume in the middle of a task `beforeTask` is not called again; freeze here too.
        if frozenForTask != context.task { try? freeze(for: context.task, context: context) }
    }

    public func afterTask(_ task: Int, context: TrainingContext) throws {
        finishedColumns = task + 1
    }

    /// Bytes of the finished (frozen) columns.
    public var memoryBytes: Int { parametersPerColumn.prefix(finishedColumns).reduce(0, +) * MemoryLayout<Float>.size }

    func freeze(for task: Int, context: TrainingContext) throws {
        let (prefix, net) = try Self.network(in: context.model)
        guard task < net.columns.count else {
            throw StrategyError("task \(task) has no column: the progressive network has \(net.columns.count)")
        }
        parametersPerColumn = net.columns.indices.map { net.parameterCount(column: $0) }
        finishedColumns = task
        let trainable = prefix + ProgressiveMLP.prefix(column: task)
        context.optimizer.frozen = Set(context.model.namedParameters().map(\.0).filter { !$0.hasPrefix(trainable) })
        frozenForTask = task
    }
}
