import EngramTensor
import EngramData
import EngramNN

/// Progressive Neural Networks (Rusu et al. 2016): one column per task, with lateral connections
/// h_i^(k) = f(W_i^(k) h_{i−1}^(k) + Σ_{j<k} U_i^(k:j) h_{i−1}^(j)) from all earlier columns (eq. 1).
///
/// The model is a `ProgressiveNetwork` built by `ExperimentConfiguration.makeModel` when the strategy is `pnn`
/// (a `ProgressiveMLP` for `--model mlp`, a `ProgressiveConvNet` for `--model cnn`) with a column for every task
/// allocated up front, because the trainer builds its optimizer once from the model's parameters. Before task t
/// every parameter outside column t is put in the optimizer's `frozen` set; the earlier columns also run without
/// gradient recording, so they cannot change and nothing is ever forgotten. Convolutional columns also hold
/// BatchNorm running statistics, which the optimizer does not see: the network runs columns 0 … t − 1 in
/// evaluation mode whatever its own mode (`ProgressiveConvNet.forward`), so their statistics are not updated
/// while task t trains, and evaluation uses each column's own statistics.
/// Inference is task-aware only (the task picks the column): task-incremental scenario.
///
/// `memoryBytes` is the size of the frozen, finished columns, parameters and buffers (the network grows by one
/// column per task); `parametersPerColumn` lists the parameters each column adds.
public final class ProgressiveNets: RegisteredStrategy {
    public static let descriptors = [StrategyDescriptor(
        name: "pnn", summary: "Progressive networks: a new column per task with lateral connections from the frozen earlier ones",
        paper: "Rusu et al., arXiv 2016", scenarios: [.taskIncremental], usesTaskIdentityAtTest: true,
        models: ["mlp", "cnn"], buildsProgressiveNetwork: true, make: { _ in ProgressiveNets() })]

    public init() {}
    public var name: String { "pnn" }

    /// Columns finished (and frozen) so far.
    public private(set) var finishedColumns = 0
    /// Parameters of each column of the model (column k adds its layers and k sets of laterals).
    public private(set) var parametersPerColumn: [Int] = []
    /// Buffer scalars of each column (BatchNorm running statistics; none for MLP columns).
    public private(set) var buffersPerColumn: [Int] = []

    /// The progressive MLP inside a model, with the name prefix of its parameters.
    public static func network(in model: Classifier) throws -> (prefix: String, network: ProgressiveMLP) {
        let (prefix, net) = try progressiveNetwork(in: model)
        guard let mlp = net as? ProgressiveMLP else { throw StrategyError("the model's progressive network has no MLP columns") }
        return (prefix, mlp)
    }

    /// The progressive network (MLP or convolutional columns) inside a model, with the name prefix of its parameters.
    public static func progressiveNetwork(in model: Classifier) throws -> (prefix: String, network: any ProgressiveNetwork) {
        for (path, module) in model.namedModules() {
            if let p = module as? any ProgressiveNetwork { return (path.isEmpty ? "" : path + ".", p) }
        }
        throw StrategyError("pnn needs a progressive network (the pnn strategy builds one from model mlp or cnn)")
    }

    public func beforeTask(_ task: Int, context: TrainingContext) throws {
        try freeze(for: task, context: context)
    }

    public func afterTask(_ task: Int, context: TrainingContext) throws {
        finishedColumns = task + 1
    }

    /// The number of finished columns (the columns themselves are the model's).
    public func saveState() throws -> StrategyState {
        var state = StrategyState()
        try state.record(finishedColumns, as: "finished_columns")
        return state
    }

    /// A resumed run freezes every column but the current task's, as `beforeTask` did.
    public func loadState(_ state: StrategyState, context: TrainingContext) throws {
        try freeze(for: min(context.task, context.stream.taskCount - 1), context: context)
        finishedColumns = try state.count("finished_columns", default: context.task)
        guard finishedColumns <= context.stream.taskCount else {
            throw StrategyError("record 'finished_columns' is \(finishedColumns), more than the \(context.stream.taskCount) columns")
        }
    }

    /// Bytes of the finished (frozen) columns: their parameters and buffers.
    public var memoryBytes: Int {
        (parametersPerColumn.prefix(finishedColumns).reduce(0, +) + buffersPerColumn.prefix(finishedColumns).reduce(0, +))
            * MemoryLayout<Float>.size
    }

    func freeze(for task: Int, context: TrainingContext) throws {
        let (prefix, net) = try Self.progressiveNetwork(in: context.model)
        guard task < net.columnCount else {
            throw StrategyError("task \(task) has no column: the progressive network has \(net.columnCount)")
        }
        parametersPerColumn = (0..<net.columnCount).map { net.parameterCount(column: $0) }
        buffersPerColumn = (0..<net.columnCount).map { net.bufferCount(column: $0) }
        finishedColumns = task
        let trainable = prefix + net.columnPrefix(task)
        context.optimizer.frozen = Set(context.model.namedParameters().map(\.0).filter { !$0.hasPrefix(trainable) })
    }
}
