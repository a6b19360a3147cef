import EngramTensor
import EngramData
import EngramNN
import Foundation

/// The optimizers a run can use.
public enum OptimizerKind: String, Sendable, Codable, CaseIterable {
    case sgd, adam, adamw
}

/// The output units a class-incremental task loss covers.
public enum ActiveClasses: String, Sendable, Codable, CaseIterable {
    /// The classes of the tasks seen so far: the head "grows" (van de Ven & Tolias's active classes, Hsu et al.'s
    /// `valid_out_dim`, Avalanche's incremental classifier); units of classes not seen yet get no gradient.
    case seen
    /// Every unit of the head, as Mammoth's class-incremental runs train: the classes still to come are pushed down too.
    case all
}

/// How each task is trained.
public struct TrainingConfiguration: Sendable, Codable, Equatable {
    /// Epochs per task (ignored when `iterations` is set).
    public var epochs = 1
    /// Optimizer steps per task, cycling through epochs of data (papers use either).
    public var iterations: Int? = nil
    public var batchSize = 128
    public var learningRate: Float = 0.01
    public var optimizer: OptimizerKind = .sgd
    public var momentum: Float = 0.9
    public var weightDecay: Float = 0
    /// Fixes every random choice of the run.
    public var seed: UInt64 = 0
    /// Batch size for evaluation.
    public var evaluationBatchSize = 1000
    /// Start every task with a fresh optimizer state (as most reference implementations do).
    public var resetOptimizerPerTask = true
    /// Epochs of each task at which the learning rate is multiplied by `lrGamma` (empty: constant rate).
    public var milestones: [Int] = []
    /// γ of the multi-step schedule: at epoch e of a task the rate is lr·γ^(number of milestones ≤ e).
    public var lrGamma: Float = 0.1
    /// The units the class-incremental task loss covers (`seen`, the default, or `all`).
    public var activeClasses: ActiveClasses = .seen
    /// ρ of sharpness-aware minimization (Foret et al., ICLR 2021) around every step of the trainer: the gradient is
    /// taken at θ + ρ·g/‖g‖ (0: plain steps). See ``TrainingStep/takeSharpnessAware(rho:optimizer:afterBackward:loss:failure:)``.
    public var samRho: Float = 0

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case epochs, iterations, optimizer, momentum, seed
        case batchSize = "batch_size", learningRate = "lr", weightDecay = "weight_decay"
        case evaluationBatchSize = "evaluation_batch_size", resetOptimizerPerTask = "reset_optimizer_per_task"
        case milestones, lrGamma = "lr_gamma", activeClasses = "active_classes", samRho = "sam_rho"
    }

    /// Decodes a configuration in which every key is optional.
    public init(from decoder: any Decoder) throws {
        try rejectUnknownKeys(decoder, known: CodingKeys.allCases.map(\.rawValue))
        let c = try decoder.container(keyedBy: CodingKeys.self)
        var d = TrainingConfiguration()
        d.epochs = try c.decodeIfPresent(Int.self, forKey: .epochs) ?? d.epochs
        d.iterations = try c.decodeIfPresent(Int.self, forKey: .iterations)
        d.batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize) ?? d.batchSize
        d.learningRate = try c.decodeIfPresent(Float.self, forKey: .learningRate) ?? d.learningRate
        d.optimizer = try c.decodeIfPresent(OptimizerKind.self, forKey: .optimizer) ?? d.optimizer
        d.momentum = try c.decodeIfPresent(Float.self, forKey: .momentum) ?? d.momentum
        d.weightDecay = try c.decodeIfPresent(Float.self, forKey: .weightDecay) ?? d.weightDecay
        d.seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? d.seed
        d.evaluationBatchSize = try c.decodeIfPresent(Int.self, forKey: .evaluationBatchSize) ?? d.evaluationBatchSize
        d.resetOptimizerPerTask = try c.decodeIfPresent(Bool.self, forKey: .resetOptimizerPerTask) ?? d.resetOptimizerPerTask
        d.milestones = try c.decodeIfPresent([Int].self, forKey: .milestones) ?? d.milestones
        d.lrGamma = try c.decodeIfPresent(Float.self, forKey: .lrGamma) ?? d.lrGamma
        d.activeClasses = try c.decodeIfPresent(ActiveClasses.self, forKey: .activeClasses) ?? d.activeClasses
        d.samRho = try c.decodeIfPresent(Float.self, forKey: .samRho) ?? d.samRho
        self = d
    }

    /// Checks the values, naming the offending one.
    public func validate() throws {
        guard epochs >= 1 else { throw StrategyError(key: "training.epochs", "must be at least 1, got \(epochs)") }
        if let iterations, iterations < 1 { throw StrategyError(key: "training.iterations", "must be at least 1, got \(iterations)") }
        guard batchSize >= 1 else { throw StrategyError(key: "training.batch_size", "must be at least 1, got \(batchSize)") }
        guard evaluationBatchSize >= 1 else {
            throw StrategyError(key: "training.evaluation_batch_size", "must be at least 1, got \(evaluationBatchSize)")
        }
        guard weightDecay.isFinite, momentum.isFinite, lrGamma.isFinite else {
            throw StrategyError("training.momentum, weight_decay and lr_gamma must be finite, got \(momentum), \(weightDecay), \(lrGamma)")
        }
        guard learningRate > 0, learningRate.isFinite else { throw StrategyError(key: "training.lr", "must be positive, got \(learningRate)") }
        guard momentum >= 0, momentum < 1 else { throw StrategyError(key: "training.momentum", "must be in [0, 1), got \(momentum)") }
        guard weightDecay >= 0 else { throw StrategyError(key: "training.weight_decay", "must be ≥ 0, got \(weightDecay)") }
        if let bad = milestones.first(where: { $0 < 1 }) {
            throw StrategyError(key: "training.milestones", "must be epochs ≥ 1, got \(bad)")
        }
        guard lrGamma > 0, lrGamma <= 1 else { throw StrategyError(key: "training.lr_gamma", "must be in (0, 1], got \(lrGamma)") }
        guard samRho >= 0, samRho.isFinite else { throw StrategyError(key: "training.sam_rho", "must be a finite number ≥ 0, got \(samRho)") }
    }

    /// The learning rate at `epoch` (0-based) of a task: lr·γ^(number of milestones ≤ epoch), PyTorch's
    /// `MultiStepLR` stepped once per epoch.
    public func learningRate(epoch: Int) -> Float {
        MultiStepSchedule(milestones: milestones, gamma: lrGamma).learningRate(epoch: epoch, base: learningRate)
    }

    /// The optimizer this configuration describes, over `parameters`.
    public func makeOptimizer(_ parameters: [(String, Tensor)]) -> any Optimizer {
        switch optimizer {
        case .sgd: SGD(parameters, learningRate: learningRate, momentum: momentum, weightDecay: weightDecay)
        case .adam: Adam(parameters, learningRate: learningRate, weightDecay: weightDecay)
        case .adamw: Adam.adamW(parameters, learningRate: learningRate, weightDecay: weightDecay)
        }
    }
}

