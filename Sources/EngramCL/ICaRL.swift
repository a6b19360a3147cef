import EngramTensor
import EngramData
import EngramNN

/// iCaRL, incremental classifier and representation learning (Rebuffi et al., CVPR 2017; the authors' Theano code
/// and Mammoth's `icarl`).
///
/// - **Training set**: task t's data and the exemplar memory, shuffled together as one set
///   (``ReplayMemory/rehearsalBatches(task:epoch:context:)``).
/// - **Loss**: binary cross-entropy with logits over every output unit o of each sample,
///
///       L = mean over samples and units of  BCE(σ(z_o), y_o),
///       y_o = σ(z*_o) for o a class of an earlier task (z* the network as it ended task t − 1: distillation),
///       y_o = [o = label] otherwise (the current task's classes and the classes still to come),
///
///   so an exemplar of an old class is learned only through the old network's outputs, as in the paper (its
///   algorithm 3) and the reference. In the task-incremental scenario each sample's row is its own task's head, so
///   a sample of an earlier task is distilled on its whole head and a sample of task t learns its label.
/// - **Memory** (`buffer_size` = K samples in all): when a task ends the network is frozen as z* and the memory is
///   refilled by herding (``ReplayMemory/fillByHerding(task:context:)``): ⌊K / classes seen⌋ exemplars per class.
/// - **Classifier**: nearest mean of exemplars. With φ̂(x) = φ(x)/‖φ(x)‖ (φ the features before the head) and
///   μ_y the normalised mean of φ̂ over class y's exemplars, a test sample gets the class argmin_y ‖φ̂(x) − μ_y‖²
///   (scores −‖φ̂(x) − μ_y‖²; a class without exemplars scores −∞). In the task-incremental scenario the classes
///   are those of the evaluated task's head.
///
/// Weight decay: the reference adds ε·Σθ² (ε = 1e-5) to the loss; use `training.weight_decay` = 2ε for the same
/// update (Mammoth's best value for Sequential MNIST is 0). Deviation: the reference averages the class means of
/// the exemplars and of their horizontal flips (a CIFAR augmentation); Engram takes the exemplars as stored —
/// flipping digits makes other characters, and no Engram benchmark trains with flips outside CIFAR.
public final class ICaRL: RegisteredStrategy, EvaluationScoring {
    public static let descriptors = [StrategyDescriptor(
        name: "icarl", summary: "iCaRL: herding exemplars, sigmoid distillation, nearest-mean-of-exemplars classifier",
        paper: "Rebuffi et al., CVPR 2017 (iCaRL: Incremental Classifier and Representation Learning)",
        hyperparameters: [.bufferSize(default: 500)],
        scenarios: [.classIncremental, .taskIncremental], changesTrainingData: true, replacesCriterion: true,
        make: { o in ICaRL(bufferSize: o.integer("buffer_size")) })]

    let memory: ReplayMemory
    /// z*, the network as it ended the previous task (empty during task 0).
    public private(set) var oldModel = FrozenModel()
    /// The class means μ of the model as it is now, by (task, target); nil once the model or memory changed.
    private var classMeans: [Int64: [Float]]?

    public init(bufferSize: Int) {
        memory = ReplayMemory(capacity: bufferSize, policy: .herding, owner: "icarl")
    }

    public var name: String { "icarl" }
    public var changesTrainingData: Bool { true }
    /// The exemplar memory (nil before the first task ended).
    public var buffer: ReplayBuffer? { memory.buffer }

    public func beforeTask(_ task: Int, context: TrainingContext) throws {
        guard context.stream.scenario != .domainIncremental else {
            throw StrategyError(key: "scenario", "domain: iCaRL needs the classes of a task to be new classes (class- or task-incremental)")
        }
        try memory.check(context)
    }

    public func trainingBatches(task: Int, epoch: Int, context: TrainingContext) -> Batches {
        memory.rehearsalBatches(task: task, epoch: epoch, context: context)
    }

