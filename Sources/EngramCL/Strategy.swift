import EngramTensor
import EngramData
import EngramNN

/// What a strategy sees while a stream is trained.
public final class TrainingContext {
    public let model: Classifier
    public let optimizer: any Optimizer
    public let stream: any TaskStream
    public let configuration: TrainingConfiguration
    /// The task being trained (0-based).
    public internal(set) var task = 0
    /// Optimizer steps taken on the current task.
    public internal(set) var stepInTask = 0
    /// Builds a freshly initialised model of the run's architecture from a generator (MIND's teachers);
    /// nil when the trainer was built without one.
    public var makeFreshModel: ((inout RandomGenerator) -> Classifier)?

    public init(model: Classifier, optimizer: any Optimizer, stream: any TaskStream, configuration: TrainingConfiguration) {
        self.model = model
        self.optimizer = optimizer
        self.stream = stream
        self.configuration = configuration
    }

    /// The output units the task loss may use while training the current task: in a class-incremental head
    /// the classes of the tasks seen so far (the head "grows", as van de Ven & Tolias's active classes, Hsu et
    /// al.'s `valid_out_dim` and Avalanche's incremental classifier: classes not seen yet get no gradient);
    /// nil (all outputs of the active head) in the other scenarios, and with `training.active_classes: all`.
    public var activeClasses: [Int]? {
        guard stream.scenario == .classIncremental, configuration.activeClasses == .seen else { return nil }
        let seen = (0...task).flatMap { stream.outputClasses(task: $0) }
        return seen.count == stream.headSize(task: task) ? nil : seen
    }

    /// A generator for one purpose, fixed by the run's seed and `label` only.
    public func generator(_ label: String) -> RandomGenerator {
        RandomGenerator(seed: configuration.seed, label: label)
    }
}

/// A continual-learning method: hooks at the points of a training step where methods act.
///
/// The trainer calls, for each task t: `beforeTask` → for every batch: `beforeForward` (what the model trains on:
/// replay mixes memory samples in) → forward → `criterion` (what replaces the task
/// loss, if anything) and `penalty` (what is added to it) → backward → `afterBackward` → optimizer step → `afterStep`; then
/// `afterTask` (importance, anchors, pruning …) and evaluation, where every task j is evaluated between
/// `beforeEvaluation(task: j)` and `afterEvaluation(task: j)` (e.g. to apply task j's weight mask). Every hook has a default that
/// does nothing, so a method implements only what it needs; methods compose through `CompositeStrategy`.
public protocol Strategy: AnyObject {
    /// The name used on the command line (`mas`, `ewc`, …).
    var name: String { get }
    func beforeTask(_ task: Int, context: TrainingContext) throws
    /// The batch the model is trained on for the stream's `batch` (default: `batch` itself). Replay returns it
    /// with memory samples appended — samples of several tasks, each routed to its own head in task-incremental
    /// models (``EngramNN/Module/setSampleTasks(_:)``); a method that stores samples sees the stream's batch here.
    func beforeForward(_ batch: Batch, context: TrainingContext) throws -> Batch
    /// The objective that replaces `taskLoss` (the trainer's cross-entropy over the active classes) for this batch
    /// (MIND's distillation into its sub-network), or nil to keep it. In a composite at most one part may replace it
    /// (``StrategyDescriptor/replacesCriterion``).
    func criterion(taskLoss: Tensor, output: Tensor, batch: Batch, context: TrainingContext) -> Tensor?
    /// A term added to the criterion (a quadratic penalty, LwF's distillation of the old outputs), or nil.
    func penalty(output: Tensor, batch: Batch, context: TrainingContext) -> Tensor?
    func afterBackward(context: TrainingContext)
    func afterStep(context: TrainingContext)
    func afterTask(_ task: Int, context: TrainingContext) throws
    /// The name of an offline phase the method runs once a task is trained (`sleep`), or nil. The trainer measures
    /// every task before and after it (``StreamResult/accuracyBeforeConsolidation``), so the phase shows as an
    /// event in the stream.
    var consolidationPhase: String? { get }
    /// Runs the consolidation phase after `afterTask` (only called when ``consolidationPhase`` is not nil).
    func consolidate(_ task: Int, context: TrainingContext) throws
    /// Called before the model is evaluated on `task` (task-aware inference: select the task's sub-network).
    func beforeEvaluation(task: Int, context: TrainingContext)
    /// Called after the model was evaluated on `task`; must undo what `beforeEvaluation` changed.
    func afterEvaluation(task: Int, context: TrainingContext)
    /// The learning rate of `task`'s steps, given the run's (`training.lr` and its schedule): the run's unless the
    /// method schedules it across tasks (Stable SGD's per-task decay).
    func learningRate(_ base: Float, task: Int) -> Float
    /// Whether `trainingBatches` replaces the task's own data (joint training, replay).
    var changesTrainingData: Bool { get }
    /// Whether the model takes a training step on each stream batch (default true). GDumb only observes the stream
    /// (`beforeForward` sees every batch; no forward, backward or step follows) and trains its model in `afterTask`.
    var trainsOnStream: Bool { get }
    /// The batches to train on for `task` and `epoch` (default: the task's own data).
    func trainingBatches(task: Int, epoch: Int, context: TrainingContext) -> Batches
    /// Bytes of state the method holds beyond the model (importance, anchors, buffers …).
    var memoryBytes: Int { get }
    /// The method's state for a checkpoint: named tensors and `Codable` records (``StrategyState``).
    func saveState() throws -> StrategyState
    /// Restores what ``saveState()`` wrote, when a run resumes from a checkpoint. `context` is at the position the
    /// run resumes from (`task`, `stepInTask`; the model's and optimizer's state already restored), so the strategy
    /// can check its tensors against the model and set up what its hooks set up for the current task (frozen
    /// parameters, masks) — the trainer does not call `beforeTask` again for a task resumed mid-way. Throws,
    /// naming the tensor or record, for a state this run cannot have written.
    func loadState(_ state: StrategyState, context: TrainingContext) throws
}

