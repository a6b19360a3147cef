import EngramTensor
import EngramData
import EngramNN

/// PackNet (Mallya & Lazebnik, CVPR 2018): several tasks packed into one network by iterative pruning.
///
/// Task t trains the free weights while the weights of tasks < t stay frozen but are used. After its
/// epochs, of the weights W_t trained in task t each layer keeps the (1 − p)·|W_t| largest |w| and frees
/// the rest (set to 0), p the prune ratio; the kept weights are re-trained for `retrainEpochs` epochs on
/// the task's data (nothing else may move) and frozen. Inference on task t is task-aware, with
/// W ⊙ M_t, M_t = [owner ≤ t].
///
/// Choices: every parameter of rank ≥ 2 outside the task heads (Linear/Conv weights, including a single
/// shared head's weight) is packed. Biases and shared BatchNorm γ/β are trained on task 0 only and frozen
/// after it (as the authors' code does); for t > 0 shared BatchNorm layers run in evaluation mode so their
/// running statistics stay those of task 0 (after a mid-task resume, from the second batch on).
/// Multi-head heads (`head.heads.<t>.…`) and per-task BatchNorm (`TaskBatchNorm`, `….tasks.<t>.…`) belong
/// wholly to their task and are not pruned. `ExperimentConfiguration` gives PackNet per-task BatchNorm by
/// default: frozen task-0 statistics can blow up later tasks trained from scratch (measured: ResNet-20 on
/// Split Fashion-MNIST, seed 1, a running variance of 7.7e-5 turned task 2's loss into NaN within 5 steps). The optimizer
/// state is reset before re-training, which uses the run's learning rate. Memory: one byte of owner id
/// per parameter (`TaskWeightMasks`), whatever the number of tasks.
public final class PackNet: RegisteredStrategy {
    public static let descriptors = [StrategyDescriptor(
        name: "packnet", summary: "PackNet: iterative pruning packs each task into the weights the earlier ones freed",
        paper: "Mallya & Lazebnik, CVPR 2018",
        hyperparameters: [
            .real("prune_ratio", symbol: "p", default: 0.75, range: .unitIntervalOpenAbove,
                  help: "p, the fraction of each task's weights freed by pruning after it."),
            .integer("retrain_epochs", default: 1, range: .nonNegative, help: "Epochs of re-training the kept weights after pruning."),
        ],
        scenarios: [.taskIncremental], usesTaskIdentityAtTest: true, perTaskBatchNorm: true,
        make: { o in try PackNet(pruneRatio: o.double("prune_ratio"), retrainEpochs: o.integer("retrain_epochs")) })]

    /// p: the fraction of each task's weights freed after it (default 0.75).
    public let pruneRatio: Double
    /// Epochs of re-training the kept weights after pruning.
    public let retrainEpochs: Int
    /// Ownership of every parameter entry (nil until the first task starts).
    public private(set) var masks: TaskWeightMasks?
    /// Tasks finished (trained, pruned, re-trained and frozen).
    public private(set) var completedTasks = 0
    private var installed: (ObjectIdentifier, Int)?
    private var evaluationValues: MaskedValues?

    public init(pruneRatio: Double = 0.75, retrainEpochs: Int = 1) throws {
        guard pruneRatio >= 0, pruneRatio < 1 else { throw StrategyError("packnet.prune_ratio must be in [0, 1), got \(pruneRatio)") }
        guard retrainEpochs >= 0 else { throw StrategyError("packnet.retrain_epochs must be ≥ 0, got \(retrainEpochs)") }
        self.pruneRatio = pruneRatio
        self.retrainEpochs = retrainEpochs
    }

    public var name: String { "packnet" }

    private func ensureMasks(_ context: TrainingContext) {
        if masks == nil { masks = TaskWeightMasks(context.model.namedParameters()) }
    }

