import EngramTensor
import EngramData
import EngramNN

/// How a replay memory chooses what to keep once it is full.
public enum ReplayPolicy: String, Sendable, Codable, CaseIterable {
    /// Reservoir sampling (Vitter 1985, algorithm R), the memory of experience replay (Chaudhry et al. 2019) and
    /// Mammoth's `Buffer`: the n-th sample offered is kept with probability capacity / n, in a uniformly chosen
    /// slot — every sample offered so far is in memory with the same probability.
    case reservoir
    /// A ring buffer per class (Chaudhry et al. 2019, "tiny episodic memories"): each of the stream's C classes owns
    /// ⌊capacity / C⌋ slots, filled in order and then overwritten oldest first, so the memory never holds more than
    /// ⌊capacity / C⌋ samples of a class and keeps each class's most recent ones.
    case classBalanced = "class-balanced"
    /// Greedy class balancing (GDumb, Prabhu et al. 2020): while there is room every sample is kept; once full, a
    /// sample whose class has fewer samples than the largest class replaces a random sample of a largest class
    /// (a seeded choice among ties); the number of classes need not be known.
    case greedyBalanced = "greedy-balanced"
    /// Herding (iCaRL, Rebuffi et al. 2017): nothing is stored while a task trains; when it ends, each class seen
    /// so far keeps ⌊capacity / classes⌋ exemplars — the first ones of its earlier herding order for old classes,
    /// and for the task's new classes the samples picked one by one so that the running mean of their normalised
    /// features stays closest to the class mean (``Herding/select(_:dimension:count:)``).
    case herding
}

/// iCaRL's herding selection (Rebuffi et al. 2017, algorithm 4; Mammoth's `fill_buffer`).
public enum Herding {
    /// Indices of `count` rows of `features` (n rows of `dimension` values, normalised by the caller), chosen in
    /// order: the k-th is the row p not chosen yet that minimises ‖μ − (p + Σ_{i<k} p_i) / k‖, μ the mean of all
    /// rows — the exemplars whose running mean approaches the class mean fastest. Ties go to the lowest index.
    public static func select(_ features: [Float], dimension: Int, count: Int) -> [Int] {
        let n = dimension == 0 ? 0 : features.count / dimension
        precondition(n * dimension == features.count, "Herding: \(features.count) values are not rows of \(dimension)")
        var mean = [Double](repeating: 0, count: dimension)
        for r in 0..<n { for d in 0..<dimension { mean[d] += Double(features[r * dimension + d]) } }
        for d in 0..<dimension { mean[d] /= Double(max(n, 1)) }
        var running = [Double](repeating: 0, count: dimension)
        var taken = [Bool](repeating: false, count: n)
        var chosen: [Int] = []
        let target = min(count, n)
        guard target > 0 else { return [] }
        for k in 1...target {
            var best = -1, bestCost = Double.infinity
            for r in 0..<n where !taken[r] {
                var cost = 0.0
                for d in 0..<dimension {
                    let gap = mean[d] - (running[d] + Double(features[r * dimension + d])) / Double(k)
                    cost += gap * gap
                }
                if cost < bestCost { bestCost = cost; best = r }
            }
            taken[best] = true
            chosen.append(best)
            for d in 0..<dimension { running[d] += Double(features[best * dimension + d]) }
        }
        return chosen
    }
}

/// A seeded, checkpointable replay memory: each stored sample is its input as the dataset stores it (pixel bytes,
/// before its task's transform — 1 byte per pixel, as a paper's "memory of M images" counts), its target, its task
/// and optionally the model's logits when it was stored (DER's dark knowledge). ``batch(_:stream:random:)`` turns
/// stored samples back into a training batch through the stream (task transform, normalisation, augmentation).
///
/// A class is a (task, target) pair, so task-incremental classes that share a target stay apart and a
/// domain-incremental memory is balanced over tasks too. Every choice draws from the memory's own generator, kept in
/// its state, so a run resumed from a checkpoint stores exactly what the uninterrupted run stores.
public final class ReplayBuffer {
    /// Samples the memory holds at most.
    public let capacity: Int
    public let policy: ReplayPolicy
    /// Bytes of one stored input (`TaskStream.storedSampleBytes`).
    public let sampleBytes: Int
    /// Logits stored per sample (0: none).
    public let logitWidth: Int
    /// Stored inputs, `sampleBytes` per sample.
    public private(set) var pixels: [UInt8] = []
    /// Stored targets (scenario label space) and tasks.
    public private(set) var labels: [Int32] = []
    public private(set) var tasks: [Int32] = []
    /// Stored logits, `logitWidth` per sample.
    public private(set) var logits: [Float] = []
    /// Samples offered so far (reservoir's n).
    public private(set) var seen = 0
    /// The stream's number of classes (the class-balanced ring's C; nil for the other policies).
    public let classCount: Int?
    private var random: RandomGenerator
    /// The class-balanced ring: each class's slots in the order they were filled, and how many of its samples
    /// overwrote an older one.
    private var classSlots: [Int64: [Int]] = [:]
    private var overwrites: [Int64: Int] = [:]

