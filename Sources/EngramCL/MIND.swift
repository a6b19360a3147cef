import EngramTensor
import EngramData
import EngramNN
import Foundation

/// How MIND picks the sub-network (task) for an input when the task is not given.
public enum MINDTaskRule: String, Sendable, CaseIterable {
    /// Of the two sub-networks with the highest maximum probability, the one whose output has the lower entropy (the paper's rule).
    case topTwoLowestEntropy = "top-two-lowest-entropy"
    /// The sub-network with the highest maximum probability.
    case mostConfident = "most-confident"
}

/// The divergence MIND distils the teacher's outputs with.
public enum MINDDistillation: String, Sendable, Codable, CaseIterable {
    /// ½(KL(p‖q) + KL(q‖p)), the authors' code (called "JS" there; the default).
    case symmetricKL = "symmetric-kl"
    /// The Jensen–Shannon divergence ½KL(p‖m) + ½KL(q‖m), m = ½(p + q), as the paper writes; ≈ ¼ of the
    /// symmetrised KL near agreement, so the same β distils about four times more weakly.
    case jensenShannon = "js"
}

/// How MIND builds each task's teacher and picks the task's sub-network.
public enum MINDVariant: String, Sendable {
    /// A freshly initialised model is the teacher; the sub-network is a random share of the free weights.
    case freshTeacher = "mind"
    /// The teacher starts as a copy of MIND itself (earlier tasks' weights used frozen, only free weights
    /// trained); the sub-network is the share of free weights largest in the teacher (magnitude).
    case selfDistillation = "mind-self"
}

/// MIND (Bonato et al., AAAI 2024): one sparse sub-network per task, each trained by distilling a
/// task-specific teacher, inside one shared network.
///
/// For task t, of T tasks:
/// 1. Teacher, trained on task t with cross-entropy only, with its own optimizer: AdamW(`teacherLearningRate`,
///    `teacherWeightDecay`), learning rate halved (γ = 0.5) at `teacherMilestones` (the reference code's
///    `lr`, `wd`, `scheduler`: 0.005, 0, 35 of 50 epochs). `mind`: a freshly initialised model.
///    `mind-self`: a copy of MIND itself, whose free weights (and task t's head/BatchNorm) train while the
///    weights of tasks < t stay frozen.
/// 2. Sub-network: of every partitioned parameter (Linear/Conv weights outside the heads) task t claims a
///    share 1/(T − t) of the still-free entries (≈ 1/T of the layer, as the reference's `numel // T`):
///    at random (`mind`) or those largest in the teacher, which also start from the teacher's values
///    (`mind-self`). Task t computes with W ⊙ M_t, M_t = [owner ≤ t] (weight sharing: earlier tasks'
///    weights are used frozen); only task t's own entries, its head and its BatchNorm train (gating).
/// 3. Student: L = CE(head t) + β · D(softmax(z_s), softmax(z_T)), z_T the frozen teacher's logits on the
///    batch, D = ½(KL(p_s‖p_T) + KL(p_T‖p_s)) as the authors' code (`distillation` = `.jensenShannon` for the
///    paper's JS), with the run's optimizer (the reference: AdamW 0.035, halved at 40 of 50 epochs).
/// 4. BatchNorm: with per-task BatchNorm (`TaskBatchNorm`, on by default for MIND models) each task keeps its
///    own γ, β and running statistics, chosen by the task id (the reference's save/load_bn_params); shared
///    BatchNorm layers are trained on task 0 and frozen (evaluation mode) after it.
/// 5. Inference: task-aware with W ⊙ M_j, head j and BatchNorm j (in a class-incremental head, arg-max
///    over task j's classes). Task-agnostic (`predictTaskAgnostic`):
///    every sub-network j gives p_j = softmax(z_j/τ) over its own head (over its own classes in a
///    class-incremental head, where its cross-entropy and distillation also see only them); of the two with the highest max p_j
///    the one with the lower entropy H(p_j) wins (`top-two-lowest-entropy`), or the highest max p_j
///    (`most-confident`).
///
/// 6. Precise BatchNorm (`preciseBatchNorm`, on by default; not in the reference): after the teacher and after
///    the sub-network train, the task's BatchNorm statistics are replaced by their exact average over one pass
///    of the task's training data with the final weights. The moving average (momentum 0.1) lags weights that
///    AdamW moves fast: measured, a `mind-self` teacher on Split Fashion-MNIST (ResNet-20, seed 1, task 3) had
///    training loss 0.002 but evaluation-mode loss 1.4–2.0, and its sub-network stayed at chance; re-estimated,
///    0.001–0.018.
///
/// Defaults from the authors' code: β (`distill_beta`) = 5, τ (`temperature`) = 6.5 (inference only: the
/// reference distils at temperature 1). In a class-incremental head task t owns the whole rows (and bias
/// entries) of its own classes, as the reference's last layer. Deviations: biases are shared, trained
/// on task 0 and frozen after it (the reference's networks have none outside the heads). Free entries keep
/// their initial values (zeroed while a task trains, then put back) where the reference zeroes them for
/// good. Memory: the masks, one byte per parameter entry.
public final class MIND: RegisteredStrategy, TaskAgnosticPredictor, TaskAwareClassRestriction {
    public static let descriptors = [
        descriptor(.freshTeacher, summary: "MIND: a sub-network per task, distilled from a teacher trained from scratch on the task"),
        descriptor(.selfDistillation, summary: "MIND, self-distillation: the teacher starts from the current network"),
    ]

