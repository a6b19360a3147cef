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
            context.reinitializeModel(label: "mind teacher \(task)")
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
}
