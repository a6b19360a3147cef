import EngramTensor
import EngramNN
import EngramData
import Foundation

/// One value of a sweep grid as written in YAML or JSON: a boolean, an integer, a real number,
/// a string, or a list of these (e.g. hidden sizes `[400, 400]`).
public enum GridValue: Sendable, Hashable, Codable, CustomStringConvertible {
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case list([GridValue])

    /// Decodes the most specific type the value has: boolean, then integer, then real, then string, then list.
    public init(from decoder: any Decoder) throws {
        if let c = try? decoder.singleValueContainer() {
            if let v = try? c.decode(Bool.self) { self = .bool(v); return }
            if let v = try? c.decode(Int.self) { self = .int(v); return }
            if let v = try? c.decode(Double.self) { self = .double(v); return }
            if let v = try? c.decode(String.self) { self = .string(v); return }
        }
        var list = try decoder.unkeyedContainer()
        var values: [GridValue] = []
        while !list.isAtEnd { values.append(try list.decode(GridValue.self)) }
        self = .list(values)
    }

    /// Encodes the value as its plain type.
    public func encode(to encoder: any Encoder) throws {
        switch self {
        case let .list(values):
            var c = encoder.unkeyedContainer()
            for v in values { try c.encode(v) }
        default:
            var c = encoder.singleValueContainer()
            switch self {
            case let .bool(v): try c.encode(v)
            case let .int(v): try c.encode(v)
            case let .double(v): try c.encode(v)
            case let .string(v): try c.encode(v)
            case .list: break
            }
        }
    }

    /// The value as written in run names: `1`, `0.1`, `mas`, `400-400`.
    public var description: String {
        switch self {
        case let .bool(v): return String(v)
        case let .int(v): return String(v)
        case let .double(v):
            return v.rounded() == v && abs(v) < 1e15 ? String(Int(v)) : String(v)
        case let .string(v): return v
        case let .list(values): return values.map(\.description).joined(separator: "-")
        }
    }

    /// The value as a JSON-serializable object.
    public var jsonObject: Any {
        switch self {
        case let .bool(v): return v
        case let .int(v): return v
        case let .double(v): return v
        case let .string(v): return v
        case let .list(values): return values.map(\.jsonObject)
        }
    }
}

/// One parameter of a grid point: a dotted configuration key (`hyperparameters.lambda`) and its value.
public struct GridAssignment: Sendable, Hashable, Codable {
    /// Dotted path of the configuration key, as in `config.yaml` (`training.seed`, `strategy`).
    public var key: String
    public var value: GridValue

    /// An assignment of `value` to the configuration key `key`.
    public init(key: String, value: GridValue) {
        self.key = key
        self.value = value
    }

    /// The last component of the key (`lambda` for `hyperparameters.lambda`).
    public var shortKey: String { String(key.split(separator: ".").last ?? Substring(key)) }
}

/// Errors of sweep specifications and sweep directories, naming the key, point or file at fault.
public struct SweepError: Error, CustomStringConvertible, Equatable {
    public let description: String
    /// An error with the given message.
    public init(_ description: String) { self.description = description }
}

extension ExperimentConfiguration {
    /// This configuration with the dotted key `path` set to `value`, applied through `Codable` so every key of
    /// `config.yaml` works (`strategy`, `hidden`, `hyperparameters.lambda`, `training.lr` …).
    ///
    /// Throws a ``SweepError`` naming the key when it is not a configuration key, and naming the key and value
    /// when the value has the wrong type.
    public func setting(_ path: String, to value: GridValue) throws -> ExperimentConfiguration {
        let components = path.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard !components.isEmpty, components.allSatisfy({ !$0.isEmpty }) else {
            throw SweepError("grid key '\(path)' is not a dotted configuration key such as hyperparameters.lambda")
        }
        let encoder = JSONEncoder()
        var object = try Self.dictionary(try encoder.encode(self))
        func set(_ dictionary: inout [String: Any], _ keys: ArraySlice<String>) throws {
            let key = keys.first!
            if keys.count == 1 { dictionary[key] = value.jsonObject; return }
            var inner: [String: Any]
            if let existing = dictionary[key] {
                guard let nested = existing as? [String: Any] else {
                    throw SweepError("unknown grid key '\(path)': '\(key)' is not a section of the configuration")
                }
                inner = nested
            } else {
                inner = [:]
            }
            try set(&inner, keys.dropFirst())
            dictionary[key] = inner
        }
        try set(&object, components[...])
        let decoded: ExperimentConfiguration
        do {
            decoded = try JSONDecoder().decode(Self.self, from: JSONSerialization.data(withJSONObject: object))
        } catch {
            throw SweepError("grid key '\(path)': value \(value) does not fit the configuration (\(error))")
        }
        // Decoding ignores keys it does not know: a key that does not survive a round trip is not a configuration key.
        var check: Any? = try Self.dictionary(try encoder.encode(decoded))
        for key in components { check = (check as? [String: Any])?[key] }
        guard check != nil, !(check is NSNull) else {
            throw SweepError("unknown grid key '\(path)'; grid keys are configuration keys such as strategy, "
                             + "hyperparameters.lambda, training.seed, training.lr, hidden, fraction, tasks")
        }
        return decoded
    }

