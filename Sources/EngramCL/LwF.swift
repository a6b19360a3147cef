import EngramTensor
import EngramData
import EngramNN

/// A frozen copy of a model's parameters and buffers (θ*), evaluated by loading it into the live model
/// for one forward pass (evaluation mode, no gradients) and restoring the live values afterwards.
///
/// Only values are swapped: the autodiff graph of a batch already run through the live model keeps the
/// values it saved, so the swap can happen between the forward and the backward pass of a step.
public struct FrozenModel: Sendable {
    /// Values by the names of `Module.stateDictionary()`.
    public var state: ParameterMap = [:]

    public init(state: ParameterMap = [:]) { self.state = state }

    /// θ* ← the model's current parameters and buffers.
    public init(copying model: any Module) { state = .values(of: model.stateDictionary()) }

    public var isEmpty: Bool { state.isEmpty }
    public var memoryBytes: Int { state.byteCount }

    /// Runs `body` with the model holding θ* (evaluation mode, gradient recording off), then restores it.
    public func evaluate<R>(_ model: Classifier, _ body: () -> R) -> R {
        let live = model.stateDictionary()
        let saved = live.map { $0.1.scalars }
        let wasTraining = model.isTraining, active = model.activeTask
        for (name, t) in live { if let v = state[name] { t.scalars = v } }
        model.eval()
        defer {
            for ((_, t), v) in zip(live, saved) { t.scalars = v }
            if wasTraining { model.train() }
            model.setActiveTask(active)
        }
        return GradMode.withoutGrad(body)
    }
}

/// Learning without Forgetting (Li & Hoiem, TPAMI 2017).
///
/// Before task t the model θ* is frozen (a copy of its parameters); for every batch of the new task the
/// old model's outputs y_o on the *new* inputs are the targets of a distillation term:
/// L = L_new(ŷ_n, y_n) + λ_o Σ_{old outputs} KL(softmax(y_o/T) ‖ softmax(ŷ_o/T)), as in Li & Hoiem (no T²).
/// The paper's modified cross-entropy −Σ y'_o log ŷ'_o differs from this KL by the entropy of y'_o only
/// (constant in θ), so the gradients are the same. `temperatureSquared` multiplies the term by T² (Hinton et
/// al. 2015; van de Ven's and Avalanche's implementations do): the effective λ_o is then 4·λ_o at T = 2.
/// The old outputs are: each old task's head (task-incremental, multi-head), the logits of the classes
/// of earlier tasks (class-incremental, shared head), the whole shared head (domain-incremental).
/// Defaults as in the paper: λ_o = 1, T = 2. The warm-up step (new head alone first) is not done.
///
/// Two options reproduce van de Ven & Tolias's LwF (GMvandeVen/continual-learning, `loss_fn_kd` and
/// `train_a_batch`, commit 9945f84), which differs from Li & Hoiem's in the class-incremental scenario:
/// - `distilled_classes: seen` distils over every class seen so far, the current task's included: the target is the
///   old model's softmax over the earlier classes padded with probability 0 for the current task's classes, so the
///   term is KL(p̃ ‖ softmax(ŷ_{seen}/T)) = Σ_{c old} p_c (log p_c − log q_c) with q over all seen classes — it pulls the
///   new classes' probability down on the new task's inputs. `old` (default) is Li & Hoiem's softmax over the old
///   classes only. Outside the class-incremental scenario both are the same.
/// - `loss_weighting: by_task_count` weighs the new task's loss by 1/t and the distillation by 1 − 1/t at task t
///   (L = (1/t)·L_new + (1 − 1/t)·λ_o·L_KD, their `rnt`); `additive` (default) is L_new + λ_o·L_KD. With
///   `by_task_count` LwF scales the task loss itself (its criterion), so it does not combine with a method that
///   replaces the task loss.
public final class LwF: RegisteredStrategy {
    public static let descriptors = [StrategyDescriptor(
        name: "lwf", summary: "Learning without Forgetting: distil the previous model's outputs on the new task's inputs",
        paper: "Li & Hoiem, ECCV 2016 / TPAMI 2017",
        hyperparameters: [.distillationWeight, .distillationTemperature, .temperatureSquared, .distilledClasses, .lossWeighting],
        make: { o in
            try LwF(lambda: o.float("lambda"), temperature: o.float("temperature"), temperatureSquared: o.bool("temperature_squared"),
                    distilledClasses: o.choice("distilled_classes"), lossWeighting: o.choice("loss_weighting"))
        })]

    /// Which outputs the class-incremental distillation's softmax runs over.
    public enum DistilledClasses: String, Sendable, CaseIterable {
        /// The earlier tasks' classes only (Li & Hoiem).
        case old
        /// Every class seen so far, the old model's probabilities padded with 0 for the current task's classes
        /// (van de Ven & Tolias's code).
        case seen
    }