    static func descriptor(_ variant: MINDVariant, summary: String) -> StrategyDescriptor {
        StrategyDescriptor(
            name: variant.rawValue, summary: summary, paper: "Bonato, Pelosin, Sabetta & Nicolosi, AAAI 2024",
            hyperparameters: [
                .real("distill_beta", symbol: "β", default: 5, range: .nonNegative, help: "β, the weight of the distillation from the task's teacher."),
                .choice("distill_loss", MINDDistillation.self, default: .symmetricKL,
                        help: "The distillation divergence: symmetric-kl (½(KL(p‖q) + KL(q‖p)), the authors' code) or js (Jensen–Shannon, the paper's)."),
                .real("temperature", symbol: "τ", default: 6.5, range: .positive, help: "τ, the softmax temperature of task-agnostic inference."),
                .integer("teacher_epochs", default: nil, defaultDescription: "the run's epochs", range: .atLeastOne,
                         help: "Epochs of teacher training per task."),
                .real("teacher_lr", default: 0.005, range: .positive, help: "The teacher's AdamW learning rate."),
                .real("teacher_weight_decay", default: 0, range: .nonNegative, help: "The teacher's AdamW weight decay."),
                .integerList("teacher_milestones", range: .atLeastOne, defaultDescription: "70 % of the teacher epochs",
                             help: "Teacher epochs at which its learning rate is halved, e.g. 35."),
                .boolean("precise_batchnorm", default: true,
                         help: "Re-estimate each task's BatchNorm statistics exactly after its teacher and its sub-network train."),
            ],
            usesTaskIdentityAtTest: true, hasTaskAgnosticInference: true, replacesCriterion: true, perTaskBatchNorm: true,
            make: { o in
                try MIND(variant: variant, distillBeta: o.float("distill_beta"), distillation: o.choice("distill_loss"),
                         temperature: o.float("temperature"), teacherEpochs: o.optionalInteger("teacher_epochs"),
                         teacherLearningRate: o.float("teacher_lr"), teacherWeightDecay: o.float("teacher_weight_decay"),
                         teacherMilestones: o.integerList("teacher_milestones"), preciseBatchNorm: o.bool("precise_batchnorm"))
            })
    }