    /// An empty memory whose choices draw from `random` (derive it from the run's seed). The class-balanced policy
    /// needs `classCount`, the stream's number of classes, at most `capacity`.
    public init(capacity: Int, policy: ReplayPolicy, sampleBytes: Int, logitWidth: Int = 0, classCount: Int? = nil,
                random: RandomGenerator) {
        precondition(capacity >= 1 && sampleBytes >= 1 && logitWidth >= 0,
                     "ReplayBuffer: capacity \(capacity), sample bytes \(sampleBytes), logit width \(logitWidth)")
        precondition(policy != .classBalanced || (classCount.map { $0 >= 1 && $0 <= capacity } ?? false),
                     "ReplayBuffer: the class-balanced ring needs between 1 and \(capacity) classes, got \(classCount.map(String.init) ?? "none")")
        self.capacity = capacity; self.policy = policy; self.sampleBytes = sampleBytes; self.logitWidth = logitWidth
        self.classCount = policy == .classBalanced ? classCount : nil
        self.random = random
    }

    /// Slots each class owns in the class-balanced ring, ⌊capacity / C⌋.
    public var classQuota: Int? { classCount.map { capacity / $0 } }

    static func classKey(task: Int32, label: Int32) -> Int64 { Int64(task) << 32 | Int64(UInt32(bitPattern: label)) }

    /// Samples stored.
    public var count: Int { labels.count }
    public var isEmpty: Bool { labels.isEmpty }
    /// Bytes held: a byte per pixel, four per target, task and logit.
    public var bytes: Int { pixels.count + 4 * (labels.count + tasks.count + logits.count) }

    /// Offers every sample of `batch` that comes from the dataset (a stream batch; in a batch that another method
    /// extended with replayed samples, index −1, only the stream's part) in order; `logits` (`[batch, logitWidth]`)
    /// are stored with them when the memory keeps logits.
    /// A herding memory takes nothing here: it is filled when a task ends (``keepFirst(perClass:)``, ``append``).
    public func offer(_ batch: Batch, stream: any TaskStream, logits batchLogits: Tensor? = nil) {
        guard policy != .herding else { return }
        precondition(stream.storedSampleBytes == sampleBytes, "ReplayBuffer of \(sampleBytes)-byte samples offered \(stream.storedSampleBytes)-byte ones")
        precondition((batchLogits == nil) == (logitWidth == 0) && (batchLogits.map { $0.shape == [batch.count, logitWidth] } ?? true),
                     "ReplayBuffer keeping \(logitWidth) logits offered logits of shape \(batchLogits?.shape ?? [])")
        if batch.indices.count == batch.count, batch.indices.contains(where: { $0 < 0 }) {
            let rows = batch.indices.indices.filter { batch.indices[$0] >= 0 }
            guard !rows.isEmpty else { return }
            return offer(batch.rows(rows), stream: stream, logits: batchLogits.map { $0.indexSelect(rows).detached() })
        }
        let bytes = stream.storedPixels(of: batch)
        let values = batchLogits?.scalars ?? []
        for s in 0..<batch.count {
            offer(pixels: bytes[s * sampleBytes ..< (s + 1) * sampleBytes], label: batch.labels[s], task: batch.taskIDs[s],
                  logits: values.isEmpty ? [] : values[s * logitWidth ..< (s + 1) * logitWidth])
        }
    }

