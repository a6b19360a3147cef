import EngramTensor
import EngramNN
import EngramData
import Foundation

/// A hyper-parameter's value as written in YAML, JSON or on the command line (the sweep grid's value type).
public typealias HyperparameterValue = GridValue

/// The interval a numeric hyper-parameter accepts; every accepted value is finite.
public struct ValueRange: Sendable, Equatable, CustomStringConvertible {
    public var lower: Double?
    public var lowerInclusive: Bool
    public var upper: Double?
    public var upperInclusive: Bool

    public init(lower: Double? = nil, lowerInclusive: Bool = true, upper: Double? = nil, upperInclusive: Bool = true) {
        self.lower = lower; self.lowerInclusive = lowerInclusive; self.upper = upper; self.upperInclusive = upperInclusive
    }

    /// Any finite number.
    public static let finite = ValueRange()
    /// x ≥ 0.
    public static let nonNegative = ValueRange(lower: 0)
    /// x > 0.
    public static let positive = ValueRange(lower: 0, lowerInclusive: false)
    /// x ≥ 1 (counts).
    public static let atLeastOne = ValueRange(lower: 1)
    /// 0 ≤ x ≤ 1.
    public static let unitInterval = ValueRange(lower: 0, upper: 1)
    /// 0 < x ≤ 1.
    public static let unitIntervalOpenBelow = ValueRange(lower: 0, lowerInclusive: false, upper: 1)
    /// 0 ≤ x < 1.
    public static let unitIntervalOpenAbove = ValueRange(lower: 0, upper: 1, upperInclusive: false)

    /// Whether `x` is finite and inside the interval.
    public func contains(_ x: Double) -> Bool {
        guard x.isFinite else { return false }
        if let lower, lowerInclusive ? x < lower : x <= lower { return false }
        if let upper, upperInclusive ? x > upper : x >= upper { return false }
        return true
    }

    /// `≥ 0`, `> 0`, `in (0, 1]`, `finite`.
    public var description: String {
        func number(_ x: Double) -> String { GridValue.double(x).description }
        switch (lower, upper) {
        case (nil, nil): return "finite"
        case let (lower?, nil): return (lowerInclusive ? "≥ " : "> ") + number(lower)
        case let (nil, upper?): return (upperInclusive ? "≤ " : "< ") + number(upper)
        case let (lower?, upper?):
            return "in " + (lowerInclusive ? "[" : "(") + number(lower) + ", " + number(upper) + (upperInclusive ? "]" : ")")
        }
    }
}

/// The type of a hyper-parameter and the values it accepts.
public enum HyperparameterKind: Sendable, Equatable {
    /// A real number in a range (stored as `Float` or `Double` by the strategy).
    case real(ValueRange)
    /// An integer in a range.
    case integer(ValueRange)
    /// true or false.
    case boolean
    /// One of a fixed set of names.
    case choice([String])
    /// A list of integers, each in a range (e.g. epochs).
    case integerList(ValueRange)
    /// A list of real numbers, each in a range (e.g. one threshold per layer).
    case realList(ValueRange)

    /// `a number ≥ 0`, `one of logits, softmax` …
    public var description: String {
        switch self {
        case let .real(range): return range == .finite ? "a finite number" : "a number \(range)"
        case let .integer(range): return range == .finite ? "an integer" : "an integer \(range)"
        case .boolean: return "true or false"
        case let .choice(names): return "one of \(names.joined(separator: ", "))"
        case let .integerList(range): return "a list of integers \(range)"
        case let .realList(range): return range == .finite ? "a list of numbers" : "a list of numbers \(range)"
        }
    }

    /// A short type name for tables: `real`, `integer`, `bool`, `choice`, `integers`.
    public var typeName: String {
        switch self {
        case .real: "real"
        case .integer: "integer"
        case .boolean: "bool"
        case .choice: "choice"
        case .integerList: "integers"
        case .realList: "reals"
        }
    }
}