    public let variant: MINDVariant
    /// β, the weight of the distillation term.
    public let distillBeta: Float
    /// The distillation divergence (the reference's symmetrised KL by default).
    public let distillation: MINDDistillation
    /// τ, the temperature of task-agnostic inference.
    public let temperature: Float
    /// Epochs of teacher training (nil: the run's epochs).
    public let teacherEpochs: Int?
    /// The teacher's AdamW learning rate.
    public let teacherLearningRate: Float
    /// The teacher's AdamW weight decay.
    public let teacherWeightDecay: Float
    /// Teacher epochs at which its learning rate is halved (nil: round(0.7 · epochs), the reference's 35 of 50).
    public let teacherMilestones: [Int]?
    /// Whether the task's BatchNorm statistics are re-estimated exactly after the teacher and the sub-network train.
    public let preciseBatchNorm: Bool
    /// Ownership of every parameter entry (nil until the first task starts).
    public private(set) var masks: TaskWeightMasks?
    /// Tasks finished.
    public private(set) var completedTasks = 0
    /// The current task's teacher (empty outside a task).
    public internal(set) var teacher = FrozenModel()
    /// Values of the entries not usable by the current task, put back after it.
    private var hidden: ParameterMap = [:]
    private var installed: (ObjectIdentifier, Int)?
    private var evaluationValues: MaskedValues?
    weak var model: Classifier?
    /// Each task's output units (its classes in a class-incremental head; all units otherwise).
    private var taskClasses: [[Int]] = []

    public init(variant: MINDVariant = .freshTeacher, distillBeta: Float = 5, distillation: MINDDistillation = .symmetricKL,
                temperature: Float = 6.5,
                teacherEpochs: Int? = nil, teacherLearningRate: Float = 0.005, teacherWeightDecay: Float = 0,
                teacherMilestones: [Int]? = nil, preciseBatchNorm: Bool = true) throws {
        guard distillBeta >= 0, distillBeta.isFinite else { throw StrategyError("mind.distill_beta must be ≥ 0, got \(distillBeta)") }
        guard temperature > 0, temperature.isFinite else { throw StrategyError("mind.temperature must be positive, got \(temperature)") }
        if let teacherEpochs, teacherEpochs < 1 { throw StrategyError("mind.teacher_epochs must be ≥ 1, got \(teacherEpochs)") }
        guard teacherLearningRate > 0, teacherLearningRate.isFinite else {
            throw StrategyError(key: "mind.teacher_lr", "must be positive, got \(teacherLearningRate)")
        }
        guard teacherWeightDecay >= 0, teacherWeightDecay.isFinite else {
            throw StrategyError("mind.teacher_weight_decay must be ≥ 0, got \(teacherWeightDecay)")
        }
        if let m = teacherMilestones, let bad = m.first(where: { $0 < 1 }) {
            throw StrategyError("mind.teacher_milestones must be epochs ≥ 1, got \(bad)")
        }
        self.variant = variant
        self.distillBeta = distillBeta
        self.distillation = distillation
        self.temperature = temperature
        self.teacherEpochs = teacherEpochs
        self.teacherLearningRate = teacherLearningRate
        self.teacherWeightDecay = teacherWeightDecay
        self.teacherMilestones = teacherMilestones
        self.preciseBatchNorm = preciseBatchNorm
    }

    public var name: String { variant.rawValue }

    /// Whether a parameter is split into per-task sub-networks: Linear/Conv weights outside the heads.
    public static func isGated(_ name: String, _ tensor: Tensor) -> Bool {
        ParameterRole.of(name, tensor) == .partitioned
    }

    private func ensureMasks(_ context: TrainingContext) {
        model = context.model
        if taskClasses.isEmpty { taskClasses = (0..<context.stream.taskCount).map { context.stream.outputClasses(task: $0) } }
        if masks == nil { masks = TaskWeightMasks(context.model.namedParameters()) }
    }

    /// Shared BatchNorm layers keep task 0's statistics after task 0 (evaluation mode).
    func freezeSharedBatchNorm(_ context: TrainingContext) {
        guard context.task > 0 else { return }
        for norm in context.model.sharedBatchNorms() { norm.isTraining = false }
    }

    // MARK: Training