/// A problem during training that the user can act on (divergence, bad configuration).
public struct TrainingError: Error, CustomStringConvertible {
    public let description: String
}

/// What the trainer reports while it runs.
public enum TrainingEvent {
    case taskStarted(task: Int, of: Int)
    case batchFinished(task: Int, epoch: Int, batch: Int, batches: Int, loss: Float, samples: Int)
    case epochFinished(task: Int, epoch: Int, meanLoss: Float)
    case taskFinished(task: Int, accuracies: [Float], seconds: Double)
}

/// The outcome of training a stream (so far).
public struct StreamResult: Sendable, Codable, Equatable {
    /// R[i][j]: test accuracy on task j after training task i (all tasks, for forward transfer).
    public var accuracy: [[Float]] = []
    /// Accuracy of the untrained model on each task (the baseline of forward transfer).
    public var initialAccuracy: [Float] = []
    /// Wall-clock seconds spent training each task.
    public var secondsPerTask: [Double] = []
    /// Bytes the strategy held after each task.
    public var strategyMemoryBytes: [Int] = []
    /// Task-agnostic accuracy after each task, one record per inference rule (nil when the method or
    /// model has none: task-aware-only methods, single-head models).
    public var taskAgnostic: [TaskAgnosticRecord]?
    /// Training samples the trainer's loop processed in each task (the labels of its batches; nil in results
    /// restored from a checkpoint written before Engram counted them). A strategy's own passes over the data
    /// (MIND's teacher, PackNet's re-training) are in `secondsPerTask` but not counted here.
    public var samplesPerTask: [Int]?
    /// With a strategy that consolidates after each task (``Strategy/consolidationPhase``: SRC's sleep): row i is
    /// the accuracy on every task after training task i and before its consolidation (`accuracy` holds the row
    /// after it); nil otherwise.
    public var accuracyBeforeConsolidation: [[Float]]?
    /// Wall-clock seconds of each task's consolidation phase (included in `secondsPerTask`).
    public var consolidationSeconds: [Double]?
    /// The consolidation phase's name (``Strategy/consolidationPhase``), nil without one.
    public var consolidationPhase: String?
    public init() {}

