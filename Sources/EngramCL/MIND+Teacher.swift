import EngramTensor
import EngramData
import EngramNN
import Foundation

/// MIND's teacher: each task is first learned by a freshly initialised copy of the network, which the
/// sub-network then distils.
extension MIND {
    /// Trains the task's teacher in place of the live model (cross-entropy only, its own AdamW), keeps it
    /// as `teacher`, puts the live values back and returns the teacher's parameter values.
    func trainTeacher(_ task: Int, context: TrainingContext) throws -> ParameterMap {
        let model = context.model, config = context.configuration
        let live = model.stateDictionary().map { $0.1.scalars }
        defer {
            for ((_, t), v) in zip(model.stateDictionary(), live) { t.scalars = v }
            for (_, p) in model.namedParameters() { p.grad = nil }
            model.train()
            model.setActiveTask(task)
        }
        let parameters = model.namedParameters()
        var trainable: [String: [Float]] = [:]
        switch variant {
        case .freshTeacher:
            var rng = context.generator("mind teacher \(task)")
            let fresh: any Module = context.makeFreshModel.map { $0(&rng) } ?? Self.reinitialized(model, using: &rng)
            let values = Dictionary(fresh.stateDictionary().map { ($0.0, $0.1.scalars) }, uniquingKeysWith: { a, _ in a })
            for (name, t) in model.stateDictionary() { if let v = values[name], v.count == t.count { t.scalars = v } }
        case .selfDistillation:
            // Earlier tasks' entries (and the shared ones after task 0) stay as they are; the rest trains.
            for name in masks!.names { trainable[name] = masks!.trainableMask(name, task: task) }
        }
        let optimizer = Adam.adamW(parameters, learningRate: teacherLearningRate, weightDecay: teacherWeightDecay)
        if !trainable.isEmpty { optimizer.updateMasks = trainable }
        let epochs = teacherEpochs ?? config.epochs
        let schedule = MultiStepSchedule(milestones: milestones(epochs: epochs), gamma: 0.5)
        model.train()
        model.setActiveTask(task)
        // A fresh teacher normalizes with its own batch statistics; a copy of MIND keeps shared BatchNorm frozen.
        if variant == .selfDistillation { freezeSharedBatchNorm(context) }
        for e in 0..<epochs {
            optimizer.learningRate = schedule.learningRate(epoch: e, base: teacherLearningRate)
            for batch in context.stream.trainingBatches(task: task, epoch: e, batchSize: config.batchSize) {
                model.setActiveTask(batch.taskID ?? task)
                let output = model(batch.inputs)
                let loss = taskCrossEntropy(output, batch, task: task) ?? Losses.crossEntropy(output, targets: batch.labels)
                try TrainingStep.take(loss, optimizer: optimizer, gate: trainable.isEmpty ? nil : trainable, parameters: parameters) { value in
                    "the teacher's loss became \(value) on task \(task + 1), epoch \(e + 1); lower mind.teacher_lr"
                }
            }
        }
        // The fresh teacher trains every BatchNorm it uses; the copy of MIND its task's own (and the shared ones on task 0).
        try recalibrateBatchNorm(task, context: context, includeShared: variant == .freshTeacher || task == 0)
        teacher = FrozenModel(copying: model)
        return .values(of: parameters)
    }

    /// Precise BatchNorm: the exact average of the batch statistics of task `task`'s BatchNorm layers (its
    /// per-task ones, and the shared ones if `includeShared`) over one pass of its training data, with the
    /// model as it is (in training, W ⊙ M_t).
    func recalibrateBatchNorm(_ task: Int, context: TrainingContext, includeShared: Bool) throws {
        guard preciseBatchNorm else { return }
        let model = context.model, config = context.configuration
        let norms = model.taskBatchNorms(task: task) + (includeShared ? model.sharedBatchNorms() : [])
        let wasTraining = model.isTraining
        model.train()
        defer { if !wasTraining { model.eval() } }
        try BatchNorm.recalibrate(norms, in: model) {
            // A batch order of its own (the epoch after the last), so training's shuffles are untouched.
            for batch in context.stream.trainingBatches(task: task, epoch: config.epochs + 1_000, batchSize: config.batchSize)
            where batch.labels.count > 1 {
                model.setActiveTask(batch.taskID ?? task)
                let output = model(batch.inputs)
                guard output.scalars.allSatisfy(\.isFinite) else {
                    throw TrainingError(description: "MIND's BatchNorm re-estimation met a non-finite output on task \(task + 1)")
                }
            }
        }
        model.setActiveTask(task)
    }

    /// In a class-incremental (shared) head, the rows of the head's weight (and entries of its bias) that task
    /// `task` owns wholly: those of its own classes, keyed by the parameter's name (empty for multi-head and
    /// domain-incremental heads).
    func classIncrementalHeadRows(_ task: Int, parameters: [(String, Tensor)]) -> [String: Range<Int>] {
        var rows: [String: Range<Int>] = [:]
        for (name, p) in parameters where name.hasPrefix("head.") {
            if case .task = ParameterRole.of(name, p) { continue }
            if let r = ownColumns(task, outputs: p.shape[0]) { rows[name] = r }
        }
        return rows
    }

    /// A copy of `model`'s structure with every Linear/Conv layer drawn afresh (PyTorch's default
    /// initialization) and BatchNorm reset (γ = 1, β = 0, statistics 0 and 1): the teacher when no
    /// model factory is given.
    static func reinitialized(_ model: Classifier, using rng: inout RandomGenerator) -> any Module {
        for (_, m) in model.namedModules() {
            if let linear = m as? Linear {
                let fresh = Linear(linear.inFeatures, linear.outFeatures, bias: linear.bias != nil, using: &rng)
                linear.weight.scalars = fresh.weight.scalars
                if let b = linear.bias, let fb = fresh.bias { b.scalars = fb.scalars }
            } else if let conv = m as? Conv2d {
                let s = conv.weight.shape
                let fresh = Conv2d(s[1], s[0], kernelSize: s[2], stride: conv.stride, padding: conv.padding,
                                   bias: conv.bias != nil, using: &rng)
                conv.weight.scalars = fresh.weight.scalars
                if let b = conv.bias, let fb = fresh.bias { b.scalars = fb.scalars }
            } else if let norm = m as? BatchNorm {
                norm.gamma?.scalars = [Float](repeating: 1, count: norm.channels)
                norm.beta?.scalars = [Float](repeating: 0, count: norm.channels)
                norm.runningMean.scalars = [Float](repeating: 0, count: norm.channels)
                norm.runningVariance.scalars = [Float](repeating: 1, count: norm.channels)
                norm.batchesTracked.scalars = [0]
            }
        }
        return model
    }
}
