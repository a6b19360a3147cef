import EngramTensor
import EngramData
import EngramNN
import Foundation

/// Everything that defines one continual-learning run; saved as `config.yaml` beside the results.
public struct ExperimentConfiguration: Sendable, Codable, Equatable {
    /// `permuted-mnist`, `rotated-mnist`, `split-mnist`, `split-fmnist`, `split-cifar100`.
    public var benchmark = "permuted-mnist"
    /// `task`, `domain` or `class`.
    public var scenario = "domain"
    /// Number of tasks (permuted/rotated: any; split-cifar100: 10 or 20; split MNIST: 5).
    public var tasks = 5
    /// Strategy name(s) (`mas`, `ewc+…`; `engram strategies` lists them).
    public var strategy = "mas"
    /// The strategies' hyper-parameters: a section per strategy (`mas: {lambda: 1}`), or values outside any
    /// section that reach every strategy of the run with an option of that name (`lambda: 1`).
    public var hyperparameters = HyperparameterSettings()
    /// `mlp`, `cnn`, `resnet18r` (reduced ResNet-18, width `width`), `resnet20` or `resnet32` (CIFAR ResNets of
    /// depth 6n + 2 with option-A shortcuts). With the `pnn` strategy, `mlp` means a progressive network of MLP columns
    /// and `cnn` one of convolutional columns.
    public var model = "mlp"
    /// Hidden sizes of the MLP; for `cnn`, of the linear layers after the convolutional blocks.
    public var hidden = [400, 400]
    /// MLP: whether its Linear layers have biases. nil: off when a strategy of the list converts the network into
    /// one without (``StrategyDescriptor/biasFreeNetwork``: SRC, whose paper's networks have none), on otherwise.
    public var bias: Bool? = nil
    /// MLP: probability of a dropout after each hidden ReLU (0: none). nil: the recipe's of a strategy of the list
    /// that has one (``StrategyDescriptor/recipeDropout``: Stable SGD's 0.5), else 0.
    public var dropout: Double? = nil
    /// ResNet width (nf); for `cnn`, the channels of the first of its two convolutional blocks (the second has twice as many).
    public var width = 20
    /// ResNets and `cnn`: one BatchNorm (γ, β, running statistics) per task instead of one shared, chosen by
    /// the active task. nil: on when the strategy list contains `mind`, `mind-self` or `packnet`, off otherwise.
    /// `mlp` has no BatchNorm and ignores this; the progressive `pnn` columns have their own BatchNorm each.
    public var perTaskBatchNorm: Bool? = nil
    public var training = TrainingConfiguration()
    /// Fraction of each dataset used (stratified).
    public var fraction = 1.0
    /// Fraction of the test sets used (nil: `fraction`).
    public var testFraction: Double? = nil
    /// Fraction of each task's training data held out as a validation split (stratified, seeded).
    public var validationFraction = 0.0
    /// Evaluate on the held-out validation split instead of the test set (for hyper-parameter selection).
    public var evaluateOnValidation = false
    /// Zero pixels added on every side of every image before the stream is built (Permuted MNIST in van de
    /// Ven & Tolias's protocol: 2, so 28×28 becomes 32×32 and the permutations act on 1 024 pixels).
    public var padding = 0
    /// Permuted MNIST: task 1 without permutation.
    public var identityFirst = true
    /// Rotated MNIST: task t (from 0) turned by `rotation_per_task`·t − `rotation_jitter`·u degrees, u uniform in
    /// [0, 1) per task (Mirzadeh et al.'s 10 and 10). nil: angles evenly spaced over [0°, 180°).
    public var rotationPerTask: Double? = nil
    /// Rotated MNIST: the jitter subtracted from each task's stepped angle (with `rotation_per_task`; nil: 0).
    public var rotationJitter: Double? = nil
    /// Split CIFAR-100 class order: `natural`, `seeded` or `icarl`.
    public var classOrder = "natural"
    /// Where datasets are looked for first.
    public var dataDirectory: String? = nil
    /// Keep a copy of the checkpoint written after every task, `checkpoints/task-<t>.safetensors` (t from 1), for
    /// `engram analyze` (mode connectivity, sharpness). nil or false: only the latest checkpoint is kept.
    public var keepTaskCheckpoints: Bool? = nil

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case benchmark, scenario, tasks, strategy, hyperparameters, model, hidden, width, training, fraction
        case testFraction = "test_fraction", identityFirst = "identity_first", classOrder = "class_order"
        case validationFraction = "validation_fraction", evaluateOnValidation = "evaluate_on_validation"
        case dataDirectory = "data_dir", perTaskBatchNorm = "per_task_batchnorm", padding, bias, dropout
        case rotationPerTask = "rotation_per_task", rotationJitter = "rotation_jitter"
        case keepTaskCheckpoints = "keep_task_checkpoints"
    }

    /// Decodes a configuration in which every key is optional (a YAML file may set only some).
    public init(from decoder: any Decoder) throws {
        try rejectUnknownKeys(decoder, known: CodingKeys.allCases.map(\.rawValue),
                              nested: ["training": TrainingConfiguration.CodingKeys.allCases.map(\.rawValue),
                                       "hyperparameters": StrategyRegistry.sharedNames.sorted()])
        let c = try decoder.container(keyedBy: CodingKeys.self)
        var d = ExperimentConfiguration()
        d.benchmark = try c.decodeIfPresent(String.self, forKey: .benchmark) ?? d.benchmark
        d.scenario = try c.decodeIfPresent(String.self, forKey: .scenario) ?? d.scenario
        d.tasks = try c.decodeIfPresent(Int.self, forKey: .tasks) ?? d.tasks
        d.strategy = try c.decodeIfPresent(String.self, forKey: .strategy) ?? d.strategy
        if try c.contains(.hyperparameters) && !c.decodeNil(forKey: .hyperparameters) {
            d.hyperparameters = try HyperparameterSettings(from: try c.superDecoder(forKey: .hyperparameters))
        }
        d.model = try c.decodeIfPresent(String.self, forKey: .model) ?? d.model
        d.hidden = try c.decodeIfPresent([Int].self, forKey: .hidden) ?? d.hidden
        d.width = try c.decodeIfPresent(Int.self, forKey: .width) ?? d.width
        d.bias = try c.decodeIfPresent(Bool.self, forKey: .bias)
        d.dropout = try c.decodeIfPresent(Double.self, forKey: .dropout)
        d.perTaskBatchNorm = try c.decodeIfPresent(Bool.self, forKey: .perTaskBatchNorm)
        d.training = try c.decodeIfPresent(TrainingConfiguration.self, forKey: .training) ?? d.training
        d.fraction = try c.decodeIfPresent(Double.self, forKey: .fraction) ?? d.fraction
        d.testFraction = try c.decodeIfPresent(Double.self, forKey: .testFraction)
        d.validationFraction = try c.decodeIfPresent(Double.self, forKey: .validationFraction) ?? d.validationFraction
        d.padding = try c.decodeIfPresent(Int.self, forKey: .padding) ?? d.padding
        d.evaluateOnValidation = try c.decodeIfPresent(Bool.self, forKey: .evaluateOnValidation) ?? d.evaluateOnValidation
        d.identityFirst = try c.decodeIfPresent(Bool.self, forKey: .identityFirst) ?? d.identityFirst
        d.rotationPerTask = try c.decodeIfPresent(Double.self, forKey: .rotationPerTask)
        d.rotationJitter = try c.decodeIfPresent(Double.self, forKey: .rotationJitter)
        d.classOrder = try c.decodeIfPresent(String.self, forKey: .classOrder) ?? d.classOrder
        d.dataDirectory = try c.decodeIfPresent(String.self, forKey: .dataDirectory)
        d.keepTaskCheckpoints = try c.decodeIfPresent(Bool.self, forKey: .keepTaskCheckpoints)
        self = d
    }

    /// A lower bound of the bytes a run of this configuration holds: the MLP / `cnn` linear layers' parameters
    /// (their values, gradients and two optimizer moments, 16 bytes each) and one batch of their activations
    /// (forward and backward, 8 bytes per unit and sample); × tasks for progressive networks.
    public func estimatedMinimumBytes() throws -> Double {
        let side = benchmark == "split-cifar100" ? 32 : 28 + 2 * Double(padding)
        let channels: Double = benchmark == "split-cifar100" ? 3 : 1
        var inputs: Double
        switch model {
        case "mlp": inputs = side * side * channels
        case "cnn": inputs = 2 * Double(width) * (side / 4).rounded(.down) * (side / 4).rounded(.down)
        default: return 0   // ResNets: a fixed architecture whose size `width` bounds
        }
        var parameters = 0.0, units = 0.0
        for h in hidden.map(Double.init) {
            parameters += (inputs + 1) * h
            units += h
            inputs = h
        }
        parameters += (inputs + 1) * 100
        let columns = usesProgressiveNetwork ? Double(tasks) : 1
        return columns * (16 * parameters + 8 * units * Double(max(training.batchSize, training.evaluationBatchSize)))
    }

    /// Refuses a configuration whose model cannot fit in `available` bytes of memory, giving both numbers.
    public func checkMemory(available: UInt64) throws {
        let needed = try estimatedMinimumBytes()
        guard needed <= Double(available) else {
            let gib = { (x: Double) in String(format: "%.1f GiB", x / 1_073_741_824) }
            throw StrategyError(key: "hidden", "\(hidden.map(String.init).joined(separator: ",")) (model \(model)): the network needs at least \(gib(needed)) "
                                + "(\(String(format: "%.3g", needed)) bytes for parameters, gradients, optimizer state and activations) "
                                + "but this machine has \(gib(Double(available)))")
        }
    }

    /// Model names accepted by `model`.
    public static let models = ["mlp", "cnn", "resnet18r", "resnet20", "resnet32"]

    /// Benchmark names accepted by `benchmark`.
    public static let benchmarks = BenchmarkKind.allCases.map(\.rawValue)

    /// The named benchmark (checked by `validate()`).
    public var benchmarkKind: BenchmarkKind {
        get throws {
            guard let kind = BenchmarkKind(rawValue: benchmark) else {
                throw StrategyError(key: "benchmark", "must be one of \(Self.benchmarks.joined(separator: ", ")), got '\(benchmark)'")
            }
            return kind
        }
    }

    /// The scenario as the data layer names it.
    public func resolvedScenario() throws -> Scenario {
        switch scenario {
        case "task", "task-il": return .taskIncremental
        case "domain", "domain-il": return .domainIncremental
        case "class", "class-il": return .classIncremental
        default: throw StrategyError(key: "scenario", "must be task, domain or class, got '\(scenario)'")
        }
    }

    /// Checks every value, naming the offending flag.
    public func validate() throws {
        _ = try benchmarkKind
        _ = try resolvedScenario()
        guard tasks >= 1 else { throw StrategyError(key: "tasks", "must be at least 1, got \(tasks)") }
        guard hidden.allSatisfy({ $0 >= 1 }), width >= 1 else {
            throw StrategyError(key: "hidden", "sizes and width must be at least 1, got hidden \(hidden), width \(width)")
        }
        try checkMemory(available: ProcessInfo.processInfo.physicalMemory)
        if benchmark == "split-mnist" || benchmark == "split-fmnist", tasks != 5 {
            throw StrategyError(key: "tasks", "must be 5 for \(benchmark) (ten classes, two per task), got \(tasks)")
        }
        if benchmark == "split-cifar100", ![2, 4, 5, 10, 20, 25, 50].contains(tasks) {
            throw StrategyError(key: "tasks", "must divide 100 for split-cifar100 (10 or 20 are standard), got \(tasks)")
        }
        guard Self.models.contains(model) else {
            throw StrategyError(key: "model", "must be \(Self.models.joined(separator: ", ")), got '\(model)'")
        }
        guard hidden.allSatisfy({ $0 > 0 }) else { throw StrategyError(key: "hidden", "sizes must be positive, got \(hidden)") }
        guard width > 0 else { throw StrategyError(key: "width", "must be positive, got \(width)") }
        if let dropout, !(dropout >= 0 && dropout < 1) { throw StrategyError(key: "dropout", "must be in [0, 1), got \(dropout)") }
        if let dropout, dropout > 0 && model != "mlp" {
            throw StrategyError(key: "dropout", "applies to the mlp model only (got model '\(model)'); leave it at 0")
        }
        if bias == false && model != "mlp" {
            throw StrategyError(key: "bias", "false applies to the mlp model only (got model '\(model)')")
        }
        guard fraction > 0, fraction <= 1 else { throw StrategyError(key: "fraction", "must be in (0, 1], got \(fraction)") }
        if let testFraction, !(testFraction > 0 && testFraction <= 1) {
            throw StrategyError(key: "test_fraction", "must be in (0, 1], got \(testFraction)")
        }
        for (key, value) in [("rotation_per_task", rotationPerTask), ("rotation_jitter", rotationJitter)] {
            guard let value else { continue }
            guard benchmark == "rotated-mnist" else { throw StrategyError(key: key, "applies to rotated-mnist only, got benchmark '\(benchmark)'") }
            guard value.isFinite, key == "rotation_per_task" || value >= 0 else {
                throw StrategyError(key: key, "must be a finite number\(key == "rotation_jitter" ? " ≥ 0" : ""), got \(value)")
            }
        }
        if rotationJitter != nil && rotationPerTask == nil {
            throw StrategyError(key: "rotation_jitter", "needs rotation_per_task (the jitter is subtracted from each task's stepped angle)")
        }
        guard (0...64).contains(padding) else { throw StrategyError(key: "padding", "must be 0…64 pixels, got \(padding)") }
        guard validationFraction >= 0, validationFraction < 1 else {
            throw StrategyError(key: "validation_fraction", "must be in [0, 1), got \(validationFraction)")
        }
        if evaluateOnValidation && validationFraction == 0 {
            throw StrategyError(key: "evaluate_on_validation", "needs a validation_fraction above 0")
        }
        guard ["natural", "seeded", "icarl"].contains(classOrder) else {
            throw StrategyError(key: "class_order", "must be natural, seeded or icarl, got '\(classOrder)'")
        }
        try training.validate()
        let descriptors = try StrategyRegistry.descriptors(of: strategy)
        let scenario = try resolvedScenario()
        for d in descriptors where !d.scenarios.contains(scenario) {
            let why = d.usesTaskIdentityAtTest && !d.hasTaskAgnosticInference
                ? "needs the task id at test time and has no task-agnostic inference, so it cannot run the \(self.scenario)-incremental scenario"
                : "does not run the \(self.scenario)-incremental scenario"
            let accepted = Scenario.allCases.filter(d.scenarios.contains).map { String($0.rawValue.prefix { $0 != "-" }) }
            throw StrategyError("\(d.name) \(why): scenario must be \(accepted.joined(separator: " or ")), got '\(self.scenario)'")
        }
        for d in descriptors {
            if d.biasFreeNetwork && bias == true {
                throw StrategyError(key: "bias", "must be false with \(d.name), which converts the network into one without biases (as its paper's), got true")
            }
            if let models = d.models, !models.contains(model) {
                throw StrategyError("\(d.name) runs on \(models.joined(separator: " or ")) models: model must be \(models.joined(separator: " or ")), got '\(model)'")
            }
        }
        let made = try StrategyRegistry.make(strategy, hyperparameters)
        if training.samRho > 0 && !made.trainsOnStream {
            throw StrategyError(key: "training.sam_rho", "applies to the trainer's steps, but \(strategy) trains the model itself; leave it at 0")
        }
    }

    /// This configuration with the defaults Engram decides written out, as saved in `config.yaml` and
    /// `results.json`: `perTaskBatchNorm` resolved to true or false (``usesPerTaskBatchNorm``), and the
    /// hyper-parameters as one section per strategy of the run holding every option (given or default);
    /// values outside sections are moved into the sections of the strategies they reach, sections of
    /// strategies the run does not use are dropped. Running the resolved configuration trains exactly as
    /// running this one. A configuration whose strategy or hyper-parameters do not validate keeps its
    /// hyper-parameters as given (``validate()`` names the fault).
    public func resolved() -> ExperimentConfiguration {
        var c = self
        c.perTaskBatchNorm = usesPerTaskBatchNorm
        if model == "mlp" { c.bias = usesBias }
        // Written out for every model (0 without an MLP), as files before the recipe default hold it.
        c.dropout = model == "mlp" ? usesDropout : (dropout ?? 0)
        // Only written when on, so runs without it resolve as before.
        if keepTaskCheckpoints == false { c.keepTaskCheckpoints = nil }
        if let parts = try? StrategyRegistry.parts(of: strategy), let options = try? hyperparameters.resolved(for: parts) {
            var settings = HyperparameterSettings()
            for (name, o) in options { settings.sections[name] = o.values }
            c.hyperparameters = settings
        }
        return c
    }

    /// Sets a hyper-parameter given by name on the command line: `mas.lambda` reaches MAS's λ; a plain name
    /// (`lambda`, `mas_output`, `xi`) reaches every strategy of the run that has an option of that name or flag
    /// (resolved against `strategy` as it is now). The text is parsed and checked against the option's type and
    /// range. `source` is how errors name the setting (`--lambda`, `--set mas.lambda=1`).
    public mutating func setHyperparameter(_ name: String, to text: String, source: String) throws {
        if let dot = name.firstIndex(of: ".") {
            let owner = String(name[..<dot]), key = String(name[name.index(after: dot)...])
            guard let d = StrategyRegistry.descriptor(named: owner) else {
                throw ConfigurationError("\(source): no strategy is called '\(owner)'" + suggestion(owner, among: StrategyRegistry.names, what: "strategies"))
            }
            guard let spec = d.hyperparameter(key) else {
                throw ConfigurationError("\(source): \(owner) has no option '\(key)'"
                                         + suggestion(key, among: d.hyperparameters.map(\.key), what: "\(owner)'s options"))
            }
            hyperparameters[owner, key] = try spec.parse(text, name: source)
            return
        }
        let parts = try StrategyRegistry.descriptors(of: strategy)
        let reached = StrategyRegistry.options(reachedBy: name, in: parts)
        guard !reached.isEmpty else {
            let options = Set(parts.flatMap { $0.hyperparameters.map(\.flag) }).sorted().map { "--\($0)" }
            throw ConfigurationError("\(source): strategy \(strategy) has no option '\(name)'"
                                     + (options.isEmpty ? " (it has no hyper-parameters)" : "; its options: \(options.joined(separator: ", "))"))
        }
        for (owner, spec) in reached {
            hyperparameters[owner, spec.key] = try spec.parse(text, name: source)
            hyperparameters.shared = hyperparameters.shared.filter { !spec.sharedNames.contains($0.key) }
        }
    }

    /// This configuration with the values outside sections moved into the sections of the strategies of the
    /// run that have them (overriding what those sections held): what a flag such as `--lambda` or a sweep's
    /// `hyperparameters.lambda` means once the strategy is known. Values no strategy of the run reads stay
    /// outside, for ``validate()`` to name.
    public func scopingSharedHyperparameters() -> ExperimentConfiguration {
        guard let descriptors = try? StrategyRegistry.descriptors(of: strategy) else { return self }
        var c = self
        for (name, value) in hyperparameters.shared {
            let reached = StrategyRegistry.options(reachedBy: name, in: descriptors)
            guard !reached.isEmpty else { continue }
            for (strategy, spec) in reached { c.hyperparameters[strategy, spec.key] = value }
            c.hyperparameters.shared[name] = nil
        }
        return c
    }

    /// The dataset the benchmark is built on.
    public var dataset: DatasetID { (try? benchmarkKind)?.dataset ?? .mnist }

    /// Loads the data (downloading it into the cache, MD5-verified, if it is found nowhere) and builds
    /// the stream of tasks.
    public func makeBenchmark(locator: DatasetLocator? = nil,
                              progress: (@Sendable (KnownFile, DownloadProgress) -> Void)? = nil) throws -> ContinualBenchmark {
        try makeLocatedBenchmark(locator: locator, progress: progress).benchmark
    }

    /// The benchmark and where its files came from: the files used (path and MD5) and the places rejected
    /// before them, with the reasons (recorded in results.json as `data_files`, logged by the CLI).
    public func makeLocatedBenchmark(locator: DatasetLocator? = nil,
                                     progress: (@Sendable (KnownFile, DownloadProgress) -> Void)? = nil)
        throws -> (benchmark: ContinualBenchmark, data: LocatedDataset) {
        let locator = locator ?? DatasetLocator(dataDirectory: dataDirectory)
        let located = try locator.locateOrDownloadDataset(dataset, progress: progress)
        let data = try dataset.load(from: located.directory).padded(by: padding)
        let options = BenchmarkOptions(seed: training.seed, scenario: try resolvedScenario(), fraction: fraction,
                                       testFraction: testFraction, validationFraction: validationFraction)
        let order: ClassOrder = classOrder == "seeded" ? .seeded : classOrder == "icarl" ? .icarl : .natural
        let rotation: RotationSchedule = rotationPerTask.map { .stepped(degreesPerTask: $0, jitter: rotationJitter ?? 0) }
            ?? .evenlySpaced(maxDegrees: 180)
        return (try benchmarkKind.make(data, tasks: tasks, order: order, identityFirst: identityFirst, rotation: rotation,
                                       options: options), located)
    }

    /// The channels of the `cnn` model's two convolutional blocks: `width`, then twice as many.
    public var cnnChannels: [Int] { [width, 2 * width] }

    /// Whether a strategy of the list builds a progressive network (`pnn`).
    public var usesProgressiveNetwork: Bool { partDescriptors.contains(where: \.buildsProgressiveNetwork) }

    /// The registered strategies of the list (those it names that exist).
    var partDescriptors: [StrategyDescriptor] {
        strategy.split(separator: "+").compactMap { StrategyRegistry.descriptor(named: String($0)) }
    }

    /// Whether ResNets get one BatchNorm per task: `perTaskBatchNorm`, or when unset, whether a strategy of the
    /// list asks for it (``StrategyDescriptor/perTaskBatchNorm``: MIND and PackNet, whose per-task sub-networks need per-task normalization):
    /// BatchNorm statistics of task 0 frozen under later tasks' new weights can amplify them without bound
    /// (a channel whose running variance shrank to 1e-4 while task 0 re-trained multiplies them by 100).
    public var usesPerTaskBatchNorm: Bool {
        perTaskBatchNorm ?? partDescriptors.contains(where: \.perTaskBatchNorm)
    }

    /// Whether the MLP's Linear layers have biases: `bias`, or when unset, none when a strategy of the list asks for a
    /// network without (``StrategyDescriptor/biasFreeNetwork``).
    public var usesBias: Bool { bias ?? !partDescriptors.contains(where: \.biasFreeNetwork) }

    /// The MLP's dropout: `dropout`, or when unset the largest recipe dropout of the strategies of the list
    /// (``StrategyDescriptor/recipeDropout``), else 0.
    public var usesDropout: Double { dropout ?? (model == "mlp" ? partDescriptors.compactMap(\.recipeDropout).max() ?? 0 : 0) }

    /// How the model normalizes, for tables: `none` (MLPs and progressive MLP columns), `per-column` (progressive
    /// convolutional columns, each with its own BatchNorm), `per-task` or `shared`.
    public var batchNormLayout: String {
        if model == "mlp" { return "none" }
        if usesProgressiveNetwork { return "per-column" }
        return usesPerTaskBatchNorm ? "per-task" : "shared"
    }

    /// The network for a benchmark: its heads follow the scenario. The `pnn` strategy gets a progressive
    /// network with one column per task, all allocated now: MLP columns (hidden sizes `hidden`) for `mlp`,
    /// convolutional columns (the blocks of `cnn`) for `cnn`.
    /// With `usesPerTaskBatchNorm`, a ResNet's BatchNorms keep one set of parameters and statistics per task.
    public func makeModel(for benchmark: ContinualBenchmark) -> Classifier {
        var rng = RandomGenerator(seed: training.seed, label: "model init")
        return makeModel(for: benchmark, using: &rng)
    }

    /// The network for a benchmark, initialised from `rng` (e.g. a fresh teacher).
    public func makeModel(for benchmark: ContinualBenchmark, using rng: inout RandomGenerator) -> Classifier {
        let heads = benchmark.headSizes
        let multi = benchmark.scenario == .taskIncremental ? heads : nil
        let sample = benchmark.train.sampleSize
        let image = benchmark.train
        if usesProgressiveNetwork && model == "cnn" {
            return Models.progressiveCNN(inputChannels: image.channels, inputHeight: image.height, inputWidth: image.width,
                                         channels: cnnChannels, hidden: hidden, classesPerTask: multi ?? heads, using: &rng)
        }
        if usesProgressiveNetwork {
            return Models.progressiveMLP(input: sample, hidden: hidden, classesPerTask: multi ?? heads, using: &rng)
        }
        let taskNorms = usesPerTaskBatchNorm ? benchmark.taskCount : nil
        switch model {
        case "cnn":
            return Models.cnn(inputChannels: image.channels, inputHeight: image.height, inputWidth: image.width,
                              channels: cnnChannels, hidden: hidden, classes: heads[0], headsPerTask: multi,
                              taskNorms: taskNorms, using: &rng)
        case "resnet18r":
            return Models.resnet18Reduced(inputChannels: benchmark.train.channels, classes: heads[0], nf: width,
                                          headsPerTask: multi, taskNorms: taskNorms, using: &rng)
        case "resnet20", "resnet32":
            return Models.cifarResNet(depth: model == "resnet20" ? 20 : 32, inputChannels: benchmark.train.channels,
                                      classes: heads[0], headsPerTask: multi, taskNorms: taskNorms, using: &rng)
        default:
            return Models.mlp(input: sample, hidden: hidden, classes: heads[0], headsPerTask: multi, dropout: Float(usesDropout),
                              bias: usesBias, using: &rng)
        }
    }
}
