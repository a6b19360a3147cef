import EngramTensor

/// Which task owns each entry of each parameter — the shared bookkeeping of parameter-isolation
/// methods (PackNet, MIND, …).
///
/// Every entry holds one byte: the id of the task that owns it, or `free`. Task t may *use* the
/// entries owned by tasks ≤ t (its sub-network: W ⊙ M_t with M_t = [owner ≤ t]) and may *train* the
/// free entries and its own; everything else is frozen. Parameters are keyed by their stable names.
public struct TaskWeightMasks: Sendable, Equatable {
    /// The owner value of an entry that no task owns.
    public static let free: UInt8 = .max
    /// Task ids must be below this (255 tasks fit in one byte next to the sentinel).
    public static let maximumTasks = Int(free)

    /// Parameter names, in the order given at creation.
    public let names: [String]
    /// Owner of every entry, per parameter name.
    public private(set) var owners: [String: [UInt8]]

    /// All entries of `parameters` free.
    public init(_ parameters: [(String, Tensor)]) {
        self.init(counts: parameters.map { ($0.0, $0.1.count) })
    }

    /// All entries free, for parameters of the given element counts.
    public init(counts: [(String, Int)]) {
        names = counts.map(\.0)
        owners = Dictionary(uniqueKeysWithValues: counts.map { ($0.0, [UInt8](repeating: Self.free, count: $0.1)) })
    }

    static func id(_ task: Int) -> UInt8 {
        precondition(task >= 0 && task < maximumTasks, "task \(task) is outside 0..<\(maximumTasks)")
        return UInt8(task)
    }

    func entries(_ name: String) -> [UInt8] {
        guard let o = owners[name] else { preconditionFailure("no parameter named '\(name)' in the masks") }
        return o
    }

    /// The owner of entry `index` of `name` (nil when free).
    public func owner(_ name: String, _ index: Int) -> Int? {
        let o = entries(name)[index]
        return o == Self.free ? nil : Int(o)
    }

    /// Sets the owner of entry `index` of `name` (`nil` = free).
    public mutating func setOwner(_ name: String, _ index: Int, _ task: Int?) {
        let value = task.map(Self.id) ?? Self.free
        _ = entries(name)
        owners[name]![index] = value
    }

    /// Gives every free entry of `name` to `task`; returns how many were claimed.
    @discardableResult
    public mutating func claimFree(_ name: String, task: Int) -> Int {
        let t = Self.id(task)
        var o = entries(name), n = 0
        for i in o.indices where o[i] == Self.free { o[i] = t; n += 1 }
        owners[name] = o
        return n
    }

    /// Gives every entry of `name` to `task` (e.g. a task's own head).
    public mutating func assignAll(_ name: String, task: Int) {
        owners[name] = [UInt8](repeating: Self.id(task), count: entries(name).count)
    }

    /// Frees every entry of `name` owned by `task`; returns how many were released.
    @discardableResult
    public mutating func release(_ name: String, task: Int) -> Int {
        let t = Self.id(task)
        var o = entries(name), n = 0
        for i in o.indices where o[i] == t { o[i] = Self.free; n += 1 }
        owners[name] = o
        return n
    }

    /// M_t: 1 where the entry is owned by a task ≤ `task` (usable by it), 0 elsewhere (free or later tasks).
    public func usableMask(_ name: String, task: Int) -> [Float] {
        let t = Self.id(task)
        return entries(name).map { $0 <= t ? 1 : 0 }
    }

    /// 1 where `task` may change the entry (free, or its own), 0 where frozen.
    public func trainableMask(_ name: String, task: Int) -> [Float] {
        let t = Self.id(task)
        return entries(name).map { $0 == Self.free || $0 == t ? 1 : 0 }
    }

    /// 1 where the entry is owned by `task` itself (e.g. the weights it re-trains after pruning).
    public func ownedMask(_ name: String, task: Int) -> [Float] {
        let t = Self.id(task)
        return entries(name).map { $0 == t ? 1 : 0 }
    }

    /// 1 where the entry is frozen for `task` (owned by another task): the complement of `trainableMask`.
    public func frozenMask(_ name: String, task: Int) -> [Float] {
        trainableMask(name, task: task).map { 1 - $0 }
    }

    /// Optimizer update masks (1 = may change) that let only `task`'s trainable entries move.
    public func updateMasks(task: Int) -> [String: [Float]] {
        Dictionary(uniqueKeysWithValues: names.map { ($0, trainableMask($0, task: task)) })
    }