    enum CodingKeys: String, CodingKey {
        case accuracy, initialAccuracy, secondsPerTask, strategyMemoryBytes, taskAgnostic, samplesPerTask
        case accuracyBeforeConsolidation, consolidationSeconds, consolidationPhase
    }

    /// Decodes results in which `samplesPerTask` may be missing (checkpoints of older runs).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        accuracy = try c.decode([[Float]].self, forKey: .accuracy)
        initialAccuracy = try c.decode([Float].self, forKey: .initialAccuracy)
        secondsPerTask = try c.decode([Double].self, forKey: .secondsPerTask)
        strategyMemoryBytes = try c.decode([Int].self, forKey: .strategyMemoryBytes)
        taskAgnostic = try c.decodeIfPresent([TaskAgnosticRecord].self, forKey: .taskAgnostic)
        samplesPerTask = try c.decodeIfPresent([Int].self, forKey: .samplesPerTask)
        accuracyBeforeConsolidation = try c.decodeIfPresent([[Float]].self, forKey: .accuracyBeforeConsolidation)
        consolidationSeconds = try c.decodeIfPresent([Double].self, forKey: .consolidationSeconds)
        consolidationPhase = try c.decodeIfPresent(String.self, forKey: .consolidationPhase)
    }
}

/// Where training stands: the next epoch of a task to run, and the steps taken in that task.
public struct TrainingPosition: Sendable, Codable, Equatable {
    public var task = 0
    public var epoch = 0
    public var stepInTask = 0
    /// Seconds already spent on the current task (kept across a resume).
    public var secondsInTask: Double = 0
    /// Training samples already processed in the current task (kept across a resume).
    public var samplesInTask = 0
    public init(task: Int = 0, epoch: Int = 0, stepInTask: Int = 0, secondsInTask: Double = 0, samplesInTask: Int = 0) {
        self.task = task; self.epoch = epoch; self.stepInTask = stepInTask; self.secondsInTask = secondsInTask
        self.samplesInTask = samplesInTask
    }

    enum CodingKeys: String, CodingKey { case task, epoch, stepInTask, secondsInTask, samplesInTask }

    /// Decodes a position in which `samplesInTask` may be missing (checkpoints of older runs).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        task = try c.decode(Int.self, forKey: .task)
        epoch = try c.decode(Int.self, forKey: .epoch)
        stepInTask = try c.decode(Int.self, forKey: .stepInTask)
        secondsInTask = try c.decode(Double.self, forKey: .secondsInTask)
        samplesInTask = try c.decodeIfPresent(Int.self, forKey: .samplesInTask) ?? 0
    }
}

