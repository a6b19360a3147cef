import EngramNN
import Foundation

/// How MIND picks the sub-network (task) for an input when the task is not given.
public enum MINDTaskRule: String, Sendable, CaseIterable {
    /// Of the two sub-networks with the highest maximum probability, the one whose output has the lower entropy (the paper's rule).
    case topTwoLowestEntropy
    /// The sub-network with the highest maximum probability.
    case mostConfident
}

/// MIND (Bonato et al., AAAI 2024): one sparse sub-network per task, each trained by distilling a
/// task-specific teacher, inside one shared network.
///
/// For task t, of T tasks:
/// 1. Teacher: a fresh, seeded copy of the model (same architecture) is trained on task t's data with
///    cross-entropy on head t only (its own optimizer, the run's, for `teacherEpochs` epochs); its values
///    are kept frozen for the task.
/// 2. Sub-network: of every Linear weight matrix outside the heads, task t claims at random a share
///    1/(T − t) of the still-free entries. Task t computes with W ⊙ M_t, M_t = [owner ≤ t] (the weights of
///    earlier tasks are used frozen: weight sharing); only task t's own entries (and its head) train.
/// 3. Student: L = CE(head t) + β · JS(softmax(z_s/τ) ‖ softmax(z_t/τ)), z_t the teacher's logits on the
///    same batch.
/// 4. Inference: task-aware with W ⊙ M_j and head j. Task-agnostic (`predictTaskAgnostic`): every
///    sub-network j gives p_j = softmax(z_j/τ) over its own head; of the two with the highest max p_j the
///    one with the lower entropy H(p_j) wins (or simply the highest max p_j).
///
/// Defaults from the authors' code: β (`distill_beta`) = 5, τ (`temperature`) = 6.5; the JS term is not
/// rescaled by τ². Choices: biases are shared, trained on task 0 and frozen after it (as PackNet here);
/// free entries keep their initial values but are zeroed while a task trains, then put back. Made for
/// MLPs (BatchNorm statistics are not per task). Memory: the masks, one byte per parameter entry.
public final class MIND: Strategy {
    /// β, the weight of the JS distillation term.
    public let distillBeta: Float
    /// τ, the temperature of the distillation and of task-agnostic inference.
    public let temperature: Float
    /// Epochs of teacher training (nil: the run's epochs).
    public let teacherEpochs: Int?
    /// Ownership of every parameter entry (nil until the first task starts).
    public private(set) var masks: TaskWeightMasks?
    /// Tasks finished.
    public private(set) var completedTasks = 0
    /// The current task's teacher (empty outside a task).
    public private(set) var teacher = FrozenModel()
    /// Values of the entries not usable by the current task, put back after it.
    private var hidden: ParameterMap = [:]
    private var pendingState: [String: Tensor]?
    private var installed: (ObjectIdentifier, Int)?
    private var evaluationValues: MaskedValues?
    private weak var model: Classifier?

    public init(distillBeta: Float = 5, temperature: Float = 6.5, teacherEpochs: Int? = nil) throws {
        guard distillBeta >= 0, distillBeta.isFinite else { throw StrategyError("--distill-beta must be ≥ 0, got \(distillBeta)") }
        guard temperature > 0, temperature.isFinite else { throw StrategyError("--temperature must be positive, got \(temperature)") }
        if let teacherEpochs, teacherEpochs < 1 { throw StrategyError("--teacher-epochs must be ≥ 1, got \(teacherEpochs)") }
        self.distillBeta = distillBeta
        self.temperature = temperature
        self.teacherEpochs = teacherEpochs
    }

    public var name: String { "mind" }

    /// Whether a parameter is split into per-task sub-networks: Linear/Conv weights outside the heads.
    public static func isGated(_ name: String, _ tensor: Tensor) -> Bool {
        !name.hasPrefix("head.") && tensor.rank >= 2
    }

    static func headTask(_ name: String) -> Int? {
        guard name.hasPrefix("head.heads.") else { return nil }
        return name.dropFirst("head.heads.".count).split(separator: ".").first.flatMap { Int($0) }
    }

