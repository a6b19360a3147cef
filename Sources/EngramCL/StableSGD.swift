import EngramTensor
import EngramData
import EngramNN
import Foundation

/// Stable SGD (Mirzadeh, Farajtabar, Pascanu & Ghasemzadeh, NeurIPS 2020, "Understanding the Role of Training
/// Regimes in Continual Learning"), read against the authors' `stable_sgd/main.py` and `replicate_experiment_2.sh`.
///
/// No extra loss: a training regime that keeps each task's minimum wide and the steps of later tasks short. The
/// learning rate of task t (1-based) is
///
///     ηₜ = max(η₀·γᵗ, η_min)
///
/// with η₀ the run's `training.lr` (their 0.1), γ `lr_decay` (0.8 on Permuted MNIST, 0.5 on Rotated MNIST) and η_min
/// `min_lr` (5·10⁻⁵); as their code, the first task already runs at η₀·γ (`first_task_decayed`). The rest of the
/// recipe: dropout 0.5 after each hidden layer (the run's `dropout` defaults to it with this strategy), small
/// batches (10), SGD with momentum 0.8, one epoch per task — run settings, given in
/// `examples/protocols/permuted-mnist-20.yaml` and `rotated-mnist-20.yaml`. Composes with any strategy (`stable-sgd+ewc`): the decay applies to the
/// steps of every part.
public final class StableSGD: RegisteredStrategy {
    public static let descriptors = [StrategyDescriptor(
        name: "stable-sgd", summary: "Stable SGD: dropout, a large learning rate decayed per task, small batches (a training regime, no extra loss)",
        paper: "Mirzadeh, Farajtabar, Pascanu & Ghasemzadeh, NeurIPS 2020 (Understanding the Role of Training Regimes in Continual Learning)",
        hyperparameters: [
            .real("lr_decay", symbol: "γ", default: 0.8, range: .unitIntervalOpenBelow,
                  help: "γ, the learning rate's decay per task: ηₜ = max(η₀·γᵗ, η_min) (0.8 Permuted MNIST, 0.5 Rotated MNIST)."),
            .real("min_lr", symbol: "η_min", default: 5e-5, range: .nonNegative, help: "η_min, the floor of the decayed learning rate."),
            .boolean("first_task_decayed", default: true, help: "Whether the first task runs at η₀·γ (the authors' code) rather than η₀."),
        ],
        recipeDropout: 0.5,
        make: { o in StableSGD(decay: o.float("lr_decay"), minimumLearningRate: o.float("min_lr"), firstTaskDecayed: o.bool("first_task_decayed")) })]

    public let decay: Float, minimumLearningRate: Float, firstTaskDecayed: Bool

    public init(decay: Float = 0.8, minimumLearningRate: Float = 5e-5, firstTaskDecayed: Bool = true) {
        self.decay = decay; self.minimumLearningRate = minimumLearningRate; self.firstTaskDecayed = firstTaskDecayed
    }

    public var name: String { "stable-sgd" }

    /// max(η·γᵗ, η_min), t the task's number counted from 1 (from 0 without `first_task_decayed`).
    public func learningRate(_ base: Float, task: Int) -> Float {
        max(base * pow(decay, Float(task + (firstTaskDecayed ? 1 : 0))), minimumLearningRate)
    }
}