    /// How the new task's loss and the distillation are weighed.
    public enum LossWeighting: String, Sendable, CaseIterable {
        /// L_new + λ_o·L_KD (Li & Hoiem).
        case additive
        /// (1/t)·L_new + (1 − 1/t)·λ_o·L_KD at task t (van de Ven & Tolias).
        case byTaskCount = "by_task_count"
    }

    /// λ_o, the weight of the distillation of old outputs.
    public var lambda: Float
    /// T, the distillation temperature.
    public var temperature: Float
    /// Multiply the distillation term by T² (Hinton et al.); off, as in the paper.
    public var temperatureSquared: Bool
    /// The outputs the class-incremental softmax runs over (`old`, as Li & Hoiem, or every `seen` class).
    public var distilledClasses: DistilledClasses
    /// Additive (Li & Hoiem) or weighed by the number of tasks seen (van de Ven & Tolias).
    public var lossWeighting: LossWeighting
    /// θ*, the model before the current task (empty during the first task).
    public private(set) var oldModel = FrozenModel()

    public init(lambda: Float = 1, temperature: Float = 2, temperatureSquared: Bool = false,
                distilledClasses: DistilledClasses = .old, lossWeighting: LossWeighting = .additive) throws {
        self.lambda = try validatedStrength(lambda, flag: "lambda (λ_o)")
        guard temperature > 0, temperature.isFinite else { throw StrategyError("temperature must be positive, got \(temperature)") }
        self.temperature = temperature
        self.temperatureSquared = temperatureSquared
        self.distilledClasses = distilledClasses
        self.lossWeighting = lossWeighting
    }

    public var name: String { "lwf" }

    public func beforeTask(_ task: Int, context: TrainingContext) throws {
        oldModel = task > 0 ? FrozenModel(copying: context.model) : FrozenModel()
    }

    /// The share of the new task's loss at task index `task` (0-based): 1/(task + 1) with `by_task_count`, else 1.
    public func newTaskShare(_ task: Int) -> Float { lossWeighting == .byTaskCount ? 1 / Float(task + 1) : 1 }

    /// (1/t)·L_new with `by_task_count` after the first task; nil (the task loss unchanged) otherwise.
    public func criterion(taskLoss: Tensor, output: Tensor, batch: Batch, context: TrainingContext) -> Tensor? {
        let share = newTaskShare(context.task)
        return share < 1 ? taskLoss * share : nil
    }

    /// λ_o Σ_{old outputs} KL(softmax(y_o/T) ‖ softmax(ŷ_o/T)), times 1 − 1/t with `by_task_count`.
    public func penalty(output: Tensor, batch: Batch, context: TrainingContext) -> Tensor? {
        guard lambda > 0, let d = distillation(output: output, inputs: batch.inputs, context: context, keepFeatures: false) else {
            return nil
        }
        let share = newTaskShare(context.task)
        return d.loss * (share < 1 ? lambda * (1 - share) : lambda)
    }

    /// KL(softmax(oldLogits/T) ‖ softmax(logits/T)), averaged over the batch (times T² with
    /// `temperatureSquared`): the distillation term of one old output (zero when the logits equal the old ones).
    public static func distillationLoss(logits: Tensor, oldLogits: Tensor, temperature: Float,
                                        temperatureSquared: Bool = false) -> Tensor {
        let kl = Losses.klDivergence(input: logits, target: oldLogits, temperature: temperature)
        return temperatureSquared ? kl * (temperature * temperature) : kl
    }

    /// KL(p̃ ‖ softmax(logits/T)) where p̃ is softmax(oldLogits/T) padded with zeros for the last
    /// `logits.shape[1] − oldLogits.shape[1]` columns: Σ_{c old} p_c (log p_c − log q_c), averaged over the batch (times
    /// T² with `temperatureSquared`) — van de Ven & Tolias's distillation over every seen class.
    public static func paddedDistillationLoss(logits: Tensor, oldLogits: Tensor, temperature: Float,
                                              temperatureSquared: Bool = false) -> Tensor {
        let old = oldLogits.shape[1]
        precondition(logits.rank == 2 && oldLogits.rank == 2 && logits.shape[0] == oldLogits.shape[0] && old <= logits.shape[1],
                     "paddedDistillationLoss: shapes \(logits.shape) and \(oldLogits.shape) do not pad")
        let logP = oldLogits.logSoftmax(temperature: temperature)
        let logQ = logits.logSoftmax(temperature: temperature).slice(axis: 1, 0..<old)
        let kl = (logP.exp() * (logP - logQ)).sum(axis: 1).mean()
        return temperatureSquared ? kl * (temperature * temperature) : kl
    }

