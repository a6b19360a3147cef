import Engram
import ArgumentParser
import Foundation

/// `engram strategies`: every registered strategy with its paper, scenarios and hyper-parameters.
struct Strategies: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the strategies, their papers, scenarios and hyper-parameters with defaults.",
        discussion: """
        Hyper-parameters are set in YAML under the strategy's name (hyperparameters: {mas: {lambda: 1}}), on the \
        command line with their flag (--lambda 1, reaching every strategy of the run that has the option) or \
        with --set mas.lambda=1.
        """)

    @Flag(help: "Print the registry as JSON.")
    var json = false

    @Argument(help: "Only these strategies (default: all).")
    var names: [String] = []

    func validate() throws {
        if let unknown = names.first(where: { StrategyRegistry.descriptor(named: $0) == nil }) {
            throw ValidationError("no strategy is called '\(unknown)'; available: \(StrategyRegistry.names.joined(separator: ", "))")
        }
    }

    func run() throws {
        let chosen = names.isEmpty ? StrategyRegistry.all : names.compactMap(StrategyRegistry.descriptor(named:))
        if json {
            let data = try JSONSerialization.data(withJSONObject: chosen.map(Self.jsonObject), options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        for d in chosen {
            print("\(d.name) — \(d.summary)")
            print("  paper: \(d.paper)")
            let scenarios = Scenario.allCases.filter(d.scenarios.contains).map(\.rawValue)
            var facts = ["scenarios: \(scenarios.joined(separator: ", "))"]
            if d.usesTaskIdentityAtTest { facts.append("uses the task id at test time") }
            if d.hasTaskAgnosticInference { facts.append("task-agnostic inference") }
            if d.changesTrainingData { facts.append("changes the training data") }
            if d.replacesCriterion { facts.append("replaces the task loss") }
            if let models = d.models { facts.append("models: \(models.joined(separator: ", "))") }
            if d.perTaskBatchNorm { facts.append("per-task BatchNorm by default") }
            if d.biasFreeNetwork { facts.append("an MLP without biases by default") }
            print("  " + facts.joined(separator: "; "))
            for h in d.hyperparameters {
                let symbol = h.symbol == h.key ? "" : " (\(h.symbol))"
                print("  \(d.name).\(h.key)\(symbol) --\(h.flag): \(h.kind.description), default \(h.defaultText). \(h.help)")
            }
            print("")
        }
    }

    static func jsonObject(_ d: StrategyDescriptor) -> [String: Any] {
        [
            "name": d.name, "summary": d.summary, "paper": d.paper,
            "scenarios": Scenario.allCases.filter(d.scenarios.contains).map(\.rawValue),
            "uses_task_id_at_test": d.usesTaskIdentityAtTest, "task_agnostic_inference": d.hasTaskAgnosticInference,
            "changes_training_data": d.changesTrainingData, "replaces_criterion": d.replacesCriterion, "models": d.models ?? NSNull(),
            "progressive_network": d.buildsProgressiveNetwork, "per_task_batchnorm": d.perTaskBatchNorm, "bias_free_network": d.biasFreeNetwork,
            "hyperparameters": d.hyperparameters.map { h -> [String: Any] in
                var o: [String: Any] = ["key": h.key, "symbol": h.symbol, "type": h.kind.typeName, "flag": "--\(h.flag)",
                                        "accepts": h.kind.description, "help": h.help,
                                        "default": h.defaultValue.map(\.jsonObject) ?? NSNull()]
                if h.defaultValue == nil, let text = h.defaultDescription { o["default_description"] = text }
                if case let .choice(names) = h.kind { o["choices"] = names }
                if !h.aliases.isEmpty { o["aliases"] = h.aliases }
                return o
            },
        ]
    }

    /// The hyper-parameter flags of every strategy, for `run --help` and `compare --help`: each flag with the
    /// strategies it reaches (an alias too: `--xi` still sets RWalk's ε) and their help.
    static var flagsHelp: String {
        var flags: [String] = []
        var owners: [String: [(strategy: String, spec: HyperparameterSpec)]] = [:]
        for d in StrategyRegistry.all {
            for h in d.hyperparameters {
                for name in [h.flag] + h.aliases.map({ $0.replacingOccurrences(of: "_", with: "-") }) {
                    if owners[name] == nil { flags.append(name) }
                    owners[name, default: []].append((d.name, h))
                }
            }
        }
        let lines = flags.map { flag -> String in
            let reached = owners[flag]!
            let helps = reached.map(\.spec.help).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
            let names = reached.map { $0.spec.flag == flag ? $0.strategy : "\($0.strategy) (\($0.spec.key))" }
            if helps.count == 1 { return "  --\(flag) (\(names.joined(separator: ", "))): \(helps[0])" }
            return "  --\(flag): " + helps.map { help in
                reached.filter { $0.spec.help == help }.map(\.strategy).joined(separator: ", ") + ": " + help
            }.joined(separator: " ")
        }
        return "\nStrategy options (each reaches every strategy of the run that has it; YAML: hyperparameters.<strategy>.<option>; "
            + "--set mas.lambda=1 reaches one strategy; `engram strategies` gives the defaults):\n" + lines.joined(separator: "\n")
    }
}

/// The paper-named hyper-parameter flags (`--lambda 1`, `--mas-output=softmax`), which come from the strategy
/// registry rather than from declared options: before parsing, each becomes `--set --lambda=1`.
enum StrategyFlags {
    /// Every flag a strategy declares, without dashes.
    static let names: Set<String> = Set(StrategyRegistry.all.flatMap { $0.hyperparameters.map(\.flag) })

    /// The subcommands whose arguments hold experiment options (`run`, also when implied, and `compare`).
    static let commands: Set<String> = ["run", "compare"]

    /// `arguments` (without the program name) with every strategy flag rewritten as a `--set` value.
    static func rewrite(_ arguments: [String]) -> [String] {
        let first = arguments.first { !$0.hasPrefix("-") }
        let known = Set(Engram.configuration.subcommands.map { $0._commandName } + ["help"])
        if let first, known.contains(first), !commands.contains(first) { return arguments }
        var out: [String] = []
        var i = 0
        while i < arguments.count {
            let a = arguments[i]
            if a == "--" { out += arguments[i...]; break }
            if a.hasPrefix("--") {
                let body = a.dropFirst(2)
                let name = String(body.prefix { $0 != "=" })
                if names.contains(name) {
                    if body.contains("=") {
                        out += ["--set", "--" + body]
                    } else if i + 1 < arguments.count, !arguments[i + 1].hasPrefix("--") {
                        out += ["--set", "--\(name)=\(arguments[i + 1])"]
                        i += 1
                    } else {
                        out += ["--set", "--\(name)"]
                    }
                    i += 1
                    continue
                }
            }
            out.append(a)
            i += 1
        }
        return out
    }
}