/// Runs a stream of tasks through a model with a strategy, evaluating after each task.
///
/// After every epoch and every task it calls `onCheckpoint` with the position to resume from and the
/// results so far; `run(from:results:)` continues from such a point, giving the same numbers as an
/// uninterrupted run (shuffles and other random draws derive from the seed and their position only).
public final class Trainer {
    public let context: TrainingContext
    public let strategy: any Strategy
    public var onEvent: ((TrainingEvent) -> Void)?
    /// Called at every resumable point: after each epoch (mid-task) and after each task's evaluation.
    public var onCheckpoint: ((TrainingPosition, StreamResult) throws -> Void)?
    /// Training samples the loop of the last `train(from:results:)` processed in its task (including those of
    /// the position it resumed from).
    public private(set) var samplesInLastTask = 0
    /// The data-parallel group this trainer is a member of (nil: it trains alone). Every member runs the same stream
    /// with the same seed; in each of the trainer's steps a member takes its shard of the batch (``ProcessGroup/shard(of:)``),
    /// scales its loss by its share, and the gradients (with the loss) are summed over the members in one buffer
    /// before the strategy's `afterBackward` and the optimizer's step, so every member takes the step of the whole
    /// batch; BatchNorm layers normalise with the whole batch's statistics, dropout applies the whole batch's mask.
    /// Evaluation splits every test batch's rows over the members and sums the counts. Everything else a strategy does
    /// (its memory, importance, consolidation) runs whole on every member, identically.
    public var group: (any ProcessGroup)?

    public init(model: Classifier, stream: any TaskStream, strategy: any Strategy, configuration: TrainingConfiguration) throws {
        try configuration.validate()
        self.strategy = strategy
        context = TrainingContext(model: model, optimizer: configuration.makeOptimizer(model.namedParameters()),
                                  stream: stream, configuration: configuration)
    }

    /// Trains every task in order (from `position`, with the `results` gathered before it) and
    /// returns the accuracy matrix.
    public func run(from position: TrainingPosition = TrainingPosition(), results: StreamResult = StreamResult()) throws -> StreamResult {
        var result = results
        if result.initialAccuracy.isEmpty { result.initialAccuracy = evaluateAll() }
        var position = position
        while position.task < context.stream.taskCount {
            let task = position.task
            var seconds = try train(from: position, results: result)
            if let phase = strategy.consolidationPhase {
                result.consolidationPhase = phase
                result.accuracyBeforeConsolidation = (result.accuracyBeforeConsolidation ?? []) + [evaluateAll()]
                let start = Date()
                context.task = task
                try strategy.consolidate(task, context: context)
                let spent = Date().timeIntervalSince(start)
                result.consolidationSeconds = (result.consolidationSeconds ?? []) + [spent]
                seconds += spent
            }
            result.secondsPerTask.append(seconds)
            // Counts exist only when every earlier task was counted (not for a run resumed from an older checkpoint).
            if result.samplesPerTask?.count ?? 0 == task {
                result.samplesPerTask = (result.samplesPerTask ?? []) + [samplesInLastTask]
            } else {
                result.samplesPerTask = nil
            }
            let row = evaluateAll()
            result.accuracy.append(row)
            result.strategyMemoryBytes.append(strategy.memoryBytes)
            evaluateTaskAgnostic(after: task, into: &result)
            onEvent?(.taskFinished(task: task, accuracies: row, seconds: seconds))
            position = TrainingPosition(task: task + 1)
            try onCheckpoint?(position, result)
        }
        return result
    }