    static func dictionary(_ json: Data) throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: json) as? [String: Any] else {
            throw SweepError("configuration did not encode to a JSON object")
        }
        return object
    }
}

/// One point of a sweep: its grid values, its configuration and its run-directory name.
public struct SweepPoint: Sendable, Equatable {
    /// The grid values of this point in the grid's canonical key order (strategy first, seed last).
    public var assignments: [GridAssignment]
    public var configuration: ExperimentConfiguration
    /// Run-directory name, e.g. `mas__lambda=1__seed=0`: the strategy, then `key=value` for every other grid key.
    public var name: String
    /// The name without the seed (`mas__lambda=1`): points differing only in seed share it.
    public var group: String
    /// The grid values other than the seed (what the summary groups by).
    public var groupAssignments: [GridAssignment] { assignments.filter { $0.key != SweepSpecification.seedKey } }
}

/// A grid over hyper-parameters and seeds: a base configuration (keys of `config.yaml`) and, for some keys,
/// lists of values. Its points are the cartesian product of the lists.
///
/// ```yaml
/// out: runs/mas-lambda          # optional
/// base: {benchmark: permuted-mnist, tasks: 5, strategy: mas, fraction: 0.2}
/// grid:
///   hyperparameters.lambda: [0.01, 0.1, 1, 10]
///   training.seed: [0, 1, 2]
/// ```
public struct SweepSpecification: Sendable, Codable, Equatable {
    /// Output directory (optional; the command line may override it).
    public var output: String?
    /// The configuration every point starts from.
    public var base: ExperimentConfiguration
    /// Dotted configuration keys → the values to try. Short aliases are accepted (`seed`, `lr`, `lambda` …).
    public var grid: [String: [GridValue]]
    /// Several grids whose points are all run (e.g. one per strategy, each with its own hyper-parameters);
    /// each is combined with `grid` (its keys apply to every one). Empty: `grid` alone.
    public var grids: [[String: [GridValue]]] = []

    /// The key of the seed, which the summary averages over.
    public static let seedKey = "training.seed"

    /// Short grid keys and the configuration keys they stand for.
    public static let aliases: [String: String] = [
        "seed": "training.seed", "lr": "training.lr", "epochs": "training.epochs", "iterations": "training.iterations",
        "batch_size": "training.batch_size", "momentum": "training.momentum", "weight_decay": "training.weight_decay",
        "optimizer": "training.optimizer", "sam_rho": "training.sam_rho", "lambda": "hyperparameters.lambda", "c": "hyperparameters.c",
        "xi": "hyperparameters.xi", "gamma": "hyperparameters.gamma", "mas_output": "hyperparameters.mas_output",
        "mas_mode": "hyperparameters.mas_mode", "accumulation": "hyperparameters.accumulation",
    ]

    enum CodingKeys: String, CodingKey {
        case output = "out", base, grid, grids
    }

    /// A specification from its parts.
    public init(base: ExperimentConfiguration = ExperimentConfiguration(), grid: [String: [GridValue]], output: String? = nil) {
        self.base = base
        self.grid = grid
        self.output = output
    }

    /// Decodes a specification in which `out`, `base` and `grid` are all optional.
    public init(from decoder: any Decoder) throws {
        try rejectUnknownKeys(decoder, known: ["out", "base", "grid", "grids"])
        let c = try decoder.container(keyedBy: CodingKeys.self)
        output = try c.decodeIfPresent(String.self, forKey: .output)
        base = try c.decodeIfPresent(ExperimentConfiguration.self, forKey: .base) ?? ExperimentConfiguration()
        grid = try c.decodeIfPresent([String: [GridValue]].self, forKey: .grid) ?? [:]
        // `grids:` written but empty (a final sweep whose choices are not filled in yet) would run the base
        // configuration's default strategy: refused instead.
        if c.contains(.grids) {
            grids = try c.decodeNil(forKey: .grids) ? [] : try c.decode([[String: [GridValue]]].self, forKey: .grids)
            guard !grids.isEmpty else {
                throw SweepError("grids is empty: list at least one grid (a protocol's final sweep gets its choices from scripts/select_hyperparameters.py --write)")
            }
        }
    }