/// One hyper-parameter a strategy declares beside its code: the key it has under the strategy's name in YAML
/// (`hyperparameters.mas.lambda`), the paper's symbol, its type and range, its default and a line of help.
public struct HyperparameterSpec: Sendable {
    /// The key under the strategy's section of `hyperparameters` (`lambda`).
    public let key: String
    /// The symbol the paper uses (`λ`).
    public let symbol: String
    public let kind: HyperparameterKind
    /// The default, or nil when the default depends on the run (``defaultDescription`` says how).
    public let defaultValue: HyperparameterValue?
    /// How the default is chosen when ``defaultValue`` is nil (`the run's epochs`).
    public let defaultDescription: String?
    /// One line for `--help` and `engram strategies`.
    public let help: String
    /// The command-line flag without dashes (`lambda` for `--lambda`); several strategies may share a flag.
    public let flag: String
    /// Other names a value for this option has had outside the strategy's section (older files, other flags):
    /// RWalk's ε was set through `xi`.
    public let aliases: [String]

    public init(_ key: String, symbol: String? = nil, _ kind: HyperparameterKind, default defaultValue: HyperparameterValue?,
                defaultDescription: String? = nil, flag: String? = nil, aliases: [String] = [], help: String) {
        self.key = key
        self.symbol = symbol ?? key
        self.kind = kind
        self.defaultValue = defaultValue
        self.defaultDescription = defaultDescription
        self.flag = flag ?? key.replacingOccurrences(of: "_", with: "-")
        self.aliases = aliases
        self.help = help
    }

    /// A real-valued option.
    public static func real(_ key: String, symbol: String? = nil, default value: Double, range: ValueRange = .finite,
                            flag: String? = nil, aliases: [String] = [], help: String) -> HyperparameterSpec {
        HyperparameterSpec(key, symbol: symbol, .real(range), default: .double(value), flag: flag, aliases: aliases, help: help)
    }

    /// An integer option; `default: nil` with `defaultDescription` when the run decides.
    public static func integer(_ key: String, symbol: String? = nil, default value: Int?, defaultDescription: String? = nil,
                               range: ValueRange = .finite, flag: String? = nil, aliases: [String] = [],
                               help: String) -> HyperparameterSpec {
        HyperparameterSpec(key, symbol: symbol, .integer(range), default: value.map(GridValue.int),
                           defaultDescription: defaultDescription, flag: flag, aliases: aliases, help: help)
    }

    /// A true/false option.
    public static func boolean(_ key: String, default value: Bool, flag: String? = nil, aliases: [String] = [],
                               help: String) -> HyperparameterSpec {
        HyperparameterSpec(key, .boolean, default: .bool(value), flag: flag, aliases: aliases, help: help)
    }

    /// An option naming one case of `Choice` (its raw values are the accepted names).
    public static func choice<Choice: RawRepresentable & CaseIterable>(
        _ key: String, _ type: Choice.Type, default value: Choice, flag: String? = nil, aliases: [String] = [], help: String
    ) -> HyperparameterSpec where Choice.RawValue == String {
        HyperparameterSpec(key, .choice(type.allCases.map(\.rawValue)), default: .string(value.rawValue), flag: flag,
                           aliases: aliases, help: help)
    }

    /// A list-of-integers option whose default the run decides.
    public static func integerList(_ key: String, range: ValueRange, defaultDescription: String, flag: String? = nil,
                                   aliases: [String] = [], help: String) -> HyperparameterSpec {
        HyperparameterSpec(key, .integerList(range), default: nil, defaultDescription: defaultDescription, flag: flag,
                           aliases: aliases, help: help)
    }

    /// A list-of-reals option with a default (one value per layer, …).
    public static func realList(_ key: String, symbol: String? = nil, default values: [Double], range: ValueRange,
                                flag: String? = nil, aliases: [String] = [], help: String) -> HyperparameterSpec {
        HyperparameterSpec(key, symbol: symbol, .realList(range), default: .list(values.map(GridValue.double)), flag: flag,
                           aliases: aliases, help: help)
    }

    /// The names a value outside the strategy's section reaches this option by: its key, its flag's name
    /// (dashes as underscores) and its aliases.
    public var sharedNames: Set<String> {
        Set([key, flag.replacingOccurrences(of: "-", with: "_")] + aliases)
    }

    /// The default as text (`1`, `logits`, `the run's epochs`).
    public var defaultText: String {
        if case let .list(items)? = defaultValue { return "[" + items.map(\.description).joined(separator: ", ") + "]" }
        return defaultValue?.description ?? defaultDescription ?? "none"
    }

