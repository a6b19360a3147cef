import EngramTensor
import EngramNN
import EngramData

/// Everything Engram needs to know about a strategy, declared in the strategy's own file: the command line,
/// `--help`, YAML validation, sweeps, summaries, reports and `engram strategies` all read it from here.
public struct StrategyDescriptor: Sendable {
    /// The name used on the command line and in YAML (`mas`).
    public let name: String
    /// One line saying what the method does.
    public let summary: String
    /// The paper (authors, venue, year).
    public let paper: String
    /// Its hyper-parameters, in the order `--help` lists them.
    public let hyperparameters: [HyperparameterSpec]
    /// The scenarios it can run.
    public let scenarios: Set<Scenario>
    /// Whether it needs the task id at test time beyond choosing a head (task masks, columns).
    public let usesTaskIdentityAtTest: Bool
    /// Whether it offers an inference rule that predicts the task (MIND's).
    public let hasTaskAgnosticInference: Bool
    /// Whether it trains on other data than the current task's (joint training, replay).
    public let changesTrainingData: Bool
    /// Whether its `criterion` replaces the task loss (MIND) rather than adding a penalty to it.
    public let replacesCriterion: Bool
    /// The `model` values it accepts (nil: every model).
    public let models: [String]?
    /// Whether its model is a progressive network (one column per task, built from `model`).
    public let buildsProgressiveNetwork: Bool
    /// Whether ResNets and `cnn` get one BatchNorm per task unless `per_task_batchnorm` says otherwise.
    public let perTaskBatchNorm: Bool
    /// Whether the method needs an MLP without biases (SRC's spiking conversion): the run's `bias` defaults to false.
    public let biasFreeNetwork: Bool
    /// The MLP dropout the method's recipe trains with (Stable SGD's 0.5): the run's `dropout` defaults to it.
    public let recipeDropout: Double?
    /// Builds the strategy from its resolved options.
    public let make: @Sendable (StrategyOptions) throws -> any Strategy

    public init(name: String, summary: String, paper: String, hyperparameters: [HyperparameterSpec] = [],
                scenarios: Set<Scenario> = Set(Scenario.allCases), usesTaskIdentityAtTest: Bool = false,
                hasTaskAgnosticInference: Bool = false, changesTrainingData: Bool = false, replacesCriterion: Bool = false,
                models: [String]? = nil,
                buildsProgressiveNetwork: Bool = false, perTaskBatchNorm: Bool = false, biasFreeNetwork: Bool = false,
                recipeDropout: Double? = nil, make: @escaping @Sendable (StrategyOptions) throws -> any Strategy) {
        self.name = name
        self.summary = summary
        self.paper = paper
        self.hyperparameters = hyperparameters
        self.scenarios = scenarios
        self.usesTaskIdentityAtTest = usesTaskIdentityAtTest
        self.hasTaskAgnosticInference = hasTaskAgnosticInference
        self.changesTrainingData = changesTrainingData
        self.replacesCriterion = replacesCriterion
        self.models = models
        self.buildsProgressiveNetwork = buildsProgressiveNetwork
        self.perTaskBatchNorm = perTaskBatchNorm
        self.biasFreeNetwork = biasFreeNetwork
        self.recipeDropout = recipeDropout
        self.make = make
    }

    /// The option called `key`.
    public func hyperparameter(_ key: String) -> HyperparameterSpec? { hyperparameters.first { $0.key == key } }

    /// The strategy with its defaults.
    public func makeWithDefaults() throws -> any Strategy {
        try make(try HyperparameterSettings().resolved(for: [name])[name]!)
    }
}

/// A strategy type that declares its registry entries (one per name it answers to: `imm-mean` and `imm-mode`
/// are one type).
public protocol RegisteredStrategy: Strategy {
    static var descriptors: [StrategyDescriptor] { get }
}

