import EngramTensor
import EngramData
import EngramNN

/// A strategy with its own inference when the task of a test sample is not given (task-agnostic, TAg).
public protocol TaskAgnosticPredictor: AnyObject {
    /// The rules it offers; the first is the method's own.
    var taskAgnosticRules: [String] { get }
    /// For each sample: the predicted task (among 0..<`seenTasks`) and the label within that task's output.
    func predictTaskAgnostic(inputs: Tensor, model: Classifier, seenTasks: Int, rule: String) -> (labels: [Int], tasks: [Int])
}

/// A strategy whose task-aware inference answers only among the task's own classes, also in a shared
/// class-incremental head (MIND's output mask).
public protocol TaskAwareClassRestriction: AnyObject {
    /// The classes task `task` is evaluated over (nil: all outputs).
    func evaluationClasses(task: Int, outputs: Int) -> [Int]?
}


/// FACIL's task-agnostic inference for multi-head models: every seen task's head scores the sample, and
/// the largest logit over all of them picks the task and the label.
public struct MaxLogitOverHeads: Sendable {
    public static let rule = "max-logit"
    public init() {}

    /// (labels within the chosen head, chosen tasks) for `inputs`, over heads 0..<`seenTasks`.
    public func predict(inputs: Tensor, model: Classifier, seenTasks: Int) -> (labels: [Int], tasks: [Int]) {
        guard let heads = model.head as? MultiHead else { preconditionFailure("max-logit inference needs a multi-head model") }
        let outputs = heads.forwardAll(model.features.forward(inputs)).prefix(seenTasks)
        let n = inputs.shape[0]
        var labels = [Int](repeating: 0, count: n), tasks = [Int](repeating: 0, count: n)
        var best = [Float](repeating: -.infinity, count: n)
        for (t, out) in outputs.enumerated() {
            let c = out.shape[1], v = out.scalars
            for r in 0..<n {
                for j in 0..<c where v[r * c + j] > best[r] {
                    best[r] = v[r * c + j]; labels[r] = j; tasks[r] = t
                }
            }
        }
        return (labels, tasks)
    }
}

/// Task-agnostic accuracy of one rule over a run: rows after each task, columns the tasks seen so far.
public struct TaskAgnosticRecord: Sendable, Codable, Equatable {
    /// The inference rule (`max-logit`, `top-two-lowest-entropy`, `most-confident`).
    public var rule: String
    /// accuracy[i][j], j ≤ i: fraction of task j's test samples whose task and label are both predicted
    /// right (label only, when the scenario has a single head), after training task i.
    public var accuracy: [[Float]] = []
    /// taskPrediction[i][j]: fraction of task j's test samples assigned to task j.
    public var taskPrediction: [[Float]] = []

    enum CodingKeys: String, CodingKey { case rule, accuracy, taskPrediction = "task_prediction" }

    public init(rule: String) { self.rule = rule }
}

/// Computes task-agnostic accuracy for the strategies and models that have it.
public enum TaskAgnosticEvaluation {
    /// How task-agnostic predictions are made for `strategy` on `model`: the strategy's own predictor, the
    /// max-logit rule for multi-head models, or nil (task-aware-only methods, single-head models whose
    /// ordinary accuracy is already task-agnostic).
    public static func rules(strategy: any Strategy, model: Classifier) -> [String] {
        let parts = (strategy as? CompositeStrategy)?.parts ?? [strategy]
        let taskAwareOnly = parts.contains { part in
            StrategyRegistry.descriptor(named: part.name).map { $0.usesTaskIdentityAtTest && !$0.hasTaskAgnosticInference } ?? false
        }
        if taskAwareOnly { return [] }
        if let p = parts.lazy.compactMap({ $0 as? TaskAgnosticPredictor }).first { return p.taskAgnosticRules }
        return model.head is MultiHead ? [MaxLogitOverHeads.rule] : []
    }

    static func predictor(_ strategy: any Strategy) -> TaskAgnosticPredictor? {
        let parts = (strategy as? CompositeStrategy)?.parts ?? [strategy]
        return parts.lazy.compactMap { $0 as? TaskAgnosticPredictor }.first
    }

    /// (accuracy, task-prediction accuracy) on each task 0..<`seenTasks` under `rule`.
    /// With a data-parallel `group`, each member classifies its block of every test batch's rows and the counts are
    /// summed over the members.
    public static func evaluate(strategy: any Strategy, context: TrainingContext, seenTasks: Int,
                                rule: String, group: (any ProcessGroup)? = nil) -> (accuracy: [Float], taskPrediction: [Float]) {
        let model = context.model
        let restoreMode = model.enterEvaluationMode()
        let active = model.activeTask
        defer { restoreMode(); model.setActiveTask(active) }
        let multiHead = model.head is MultiHead
        var accuracy: [Float] = [], taskPrediction: [Float] = []
        for j in 0..<seenTasks {
            var correct = 0, taskCorrect = 0, total = 0
            let batches = context.stream.testBatches(task: j, batchSize: context.configuration.evaluationBatchSize)
            for batch in batches.lazy.compactMap({ whole in group.map { DataParallel.evaluationShard(of: whole, group: $0) } ?? whole }) {
                let (labels, tasks) = GradMode.withoutGrad { () -> ([Int], [Int]) in
                    if let p = predictor(strategy) {
                        return p.predictTaskAgnostic(inputs: batch.inputs, model: model, seenTasks: seenTasks, rule: rule)
                    }
                    return MaxLogitOverHeads().predict(inputs: batch.inputs, model: model, seenTasks: seenTasks)
                }
                for (r, y) in batch.labels.enumerated() {
                    let rightTask = tasks[r] == j
                    if rightTask { taskCorrect += 1 }
                    if labels[r] == y && (rightTask || !multiHead) { correct += 1 }
                }
                total += batch.labels.count
            }
            if let group {
                var sums = [Double(correct), Double(taskCorrect), Double(total)]
                group.sum(&sums)
                (correct, taskCorrect, total) = (Int(sums[0]), Int(sums[1]), Int(sums[2]))
            }
            accuracy.append(total == 0 ? 0 : Float(correct) / Float(total))
            taskPrediction.append(total == 0 ? 0 : Float(taskCorrect) / Float(total))
        }
        return (accuracy, taskPrediction)
    }
}