    /// What a non-finite loss most likely comes from, said only when the evidence points there: parameters
    /// already non-finite (the training before diverged, or a damaged checkpoint), a finite task loss with a
    /// non-finite total (the strategy's penalty or distillation: its strength), or a non-finite task loss from
    /// finite parameters (the step size — and, when the strategy adds a term to the loss, that term's strength:
    /// an explicit quadratic-penalty step oscillates and grows once lr·λ·Ω passes about 2, so the parameters blow up
    /// through the penalty before the penalty itself overflows; EWC λ 1000 on Rotated MNIST at lr 0.01 does).
    public static func divergenceHint(taskLoss: Float, context: TrainingContext, strategyAddsTerm: Bool = false) -> String {
        let badParameters = context.model.namedParameters().filter { !$0.1.scalars.allSatisfy(\.isFinite) }.map(\.0)
        if let first = badParameters.first {
            return "; the parameters were already non-finite (\(first)\(badParameters.count > 1 ? " and \(badParameters.count - 1) more" : "")) — "
                + "an earlier step overflowed or the checkpoint resumed from is damaged"
        }
        if taskLoss.isFinite {
            return "; the task loss is finite, so the strategy's term overflowed: lower its strength (λ, c, …) "
                + "or use penalty_step: proximal for quadratic penalties"
        }
        guard strategyAddsTerm else { return "; the parameters are finite but the outputs overflowed: lower the learning rate" }
        return "; the parameters are finite but the outputs overflowed: lower the learning rate or the strategy's strength "
            + "(λ, c, …; a quadratic penalty's gradient step diverges once lr·λ·Ω is too large — penalty_step: proximal is stable for any λ)"
    }

    /// Points the model's task-conditioned modules at `batch`: its one task, or in a task-incremental stream each
    /// sample's own task (a mixed batch: replay, joint training); in the other scenarios the task being trained
    /// (their models have no per-task parts the task id may select). Throws for a mixed batch the model cannot route.
    static func route(_ batch: Batch, in model: Classifier, scenario: Scenario, task: Int) throws {
        if let only = batch.taskID { return model.setActiveTask(only) }
        guard scenario == .taskIncremental else { return model.setActiveTask(task) }
        do { try model.setSampleTasks(batch.taskIDs) } catch { throw TrainingError(description: "\(error)") }
    }

    /// Trains one task (from `position.epoch`) with the strategy's hooks; returns the seconds spent.
    @discardableResult
    public func train(from position: TrainingPosition, results: StreamResult = StreamResult()) throws -> Double {
        let model = context.model, optimizer = context.optimizer, config = context.configuration
        let task = position.task
        let start = Date()
        context.task = task
        context.stepInTask = position.stepInTask
        model.setActiveTask(task)
        if position.epoch == 0 {
            // Mid-task (a resumed run) the modes are those the strategy's `loadState` restored.
            model.train()
            onEvent?(.taskStarted(task: task, of: context.stream.taskCount))
            if config.resetOptimizerPerTask && task > 0 { try optimizer.loadState([:]) }
            try strategy.beforeTask(task, context: context)
        }
        var epoch = position.epoch
        samplesInLastTask = position.samplesInTask
        var done = config.iterations.map { position.stepInTask >= $0 } ?? (epoch >= config.epochs)
        while !done {
            optimizer.learningRate = strategy.learningRate(config.learningRate(epoch: epoch), task: task)
            let batches = strategy.trainingBatches(task: task, epoch: epoch, context: context)
            guard !batches.isEmpty else { throw TrainingError(description: "task \(task) has no training data") }
            var lossSum: Double = 0
            for (b, streamBatch) in batches.enumerated() {
                let batch = try strategy.beforeForward(streamBatch, context: context)
                // A strategy that only observes the stream (GDumb) takes no step on it.
                let value = strategy.trainsOnStream ? try step(on: batch, epoch: epoch, batchIndex: b) : 0
                context.stepInTask += 1
                samplesInLastTask += batch.labels.count
                lossSum += Double(value)
                onEvent?(.batchFinished(task: task, epoch: epoch, batch: b, batches: batches.count, loss: value,
                                        samples: batch.labels.count))
                if let iterations = config.iterations, context.stepInTask >= iterations { done = true; break }
            }
            model.setActiveTask(task)
            onEvent?(.epochFinished(task: task, epoch: epoch, meanLoss: Float(lossSum / Double(max(batches.count, 1)))))
            epoch += 1
            if config.iterations == nil && epoch >= config.epochs { done = true }
            if !done {
                try onCheckpoint?(TrainingPosition(task: task, epoch: epoch, stepInTask: context.stepInTask,
                                                   secondsInTask: position.secondsInTask + Date().timeIntervalSince(start),
                                                   samplesInTask: samplesInLastTask),
                                  results)
            }
        }
        try strategy.afterTask(task, context: context)
        return position.secondsInTask + Date().timeIntervalSince(start)
    }