    /// The grid with aliases resolved, in canonical order: `strategy` first, the seed last, the rest alphabetically.
    public func canonicalGrid() throws -> [(key: String, values: [GridValue])] { try Self.canonical(grid) }

    /// Every grid of the specification with its keys resolved: `grid` combined with each of `grids`.
    public func canonicalGrids() throws -> [[(key: String, values: [GridValue])]] {
        guard !grids.isEmpty else { return [try canonicalGrid()] }
        return try grids.enumerated().map { index, extra in
            var combined = grid
            for (key, values) in extra {
                let full = Self.aliases[key] ?? key
                guard !grid.keys.contains(where: { (Self.aliases[$0] ?? $0) == full }) else {
                    throw SweepError("grids[\(index)] sets '\(key)', which grid already sets for every point")
                }
                combined[key] = values
            }
            return try Self.canonical(combined)
        }
    }

    static func canonical(_ grid: [String: [GridValue]]) throws -> [(key: String, values: [GridValue])] {
        var resolved: [String: [GridValue]] = [:]
        for (key, values) in grid {
            let full = Self.aliases[key] ?? key
            guard resolved[full] == nil else { throw SweepError("grid key '\(key)' is given twice (as \(full))") }
            guard !values.isEmpty else { throw SweepError("grid key '\(key)' has no values") }
            guard Set(values).count == values.count else { throw SweepError("grid key '\(key)' lists a value twice") }
            resolved[full] = values
        }
        func rank(_ key: String) -> Int { key == "strategy" ? 0 : key == Self.seedKey ? 2 : 1 }
        return resolved.sorted { (rank($0.key), $0.key) < (rank($1.key), $1.key) }.map { (key: $0.key, values: $0.value) }
    }

    /// Every point of the grid (the cartesian product; the first key varies slowest, the seed fastest),
    /// each with a validated configuration and a unique, stable directory name.
    public func expand() throws -> [SweepPoint] {
        let all = try canonicalGrids()
        var combinations: [[GridAssignment]] = []
        for keys in all {
            var part: [[GridAssignment]] = [[]]
            for (key, values) in keys {
                part = part.flatMap { prefix in values.map { prefix + [GridAssignment(key: key, value: $0)] } }
            }
            combinations += part
        }
        // Short labels (`lambda` for `hyperparameters.mas.lambda`) unless two keys of one grid end alike, then the
        // full dotted key.
        let ambiguous = Set(all.flatMap { keys in
            Dictionary(grouping: keys.map(\.key), by: { GridAssignment(key: $0, value: .int(0)).shortKey }).values.filter { $0.count > 1 }.flatMap { $0 }
        })
        func label(_ a: GridAssignment) -> String {
            "\(ambiguous.contains(a.key) ? a.key : a.shortKey)=\(Self.sanitize(a.value.description))"
        }
        var seen: [String: Int] = [:]
        var points: [SweepPoint] = []
        for (index, assignments) in combinations.enumerated() {
            var configuration = base
            // A value outside sections (`hyperparameters.lambda`) reaches the point's strategies once they are known.
            for a in assignments { configuration = try configuration.setting(a.key, to: a.value).scopingSharedHyperparameters() }
            if assignments.isEmpty { configuration = configuration.scopingSharedHyperparameters() }
            let prefix = Self.sanitize(configuration.strategy)
            let others = assignments.filter { $0.key != "strategy" }
            let name = ([prefix] + others.map(label)).joined(separator: "__")
            let group = ([prefix] + others.filter { $0.key != Self.seedKey }.map(label)).joined(separator: "__")
            do { try configuration.validate() } catch {
                throw SweepError("grid point \(name): \(error)")
            }
            if let other = seen[name] {
                throw SweepError("grid points \(other + 1) and \(index + 1) would both be named '\(name)'; make the grid values distinct")
            }
            seen[name] = index
            points.append(SweepPoint(assignments: assignments, configuration: configuration, name: name, group: group))
        }
        return points
    }

    /// A name safe as one path component: `/`, whitespace and `:` become `-`.
    static func sanitize(_ s: String) -> String {
        String(s.map { $0 == "/" || $0 == ":" || $0.isWhitespace ? "-" : $0 })
    }
}