    /// Offers one sample; returns the slot it was stored in, or nil when the policy passed it over.
    @discardableResult
    public func offer(pixels sample: ArraySlice<UInt8>, label: Int, task: Int, logits sampleLogits: ArraySlice<Float> = []) -> Int? {
        precondition(sample.count == sampleBytes && sampleLogits.count == logitWidth, "sample of \(sample.count) bytes, \(sampleLogits.count) logits")
        precondition(policy != .herding, "a herding memory is filled when a task ends, not sample by sample")
        seen += 1
        if policy == .classBalanced { return ringSlot(sample, label: label, task: task, logits: sampleLogits) }
        let slot: Int?
        if count < capacity {
            slot = count
            pixels += sample; labels.append(Int32(label)); tasks.append(Int32(task)); logits += sampleLogits
            return slot
        }
        switch policy {
        case .reservoir:
            let j = random.nextInt(below: seen)
            slot = j < capacity ? j : nil
        case .greedyBalanced:
            slot = greedyBalancedSlot(label: Int32(label), task: Int32(task))
        case .classBalanced, .herding:
            preconditionFailure("the ring and herding are handled above")
        }
        guard let slot else { return nil }
        pixels.replaceSubrange(slot * sampleBytes ..< (slot + 1) * sampleBytes, with: sample)
        labels[slot] = Int32(label); tasks[slot] = Int32(task)
        logits.replaceSubrange(slot * logitWidth ..< (slot + 1) * logitWidth, with: sampleLogits)
        return slot
    }

    /// Stores a sample in its class's ring: a new slot while the class has fewer than its quota, else over the
    /// class's oldest sample.
    private func ringSlot(_ sample: ArraySlice<UInt8>, label: Int, task: Int, logits sampleLogits: ArraySlice<Float>) -> Int {
        let key = Self.classKey(task: Int32(task), label: Int32(label))
        let own = classSlots[key, default: []]
        if own.count < classQuota! {
            let slot = count
            precondition(slot < capacity, "the class-balanced ring holds more classes than \(classCount!)")
            pixels += sample; labels.append(Int32(label)); tasks.append(Int32(task)); logits += sampleLogits
            classSlots[key, default: []].append(slot)
            return slot
        }
        let slot = own[overwrites[key, default: 0] % own.count]
        overwrites[key, default: 0] += 1
        pixels.replaceSubrange(slot * sampleBytes ..< (slot + 1) * sampleBytes, with: sample)
        logits.replaceSubrange(slot * logitWidth ..< (slot + 1) * logitWidth, with: sampleLogits)
        return slot
    }

    /// The slot a sample of class (task, label) takes in a full greedily balanced memory: a random sample of a
    /// largest class, when the sample's class is smaller than it; nil otherwise.
    private func greedyBalancedSlot(label: Int32, task: Int32) -> Int? {
        var slotsOfClass: [Int64: [Int]] = [:]
        for i in 0..<count { slotsOfClass[Self.classKey(task: tasks[i], label: labels[i]), default: []].append(i) }
        let largest = slotsOfClass.values.map(\.count).max() ?? 0
        guard (slotsOfClass[Self.classKey(task: task, label: label)]?.count ?? 0) < largest else { return nil }
        let candidates = slotsOfClass.filter { $0.value.count == largest }.keys.sorted()
        let victims = slotsOfClass[candidates[random.nextInt(below: candidates.count)]]!
        return victims[random.nextInt(below: victims.count)]
    }

    /// Keeps the first `quota` stored samples of every class (in slot order: a herding memory's exemplars in the
    /// order herding chose them), the classes in the order they are stored.
    public func keepFirst(perClass quota: Int) {
        var kept: [Int64: Int] = [:], slots: [Int] = []
        for i in 0..<count {
            let key = Self.classKey(task: tasks[i], label: labels[i])
            if kept[key, default: 0] < quota { kept[key, default: 0] += 1; slots.append(i) }
        }
        guard slots.count < count else { return }
        pixels = slots.flatMap { pixels[$0 * sampleBytes ..< ($0 + 1) * sampleBytes] }
        logits = slots.flatMap { logits[$0 * logitWidth ..< ($0 + 1) * logitWidth] }
        labels = slots.map { labels[$0] }
        tasks = slots.map { tasks[$0] }
    }

    /// Stores a sample in the next free slot (a herding memory's fill); the memory must have room.
    public func append(pixels sample: ArraySlice<UInt8>, label: Int, task: Int, logits sampleLogits: ArraySlice<Float> = []) {
        precondition(count < capacity && sample.count == sampleBytes && sampleLogits.count == logitWidth,
                     "append to a memory holding \(count) of \(capacity) samples")
        seen += 1
        pixels += sample; labels.append(Int32(label)); tasks.append(Int32(task)); logits += sampleLogits
    }