extension Strategy {
    public func beforeTask(_ task: Int, context: TrainingContext) throws {}
    public func beforeForward(_ batch: Batch, context: TrainingContext) throws -> Batch { batch }
    public func criterion(taskLoss: Tensor, output: Tensor, batch: Batch, context: TrainingContext) -> Tensor? { nil }
    public func penalty(output: Tensor, batch: Batch, context: TrainingContext) -> Tensor? { nil }

    /// The loss the trainer minimizes for a batch: the criterion (or `taskLoss`) plus the penalty.
    public func loss(taskLoss: Tensor, output: Tensor, batch: Batch, context: TrainingContext) -> Tensor {
        let objective = criterion(taskLoss: taskLoss, output: output, batch: batch, context: context) ?? taskLoss
        return penalty(output: output, batch: batch, context: context).map { objective + $0 } ?? objective
    }
    public func afterBackward(context: TrainingContext) {}
    public func afterStep(context: TrainingContext) {}
    public func afterTask(_ task: Int, context: TrainingContext) throws {}
    public var consolidationPhase: String? { nil }
    public func consolidate(_ task: Int, context: TrainingContext) throws {}
    public func beforeEvaluation(task: Int, context: TrainingContext) {}
    public func afterEvaluation(task: Int, context: TrainingContext) {}
    public func learningRate(_ base: Float, task: Int) -> Float { base }
    public var changesTrainingData: Bool { false }
    public var trainsOnStream: Bool { true }
    public func trainingBatches(task: Int, epoch: Int, context: TrainingContext) -> Batches {
        context.stream.trainingBatches(task: task, epoch: epoch, batchSize: context.configuration.batchSize)
    }
    public var memoryBytes: Int { 0 }
    public func saveState() throws -> StrategyState { StrategyState() }
    public func loadState(_ state: StrategyState, context: TrainingContext) throws {}
}

