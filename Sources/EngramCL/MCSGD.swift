import EngramTensor
import EngramData
import EngramNN

/// Mode Connectivity SGD, MC-SGD (Mirzadeh, Farajtabar, Gorur, Pascanu & Ghasemzadeh, ICLR 2021, "Linear Mode
/// Connectivity in Multitask and Continual Learning"), read against the authors' experiment code
/// (`CL-LinearModeConnectivity`: `core/train_methods.py` `train_task_LMC_offline`, `core/mode_connectivity.py`) and
/// their later library CL-Gym (`cl_gym/algorithms/mcsgd.py`).
///
/// Task t is first trained by the run's SGD from the previous continual minimum w̄ₜ₋₁, reaching ŵₜ. Then the next
/// continual minimum is sought on low-loss lines: from w = w̄ₜ₋₁ + α(ŵₜ − w̄ₜ₋₁), SGD (`line_lr`, the run's momentum,
/// a fresh optimizer per task) descends
///
///     F(w) = Σₖ L_mem(w̄ₜ₋₁ + aₖ(w − w̄ₜ₋₁)) + Σₖ L_t(ŵₜ + aₖ(w − ŵₜ)),   aₖ = k/n, k = 0…n (n = `line_samples`),
///
/// L_mem the cross-entropy on the episodic memory of tasks 1…t−1 (`memory_per_class` random training samples of each
/// class of each task, stored when the task ends) and L_t on `subset_size` random training samples of task t, so
/// that w stays linearly connected through low loss to the old minimum (on the memory) and to the new task's.
/// As the authors' code, `line_epochs` passes are made over both sets in batches of `line_batch_size`: step i takes
/// the memory's i-th batch and the subset's i-th batch, for as many steps as the longer of the two has batches (the
/// shorter one's segment drops out once it runs out). Line losses are taken in evaluation mode (no dropout,
/// BatchNorm's running statistics), as their `net.eval()`. After the first task w̄₁ = ŵ₁. The authors' Permuted
/// MNIST setting: α 0.25, n 5, line lr 6·10⁻⁴, batch 16, a subset of 2 000 (400 on Rotated MNIST), memory 1 sample
/// per class per task, and the sequential steps' learning rate decayed ×0.7 per task — `stable-sgd+mc-sgd`.
///
/// Deviations (see docs/results.md for their measured effect):
/// - the gradient is the objective's, ∇F(w) = Σₖ aₖ∇L(pointₖ) (the chain rule through w − w̄). Both reference codes
///   sum ∇L(pointₖ) without aₖ and, never zeroing the gradients between points, accumulate them: their step weights
///   the point nearest the old minimum n + 1 times and w itself once. `reference_gradient: true` reproduces that.
/// - the authors' experiment code trains task t+1 from ŵₜ (the sequential chain) and only reports w̄ₜ; Engram continues
///   from w̄ₜ, as CL-Gym and the paper's continual setting (one model, trained on).
/// - the memory holds 1…t−1 during the search for w̄ₜ (the paper's L₁…ₜ₋₁ and CL-Gym; the experiment code includes
///   task t's share), drawn class-balanced (theirs: ⌊M / T⌋ at random).
public final class MCSGD: RegisteredStrategy {
    public static let descriptors = [StrategyDescriptor(
        name: "mc-sgd", summary: "MC-SGD: after each task, descend the losses along the lines to the old and the new minimum (replay memory + task subset)",
        paper: "Mirzadeh, Farajtabar, Gorur, Pascanu & Ghasemzadeh, ICLR 2021 (Linear Mode Connectivity in Multitask and Continual Learning)",
        hyperparameters: [
            .real("alpha", symbol: "α", default: 0.25, range: .unitInterval,
                  help: "α, where the search starts on the segment from the old continual minimum to the new task's: w̄ₜ₋₁ + α(ŵₜ − w̄ₜ₋₁)."),
            .integer("line_samples", default: 5, range: .atLeastOne,
                     help: "n: the line losses are taken at aₖ = k/n, k = 0…n (n + 1 points on each segment)."),
            .real("line_lr", default: 0.0006, range: .positive,
                  help: "Learning rate of the SGD steps on the line objective (with the run's momentum; the authors' 6·10⁻⁴ on Permuted MNIST)."),
            .integer("line_epochs", default: 1, range: .atLeastOne, help: "Passes over the memory and the subset after each task."),
            .integer("line_batch_size", default: 16, range: .atLeastOne, help: "Samples of the memory and of the subset per line step."),
            .integer("memory_per_class", default: 1, range: .atLeastOne,
                     help: "Training samples of each class of each task kept in the episodic memory."),
            .integer("subset_size", default: 2000, range: .atLeastOne,
                     help: "Random training samples of the new task whose loss is taken along its segment (the authors' 2 000 on Permuted MNIST, 400 on Rotated MNIST)."),
            .boolean("reference_gradient", default: false,
                     help: "Use the reference code's gradient (the points' gradients accumulated without aₖ) instead of the objective's."),
        ],
        make: { o in MCSGD(alpha: o.float("alpha"), lineSamples: o.integer("line_samples"), lineLearningRate: o.float("line_lr"),
                           lineEpochs: o.integer("line_epochs"), lineBatchSize: o.integer("line_batch_size"),
                           memoryPerClass: o.integer("memory_per_class"),
                           subsetSize: o.integer("subset_size"), referenceGradient: o.bool("reference_gradient")) })]