    /// `value` checked against the kind and range, in its canonical form (an integer given for a real option
    /// becomes a real). `name` is how the error names the option (`hyperparameters.mas.lambda`, `--lambda`).
    public func checked(_ value: HyperparameterValue, name: String) throws -> HyperparameterValue {
        func refuse() -> ConfigurationError {
            ConfigurationError("\(name) must be \(kind.description), got \(value.yamlText)")
        }
        switch (kind, value) {
        case let (.real(range), .double(x)):
            guard range.contains(x) else { throw refuse() }
            return .double(x)
        case let (.real(range), .int(x)):
            guard range.contains(Double(x)) else { throw refuse() }
            return .double(Double(x))
        case let (.integer(range), .int(x)):
            guard range.contains(Double(x)) else { throw refuse() }
            return .int(x)
        case let (.integer(range), .double(x)) where x.rounded() == x && abs(x) < 1e15:
            guard range.contains(x) else { throw refuse() }
            return .int(Int(x))
        case (.boolean, .bool): return value
        case let (.boolean, .string(text)):
            guard let flag = Bool(text.lowercased()) else { throw refuse() }
            return .bool(flag)
        case let (.choice(names), .string(text)):
            guard names.contains(text) else { throw refuse() }
            return value
        case let (.integerList(range), .list(items)):
            return .list(try items.map { item in
                switch item {
                case let .int(x) where range.contains(Double(x)): return .int(x)
                case let .double(x) where x.rounded() == x && abs(x) < 1e15 && range.contains(x): return .int(Int(x))
                default: throw refuse()
                }
            })
        case (.integerList, .int):
            return try checked(.list([value]), name: name)
        case let (.realList(range), .list(items)):
            return .list(try items.map { item in
                guard let x = item.number, range.contains(x) else { throw refuse() }
                return .double(x)
            })
        case (.realList, .int), (.realList, .double):
            return try checked(.list([value]), name: name)
        default:
            throw refuse()
        }
    }

    /// A value written on the command line (`1e-3`, `true`, `logits`, `35,40`), checked.
    public func parse(_ text: String, name: String) throws -> HyperparameterValue {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let value: HyperparameterValue
        switch kind {
        case .real, .integer:
            if let i = Int(trimmed) { value = .int(i) } else if let x = Double(trimmed) { value = .double(x) } else { value = .string(trimmed) }
        case .boolean, .choice: value = .string(trimmed)
        case .integerList:
            let items = trimmed.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            value = .list(items.map { Int($0).map(GridValue.int) ?? .string($0) })
        case .realList:
            let items = trimmed.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            value = .list(items.map { Double($0).map(GridValue.double) ?? .string($0) })
        }
        return try checked(value, name: name)
    }
}

extension GridValue {
    /// The value as YAML would show it (strings quoted).
    var yamlText: String {
        switch self {
        case let .string(s): return "'\(s)'"
        case let .list(items): return "[" + items.map(\.yamlText).joined(separator: ", ") + "]"
        case let .double(x): return x.isFinite ? description : "\(x)"
        default: return description
        }
    }

    /// The value as a `Double`, when it is a number.
    public var number: Double? {
        switch self {
        case let .double(x): x
        case let .int(x): Double(x)
        default: nil
        }
    }
}

/// The hyper-parameters of a run as configured: values under a strategy's name (`mas: {lambda: 1}`, the
/// form Engram writes) and values outside any section (`lambda: 1`, the form of older files and of the paper-named
/// flags), which reach every strategy of the run that has an option of that name.
///
/// In YAML both sit in `hyperparameters`: a mapping is a strategy's section, a plain value is a shared one.
/// ``ExperimentConfiguration/resolved()`` turns both into one section per strategy of the run, with every
/// default written out; setting one option both ways is refused (no silent precedence).
public struct HyperparameterSettings: Sendable, Equatable, Codable {
    /// Values under a strategy's name: `sections["mas"]["lambda"]`.
    public var sections: [String: [String: HyperparameterValue]] = [:]
    /// Values outside any section, by the name they were given (`lambda`, `mas_output`, `xi`).
    public var shared: [String: HyperparameterValue] = [:]

    public init() {}

    /// The value of `key` in `strategy`'s section.
    public subscript(strategy: String, key: String) -> HyperparameterValue? {
        get { sections[strategy]?[key] }
        set { sections[strategy, default: [:]][key] = newValue; if sections[strategy]?.isEmpty == true { sections[strategy] = nil } }
    }