    public func beforeTask(_ task: Int, context: TrainingContext) throws {
        ensureMasks(context)
        let parameters = context.model.namedParameters()
        let headRows = classIncrementalHeadRows(task, parameters: parameters)
        for (name, p) in parameters {
            switch ParameterRole.of(name, p) {
            case .task(let t) where t == task: masks!.assignAll(name, task: task)
            case .shared where headRows[name] != nil:
                for i in headRows[name]! { masks!.setOwner(name, i, task) }   // the bias of the task's own classes
            case .shared where task == 0: masks!.claimFree(name, task: 0)
            default: break
            }
        }
        let teacherValues = try trainTeacher(task, context: context)
        let share = 1 / Double(max(1, context.stream.taskCount - task))
        var rng = context.generator("mind subnetwork \(task)")
        for (name, p) in parameters where Self.isGated(name, p) {
            if let rows = headRows[name] {
                // A class-incremental head: task t owns the whole rows of its own classes (the reference's
                // last-layer assignment), so no other task takes any of them and t takes nothing else.
                let width = p.count / p.shape[0]
                for row in rows { for i in (row * width)..<((row + 1) * width) { masks!.setOwner(name, i, task) } }
                if variant == .selfDistillation, let values = teacherValues[name] {
                    p.scalars.withUnsafeMutableBufferPointer { b in for row in rows { for i in (row * width)..<((row + 1) * width) { b[i] = values[i] } } }
                }
                continue
            }
            switch variant {
            case .freshTeacher:
                masks!.claimRandomFree(name, task: task, fraction: share, using: &rng)
            case .selfDistillation:
                guard let values = teacherValues[name] else { continue }
                let chosen = masks!.claimLargestFree(name, values: values, task: task, fraction: share)
                p.scalars.withUnsafeMutableBufferPointer { b in for i in chosen { b[i] = values[i] } }
            }
        }
        // Train with W ⊙ M_t: hide (zero) every entry task t may not use, keeping its value.
        hidden = [:]
        for (name, p) in parameters {
            let mask = masks!.usableMask(name, task: task)
            guard mask.contains(0) else { continue }
            hidden[name] = p.scalars
            p.scalars.withUnsafeMutableBufferPointer { b in for i in b.indices where mask[i] == 0 { b[i] = 0 } }
        }
        installed = nil
        freezeSharedBatchNorm(context)
    }

    /// The teacher's learning-rate milestones for `epochs` epochs.
    public func milestones(epochs: Int) -> [Int] {
        teacherMilestones ?? (epochs >= 2 ? [Int((0.7 * Double(epochs)).rounded())] : [])
    }


    /// The columns of `task`'s own classes when they are a part of the outputs (a class-incremental head):
    /// there each sub-network is trained and queried over its own classes only, as the reference's output mask.
    func ownColumns(_ task: Int, outputs: Int) -> Range<Int>? {
        guard task < taskClasses.count, let lo = taskClasses[task].first, let hi = taskClasses[task].last,
              hi - lo + 1 < outputs else { return nil }
        return lo..<(hi + 1)
    }

    /// Task-aware evaluation of a finished task in a class-incremental head: arg-max over its own classes.
    public func evaluationClasses(task: Int, outputs: Int) -> [Int]? {
        guard task < completedTasks else { return nil }
        return ownColumns(task, outputs: outputs).map(Array.init)
    }

    /// Cross-entropy over the task's own classes (all outputs unless the head is class-incremental).
    func taskCrossEntropy(_ output: Tensor, _ batch: Batch, task: Int) -> Tensor? {
        guard let r = ownColumns(task, outputs: output.shape[1]) else { return nil }
        return Losses.crossEntropy(output.slice(axis: 1, r), targets: batch.labels.map { $0 - r.lowerBound })
    }

    /// The distillation term D(softmax(student), softmax(teacher)), averaged over the batch (zero when equal).
    public static func distillationLoss(student: Tensor, teacher: Tensor, divergence: MINDDistillation = .symmetricKL) -> Tensor {
        switch divergence {
        case .symmetricKL: Losses.symmetricKL(student, teacher)
        case .jensenShannon: Losses.jensenShannon(student, teacher)
        }
    }