    public let alpha: Float, lineSamples: Int, lineLearningRate: Float, lineEpochs: Int, lineBatchSize: Int
    public let memoryPerClass: Int, subsetSize: Int
    public let referenceGradient: Bool
    /// The episodic memory (filled by ``storeMemory(of:context:)`` only, so its capacity never binds).
    let memory = ReplayMemory(capacity: Int(Int32.max), policy: .reservoir, owner: "mc-sgd")
    /// w̄ₜ₋₁, the last continual minimum (empty before the first task ends).
    public private(set) var previousMinimum: ParameterMap = [:]

    public init(alpha: Float = 0.25, lineSamples: Int = 5, lineLearningRate: Float = 0.0006, lineEpochs: Int = 1, lineBatchSize: Int = 16,
                memoryPerClass: Int = 1, subsetSize: Int = 2000, referenceGradient: Bool = false) {
        self.alpha = alpha; self.lineSamples = lineSamples; self.lineLearningRate = lineLearningRate
        self.lineEpochs = lineEpochs; self.lineBatchSize = lineBatchSize
        self.memoryPerClass = memoryPerClass; self.subsetSize = subsetSize; self.referenceGradient = referenceGradient
    }

    public var name: String { "mc-sgd" }
    /// The memory (nil before the first task ends).
    public var buffer: ReplayBuffer? { memory.buffer }

    public func beforeTask(_ task: Int, context: TrainingContext) throws { try ReplayMemory.checkRoutable(context) }

    /// Finds w̄ₜ (from the second task on), then stores the task's samples in the memory and w̄ₜ.
    public func afterTask(_ task: Int, context: TrainingContext) throws {
        let parameters = context.model.namedParameters()
        if task > 0, !previousMinimum.isEmpty, let stored = memory.buffer, !stored.isEmpty {
            try searchConnectedMinimum(task: task, memory: stored, parameters: parameters, context: context)
        }
        storeMemory(of: task, context: context)
        previousMinimum = .values(of: parameters)
    }

    /// w̄ₜ: `line_epochs` passes of line steps from w̄ₜ₋₁ + α(ŵₜ − w̄ₜ₋₁), the model's parameters holding ŵₜ on entry
    /// and w̄ₜ on return.
    func searchConnectedMinimum(task: Int, memory stored: ReplayBuffer, parameters: [(String, Tensor)], context: TrainingContext) throws {
        let model = context.model, stream = context.stream
        let restore = model.enterEvaluationMode()
        defer { restore(); model.setActiveTask(task); model.zeroGrad() }
        let previous = parameters.flatMap { previousMinimum[$0.0]! }
        let newMinimum = parameters.flatMap { $0.1.scalars }
        let subset = stream.trainingBatches(task: task, epoch: 3_000_000, batchSize: subsetSize).first { _ in true }
        /// ∇ of the mean cross-entropy of `batch` at a point, over every parameter (flat); memory samples go
        /// through their own tasks' heads.
        func gradient(_ batch: Batch) -> ([Float]) -> [Float] {
            { point in
                ReplayMemory.setValues(point, of: parameters)
                model.zeroGrad()
                let output = ReplayMemory.forward(batch, context: context)
                Losses.crossEntropy(output, targets: batch.labels, allowedClasses: context.activeClasses).backward()
                return Array(ReplayMemory.gradients(of: parameters).joined())
            }
        }
        let optimizer = SGD(parameters, learningRate: lineLearningRate, momentum: context.configuration.momentum)
        var w = zip(previous, newMinimum).map { $0 + alpha * ($1 - $0) }
        for epoch in 0..<lineEpochs {
            var random = context.generator("mc-sgd/line batches/task \(task)/epoch \(epoch)")
            let memoryBatches = Self.chunks(of: stored.count, size: lineBatchSize, random: &random).map {
                stored.batch($0, stream: stream, random: &random)
            }
            let subsetBatches = subset.map { s in Self.chunks(of: s.count, size: lineBatchSize, random: &random).map { s.rows($0) } } ?? []
            for i in 0..<max(memoryBatches.count, subsetBatches.count) {
                var g = [Float](repeating: 0, count: w.count)
                var segments: [([Float], Batch)] = []
                if i < memoryBatches.count { segments.append((previous, memoryBatches[i])) }
                if i < subsetBatches.count { segments.append((newMinimum, subsetBatches[i])) }
                for (start, batch) in segments {
                    let part = Self.lineGradient(from: start, to: w, points: lineSamples, referenceAccumulation: referenceGradient,
                                                 gradient: gradient(batch))
                    for j in g.indices { g[j] += part[j] }
                }
                guard g.allSatisfy(\.isFinite) else {
                    throw TrainingError(description: "mc-sgd: the line gradient became non-finite at task \(task + 1), line step \(i + 1); lower line_lr")
                }
                ReplayMemory.setValues(w, of: parameters)
                ReplayMemory.setGradients(g, of: parameters)
                optimizer.step()
                w = parameters.flatMap { $0.1.scalars }
            }
        }
        ReplayMemory.setValues(w, of: parameters)
    }

