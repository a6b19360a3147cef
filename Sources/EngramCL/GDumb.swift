import EngramTensor
import EngramData
import EngramNN
import Foundation

/// GDumb, greedy sampler and dumb learner (Prabhu et al., ECCV 2020; the authors' code and Mammoth's `gdumb`).
///
/// The stream is only observed: each sample is offered to a greedily class-balanced memory of `buffer_size`
/// samples (``ReplayPolicy/greedyBalanced``: kept while there is room, then in place of a random sample of a
/// largest class when its own class is smaller), and the model takes no step on it. When a task ends the model
/// is re-initialised and trained from scratch on the memory alone, as the authors' code trains it: `fitting_epochs`
/// epochs of SGD with momentum `fit_momentum` (0.9) and weight decay `fit_weight_decay` (10⁻⁶), batches of
/// `fit_batch_size` (16), the gradient's global ℓ2 norm clipped to `clip` (10), under the schedule
/// ``learningRate(epoch:)``; cross-entropy over the classes seen so far, each sample through its own head in the
/// task-incremental scenario. That model is what every evaluation sees.
///
/// Deviations: the authors fit once, on the memory at the end of the stream (and report the best test accuracy over
/// the fitting epochs); Engram fits after every task, so the whole accuracy matrix is GDumb's, and evaluates the
/// model of the last epoch (no selection on test). No CutMix: the authors use it on CIFAR-sized images, not on
/// MNIST (their MNIST runs: 128 epochs, no CutMix), and Engram has no CutMix transform yet.
public final class GDumb: RegisteredStrategy {
    public static let descriptors = [StrategyDescriptor(
        name: "gdumb", summary: "GDumb: greedy class-balanced memory; a model trained from scratch on it after each task",
        paper: "Prabhu et al., ECCV 2020 (GDumb: A Simple Approach that Questions Our Progress in Continual Learning)",
        hyperparameters: [
            .bufferSize(default: 500),
            .integer("fitting_epochs", default: 256, range: .atLeastOne,
                     help: "Epochs of training from scratch on the memory after each task."),
            .real("max_lr", default: 0.05, range: .positive, help: "The peak learning rate of the fitting schedule (warm-up epoch at a tenth of it)."),
            .real("min_lr", default: 0.0005, range: .nonNegative, help: "The learning rate the cosine cycles of the fitting schedule end at."),
            .integer("fit_batch_size", default: 16, range: .atLeastOne, help: "The batch size of the training on the memory."),
            .real("fit_momentum", default: 0.9, range: .nonNegative, help: "The SGD momentum of the training on the memory."),
            .real("fit_weight_decay", default: 0.000001, range: .nonNegative, help: "The weight decay of the training on the memory."),
            .real("clip", default: 10, range: .positive, help: "The gradient's global ℓ2 norm is clipped to this while training on the memory."),
        ],
        scenarios: [.classIncremental, .taskIncremental, .domainIncremental], changesTrainingData: true,
        make: { o in GDumb(bufferSize: o.integer("buffer_size"), fittingEpochs: o.integer("fitting_epochs"),
                           maxLearningRate: o.float("max_lr"), minLearningRate: o.float("min_lr"),
                           batchSize: o.integer("fit_batch_size"), momentum: o.float("fit_momentum"),
                           weightDecay: o.float("fit_weight_decay"), clip: o.float("clip")) })]

    public let fittingEpochs: Int
    public let maxLearningRate: Float, minLearningRate: Float
    /// The training on the memory: batch size, SGD momentum and weight decay, gradient-norm bound.
    public let batchSize: Int, momentum: Float, weightDecay: Float, clip: Float
    let memory: ReplayMemory

    public init(bufferSize: Int, fittingEpochs: Int = 256, maxLearningRate: Float = 0.05, minLearningRate: Float = 0.0005,
                batchSize: Int = 16, momentum: Float = 0.9, weightDecay: Float = 1e-6, clip: Float = 10) {
        self.fittingEpochs = fittingEpochs; self.maxLearningRate = maxLearningRate; self.minLearningRate = minLearningRate
        self.batchSize = batchSize; self.momentum = momentum; self.weightDecay = weightDecay; self.clip = clip
        memory = ReplayMemory(capacity: bufferSize, policy: .greedyBalanced, owner: "gdumb")
    }