    /// One optimizer step on `batch` of the current task with the strategy's hooks (routing, loss, `afterBackward`,
    /// `afterStep`); returns the loss.
    private func step(on whole: Batch, epoch: Int, batchIndex b: Int) throws -> Float {
        let model = context.model, task = context.task
        try Self.route(whole, in: model, scenario: context.stream.scenario, task: task)
        // A data-parallel member trains on its rows of the batch, its loss scaled by its share of the mean.
        let (rows, share) = group?.shard(of: whole.count) ?? (0..<whole.count, 1)
        let batch = rows.count == whole.count ? whole : whole.rows(Array(rows))
        if rows.count != whole.count { try Self.route(batch, in: model, scenario: context.stream.scenario, task: task) }
        let restoreShards = group.map { DataParallel.enterShard(of: model, group: $0, rows: rows, total: whole.count) }
        defer { restoreShards?() }
        var taskLoss: Tensor?
        var strategyAddsTerm = false
        func loss() -> Tensor {
            let output = model(batch.inputs)
            let task = Losses.crossEntropy(output, targets: batch.labels, allowedClasses: context.activeClasses)
            if taskLoss == nil { taskLoss = task }
            let total = strategy.loss(taskLoss: task, output: output, batch: batch, context: context)
            strategyAddsTerm = strategyAddsTerm || total !== task
            return group == nil ? total : total * share
        }
        func failure(_ value: Float) -> String {
            "the loss became \(value) at task \(task + 1) of \(context.stream.taskCount), epoch \(epoch + 1), batch \(b + 1) "
                + "(task loss \(taskLoss?.item ?? .nan))" + Self.divergenceHint(taskLoss: taskLoss?.item ?? .nan, context: context, strategyAddsTerm: strategyAddsTerm)
        }
        let rho = context.configuration.samRho
        let optimizer = context.optimizer
        let synchronize = group.map { group in { (value: Float) in DataParallel.sumGradients(of: optimizer, loss: value, group: group) } }
        let value = rho > 0
            ? try TrainingStep.takeSharpnessAware(rho: rho, optimizer: optimizer, afterBackward: { strategy.afterBackward(context: context) },
                                                  synchronize: synchronize, loss: loss, failure: failure)
            : try TrainingStep.take(loss(), optimizer: optimizer, afterBackward: { strategy.afterBackward(context: context) },
                                    synchronize: synchronize, failure: failure)
        strategy.afterStep(context: context)
        return value
    }

    /// Appends the task-agnostic accuracy on tasks 0…`task` to `result`, for every rule the strategy and
    /// model offer.
    func evaluateTaskAgnostic(after task: Int, into result: inout StreamResult) {
        let rules = TaskAgnosticEvaluation.rules(strategy: strategy, model: context.model)
        guard !rules.isEmpty else { return }
        var records = result.taskAgnostic ?? rules.map { TaskAgnosticRecord(rule: $0) }
        for k in records.indices {
            let (accuracy, prediction) = TaskAgnosticEvaluation.evaluate(strategy: strategy, context: context,
                                                                         seenTasks: task + 1, rule: records[k].rule, group: group)
            records[k].accuracy.append(accuracy)
            records[k].taskPrediction.append(prediction)
        }
        result.taskAgnostic = records
    }

    /// Test accuracy on every task of the stream (task-aware for the task-incremental scenario).
    public func evaluateAll() -> [Float] {
        (0..<context.stream.taskCount).map { evaluate(task: $0) }
    }

