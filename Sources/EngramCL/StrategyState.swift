import EngramTensor
import EngramData
import EngramNN
import Foundation

/// What a strategy keeps in a checkpoint: named tensors (importance, anchors, masks, buffers …) and named
/// records — any `Codable` value (counters, random-generator states, buffer indices, per-task records) — kept as
/// JSON in the checkpoint's metadata. `Strategy.saveState()` writes one; `Strategy.loadState(_:context:)` reads it
/// back with the training context of the position the run resumes at.
public struct StrategyState {
    /// Tensors by name.
    public var tensors: [String: Tensor] = [:]
    /// Records by name, each the JSON text of a `Codable` value.
    public var records: [String: String] = [:]

    public init() {}

    /// A state holding `tensors`.
    public init(tensors: [(String, Tensor)]) {
        for (name, tensor) in tensors { self.tensors[name] = tensor }
    }

    /// Whether the state holds nothing.
    public var isEmpty: Bool { tensors.isEmpty && records.isEmpty }

    /// Adds tensors.
    public mutating func add(_ tensors: [(String, Tensor)]) {
        for (name, tensor) in tensors { self.tensors[name] = tensor }
    }

    /// Stores `value` as the record `key` (JSON, keys sorted, so equal states write equal bytes).
    public mutating func record<T: Encodable>(_ value: T, as key: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        records[key] = String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// The record `key` decoded as `T`; throws naming the key when it is missing or unreadable.
    public func record<T: Decodable>(_ type: T.Type, _ key: String) throws -> T {
        guard let value = try optionalRecord(type, key) else { throw StrategyError("record '\(key)' is missing") }
        return value
    }

    /// The record `key` decoded as `T`, nil when absent; throws naming the key when it is unreadable.
    public func optionalRecord<T: Decodable>(_ type: T.Type, _ key: String) throws -> T? {
        guard let text = records[key] else { return nil }
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        do { return try decoder.decode(T.self, from: Data(text.utf8)) } catch {
            throw StrategyError("record '\(key)' is unreadable (\(ConfigurationError.describe(error)))")
        }
    }

    /// A count kept as the record `key`, or — in checkpoints written before records existed — as a one-value
    /// tensor of that name; `fallback` when neither is there. Throws for a negative or non-integral count.
    public func count(_ key: String, default fallback: Int = 0) throws -> Int {
        if let value = try optionalRecord(Int.self, key) {
            guard value >= 0 else { throw StrategyError("record '\(key)' is \(value), not a count") }
            return value
        }
        guard let tensor = tensors[key] else { return fallback }
        let x = tensor.count == 1 ? tensor.scalars[0] : .nan
        guard x.isFinite, x >= 0, x.rounded() == x, x < 1e9 else { throw StrategyError("tensor '\(key)' is \(tensor.scalars.prefix(3)), not a count") }
        return Int(x)
    }

    /// The tensors and records whose names start with `prefix.`, with the prefix removed (a part of a composite).
    public func scoped(_ prefix: String) -> StrategyState {
        var inner = StrategyState()
        for (name, tensor) in tensors where name.hasPrefix(prefix + ".") { inner.tensors[String(name.dropFirst(prefix.count + 1))] = tensor }
        for (name, text) in records where name.hasPrefix(prefix + ".") { inner.records[String(name.dropFirst(prefix.count + 1))] = text }
        return inner
    }

    /// Every name prefixed by `prefix.` (the inverse of ``scoped(_:)``).
    public func prefixed(_ prefix: String) -> StrategyState {
        var outer = StrategyState()
        for (name, tensor) in tensors { outer.tensors["\(prefix).\(name)"] = tensor }
        for (name, text) in records { outer.records["\(prefix).\(name)"] = text }
        return outer
    }

    /// Adds every tensor and record of `other`.
    public mutating func merge(_ other: StrategyState) {
        tensors.merge(other.tensors) { _, new in new }
        records.merge(other.records) { _, new in new }
    }

    /// One array per model parameter from the tensors named `prefix.<parameter>`, checked against `model`: every
    /// name must be a parameter of the model with that parameter's number of values.
    public func parameterMap(_ prefix: String, model: Classifier) throws -> ParameterMap {
        let counts = Dictionary(model.namedParameters().map { ($0.0, $0.1.count) }, uniquingKeysWith: { a, _ in a })
        let map = ParameterMap.from(tensors, prefix: prefix)
        for (name, values) in map.sorted(by: { $0.key < $1.key }) {
            guard let count = counts[name] else {
                throw StrategyError("tensor '\(prefix).\(name)' names no parameter of the model")
            }
            guard values.count == count else {
                throw StrategyError("tensor '\(prefix).\(name)' has \(values.count) values, but parameter '\(name)' has \(count)")
            }
        }
        return map
    }
}

extension Dictionary where Key == String, Value == [Float] {
    /// Checks that `self` (importance) and `anchor` cover the same parameters: Ω without θ* (or the reverse) is
    /// a damaged state, named by its first unpaired tensor.
    func checkPaired(with anchor: ParameterMap, _ importanceName: String, _ anchorName: String) throws {
        if let lone = keys.sorted().first(where: { anchor[$0] == nil }) {
            throw StrategyError("tensor '\(importanceName).\(lone)' has no partner '\(anchorName).\(lone)' (importance and anchor come in pairs)")
        }
        if let lone = anchor.keys.sorted().first(where: { self[$0] == nil }) {
            throw StrategyError("tensor '\(anchorName).\(lone)' has no partner '\(importanceName).\(lone)' (importance and anchor come in pairs)")
        }
    }
}

extension TaskWeightMasks {
    /// Masks for every parameter of `model` read from `owner.<parameter>` tensors; a parameter without its tensor,
    /// or a tensor of the wrong size, is an error naming it.
    static func restored(from state: StrategyState, model: Classifier) throws -> TaskWeightMasks {
        var masks = TaskWeightMasks(model.namedParameters())
        if let missing = masks.names.first(where: { state.tensors["owner.\($0)"] == nil }) {
            throw StrategyError("tensor 'owner.\(missing)' is missing")
        }
        do { try masks.loadState(state.tensors) } catch { throw StrategyError("\(error)") }
        return masks
    }
}