    public var name: String { "gdumb" }
    public var changesTrainingData: Bool { true }
    public var trainsOnStream: Bool { false }
    /// The memory (nil before the first batch).
    public var buffer: ReplayBuffer? { memory.buffer }

    public func beforeTask(_ task: Int, context: TrainingContext) throws { try ReplayMemory.checkRoutable(context) }

    /// The batch is stored (greedily balanced); the model does not train on it.
    public func beforeForward(_ batch: Batch, context: TrainingContext) throws -> Batch {
        memory.buffer(context).offer(batch, stream: context.stream)
        return batch
    }

    /// The fitting schedule of the reference (PyTorch's `CosineAnnealingWarmRestarts(T_0 = 1, T_mult = 2)` after a
    /// warm-up): epoch 0 at max/10, epoch 1 at max, then cosine cycles restarting at epochs 2, 4, 8, 16, …:
    /// at epoch e ≥ 2, with 2^k ≤ e < 2^(k+1), lr = min + (max − min)(1 + cos(π (e − 2^k) / 2^k)) / 2.
    public func learningRate(epoch: Int) -> Float {
        if epoch == 0 { return maxLearningRate / 10 }
        if epoch == 1 { return maxLearningRate }
        var cycle = 2
        while cycle * 2 <= epoch { cycle *= 2 }
        let phase = Double(epoch - cycle) / Double(cycle)
        return minLearningRate + (maxLearningRate - minLearningRate) * Float((1 + cos(Double.pi * phase)) / 2)
    }

    /// The model trained from scratch on the memory.
    public func afterTask(_ task: Int, context: TrainingContext) throws {
        guard let buffer = memory.buffer, !buffer.isEmpty else { return }
        let model = context.model
        context.reinitializeModel(label: "gdumb/learner/task \(task)")
        let parameters = model.namedParameters()
        let optimizer = SGD(parameters, learningRate: maxLearningRate, momentum: momentum, weightDecay: weightDecay)
        model.train()
        defer { model.setActiveTask(context.task); for (_, p) in parameters { p.grad = nil } }
        var random = context.generator("gdumb/fit/task \(task)")
        for epoch in 0..<fittingEpochs {
            optimizer.learningRate = learningRate(epoch: epoch)
            let order = buffer.sampleSlots(buffer.count, random: &random)
            for start in stride(from: 0, to: order.count, by: batchSize) {
                let batch = buffer.batch(Array(order[start ..< min(start + batchSize, order.count)]), stream: context.stream, random: &random)
                let output = ReplayMemory.forward(batch, context: context)
                let loss = Losses.crossEntropy(output, targets: batch.labels, allowedClasses: context.activeClasses)
                try TrainingStep.take(loss, optimizer: optimizer, afterBackward: { Self.clipGradientNorm(parameters, to: clip) }) { value in
                    "GDumb's loss became \(value) fitting the memory after task \(task + 1), epoch \(epoch + 1); lower gdumb.max_lr"
                }
            }
        }
    }

    /// Scales every gradient by min(1, `bound` / ‖g‖), ‖g‖ the ℓ2 norm of all of them together (PyTorch's
    /// `clip_grad_norm_`, which divides by ‖g‖ + 10⁻⁶).
    public static func clipGradientNorm(_ parameters: [(String, Tensor)], to bound: Float) {
        var squares: Double = 0
        for (_, p) in parameters { for g in p.grad?.scalars ?? [] { squares += Double(g) * Double(g) } }
        let norm = Float(squares.squareRoot())
        guard norm > bound else { return }
        let scale = bound / norm
        for (_, p) in parameters { if let g = p.grad { g.scalars = g.scalars.map { $0 * scale } } }
    }

    public var memoryBytes: Int { memory.bytes }
    public func saveState() throws -> StrategyState { try memory.saveState() }
    public func loadState(_ state: StrategyState, context: TrainingContext) throws { try memory.loadState(state, context: context) }
}