    /// CE over the task's own outputs + β·D(student ‖ teacher): replaces the task loss.
    public func criterion(taskLoss: Tensor, output: Tensor, batch: Batch, context: TrainingContext) -> Tensor? {
        ensureMasks(context)
        let columns = ownColumns(context.task, outputs: output.shape[1])
        let ce = taskCrossEntropy(output, batch, task: context.task) ?? taskLoss
        guard distillBeta > 0, !teacher.isEmpty else { return ce }
        let model = context.model
        let target = teacher.evaluate(model) { model(batch.inputs) }
        freezeSharedBatchNorm(context)
        let (student, reference) = columns.map { (output.slice(axis: 1, $0), target.slice(axis: 1, $0)) } ?? (output, target)
        return ce + Self.distillationLoss(student: student, teacher: reference, divergence: distillation) * distillBeta
    }

    public func afterBackward(context: TrainingContext) {
        ensureMasks(context)
        let optimizer = context.optimizer, task = context.task, key = (ObjectIdentifier(optimizer), task)
        let owned = Dictionary(uniqueKeysWithValues: masks!.names.map { ($0, masks!.ownedMask($0, task: task)) })
        if installed.map({ $0 != key }) ?? true {
            optimizer.updateMasks = owned
            installed = key
        }
        for (name, p) in context.model.namedParameters() {
            guard let g = p.grad, let m = owned[name] else { continue }
            g.scalars.withUnsafeMutableBufferPointer { b in for i in b.indices where m[i] == 0 { b[i] = 0 } }
        }
    }

    public func afterTask(_ task: Int, context: TrainingContext) throws {
        ensureMasks(context)
        try recalibrateBatchNorm(task, context: context, includeShared: task == 0)
        for (name, p) in context.model.namedParameters() {
            guard let saved = hidden[name] else { continue }
            let mask = masks!.usableMask(name, task: task)
            p.scalars.withUnsafeMutableBufferPointer { b in for i in b.indices where mask[i] == 0 { b[i] = saved[i] } }
        }
        hidden = [:]
        teacher = FrozenModel()
        completedTasks = task + 1
        installed = nil
    }

    // MARK: Inference

    /// Task-aware inference: a finished task j is evaluated with W ⊙ M_j (and head j).
    public func beforeEvaluation(task: Int, context: TrainingContext) {
        guard let masks, task < completedTasks else { return }
        evaluationValues = masks.applyUsableMask(context.model.namedParameters(), task: task)
    }

    public func afterEvaluation(task: Int, context: TrainingContext) {
        evaluationValues?.restore()
        evaluationValues = nil
    }


    // MARK: State

    /// The masks: one byte per parameter entry.
    public var memoryBytes: Int { masks?.memoryBytes ?? 0 }

    /// The masks (`owner.<parameter>`), the number of finished tasks, the current task's teacher (`teacher.…`) and
    /// the values of the entries hidden from it (`hidden.<parameter>`).
    public func saveState() throws -> StrategyState {
        guard let masks else { return StrategyState() }
        var state = StrategyState(tensors: masks.stateTensors() + teacher.state.tensors(prefix: "teacher") + hidden.tensors(prefix: "hidden"))
        try state.record(completedTasks, as: "completed_tasks")
        return state
    }

    /// Everything `beforeTask` and the teacher's training set up for the task the run resumes in: masks, teacher,
    /// hidden entries, shared BatchNorm in evaluation mode after the first task.
    public func loadState(_ state: StrategyState, context: TrainingContext) throws {
        model = context.model
        taskClasses = (0..<context.stream.taskCount).map { context.stream.outputClasses(task: $0) }
        guard !state.isEmpty else { masks = nil; completedTasks = 0; return }
        masks = try TaskWeightMasks.restored(from: state, model: context.model)
        completedTasks = try state.count("completed_tasks")
        teacher = FrozenModel(state: .from(state.tensors, prefix: "teacher"))
        hidden = try state.parameterMap("hidden", model: context.model)
        installed = nil
        freezeSharedBatchNorm(context)
    }
}