    /// `size` distinct stored slots drawn uniformly (all of them, shuffled, when fewer are stored) — as Mammoth's
    /// `get_data` draws without replacement.
    public func sampleSlots(_ size: Int, random: inout RandomGenerator) -> [Int] {
        var slots = Array(0..<count)
        let k = min(size, count)
        for i in 0..<k { slots.swapAt(i, i + random.nextInt(below: count - i)) }
        return Array(slots.prefix(k))
    }

    /// A training batch of the samples in `slots`, rebuilt through `stream` (augmentation draws from `random`).
    public func batch(_ slots: [Int], stream: any TaskStream, random: inout RandomGenerator) -> Batch {
        var bytes = [UInt8](); bytes.reserveCapacity(slots.count * sampleBytes)
        for slot in slots { bytes += pixels[slot * sampleBytes ..< (slot + 1) * sampleBytes] }
        return stream.replayBatch(pixels: bytes, tasks: slots.map { Int(tasks[$0]) }, labels: slots.map { Int(labels[$0]) },
                                  random: &random)
    }

    /// The stored logits of `slots` as `[slots, logitWidth]`.
    public func logits(_ slots: [Int]) -> Tensor {
        var values = [Float](); values.reserveCapacity(slots.count * logitWidth)
        for slot in slots { values += logits[slot * logitWidth ..< (slot + 1) * logitWidth] }
        return Tensor(shape: [slots.count, logitWidth], scalars: values)
    }

    /// What the memory holds, for a strategy's ``StrategyState`` (prefix it with the strategy's own name for it).
    public func saveState() throws -> StrategyState {
        var state = StrategyState(tensors: [("pixels", Tensor(shape: [count, sampleBytes], scalars: pixels.map(Float.init))),
                                            ("labels", Tensor(shape: [count], scalars: labels.map(Float.init))),
                                            ("tasks", Tensor(shape: [count], scalars: tasks.map(Float.init)))])
        if logitWidth > 0 { state.add([("logits", Tensor(shape: [count, logitWidth], scalars: logits))]) }
        let ring = overwrites.isEmpty ? nil : Dictionary(uniqueKeysWithValues: overwrites.map { key, n in
            ("\(key >> 32)/\(Int32(truncatingIfNeeded: key))", n) })
        try state.record(Header(capacity: capacity, policy: policy, sampleBytes: sampleBytes, logitWidth: logitWidth,
                                seen: seen, random: random, classCount: classCount, overwrites: ring), as: "memory")
        return state
    }

    /// Restores what ``saveState()`` wrote; throws, naming the record or tensor, for a state of another memory or a
    /// damaged one. The memory's own configuration (capacity, policy, sample size, logits) must match.
    public func loadState(_ state: StrategyState, taskCount: Int) throws {
        let header = try state.record(Header.self, "memory")
        guard header.capacity == capacity, header.policy == policy, header.sampleBytes == sampleBytes, header.logitWidth == logitWidth,
              header.classCount == classCount else {
            throw StrategyError("record 'memory' describes a memory of \(header.capacity) \(header.policy.rawValue) samples of \(header.sampleBytes) bytes "
                + "and \(header.logitWidth) logits, this run's holds \(capacity) \(policy.rawValue) samples of \(sampleBytes) bytes and \(logitWidth) logits")
        }
        func values(_ name: String, count expected: Int, _ valid: (Float) -> Bool) throws -> [Float] {
            guard let tensor = state.tensors[name] else { throw StrategyError("tensor '\(name)' is missing") }
            guard tensor.count == expected else { throw StrategyError("tensor '\(name)' has \(tensor.count) values, expected \(expected)") }
            if let bad = tensor.scalars.first(where: { !valid($0) }) { throw StrategyError("tensor '\(name)' holds \(bad)") }
            return tensor.scalars
        }
        let n = state.tensors["labels"]?.count ?? 0
        guard n <= capacity, header.seen >= n else {
            throw StrategyError("tensor 'labels' holds \(n) samples, more than the capacity \(capacity) or the \(header.seen) offered")
        }
        let integral = { (x: Float) in x.rounded() == x }
        let restoredPixels = try values("pixels", count: n * sampleBytes) { integral($0) && $0 >= 0 && $0 <= 255 }
        let restoredLabels = try values("labels", count: n) { integral($0) && $0 >= 0 && $0 < 1e6 }
        let restoredTasks = try values("tasks", count: n) { integral($0) && $0 >= 0 && Int($0) < taskCount }
        let restoredLogits = logitWidth == 0 ? [] : try values("logits", count: n * logitWidth) { $0.isFinite }
        var slots: [Int64: [Int]] = [:], ring: [Int64: Int] = [:]
        if policy == .classBalanced {
            for i in 0..<n { slots[Self.classKey(task: Int32(restoredTasks[i]), label: Int32(restoredLabels[i])), default: []].append(i) }
            if let over = slots.first(where: { $0.value.count > classQuota! }) {
                throw StrategyError("tensor 'labels' holds \(over.value.count) samples of one class, above the ring's \(classQuota!)")
            }
            for (name, n) in header.overwrites ?? [:] {
                let parts = name.split(separator: "/").compactMap { Int32($0) }
                guard parts.count == 2, n >= 0, slots[Self.classKey(task: parts[0], label: parts[1])] != nil else {
                    throw StrategyError("record 'memory' has a ring position '\(name)' = \(n) for no stored class")
                }
                ring[Self.classKey(task: parts[0], label: parts[1])] = n
            }
        }
        pixels = restoredPixels.map { UInt8($0) }
        labels = restoredLabels.map { Int32($0) }
        tasks = restoredTasks.map { Int32($0) }
        logits = restoredLogits
        seen = header.seen
        random = header.random
        classSlots = slots
        overwrites = ring
    }

