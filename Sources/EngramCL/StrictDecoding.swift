import EngramTensor
import EngramNN
import EngramData
import Foundation

/// A mistake in a configuration file (`config.yaml`, a sweep file): one line naming the key and the problem.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }

    /// One line for any error met while decoding a configuration: this type's own message, or the dotted key
    /// and the reason of a `DecodingError` (never the raw dump of its context).
    public static func describe(_ error: any Error) -> String {
        if let error = error as? ConfigurationError { return error.description }
        func path(_ keys: [any CodingKey]) -> String {
            let parts = keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            return parts.isEmpty ? "the top level" : "'" + parts.joined(separator: ".").replacingOccurrences(of: ".[", with: "[") + "'"
        }
        switch error {
        case DecodingError.typeMismatch(let type, let context):
            return "key \(path(context.codingPath)): expected \(readable(type))"
        case DecodingError.valueNotFound(let type, let context):
            return "key \(path(context.codingPath)): a value (\(readable(type))) is missing"
        case DecodingError.keyNotFound(let key, let context):
            return "key \(path(context.codingPath + [key])) is missing"
        case DecodingError.dataCorrupted(let context):
            // A YAML syntax error describes itself over several lines (the line and a caret): keep the first.
            let full = context.underlyingError.map { "\($0)" } ?? context.debugDescription
            let reason = full.split(separator: "\n", omittingEmptySubsequences: true).first.map(String.init) ?? full
            return context.codingPath.isEmpty ? reason : "key \(path(context.codingPath)): \(reason)"
        default:
            return "\(error)".split(separator: "\n").first.map(String.init) ?? "\(error)"
        }
    }

    static func readable(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type, is UInt64.Type: return "an integer"
        case is Float.Type, is Double.Type: return "a number"
        case is Bool.Type: return "true or false"
        case is String.Type: return "a string"
        default:
            let name = "\(type)"
            return name.hasPrefix("Array") ? "a list" : name.hasPrefix("Dictionary") ? "a mapping" : "a \(name)"
        }
    }
}

/// A coding key for any string: reads every key a mapping holds.
struct AnyCodingKey: CodingKey {
    let stringValue: String
    let intValue: Int?
    init(stringValue: String) { self.stringValue = stringValue; intValue = nil }
    init(intValue: Int) { stringValue = String(intValue); self.intValue = intValue }
}

/// Refuses every key of the mapping being decoded that no field reads, naming it (with its section) and the
/// nearest valid key: a misspelt `lamda` or `trainng` must not silently leave the default in place.
/// `nested` lists the keys of sections below this one (`training` → `lr`, …), so a key written one level too
/// high (`lr:` at the top) is pointed to its place (`training.lr`). `retired` keys, written by older versions,
/// are accepted and ignored.
func rejectUnknownKeys(_ decoder: any Decoder, known: some Sequence<String>, nested: [String: [String]] = [:],
                       retired: Set<String> = []) throws {
    let container = try decoder.container(keyedBy: AnyCodingKey.self)
    let valid = Array(known)
    let section = container.codingPath.map(\.stringValue).joined(separator: ".")
    func qualified(_ key: String) -> String { section.isEmpty ? key : "\(section).\(key)" }
    for key in container.allKeys where !valid.contains(key.stringValue) && !retired.contains(key.stringValue) {
        let name = key.stringValue
        var message = "unknown key '\(qualified(name))'"
        let candidates = valid.map { (key: $0, full: qualified($0)) }
            + nested.flatMap { sub, keys in keys.map { (key: $0, full: qualified("\(sub).\($0)")) } }
        let wanted = synonyms[name.lowercased()] ?? name
        if let nearest = candidates.min(by: { editDistance(wanted, $0.key) < editDistance(wanted, $1.key) }),
           editDistance(wanted, nearest.key) <= max(2, wanted.count / 2) {
            message += "; did you mean '\(nearest.full)'?"
        } else {
            message += "; valid keys here: \(valid.sorted().joined(separator: ", "))"
        }
        throw ConfigurationError(message)
    }
}

/// Names users write for Engram's keys.
private let synonyms: [String: String] = [
    "learning_rate": "lr", "learningrate": "lr", "batchsize": "batch_size", "weightdecay": "weight_decay",
    "strategies": "strategy", "method": "strategy", "dataset": "benchmark", "hidden_sizes": "hidden",
]

/// Levenshtein distance between two strings (insertions, deletions, substitutions), case-insensitive.
func editDistance(_ a: String, _ b: String) -> Int {
    let x = Array(a.lowercased()), y = Array(b.lowercased())
    guard !x.isEmpty else { return y.count }
    guard !y.isEmpty else { return x.count }
    var previous = Array(0...y.count), current = [Int](repeating: 0, count: y.count + 1)
    for i in 1...x.count {
        current[0] = i
        for j in 1...y.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
        }
        swap(&previous, &current)
    }
    return previous[y.count]
}
