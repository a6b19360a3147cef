import EngramTensor
import EngramData
import EngramNN
import Foundation

/// MIND's task-agnostic inference: every sub-network answers, the most confident task wins.
extension MIND {
    /// Task-agnostic prediction with the model MIND last trained.
    public func predictTaskAgnostic(inputs: Tensor, rule: MINDTaskRule = .topTwoLowestEntropy) -> (labels: [Int], tasks: [Int]) {
        guard let model else { preconditionFailure("MIND has not trained a model yet") }
        return predictTaskAgnostic(inputs: inputs, model: model, rule: rule)
    }

    public var taskAgnosticRules: [String] { MINDTaskRule.allCases.map(\.rawValue) }

    public func predictTaskAgnostic(inputs: Tensor, model: Classifier, seenTasks: Int, rule: String) -> (labels: [Int], tasks: [Int]) {
        predictTaskAgnostic(inputs: inputs, model: model, rule: MINDTaskRule(rawValue: rule) ?? .topTwoLowestEntropy,
                            seenTasks: seenTasks)
    }

    /// Task-agnostic prediction: every finished sub-network j (of the first `seenTasks`, default all)
    /// computes p_j = softmax(z_j/τ) over head j with BatchNorm j; the task is chosen by `rule`, the label
    /// is the arg-max of that task's output.
    public func predictTaskAgnostic(inputs: Tensor, model: Classifier, rule: MINDTaskRule = .topTwoLowestEntropy,
                                    seenTasks: Int? = nil) -> (labels: [Int], tasks: [Int]) {
        guard let masks, completedTasks > 0 else { preconditionFailure("MIND has no finished task") }
        let candidates = min(completedTasks, seenTasks ?? completedTasks)
        let n = inputs.shape[0]
        let wasTraining = model.isTraining, active = model.activeTask
        model.eval()
        defer { if wasTraining { model.train() }; model.setActiveTask(active) }
        // Per task: (max probability, entropy, arg-max) of every sample.
        var scores: [[(Float, Float, Int)]] = []
        GradMode.withoutGrad {
            for j in 0..<candidates {
                let out = masks.withUsableMask(model.namedParameters(), task: j) { () -> Tensor in
                    model.setActiveTask(j)
                    return model(inputs)
                }
                let c = out.shape[1], v = out.scalars
                let own = ownColumns(j, outputs: c) ?? 0..<c
                scores.append((0..<n).map { r in
                    let (p, h, k) = Self.confidence(Array(v[(r * c + own.lowerBound)..<(r * c + own.upperBound)]), temperature: temperature)
                    return (p, h, own.lowerBound + k)
                })
            }
        }
        var labels: [Int] = [], tasks: [Int] = []
        for r in 0..<n {
            let ranked = (0..<candidates).sorted { a, b in
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

    /// Task-agnostic accuracy (right task and right label) and task-prediction accuracy, each the mean
    /// over the finished tasks of `trainer`'s stream (test sets).
    public func taskAgnosticAccuracy(_ trainer: Trainer, rule: MINDTaskRule = .topTwoLowestEntropy) -> (accuracy: Float, taskAccuracy: Float) {
        guard completedTasks > 0 else { return (0, 0) }
        let (accuracy, prediction) = TaskAgnosticEvaluation.evaluate(strategy: self, context: trainer.context,
                                                                     seenTasks: completedTasks, rule: rule.rawValue)
        return (accuracy.reduce(0, +) / Float(accuracy.count), prediction.reduce(0, +) / Float(prediction.count))
    }
}