    /// A seeded shuffle of 0..<count cut into consecutive groups of `size` (the last one the rest).
    static func chunks(of count: Int, size: Int, random: inout RandomGenerator) -> [[Int]] {
        let order = random.permutation(count)
        return stride(from: 0, to: count, by: size).map { Array(order[$0 ..< min($0 + size, count)]) }
    }

    /// The gradient with respect to w of Σₖ L(s + aₖ(w − s)), aₖ = k/n (k = 0…n): Σₖ aₖ ∇L(s + aₖ(w − s)).
    /// With `referenceAccumulation`, CL-Gym's: Σₖ Σ_{j ≤ k} ∇L(point_j) (no aₖ; gradients never zeroed between points).
    public static func lineGradient(from start: [Float], to w: [Float], points n: Int, referenceAccumulation: Bool = false,
                                    gradient: ([Float]) -> [Float]) -> [Float] {
        var total = [Float](repeating: 0, count: w.count), running = total
        for k in 0...n {
            let a = Float(k) / Float(n)
            let g = gradient(zip(start, w).map { $0 + a * ($1 - $0) })
            if referenceAccumulation {
                for i in total.indices { running[i] += g[i]; total[i] += running[i] }
            } else {
                for i in total.indices { total[i] += a * g[i] }
            }
        }
        return total
    }

    /// `memory_per_class` samples of each of `task`'s classes, the first ones of a shuffle of its training data
    /// (an epoch index no training pass uses).
    func storeMemory(of task: Int, context: TrainingContext) {
        let stream = context.stream
        let buffer = memory.buffer(context)
        let classes = stream.outputClasses(task: task).count
        var taken: [Int: Int] = [:], stored = 0
        for batch in stream.trainingBatches(task: task, epoch: 1_000_000, batchSize: 256) {
            let pixels = stream.storedPixels(of: batch)
            for (r, label) in batch.labels.enumerated() where taken[label, default: 0] < memoryPerClass {
                buffer.append(pixels: pixels[r * buffer.sampleBytes ..< (r + 1) * buffer.sampleBytes], label: label, task: task)
                taken[label, default: 0] += 1
                stored += 1
            }
            if stored == classes * memoryPerClass { break }
        }
    }

    /// The memory's bytes and w̄'s floats.
    public var memoryBytes: Int { memory.bytes + previousMinimum.byteCount }

    /// The memory's tensors and records, and w̄ (`minimum.<parameter>`).
    public func saveState() throws -> StrategyState {
        var state = try memory.saveState()
        state.add(previousMinimum.tensors(prefix: "minimum"))
        return state
    }

    public func loadState(_ state: StrategyState, context: TrainingContext) throws {
        var memoryState = state
        for key in state.tensors.keys where key.hasPrefix("minimum.") { memoryState.tensors[key] = nil }
        try memory.loadState(memoryState, context: context)
        previousMinimum = try state.parameterMap("minimum", model: context.model)
        let missing = context.model.namedParameters().map(\.0).filter { previousMinimum[$0] == nil }
        guard previousMinimum.isEmpty || missing.isEmpty else {
            throw StrategyError("tensor 'minimum.\(missing[0])' is missing: w̄ must cover every parameter")
        }
    }
}