    /// Entries owned by `task` (over all parameters, or one).
    public func count(ownedBy task: Int, in name: String? = nil) -> Int {
        let t = Self.id(task)
        return (name.map { [$0] } ?? names).reduce(0) { $0 + entries($1).filter { $0 == t }.count }
    }

    /// Entries no task owns.
    public var freeCount: Int { names.reduce(0) { $0 + entries($1).filter { $0 == Self.free }.count } }

    /// Bytes held: one per parameter entry, whatever the number of tasks.
    public var memoryBytes: Int { owners.values.reduce(0) { $0 + $1.count * MemoryLayout<UInt8>.stride } }

    // MARK: Pruning and selection

    /// Magnitude pruning: among the n entries of `name` owned by `task`, keeps the round(keepFraction·n)
    /// largest |w| and releases the rest to free, setting them to zero in `parameter`.
    /// Ties in |w| are broken by position (the earlier entry is kept). Returns the released count.
    @discardableResult
    public mutating func pruneByMagnitude(_ name: String, parameter: Tensor, task: Int, keepFraction: Double) -> Int {
        precondition(keepFraction >= 0 && keepFraction <= 1, "keep fraction must be in [0, 1], got \(keepFraction)")
        let t = Self.id(task)
        var o = entries(name)
        precondition(o.count == parameter.count, "'\(name)' has \(parameter.count) entries, the masks \(o.count)")
        let w = parameter.scalars
        let candidates = o.indices.filter { o[$0] == t }
        let keep = Int((keepFraction * Double(candidates.count)).rounded())
        let ranked = candidates.sorted { a, b in
            let (x, y) = (abs(w[a]), abs(w[b]))
            return x != y ? x > y : a < b
        }
        let released = ranked.dropFirst(keep)
        guard !released.isEmpty else { return 0 }
        for i in released { o[i] = Self.free }
        owners[name] = o
        parameter.scalars.withUnsafeMutableBufferPointer { p in for i in released { p[i] = 0 } }
        return released.count
    }

    /// Gives `task` the round(fraction·n_free) free entries of `name` whose `values` have the largest |v|
    /// (ties broken by position); returns the chosen entries in increasing order. MIND's self-distillation
    /// selects its sub-network this way from the teacher's weights.
    @discardableResult
    public mutating func claimLargestFree(_ name: String, values: [Float], task: Int, fraction: Double) -> [Int] {
        precondition(fraction >= 0 && fraction <= 1, "fraction must be in [0, 1], got \(fraction)")
        var o = entries(name)
        precondition(o.count == values.count, "'\(name)' has \(o.count) entries, the values \(values.count)")
        let pool = o.indices.filter { o[$0] == Self.free }
        let k = Int((fraction * Double(pool.count)).rounded())
        let ranked = pool.sorted { a, b in
            let (x, y) = (abs(values[a]), abs(values[b]))
            return x != y ? x > y : a < b
        }
        let chosen = ranked.prefix(k).sorted()
        let t = Self.id(task)
        for i in chosen { o[i] = t }
        owners[name] = o
        return chosen
    }

    /// A random `fraction` (rounded) of the free entries of `name`, in increasing order, drawn with `generator`.
    public func randomFreeEntries(_ name: String, fraction: Double, using generator: inout RandomGenerator) -> [Int] {
        precondition(fraction >= 0 && fraction <= 1, "fraction must be in [0, 1], got \(fraction)")
        var pool = entries(name).indices.filter { entries(name)[$0] == Self.free }
        let k = Int((fraction * Double(pool.count)).rounded())
        for i in 0..<k {   // partial Fisher–Yates
            let j = i + generator.nextInt(below: pool.count - i)
            pool.swapAt(i, j)
        }
        return pool.prefix(k).sorted()
    }

    /// Gives a random `fraction` of the free entries of `name` to `task`; returns the chosen entries.
    @discardableResult
    public mutating func claimRandomFree(_ name: String, task: Int, fraction: Double, using generator: inout RandomGenerator) -> [Int] {
        let chosen = randomFreeEntries(name, fraction: fraction, using: &generator)
        let t = Self.id(task)
        var o = entries(name)
        for i in chosen { o[i] = t }
        owners[name] = o
        return chosen
    }

    // MARK: Gradient gating and masked inference