    struct Header: Codable {
        var capacity: Int, policy: ReplayPolicy, sampleBytes: Int, logitWidth: Int, seen: Int, random: RandomGenerator
        /// The class-balanced ring's class count and per-class overwrite counts (`"task/target"`).
        var classCount: Int?, overwrites: [String: Int]?
    }
}

extension HyperparameterSpec {
    /// The memory's capacity in samples (`--buffer-size`).
    static func bufferSize(default value: Int) -> HyperparameterSpec {
        .integer("buffer_size", symbol: "M", default: value, range: .atLeastOne,
                 help: "M, the memory's capacity in samples (stored as the dataset's bytes: 784 per MNIST image).")
    }
    /// Samples drawn from the memory per training step (`--replay-batch-size`).
    static func replayBatchSize(default value: Int) -> HyperparameterSpec {
        .integer("replay_batch_size", default: value, range: .atLeastOne,
                 help: "Samples drawn from the memory (without replacement) for every training step.")
    }
    /// How the memory chooses what to keep (`--buffer-policy`).
    static let bufferPolicy = HyperparameterSpec.choice(
        "buffer_policy", ReplayPolicy.self, default: .reservoir,
        help: "What the memory keeps: reservoir (every sample seen equally likely), class-balanced (a ring of ⌊M / classes⌋ per class, newest kept), greedy-balanced (GDumb's) or herding (iCaRL's exemplars, chosen when a task ends).")
}

/// The replay memory of one strategy, created for the run's stream when first needed, with the draws and forward
/// passes every replay method makes.
final class ReplayMemory {
    let capacity: Int, policy: ReplayPolicy, logitWidth: Int
    /// The strategy's name: the label of every random draw.
    let owner: String
    private(set) var buffer: ReplayBuffer?

    init(capacity: Int, policy: ReplayPolicy, logitWidth: Int = 0, owner: String) {
        self.capacity = capacity; self.policy = policy; self.logitWidth = logitWidth; self.owner = owner
    }

    /// The buffer for `context`'s stream (created empty the first time, its choices seeded by the run's seed).
    func buffer(_ context: TrainingContext) -> ReplayBuffer {
        if let buffer { return buffer }
        let classes = Self.classCount(context.stream)
        let made = ReplayBuffer(capacity: capacity, policy: policy, sampleBytes: context.stream.storedSampleBytes,
                                logitWidth: logitWidth, classCount: policy == .classBalanced ? classes : nil,
                                random: context.generator("\(owner)/memory"))
        buffer = made
        return made
    }

    var bytes: Int { buffer?.bytes ?? 0 }