/// Every strategy Engram holds. Adding one is its own file plus its type in ``types``.
public enum StrategyRegistry {
    /// The registered strategy types, in the order `engram strategies` lists them.
    static let types: [any RegisteredStrategy.Type] = [
        Finetune.self, Joint.self, MAS.self, MASLocal.self, EWC.self, OnlineEWC.self, SynapticIntelligence.self, RWalk.self,
        LwF.self, EBLL.self, IMM.self, L2.self, ProgressiveNets.self, PackNet.self, MIND.self,
        ExperienceReplay.self, ERACE.self, AGEM.self, GEM.self, DarkExperienceReplay.self, ICaRL.self, GDumb.self,
        SleepReplayConsolidation.self, REMIND.self, GPM.self, OGD.self, StableSGD.self, MCSGD.self,
    ]

    /// Every descriptor, in order.
    public static let all: [StrategyDescriptor] = types.flatMap { $0.descriptors }

    /// The names of every strategy.
    public static let names: [String] = all.map(\.name)

    /// Every name a value outside a strategy's section can reach an option by.
    public static let sharedNames: Set<String> = Set(all.flatMap { $0.hyperparameters.flatMap(\.sharedNames) })

    /// The strategy called `name`.
    public static func descriptor(named name: String) -> StrategyDescriptor? { all.first { $0.name == name } }

    /// The options of `descriptors` that a value given outside any section under `name` reaches (`lambda` reaches
    /// MAS's and EWC's λ, `xi` RWalk's ε through its alias), with the strategy that owns each.
    public static func options(reachedBy name: String, in descriptors: [StrategyDescriptor]) -> [(strategy: String, spec: HyperparameterSpec)] {
        descriptors.flatMap { d in d.hyperparameters.filter { $0.sharedNames.contains(name) }.map { (d.name, $0) } }
    }

    /// The parts of a strategy list (`mas+lwf` → `mas`, `lwf`), checked: no empty part, no repeated part,
    /// every part registered.
    public static func parts(of list: String) throws -> [String] {
        let parts = list.split(separator: "+", omittingEmptySubsequences: false).map(String.init)
        if let empty = parts.firstIndex(of: ""), parts.count > 1 {
            throw StrategyError(key: "strategy", "'\(list)' has an empty part (position \(empty + 1)); combine names as mas+lwf")
        }
        if let repeated = parts.first(where: { p in parts.filter { $0 == p }.count > 1 }) {
            throw StrategyError(key: "strategy", "'\(list)' names '\(repeated)' twice; each method can appear once")
        }
        if let unknown = parts.first(where: { descriptor(named: $0) == nil }) {
            throw StrategyError("unknown strategy '\(unknown)'" + suggestion(unknown, among: names, what: "available"))
        }
        let replacing = parts.filter { descriptor(named: $0)!.replacesCriterion }
        if replacing.count > 1 {
            throw StrategyError(key: "strategy", "'\(list)': \(replacing.joined(separator: " and ")) each replace the task loss with their own "
                                + "objective; combine at most one of them with methods that add a penalty")
        }
        let changing = parts.filter { descriptor(named: $0)!.changesTrainingData }
        if changing.count > 1 {
            throw StrategyError(key: "strategy", "'\(list)': \(changing.joined(separator: " and ")) each choose the training data; "
                                + "combine at most one of them with other methods")
        }
        return parts
    }

    /// The descriptors of the parts of a strategy list.
    public static func descriptors(of list: String) throws -> [StrategyDescriptor] {
        try parts(of: list).map { descriptor(named: $0)! }
    }

    /// The strategy (or composite) a list names, built with the given settings.
    public static func make(_ list: String, _ settings: HyperparameterSettings = HyperparameterSettings()) throws -> any Strategy {
        let descriptors = try descriptors(of: list)
        let options = try settings.resolved(for: descriptors.map(\.name))
        let parts = try descriptors.map { try $0.make(options[$0.name]!) }
        // LwF weighed by the task count scales the task loss itself, which a method replacing it would discard.
        if let lwf = parts.lazy.compactMap({ $0 as? LwF }).first, lwf.lossWeighting == .byTaskCount,
           let replacing = descriptors.first(where: \.replacesCriterion) {
            throw StrategyError(key: "lwf.loss_weighting", "by_task_count scales the task loss, which \(replacing.name) replaces "
                                + "with its own objective; use additive with \(replacing.name)")
        }
        return parts.count == 1 ? parts[0] : CompositeStrategy(parts)
    }
}