    /// Zeroes the gradient of every entry `task` may not change (g ← g ⊙ trainable_t).
    public func gateGradients(_ parameters: [(String, Tensor)], task: Int) {
        for (name, p) in parameters where owners[name] != nil {
            guard let g = p.grad else { continue }
            let mask = trainableMask(name, task: task)
            g.scalars.withUnsafeMutableBufferPointer { b in for i in b.indices where mask[i] == 0 { b[i] = 0 } }
        }
    }

    /// Sets every entry not usable by `task` to zero (W ← W ⊙ M_t) and returns the values it had,
    /// for `restore(_:)`.
    public func applyUsableMask(_ parameters: [(String, Tensor)], task: Int) -> MaskedValues {
        var saved: [(Tensor, [Float])] = []
        for (name, p) in parameters where owners[name] != nil {
            let mask = usableMask(name, task: task)
            guard mask.contains(0) else { continue }
            saved.append((p, p.scalars))
            // Assign rather than multiply: an entry that overflowed to ±inf must not become NaN.
            p.scalars.withUnsafeMutableBufferPointer { b in for i in b.indices where mask[i] == 0 { b[i] = 0 } }
        }
        return MaskedValues(saved: saved)
    }

    /// Runs `body` with every entry not usable by `task` zeroed, then puts the exact values back.
    public func withUsableMask<R>(_ parameters: [(String, Tensor)], task: Int, _ body: () throws -> R) rethrows -> R {
        let saved = applyUsableMask(parameters, task: task)
        defer { saved.restore() }
        return try body()
    }

    // MARK: State

    /// The owners as tensors (`owner.<name>`, values 0…254, 255 = free), for checkpoints.
    public func stateTensors(prefix: String = "owner.") -> [(String, Tensor)] {
        names.map { ("\(prefix)\($0)", Tensor(entries($0).map(Float.init))) }
    }

    /// Restores owners saved by `stateTensors`; parameters missing from `state` keep their owners.
    public mutating func loadState(_ state: [String: Tensor], prefix: String = "owner.") throws {
        for name in names {
            guard let t = state["\(prefix)\(name)"] else { continue }
            guard t.count == entries(name).count else {
                throw ModuleError.shapeMismatch(name: "\(prefix)\(name)", expected: [entries(name).count], found: t.shape)
            }
            owners[name] = t.scalars.map { UInt8(max(0, min(255, $0))) }
        }
    }
}

/// How a parameter-isolation method treats a parameter, read from its stable name.
public enum ParameterRole: Equatable, Sendable {
    /// Belongs wholly to one task: a multi-head head (`head.heads.<t>.…`) or a per-task BatchNorm
    /// (`….tasks.<t>.…`, see `TaskBatchNorm`).
    case task(Int)
    /// A weight matrix or kernel (rank ≥ 2) whose entries are split between tasks.
    case partitioned
    /// Everything else (biases, shared BatchNorm): trained on the first task, frozen after it.
    case shared

    /// The role of the parameter `name` holding `tensor`.
    public static func of(_ name: String, _ tensor: Tensor) -> ParameterRole {
        let parts = name.split(separator: ".")
        for (a, b) in zip(parts, parts.dropFirst()) where a == "heads" || a == "tasks" {
            if let t = Int(b) { return .task(t) }
        }
        return tensor.rank >= 2 ? .partitioned : .shared
    }
}

extension Module {
    /// Task `task`'s own BatchNorm layers: its entry in every `TaskBatchNorm`.
    public func taskBatchNorms(task: Int) -> [BatchNorm] {
        namedModules().compactMap { ($0.1 as? TaskBatchNorm).flatMap { task < $0.norms.count ? $0.norms[task] : nil } }
    }

    /// BatchNorm layers that are not one task's own (not inside a `TaskBatchNorm`).
    public func sharedBatchNorms() -> [BatchNorm] {
        var perTask = Set<ObjectIdentifier>()
        for (_, m) in namedModules() {
            if let t = m as? TaskBatchNorm { for n in t.norms { perTask.insert(ObjectIdentifier(n)) } }
        }
        return namedModules().compactMap { $0.1 as? BatchNorm }.filter { !perTask.contains(ObjectIdentifier($0)) }
    }
}

/// Parameter values saved by `TaskWeightMasks.applyUsableMask`, to put back exactly.
public struct MaskedValues {
    let saved: [(Tensor, [Float])]
    /// Writes the saved values back.
    public func restore() { for (p, v) in saved { p.scalars = v } }
    /// Nothing saved.
    public static var none: MaskedValues { MaskedValues(saved: []) }
}