    /// Test accuracy on one task, between the strategy's `beforeEvaluation` and `afterEvaluation` hooks.
    public func evaluate(task: Int) -> Float {
        strategy.beforeEvaluation(task: task, context: context)
        defer { strategy.afterEvaluation(task: task, context: context) }
        let parts = (strategy as? CompositeStrategy)?.parts ?? [strategy]
        let restriction = parts.lazy.compactMap { $0 as? TaskAwareClassRestriction }.first
        let allowed = restriction?.evaluationClasses(task: task, outputs: context.stream.headSize(task: task))
        let scoring = parts.lazy.compactMap { $0 as? EvaluationScoring }.first
        let batches = context.stream.testBatches(task: task, batchSize: context.configuration.evaluationBatchSize)
        let scores = scoring.map { rule in { [context] in rule.evaluationScores($0, task: task, context: context) } }
        guard let group, group.size > 1 else {
            return Evaluator.accuracy(model: context.model, batches: batches, task: task, allowedClasses: allowed, scores: scores)
        }
        // Each member classifies its block of rows of every test batch (possibly none); the counts summed are the
        // whole test set's.
        let mine = batches.lazy.compactMap { DataParallel.evaluationShard(of: $0, group: group) }
        let (correct, total) = Evaluator.counts(model: context.model, batches: mine, task: task, allowedClasses: allowed, scores: scores)
        var sums = [Double(correct), Double(total)]
        group.sum(&sums)
        return sums[1] == 0 ? 0 : Float(Int(sums[0])) / Float(Int(sums[1]))
    }
}

/// The inner step every training phase takes — a task in the trainer, PackNet's re-training, MIND's teacher,
/// EBLL's autoencoders: the loss checked finite, gradients zeroed, backward, the gradient entries `gate` freezes
/// (0 in its mask) zeroed, `afterBackward`, the optimizer's step.
public enum TrainingStep {
    /// Takes one step on `loss`; returns its value. A non-finite loss throws a `TrainingError` with `failure`'s
    /// message before anything changes. `synchronize` (a data-parallel member's) sums the gradients and the loss over
    /// the group after the backward pass and returns the summed loss, which is then the one checked and returned.
    @discardableResult
    public static func take(_ loss: Tensor, optimizer: any Optimizer, gate: [String: [Float]]? = nil,
                            parameters: @autoclosure () -> [(String, Tensor)] = [],
                            afterBackward: () -> Void = {}, synchronize: ((Float) -> Float)? = nil,
                            failure: (Float) -> String) throws -> Float {
        var value = loss.item
        // A member alone may stop before the backward pass; members of a group decide together on the summed loss.
        guard synchronize != nil || value.isFinite else { throw TrainingError(description: failure(value)) }
        optimizer.zeroGrad()
        loss.backward()
        if let synchronize {
            value = synchronize(value)
            guard value.isFinite else { optimizer.zeroGrad(); throw TrainingError(description: failure(value)) }
        }
        if let gate {
            for (name, p) in parameters() {
                guard let g = p.grad, let m = gate[name] else { continue }
                g.scalars.withUnsafeMutableBufferPointer { b in for i in b.indices where m[i] == 0 { b[i] = 0 } }
            }
        }
        afterBackward()
        optimizer.step()
        return value
    }