    private func ensureMasks(_ context: TrainingContext) {
        model = context.model
        if masks == nil { masks = TaskWeightMasks(context.model.namedParameters()) }
        if let state = pendingState {
            pendingState = nil
            try? masks!.loadState(state)
            if let c = state["completed_tasks"] { completedTasks = Int(c.item) }
            teacher = FrozenModel(state: .from(state, prefix: "teacher"))
            hidden = .from(state, prefix: "hidden")
        }
    }

    // MARK: Training

    public func beforeTask(_ task: Int, context: TrainingContext) throws {
        ensureMasks(context)
        try trainTeacher(task, context: context)
        let parameters = context.model.namedParameters()
        var rng = context.generator("mind subnetwork \(task)")
        let remaining = max(1, context.stream.taskCount - task)
        for (name, p) in parameters {
            if Self.isGated(name, p) {
                masks!.claimRandomFree(name, task: task, fraction: 1 / Double(remaining), using: &rng)
            } else if let h = Self.headTask(name) {
                if h == task { masks!.assignAll(name, task: task) }
            } else if task == 0 {
                masks!.claimFree(name, task: 0)
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
    }

    /// Trains a freshly initialized copy of the model on `task` (cross-entropy only) and keeps its values
    /// as the teacher; the live model's values are put back.
    private func trainTeacher(_ task: Int, context: TrainingContext) throws {
        let model = context.model, config = context.configuration
        let live = model.stateDictionary().map { $0.1.scalars }
        let wasTraining = model.isTraining
        defer {
            for ((_, t), v) in zip(model.stateDictionary(), live) { t.scalars = v }
            for (_, p) in model.namedParameters() { p.grad = nil }
            if wasTraining { model.train() }
            model.setActiveTask(task)
        }
        var rng = context.generator("mind teacher \(task)")
        for (_, m) in model.namedModules() {
            guard let linear = m as? Linear else { continue }
            let fresh = Linear(linear.inFeatures, linear.outFeatures, bias: linear.bias != nil, using: &rng)
            linear.weight.scalars = fresh.weight.scalars
            if let b = linear.bias, let fb = fresh.bias { b.scalars = fb.scalars }
        }
        let optimizer = config.makeOptimizer(model.namedParameters())
        model.train()
        for e in 0..<(teacherEpochs ?? config.epochs) {
            for batch in context.stream.trainingBatches(task: task, epoch: e, batchSize: config.batchSize) {
                model.setActiveTask(batch.taskID ?? task)
                let loss = Losses.crossEntropy(model(batch.inputs), targets: batch.labels)
                guard loss.item.isFinite else {
                    throw TrainingError(description: "the teacher's loss became \(loss.item) on task \(task)")
                }
                optimizer.zeroGrad()
                loss.backward()
                optimizer.step()
            }
        }
        teacher = FrozenModel(copying: model)
    }

    /// The distillation term JS(softmax(student/τ), softmax(teacher/τ)), averaged over the batch (zero when equal).
    public static func distillationLoss(student: Tensor, teacher: Tensor, temperature: Float) -> Tensor {
        Losses.jensenShannon(student, teacher, temperature: temperature)
    }

    public func loss(taskLoss: Tensor, output: Tensor, batch: Batch, context: TrainingContext) -> Tensor {
        guard distillBeta > 0, !teacher.isEmpty else { return taskLoss }
        let model = context.model
        let target = teacher.evaluate(model) { model(batch.inputs) }
        return taskLoss + Self.distillationLoss(student: output, teacher: target, temperature: temperature) * distillBeta
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

    /// Task-agnostic prediction with the model MIND last trained.
    public func predictTaskAgnostic(inputs: Tensor, rule: MINDTaskRule = .topTwoLowestEntropy) -> (labels: [Int], tasks: [Int]) {
        guard let model else { preconditionFailure("MIND has not trained a model yet") }
        return predictTaskAgnostic(inputs: inputs, model: model, rule: rule)
    }

    /// Task-agnostic prediction: every finished sub-network j computes p_j = softmax(z_j/τ) over head j;
    /// the task is chosen by `rule`, the label is the arg-max of that task's output.
    public func predictTaskAgnostic(inputs: Tensor, model: Classifier,
                                    rule: MINDTaskRule = .topTwoLowestEntropy) -> (labels: [Int], tasks: [Int]) {
        guard let masks, completedTasks > 0 else { preconditionFailure("MIND has no finished task") }
        let n = inputs.shape[0]
        let wasTraining = model.isTraining, active = model.activeTask
        model.eval()
        defer { if wasTraining { model.train() }; model.setActiveTask(active) }
        // Per task: (max probability, entropy, arg-max) of every sample.
        var scores: [[(Float, Float, Int)]] = []
        GradMode.withoutGrad {
            for j in 0..<completedTasks {
                let out = masks.withUsableMask(model.namedParameters(), task: j) { () -> Tensor in
                    model.setActiveTask(j)
                    return model(inputs)
                }
                let c = out.shape[1], v = out.scalars
                scores.append((0..<n).map { r in Self.confidence(Array(v[(r * c)..<((r + 1) * c)]), temperature: temperature) })
            }
        }
        var labels: [Int] = [], tasks: [Int] = []
        for r in 0..<n {
            let ranked = (0..<completedTasks).sorted { a, b in
                let (x, y) = (scores[a][r].0, scores[b][r].0)
                return x != y ? x > y : a < b
            }
            var chosen = ranked[0]
            if rule == .topTwoLowestEntropy, ranked.count > 1, scores[ranked[1]][r].1 < scores[ranked[0]][r].1 { chosen = ranked[1] }
            tasks.append(chosen)
            labels.append(scores[chosen][r].2)
        }
        return (labels, tasks)
    }

    /// (max p, entropy of p, arg-max) of p = softmax(logits/τ).
    static func confidence(_ logits: [Float], temperature: Float) -> (Float, Float, Int) {
        let z = logits.map { $0 / temperature }
        let m = z.max() ?? 0
        let e = z.map { exp($0 - m) }
        let s = e.reduce(0, +)
        let p = e.map { $0 / s }
        var best = 0
        for i in p.indices where p[i] > p[best] { best = i }
        let entropy = -p.reduce(Float(0)) { $0 + ($1 > 0 ? $1 * log($1) : 0) }
        return (p[best], entropy, best)
    }

    /// Task-agnostic accuracy (right task and right label) and task-prediction accuracy over the test
    /// sets of the finished tasks of `trainer`'s stream.
    public func taskAgnosticAccuracy(_ trainer: Trainer, rule: MINDTaskRule = .topTwoLowestEntropy) -> (accuracy: Float, taskAccuracy: Float) {
        let context = trainer.context
        var correct = 0, taskCorrect = 0, total = 0
        for j in 0..<completedTasks {
            for batch in context.stream.testBatches(task: j, batchSize: context.configuration.evaluationBatchSize) {
                let (labels, tasks) = predictTaskAgnostic(inputs: batch.inputs, model: context.model, rule: rule)
                for (r, y) in batch.labels.enumerated() {
                    if tasks[r] == j { taskCorrect += 1; if labels[r] == y { correct += 1 } }
                }
                total += batch.labels.count
            }
        }
        guard total > 0 else { return (0, 0) }
        return (Float(correct) / Float(total), Float(taskCorrect) / Float(total))
    }

    // MARK: State

    /// The masks: one byte per parameter entry.
    public var memoryBytes: Int { masks?.memoryBytes ?? 0 }

    public func stateTensors() -> [(String, Tensor)] {
        guard let masks else { return [] }
        return masks.stateTensors() + [("completed_tasks", Tensor(Float(completedTasks)))]
            + teacher.state.tensors(prefix: "teacher") + hidden.tensors(prefix: "hidden")
    }

    public func loadState(_ state: [String: Tensor]) throws {
        guard !state.isEmpty else { return }
        pendingState = state
        if masks != nil { installed = nil }
    }
}