    /// `size` samples drawn without replacement from the memory and rebuilt as a training batch, with their slots;
    /// nil when the memory is empty. `purpose` tells apart several draws of one step (DER++'s two).
    func draw(_ size: Int, context: TrainingContext, purpose: String = "replay") -> (slots: [Int], batch: Batch)? {
        guard let buffer, !buffer.isEmpty else { return nil }
        var random = context.generator("\(owner)/\(purpose)/task \(context.task)/step \(context.stepInTask)")
        let slots = buffer.sampleSlots(size, random: &random)
        return (slots, buffer.batch(slots, stream: context.stream, random: &random))
    }

    /// Stores `count` samples of `task`'s training data drawn at random: the first `count` of a shuffle of its own
    /// (an epoch index no training pass uses). For memories filled when a task ends (A-GEM, GEM).
    func storeRandomSamples(_ count: Int, ofTask task: Int, context: TrainingContext) {
        guard count > 0 else { return }
        let shuffled = context.stream.trainingBatches(task: task, epoch: 1_000_000, batchSize: count)
        guard let first = shuffled.first(where: { _ in true }) else { return }
        buffer(context).offer(first, stream: context.stream)
    }

    /// Refuses, before training starts, a class-balanced memory smaller than the stream's number of classes, and a
    /// task-incremental model that cannot run a batch mixing tasks (per-task BatchNorm, progressive columns),
    /// naming the module.
    func check(_ context: TrainingContext) throws {
        let classes = Self.classCount(context.stream)
        if policy == .classBalanced || policy == .herding, classes > capacity {
            throw StrategyError(key: "buffer_size", "\(capacity) is below the stream's \(classes) classes: a \(policy.rawValue) memory keeps at least one sample of each")
        }
        try Self.checkRoutable(context)
    }

    /// The stream's classes as the memory counts them: (task, target) pairs.
    static func classCount(_ stream: any TaskStream) -> Int {
        (0..<stream.taskCount).reduce(0) { $0 + stream.outputClasses(task: $1).count }
    }

    static func checkRoutable(_ context: TrainingContext) throws {
        guard context.stream.scenario == .taskIncremental, context.stream.taskCount > 1 else { return }
        defer { context.model.setActiveTask(context.task) }
        do { try context.model.setSampleTasks([0, 1]) } catch { throw TrainingError(description: "\(error)") }
    }

    /// The model's outputs on a replayed batch, each sample through its own task's head in task-incremental models
    /// (checked by ``checkRoutable(_:)``); the model is pointed back at the task being trained afterwards.
    static func forward(_ batch: Batch, context: TrainingContext) -> Tensor {
        defer { context.model.setActiveTask(context.task) }
        if context.stream.scenario == .taskIncremental {
            // checkRoutable ran before training: a model that cannot route never gets here.
            do { try context.model.setSampleTasks(batch.taskIDs) } catch { preconditionFailure("\(error)") }
        }
        return context.model(batch.inputs)
    }

    /// Each parameter's gradient, zeros where it has none.
    static func gradients(of parameters: [(String, Tensor)]) -> [[Float]] {
        parameters.map { $0.1.grad?.scalars ?? [Float](repeating: 0, count: $0.1.count) }
    }

    /// The gradient of the cross-entropy on a replayed batch (over the classes seen so far), one array per parameter;
    /// it replaces the parameters' gradients (keep the ones you need first).
    static func lossGradient(_ batch: Batch, parameters: [(String, Tensor)], context: TrainingContext) -> [[Float]] {
        for (_, p) in parameters { p.grad = nil }
        Losses.crossEntropy(forward(batch, context: context), targets: batch.labels, allowedClasses: context.activeClasses).backward()
        return gradients(of: parameters)
    }

    /// Sets the parameters' gradients to `values`, one flat array in the parameters' order.
    static func setGradients(_ values: [Float], of parameters: [(String, Tensor)]) {
        var offset = 0
        for (_, p) in parameters {
            p.grad = Tensor(shape: p.shape, scalars: Array(values[offset ..< offset + p.count]))
            offset += p.count
        }
    }

    /// Sets the parameters' values to `values`, one flat array in the parameters' order.
    static func setValues(_ values: [Float], of parameters: [(String, Tensor)]) {
        var offset = 0
        for (_, p) in parameters {
            p.scalars = Array(values[offset ..< offset + p.count])
            offset += p.count
        }
    }

    func saveState() throws -> StrategyState { try buffer?.saveState() ?? StrategyState() }

    func loadState(_ state: StrategyState, context: TrainingContext) throws {
        guard !state.isEmpty else { return }
        try buffer(context).loadState(state, taskCount: context.stream.taskCount)
    }
}