    /// A value outside any section (it reaches every strategy of the run with an option of that name).
    public subscript(shared name: String) -> HyperparameterValue? {
        get { shared[name] }
        set { shared[name] = newValue }
    }

    /// Whether nothing is set.
    public var isEmpty: Bool { sections.isEmpty && shared.isEmpty }

    /// Keys older versions wrote that are read and ignored (`empirical_fisher`: now `fisher`).
    static let retiredKeys: Set<String> = ["empirical_fisher"]

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: AnyCodingKey.self)
        let path = container.codingPath.map(\.stringValue).joined(separator: ".")
        let section = path.isEmpty ? "hyperparameters" : path
        for key in container.allKeys {
            let name = key.stringValue
            if let values = try? container.decode([String: HyperparameterValue].self, forKey: key) {
                guard let descriptor = StrategyRegistry.descriptor(named: name) else {
                    throw ConfigurationError("unknown key '\(section).\(name)' (no strategy is called '\(name)')"
                                             + suggestion(name, among: StrategyRegistry.names, what: "strategies", prefix: section + "."))
                }
                for (option, value) in values {
                    guard let spec = descriptor.hyperparameter(option) else {
                        throw ConfigurationError("unknown key '\(section).\(name).\(option)' (\(name) has no option '\(option)')"
                                                 + suggestion(option, among: descriptor.hyperparameters.map(\.key), what: "\(name)'s options",
                                                              prefix: "\(section).\(name)."))
                    }
                    sections[name, default: [:]][option] = try spec.checked(value, name: "\(section).\(name).\(option)")
                }
                if values.isEmpty { sections[name] = [:] }
                continue
            }
            if Self.retiredKeys.contains(name) { continue }
            let value: HyperparameterValue
            do { value = try container.decode(HyperparameterValue.self, forKey: key) } catch {
                throw ConfigurationError("\(section).\(name): expected a value or a strategy's section")
            }
            guard StrategyRegistry.sharedNames.contains(name) else {
                throw ConfigurationError("unknown key '\(section).\(name)' (no strategy has an option '\(name)')"
                                         + suggestion(name, among: StrategyRegistry.sharedNames.sorted() + StrategyRegistry.names,
                                                      what: "options", prefix: section + "."))
            }
            shared[name] = value
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: AnyCodingKey.self)
        for (name, value) in shared.sorted(by: { $0.key < $1.key }) {
            try container.encode(value, forKey: AnyCodingKey(stringValue: name))
        }
        for (name, values) in sections.sorted(by: { $0.key < $1.key }) {
            var inner = container.nestedContainer(keyedBy: AnyCodingKey.self, forKey: AnyCodingKey(stringValue: name))
            for (option, value) in values.sorted(by: { $0.key < $1.key }) {
                try inner.encode(value, forKey: AnyCodingKey(stringValue: option))
            }
        }
    }

    /// The options of each strategy in `strategies` (the parts of `mas+lwf`): its defaults, overridden by the
    /// shared values it has an option for or by its section. Throws, naming the key, for a shared value no strategy
    /// of the run reads, for an option set both ways, and for a value of the wrong type or out of range.
    public func resolved(for strategies: [String]) throws -> [String: StrategyOptions] {
        var result: [String: StrategyOptions] = [:]
        var used = Set<String>()
        for name in strategies {
            guard let descriptor = StrategyRegistry.descriptor(named: name) else {
                throw ConfigurationError("strategy: no strategy is called '\(name)'"
                                         + suggestion(name, among: StrategyRegistry.names, what: "strategies"))
            }
            var values: [String: HyperparameterValue] = [:]
            for spec in descriptor.hyperparameters {
                if let value = spec.defaultValue { values[spec.key] = value }
                let sharedHere = spec.sharedNames.filter { shared[$0] != nil }.sorted()
                if sharedHere.count > 1 {
                    throw ConfigurationError("hyperparameters: \(sharedHere.joined(separator: " and ")) both set \(name)'s "
                                             + "\(spec.key); keep one")
                }
                if let given = sharedHere.first {
                    values[spec.key] = try spec.checked(shared[given]!, name: "hyperparameters.\(given)")
                    used.insert(given)
                }
                if let value = sections[name]?[spec.key] {
                    if let given = sharedHere.first {
                        throw ConfigurationError("hyperparameters.\(given) and hyperparameters.\(name).\(spec.key) both set \(name)'s "
                                                 + "\(spec.key); keep one")
                    }
                    values[spec.key] = try spec.checked(value, name: "hyperparameters.\(name).\(spec.key)")
                }
            }
            result[name] = StrategyOptions(strategy: name, values: values)
        }
        if let unused = shared.keys.sorted().first(where: { !used.contains($0) }) {
            let list = strategies.joined(separator: "+")
            let options = strategies.compactMap(StrategyRegistry.descriptor(named:)).flatMap(\.hyperparameters).map(\.key)
            throw ConfigurationError("hyperparameters.\(unused): strategy \(list) has no option '\(unused)'"
                                     + (options.isEmpty ? " (it has no hyper-parameters)"
                                                        : "; its options: \(Array(Set(options)).sorted().joined(separator: ", "))"))
        }
        return result
    }
}