    private func setBatchNormEvaluation(_ context: TrainingContext) {
        guard context.task > 0 else { return }
        for norm in context.model.sharedBatchNorms() { norm.isTraining = false }
    }

    public func beforeTask(_ task: Int, context: TrainingContext) throws {
        ensureMasks(context)
        for (name, p) in context.model.namedParameters() where ParameterRole.of(name, p) == .task(task) {
            masks!.assignAll(name, task: task)
        }
        installed = nil
        setBatchNormEvaluation(context)
    }

    public func afterBackward(context: TrainingContext) {
        ensureMasks(context)
        let optimizer = context.optimizer, key = (ObjectIdentifier(optimizer), context.task)
        if installed.map({ $0 != key }) ?? true {
            optimizer.updateMasks = masks!.updateMasks(task: context.task)
            installed = key
        }
        masks!.gateGradients(context.model.namedParameters(), task: context.task)
    }

    public func afterTask(_ task: Int, context: TrainingContext) throws {
        ensureMasks(context)
        let parameters = context.model.namedParameters()
        for (name, p) in parameters {
            switch ParameterRole.of(name, p) {
            case .shared where task == 0: masks!.claimFree(name, task: 0)
            case .partitioned:
                masks!.claimFree(name, task: task)
                masks!.pruneByMagnitude(name, parameter: p, task: task, keepFraction: 1 - pruneRatio)
            default: break
            }
        }
        try retrain(task, context: context)
        completedTasks = task + 1
        installed = nil
    }

    /// Re-trains only the weights `task` kept (its owned entries) on its data.
    private func retrain(_ task: Int, context: TrainingContext) throws {
        guard retrainEpochs > 0 else { return }
        let model = context.model, optimizer = context.optimizer, config = context.configuration
        let parameters = model.namedParameters()
        try optimizer.loadState([:])
        let owned = Dictionary(uniqueKeysWithValues: masks!.names.map { ($0, masks!.ownedMask($0, task: task)) })
        optimizer.updateMasks = owned
        installed = nil
        model.train()
        setBatchNormEvaluation(context)
        for e in 0..<retrainEpochs {
            for batch in context.stream.trainingBatches(task: task, epoch: config.epochs + e, batchSize: config.batchSize) {
                model.setActiveTask(batch.taskID ?? task)
                let loss = Losses.crossEntropy(model(batch.inputs), targets: batch.labels)
                try TrainingStep.take(loss, optimizer: optimizer, gate: owned, parameters: parameters) { value in
                    "the loss became \(value) while re-training task \(task + 1) after pruning"
                }
            }
        }
        model.setActiveTask(task)
        try optimizer.loadState([:])
    }

    /// Task-aware inference: a finished task is evaluated with W ⊙ M_task; later tasks with the model as it is.
    public func beforeEvaluation(task: Int, context: TrainingContext) {
        guard let masks, task < completedTasks else { return }
        evaluationValues = masks.applyUsableMask(context.model.namedParameters(), task: task)
    }

    public func afterEvaluation(task: Int, context: TrainingContext) {
        evaluationValues?.restore()
        evaluationValues = nil
    }

    public var memoryBytes: Int { masks?.memoryBytes ?? 0 }

    /// The owner of every parameter entry (`owner.<parameter>`) and the number of finished tasks.
    public func saveState() throws -> StrategyState {
        guard let masks else { return StrategyState() }
        var state = StrategyState(tensors: masks.stateTensors())
        try state.record(completedTasks, as: "completed_tasks")
        return state
    }

    /// The masks of every parameter of the model, and — for a task after the first — shared BatchNorm in evaluation
    /// mode, as `beforeTask` left them.
    public func loadState(_ state: StrategyState, context: TrainingContext) throws {
        guard !state.isEmpty else { masks = nil; completedTasks = 0; return }
        masks = try TaskWeightMasks.restored(from: state, model: context.model)
        completedTasks = try state.count("completed_tasks")
        installed = nil
        setBatchNormEvaluation(context)
    }
}