/// Several strategies applied together (e.g. a regularizer and replay): hooks run in order, penalties add up; at
/// most one part replaces the criterion and at most one changes the training data (the registry refuses others).
/// State names are prefixed by position.
public final class CompositeStrategy: Strategy {
    public let parts: [any Strategy]
    public init(_ parts: [any Strategy]) { self.parts = parts }
    public var name: String { parts.map(\.name).joined(separator: "+") }
    public func beforeTask(_ task: Int, context: TrainingContext) throws { for p in parts { try p.beforeTask(task, context: context) } }
    /// Each part's `beforeForward` in order, on what the one before returned.
    public func beforeForward(_ batch: Batch, context: TrainingContext) throws -> Batch {
        try parts.reduce(batch) { try $1.beforeForward($0, context: context) }
    }
    /// The one part's criterion that replaces the task loss (the registry refuses composites with two).
    public func criterion(taskLoss: Tensor, output: Tensor, batch: Batch, context: TrainingContext) -> Tensor? {
        parts.lazy.compactMap { $0.criterion(taskLoss: taskLoss, output: output, batch: batch, context: context) }.first
    }
    /// The sum of the parts' penalties.
    public func penalty(output: Tensor, batch: Batch, context: TrainingContext) -> Tensor? {
        parts.compactMap { $0.penalty(output: output, batch: batch, context: context) }.summed
    }
    public func afterBackward(context: TrainingContext) { for p in parts { p.afterBackward(context: context) } }
    public func afterStep(context: TrainingContext) { for p in parts { p.afterStep(context: context) } }
    public func afterTask(_ task: Int, context: TrainingContext) throws { for p in parts { try p.afterTask(task, context: context) } }
    /// The parts' phases joined (`sleep`), nil when no part has one.
    public var consolidationPhase: String? {
        let phases = parts.compactMap(\.consolidationPhase)
        return phases.isEmpty ? nil : phases.joined(separator: "+")
    }
    public func consolidate(_ task: Int, context: TrainingContext) throws {
        for p in parts where p.consolidationPhase != nil { try p.consolidate(task, context: context) }
    }
    public func beforeEvaluation(task: Int, context: TrainingContext) { for p in parts { p.beforeEvaluation(task: task, context: context) } }
    /// Undoes in reverse order, so nested changes unwind correctly.
    public func afterEvaluation(task: Int, context: TrainingContext) { for p in parts.reversed() { p.afterEvaluation(task: task, context: context) } }
    public func trainingBatches(task: Int, epoch: Int, context: TrainingContext) -> Batches {
        parts.first { $0.changesTrainingData }?.trainingBatches(task: task, epoch: epoch, context: context)
            ?? context.stream.trainingBatches(task: task, epoch: epoch, batchSize: context.configuration.batchSize)
    }
    public var changesTrainingData: Bool { parts.contains { $0.changesTrainingData } }
    /// False when any part only observes the stream.
    public var trainsOnStream: Bool { parts.allSatisfy(\.trainsOnStream) }
    public func learningRate(_ base: Float, task: Int) -> Float { parts.reduce(base) { $1.learningRate($0, task: task) } }
    public var memoryBytes: Int { parts.reduce(0) { $0 + $1.memoryBytes } }
    public func saveState() throws -> StrategyState {
        var state = StrategyState()
        for (i, p) in parts.enumerated() { state.merge(try p.saveState().prefixed("\(i)")) }
        return state
    }
    public func loadState(_ state: StrategyState, context: TrainingContext) throws {
        for (i, p) in parts.enumerated() { try p.loadState(state.scoped("\(i)"), context: context) }
    }
}

/// A strategy that classifies test samples by its own rule rather than by the model's outputs (iCaRL's nearest
/// mean of exemplars). The trainer evaluates task `task` with these scores in place of the model's outputs.
public protocol EvaluationScoring: AnyObject {
    /// Scores `[samples, outputs of task's head]` for `inputs`; the prediction is their arg-max over the classes
    /// the evaluation allows.
    func evaluationScores(_ inputs: Tensor, task: Int, context: TrainingContext) -> Tensor
}

/// Errors a user can cause through a run's configuration or a strategy's state. When the error is about one
/// configuration value, `key` names it as the YAML file spells it (`training.lr`, `scenario`, `mind.teacher_lr`), and
/// the description starts with that key; front ends name their own spelling of it (the CLI its flag).
public struct StrategyError: Error, CustomStringConvertible, Equatable {
    public let description: String
    /// The configuration key the error is about, if it is about one.
    public let key: String?
    public init(_ description: String) { self.description = description; key = nil }
    /// An error about the value of `key`: "`key` `problem`".
    public init(key: String, _ problem: String) { self.description = "\(key) \(problem)"; self.key = key }
    /// The description with its key replaced by `spelling` (e.g. the command line's flag for it).
    public func naming(_ spelling: (String) -> String?) -> String {
        guard let key, let name = spelling(key) else { return description }
        return name + description.dropFirst(key.count)
    }
}

extension Array where Element == Tensor {
    /// The sum of loss terms; nil when there are none.
    var summed: Tensor? {
        guard var total = first else { return nil }
        for term in dropFirst() { total = total + term }
        return total
    }
}