/// `; did you mean 'x'?` (with `prefix` before x) when a candidate is close to `name`, else `; <what>: a, b, c`.
func suggestion(_ name: String, among candidates: [String], what: String, prefix: String = "") -> String {
    if let nearest = candidates.min(by: { editDistance(name, $0) < editDistance(name, $1) }),
       editDistance(name, nearest) <= max(2, name.count / 2) {
        return "; did you mean '\(prefix)\(nearest)'?"
    }
    return "; \(what): \(candidates.joined(separator: ", "))"
}

/// One strategy's hyper-parameters after resolution: every declared option with a default or a given value,
/// checked. Strategies read them by key when they are built.
public struct StrategyOptions: Sendable, Equatable {
    /// The strategy these options belong to.
    public let strategy: String
    /// Values by key (an option whose default the run decides is absent unless given).
    public let values: [String: HyperparameterValue]

    public init(strategy: String, values: [String: HyperparameterValue]) {
        self.strategy = strategy
        self.values = values
    }

    private func value(_ key: String) -> HyperparameterValue {
        guard let value = values[key] else {
            preconditionFailure("\(strategy) reads option '\(key)', which its descriptor does not declare with a default")
        }
        return value
    }

    /// A real option as `Float`.
    public func float(_ key: String) -> Float { Float(double(key)) }

    /// A real option as `Double`.
    public func double(_ key: String) -> Double {
        guard let x = value(key).number else { preconditionFailure("\(strategy).\(key) is not a number") }
        return x
    }

    /// An integer option.
    public func integer(_ key: String) -> Int {
        guard case let .int(x) = value(key) else { preconditionFailure("\(strategy).\(key) is not an integer") }
        return x
    }

    /// An integer option whose default the run decides (nil when not given).
    public func optionalInteger(_ key: String) -> Int? { values[key] == nil ? nil : integer(key) }

    /// A true/false option.
    public func bool(_ key: String) -> Bool {
        guard case let .bool(x) = value(key) else { preconditionFailure("\(strategy).\(key) is not a boolean") }
        return x
    }

    /// A choice option as its enumeration.
    public func choice<Choice: RawRepresentable>(_ key: String, as type: Choice.Type = Choice.self) -> Choice
        where Choice.RawValue == String {
        guard case let .string(name) = value(key), let choice = Choice(rawValue: name) else {
            preconditionFailure("\(strategy).\(key) is not a \(type)")
        }
        return choice
    }

    /// A list-of-reals option.
    public func floatList(_ key: String) -> [Float] {
        guard case let .list(items) = value(key) else { preconditionFailure("\(strategy).\(key) is not a list") }
        return items.map { guard let x = $0.number else { preconditionFailure("\(strategy).\(key) holds a non-number") }; return Float(x) }
    }

    /// A list-of-integers option (nil when not given and the run decides).
    public func integerList(_ key: String) -> [Int]? {
        guard let value = values[key] else { return nil }
        guard case let .list(items) = value else { preconditionFailure("\(strategy).\(key) is not a list") }
        return items.map { if case let .int(x) = $0 { x } else { preconditionFailure("\(strategy).\(key) holds a non-integer") } }
    }
}

extension GridValue: ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral, ExpressibleByBooleanLiteral, ExpressibleByStringLiteral {
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(stringLiteral value: String) { self = .string(value) }
}