    /// The BCE targets: one-hot labels, with the old network's σ(z*) on the units of earlier tasks' classes.
    public func targets(output: Tensor, batch: Batch, context: TrainingContext) -> Tensor {
        let (rows, width) = (output.shape[0], output.shape[1])
        var targets = [Float](repeating: 0, count: rows * width)
        for (r, label) in batch.labels.enumerated() where label < width { targets[r * width + label] = 1 }
        guard context.task > 0, !oldModel.isEmpty else { return Tensor(shape: [rows, width], scalars: targets) }
        let old = oldModel.evaluate(context.model) { ReplayMemory.forward(batch, context: context).sigmoid() }.scalars
        let stream = context.stream
        switch stream.scenario {
        case .classIncremental:
            let pastUnits = (0..<context.task).flatMap { stream.outputClasses(task: $0) }
            for r in 0..<rows { for o in pastUnits where o < width { targets[r * width + o] = old[r * width + o] } }
        default:
            for r in 0..<rows where batch.taskIDs[r] < context.task {
                for o in 0..<width { targets[r * width + o] = old[r * width + o] }
            }
        }
        return Tensor(shape: [rows, width], scalars: targets)
    }

    /// mean BCE(σ(z), y) = mean(max(z, 0) − z·y + log(1 + e^{−|z|})), the numerically stable form.
    public func criterion(taskLoss: Tensor, output: Tensor, batch: Batch, context: TrainingContext) -> Tensor? {
        classMeans = nil
        let y = targets(output: output, batch: batch, context: context)
        return (output.relu() - output * y + ((output.abs() * -1).exp() + 1).log()).mean()
    }

    /// z* ← the network; the memory refilled by herding; the class means recomputed at the next evaluation.
    public func afterTask(_ task: Int, context: TrainingContext) throws {
        oldModel = FrozenModel(copying: context.model)
        memory.fillByHerding(task: task, context: context)
        classMeans = nil
    }

    /// μ for every stored class: the normalised mean of its exemplars' normalised features.
    func computeClassMeans(context: TrainingContext) -> [Int64: [Float]] {
        guard let buffer, !buffer.isEmpty else { return [:] }
        let model = context.model
        let restore = model.enterEvaluationMode()
        defer { restore(); model.setActiveTask(context.task) }
        var sums: [Int64: [Double]] = [:]
        var random = context.generator("icarl/class means")
        for start in stride(from: 0, to: buffer.count, by: 256) {
            let slots = Array(start ..< min(start + 256, buffer.count))
            let batch = buffer.batch(slots, stream: context.stream, random: &random)
            let (values, width) = ReplayMemory.normalizedFeatures(batch.inputs, model: model)
            for (r, slot) in slots.enumerated() {
                let key = ReplayBuffer.classKey(task: buffer.tasks[slot], label: buffer.labels[slot])
                var sum = sums[key] ?? [Double](repeating: 0, count: width)
                for d in 0..<width { sum[d] += Double(values[r * width + d]) }
                sums[key] = sum
            }
        }
        return sums.mapValues { sum in
            let norm = sum.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return sum.map { Float(norm > 0 ? $0 / norm : 0) }
        }
    }

    /// −‖φ̂(x) − μ_y‖² for every unit y of `task`'s head (−∞ for a class without exemplars).
    public func evaluationScores(_ inputs: Tensor, task: Int, context: TrainingContext) -> Tensor {
        let means = classMeans ?? computeClassMeans(context: context)
        classMeans = means
        let stream = context.stream, width = stream.headSize(task: task)
        // The task each unit's class belongs to: in a class-incremental head the task whose classes hold it.
        var owner = [Int](repeating: task, count: width)
        if stream.scenario == .classIncremental {
            for t in 0..<stream.taskCount { for o in stream.outputClasses(task: t) where o < width { owner[o] = t } }
        }
        let (features, dimension) = ReplayMemory.normalizedFeatures(inputs, model: context.model)
        let rows = inputs.shape[0]
        var scores = [Float](repeating: -.greatestFiniteMagnitude, count: rows * width)
        for o in 0..<width {
            guard let mean = means[ReplayBuffer.classKey(task: Int32(owner[o]), label: Int32(o))], mean.count == dimension else { continue }
            for r in 0..<rows {
                var distance: Float = 0
                for d in 0..<dimension { let gap = features[r * dimension + d] - mean[d]; distance += gap * gap }
                scores[r * width + o] = -distance
            }
        }
        return Tensor(shape: [rows, width], scalars: scores)
    }

    public var memoryBytes: Int { memory.bytes + oldModel.memoryBytes }

    public func saveState() throws -> StrategyState {
        var state = try memory.saveState().prefixed("memory")
        state.add(oldModel.state.tensors(prefix: "old"))
        return state
    }

    public func loadState(_ state: StrategyState, context: TrainingContext) throws {
        try memory.loadState(state.scoped("memory"), context: context)
        oldModel = FrozenModel(state: .from(state.tensors, prefix: "old"))
        classMeans = nil
    }
}