    /// One sharpness-aware step (SAM; Foret, Kleiner, Mobahi & Neyshabur, ICLR 2021, and the authors' `sam.py`): with
    /// g = ∇L(θ), the gradient is taken again at the worst point of the ρ-ball to first order,
    ///
    ///     ε = ρ·g / ‖g‖₂,   g_SAM = ∇L(θ + ε),
    ///
    /// θ returns to its value and the optimizer steps with g_SAM (after `afterBackward`, so a strategy's gradient
    /// projection applies to the gradient actually used). g and ε cover what the optimizer may change: its
    /// parameters that are not frozen, where their update masks are 1 (PackNet's and MIND's fixed weights stay put).
    /// `loss` builds the loss at the current parameters; it runs twice (BatchNorm's running statistics see both
    /// passes, as in `sam.py` without its `disable_running_stats`). Returns the loss at θ.
    @discardableResult
    public static func takeSharpnessAware(rho: Float, optimizer: any Optimizer, afterBackward: () -> Void = {},
                                          synchronize: ((Float) -> Float)? = nil,
                                          loss: () -> Tensor, failure: (Float) -> String) throws -> Float {
        let first = loss()
        var value = first.item
        guard synchronize != nil || value.isFinite else { throw TrainingError(description: failure(value)) }
        optimizer.zeroGrad()
        first.backward()
        if let synchronize {
            value = synchronize(value)
            guard value.isFinite else { optimizer.zeroGrad(); throw TrainingError(description: failure(value)) }
        }
        var directions: [(Tensor, [Float])] = []
        var squared: Double = 0
        for (name, p) in optimizer.parameters where !optimizer.frozen.contains(name) {
            guard var g = p.grad?.scalars else { continue }
            if let mask = optimizer.updateMasks[name] { for i in g.indices where mask[i] == 0 { g[i] = 0 } }
            for x in g { squared += Double(x) * Double(x) }
            directions.append((p, g))
        }
        let scale = Float(Double(rho) / (squared.squareRoot() + 1e-12))
        // θ is kept and put back exactly (θ + ε − ε need not round to θ).
        let saved = directions.map { ($0.0, $0.0.scalars) }
        for (p, g) in directions { p.scalars.withUnsafeMutableBufferPointer { b in for i in b.indices { b[i] += scale * g[i] } } }
        optimizer.zeroGrad()
        let second = loss()
        var perturbed = second.item
        if synchronize == nil, !perturbed.isFinite {
            for (p, theta) in saved { p.scalars = theta }
            throw TrainingError(description: failure(perturbed) + " (at SAM's perturbed point)")
        }
        second.backward()
        if let synchronize { perturbed = synchronize(perturbed) }
        for (p, theta) in saved { p.scalars = theta }
        guard perturbed.isFinite else {
            optimizer.zeroGrad()
            throw TrainingError(description: failure(perturbed) + " (at SAM's perturbed point)")
        }
        afterBackward()
        optimizer.step()
        return value
    }
}

/// Accuracy of a model on batches.
public enum Evaluator {
    /// Fraction of samples whose arg-max output (over `allowedClasses` when given) equals the label.
    /// `scores` replaces the model's outputs (a strategy's own classification rule).
    public static func accuracy(model: Classifier, batches: some Sequence<Batch>, task: Int, allowedClasses: [Int]? = nil,
                                scores: ((Tensor) -> Tensor)? = nil) -> Float {
        let (correct, total) = counts(model: model, batches: batches, task: task, allowedClasses: allowedClasses, scores: scores)
        return total == 0 ? 0 : Float(correct) / Float(total)
    }

    /// The samples of `batches` classified correctly, and the samples, as ``accuracy(model:batches:task:allowedClasses:scores:)`` counts them.
    public static func counts(model: Classifier, batches: some Sequence<Batch>, task: Int, allowedClasses: [Int]? = nil,
                              scores: ((Tensor) -> Tensor)? = nil) -> (correct: Int, total: Int) {
        let restoreMode = model.enterEvaluationMode()
        defer { restoreMode() }
        model.setActiveTask(task)
        var correct = 0, total = 0
        GradMode.withoutGrad {
            for batch in batches {
                let out = scores?(batch.inputs) ?? model(batch.inputs)
                let c = out.shape[1]
                let v = out.scalars
                for (r, label) in batch.labels.enumerated() {
                    var best = -Float.infinity, bestIndex = -1
                    for j in allowedClasses ?? Array(0..<c) where v[r * c + j] > best || bestIndex < 0 {
                        best = v[r * c + j]; bestIndex = j
                    }
                    if bestIndex == label { correct += 1 }
                }
                total += batch.labels.count
            }
        }
        return (correct, total)
    }
}