    /// The distillation loss (unweighted by λ_o) of a batch, with the current and old features when asked
    /// (EBLL reuses them); nil during the first task.
    func distillation(output: Tensor, inputs: Tensor, context: TrainingContext,
                      keepFeatures: Bool) -> (loss: Tensor, features: Tensor?, oldFeatures: Tensor?)? {
        guard context.task > 0, !oldModel.isEmpty else { return nil }
        let model = context.model, task = context.task, stream = context.stream
        if let heads = model.head as? MultiHead {
            let features = model.features(inputs)
            let (oldFeatures, oldOutputs) = oldModel.evaluate(model) { () -> (Tensor, [Tensor]) in
                let f = model.features(inputs)
                return (f, (0..<task).map { heads.heads[$0](f) })
            }
            var total: Tensor? = nil
            for k in 0..<task {
                let term = Self.distillationLoss(logits: heads.heads[k](features), oldLogits: oldOutputs[k], temperature: temperature,
                                                 temperatureSquared: temperatureSquared)
                total = total.map { $0 + term } ?? term
            }
            return (total!, features, oldFeatures)
        }
        let columns: [Int]? = stream.scenario == .classIncremental
            ? Array(Set((0..<task).flatMap { stream.outputClasses(task: $0) })).sorted() : nil
        let (oldFeatures, oldOutput) = oldModel.evaluate(model) { () -> (Tensor?, Tensor) in
            if keepFeatures {
                let f = model.features(inputs)
                return (f, model.head(f))
            }
            return (nil, model(inputs))
        }
        let loss: Tensor
        if let columns, distilledClasses == .seen {
            // The softmax runs over the old classes followed by the current task's (padded with p = 0).
            let current = stream.outputClasses(task: task).filter { !columns.contains($0) }.sorted()
            loss = Self.paddedDistillationLoss(logits: Self.selectColumns(output, columns + current),
                                               oldLogits: Self.selectColumns(oldOutput, columns), temperature: temperature,
                                               temperatureSquared: temperatureSquared)
        } else {
            loss = Self.distillationLoss(logits: Self.selectColumns(output, columns),
                                         oldLogits: Self.selectColumns(oldOutput, columns), temperature: temperature,
                                         temperatureSquared: temperatureSquared)
        }
        return (loss, keepFeatures ? model.features(inputs) : nil, oldFeatures)
    }

    /// The given columns of a [n, c] tensor (all of them for nil).
    static func selectColumns(_ x: Tensor, _ columns: [Int]?) -> Tensor {
        guard let columns, columns.count != x.shape[1] else { return x }
        if let first = columns.first, columns == Array(first..<(first + columns.count)) {
            return x.slice(axis: 1, first..<(first + columns.count))
        }
        return x.transposed().indexSelect(columns).transposed()
    }

    public var memoryBytes: Int { oldModel.memoryBytes }
    /// The model before the current task (`old.<state entry>`).
    public func saveState() throws -> StrategyState { StrategyState(tensors: oldModel.state.tensors(prefix: "old")) }
    public func loadState(_ state: StrategyState, context: TrainingContext) throws {
        oldModel = FrozenModel(state: .from(state.tensors, prefix: "old"))
        if context.task > 0 && context.stepInTask > 0 && oldModel.isEmpty { throw StrategyError("the model before task \(context.task + 1) (tensors 'old.…') is missing") }
    }
}

/// Options LwF and EBLL declare the same way.
extension HyperparameterSpec {
    /// λ_o, the distillation weight.
    static let distillationWeight = HyperparameterSpec.real(
        "lambda", symbol: "λ_o", default: 1, range: .nonNegative,
        help: "λ_o, the weight of the distillation of the old outputs.")
    /// T, the distillation temperature.
    static let distillationTemperature = HyperparameterSpec.real(
        "temperature", symbol: "T", default: 2, range: .positive, help: "T, the distillation temperature.")
    /// Whether the distillation term is multiplied by T².
    static let temperatureSquared = HyperparameterSpec.boolean(
        "temperature_squared", default: false,
        help: "Multiply the distillation term by T² (Hinton et al.); false, as Li & Hoiem.")
    /// The classes the class-incremental distillation's softmax runs over.
    static let distilledClasses = HyperparameterSpec.choice(
        "distilled_classes", LwF.DistilledClasses.self, default: .old,
        help: "Class-incremental only: old (softmax over the earlier tasks' classes, Li & Hoiem) or seen (over every class "
            + "seen so far, the old model's probabilities padded with 0 for the current task's, van de Ven & Tolias).")
    /// Additive or weighed by the number of tasks.
    static let lossWeighting = HyperparameterSpec.choice(
        "loss_weighting", LwF.LossWeighting.self, default: .additive,
        help: "additive (L_new + λ_o·L_KD, Li & Hoiem) or by_task_count ((1/t)·L_new + (1 − 1/t)·λ_o·L_KD at task t, "
            + "van de Ven & Tolias).")
}
