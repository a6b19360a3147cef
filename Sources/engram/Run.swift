import Engram
import ArgumentParser
import Foundation
import Logging
import Yams
#if canImport(Glibc)
import Glibc
#endif

/// Flags shared by `run`, `compare` and `sweep`: everything that defines an experiment.
struct ExperimentOptions: ParsableArguments {
    @Option(help: "YAML configuration file; flags given on the command line override it.")
    var config: String?

    @Option(help: "Benchmark: \(ExperimentConfiguration.benchmarks.joined(separator: ", ")).")
    var benchmark: String?
    @Option(help: "Scenario: task, domain or class.")
    var scenario: String?
    @Option(parsing: .unconditional, help: "Number of tasks.")
    var tasks: Int?
    @Option(help: "Strategy: \(StrategyRegistry.names.joined(separator: ", ")) (combine with +; `engram strategies` describes them).")
    var strategy: String?

    @Option(name: .customLong("set"), parsing: .unconditionalSingleValue,
            help: ArgumentHelp("A strategy's hyper-parameter, e.g. mas.lambda=1, or lambda=1 for every strategy of the run "
                               + "that has a λ. The paper-named flags below do the same (--lambda 1).",
                               valueName: "strategy.option=value"))
    var set: [String] = []

    @Option(help: "Model: \(ExperimentConfiguration.models.joined(separator: ", ")) (resnet20/32: CIFAR ResNets with option-A shortcuts; with --strategy pnn, mlp / cnn is a progressive network of one MLP / convolutional column per task).")
    var model: String?
    @Option(help: "Hidden sizes of the MLP (of the linear layers after the cnn's conv blocks), e.g. 400,400.")
    var hidden: String?
    @Option(parsing: .unconditional, help: "ResNet width nf; cnn: channels of the first conv block (the second has twice as many).")
    var width: Int?
    @Option(help: "ResNets (resnet18r, resnet20, resnet32) and cnn: one BatchNorm (γ, β, running statistics) per task, true or false (default: true with mind, mind-self or packnet, false otherwise).")
    var perTaskBatchnorm: Bool?
    @Option(help: "mlp: Linear layers with biases, true or false (default: false with src, whose spiking conversion takes networks without, true otherwise).")
    var bias: Bool?
    @Option(parsing: .unconditional, help: "mlp: probability of a dropout after each hidden ReLU, in [0, 1) (default 0).")
    var dropout: Double?
    @Option(parsing: .unconditional, help: "Epochs per task.")
    var epochs: Int?
    @Option(parsing: .unconditional, help: "Optimizer steps per task (instead of epochs).")
    var iterations: Int?
    @Option(parsing: .unconditional, help: "Batch size.")
    var batchSize: Int?
    @Option(parsing: .unconditional, help: "Learning rate.")
    var lr: Float?
    @Option(help: "Epochs of each task at which the learning rate is multiplied by --lr-gamma, e.g. 35,40 (default: none).")
    var milestones: String?
    @Option(parsing: .unconditional, help: "γ of the multi-step schedule, in (0, 1]: lr·γ^(milestones passed) (default 0.1).")
    var lrGamma: Float?
    @Option(help: "Optimizer: sgd, adam or adamw.")
    var optimizer: OptimizerKind?
    @Option(help: "The units the class-incremental task loss covers: seen (the classes of the tasks so far; default) or all (every unit of the head, as Mammoth trains).")
    var activeClasses: ActiveClasses?
    @Option(parsing: .unconditional, help: "SGD momentum.")
    var momentum: Float?
    @Option(parsing: .unconditional, help: "Weight decay.")
    var weightDecay: Float?
    @Option(parsing: .unconditional, help: "rotated-mnist: degrees each task turns beyond the previous one (Mirzadeh et al.'s 10; default: angles evenly spaced over 180°).")
    var rotationPerTask: Double?
    @Option(parsing: .unconditional, help: "rotated-mnist with --rotation-per-task: a uniform 0…jitter degrees subtracted from each task's angle (Mirzadeh et al.'s 10).")
    var rotationJitter: Double?
    @Option(parsing: .unconditional, help: "ρ of sharpness-aware minimization around every training step, with any strategy (Foret et al. 2021; 0: off, the default; 0.05 is the paper's).")
    var samRho: Float?
    @Option(parsing: .unconditional, help: "Seed that fixes every random choice.")
    var seed: UInt64?
    @Option(parsing: .unconditional, help: "Fraction of each dataset to use (stratified), in (0, 1].")
    var fraction: Double?
    @Option(parsing: .unconditional, help: "Fraction of the test sets to use (default: --fraction).")
    var testFraction: Double?
    @Option(parsing: .unconditional, help: "Fraction of each task's training data held out for validation, in [0, 1).")
    var validationFraction: Double?
    @Option(parsing: .unconditional, help: "Zero pixels added on every side of every image (2: MNIST 28×28 → 32×32, van de Ven & Tolias's Permuted MNIST).")
    var padding: Int?
    @Flag(help: "Evaluate on the validation split instead of the test set (hyper-parameter selection).")
    var evaluateOnValidation = false
    @Flag(help: "Keep the checkpoint written after every task as checkpoints/task-<t>.safetensors (for engram analyze).")
    var keepTaskCheckpoints = false
    @Option(help: "Split benchmarks: class order natural, seeded or icarl (CIFAR-100).")
    var classOrder: String?
    @Option(help: "Directory searched first for datasets.")
    var dataDir: String?

    /// The configuration file (if any) with the flags applied over it. Hyper-parameter flags are resolved
    /// against `strategies` (default: the run's strategy): each reaches every listed strategy with that option.
    func resolve(strategies: [String]? = nil) throws -> ExperimentConfiguration {
        var c = ExperimentConfiguration()
        if let config {
            let text: String
            do { text = try String(contentsOfFile: config, encoding: .utf8) } catch {
                throw ValidationError("cannot read --config \(config): \(error.localizedDescription)")
            }
            do { c = try YAMLDecoder().decode(ExperimentConfiguration.self, from: text) } catch {
                throw ValidationError("--config \(config): \(ConfigurationError.describe(error))")
            }
        }
        if let benchmark { c.benchmark = benchmark }
        if let scenario { c.scenario = scenario }
        if let tasks { c.tasks = tasks }
        if let strategy { c.strategy = strategy }
        for setting in set {
            try apply(setting, to: &c, strategies: strategies ?? [c.strategy])
        }
        if let model { c.model = model }
        if let hidden {
            let sizes = hidden.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !sizes.isEmpty, sizes.allSatisfy({ ($0 ?? 0) > 0 }) else {
                throw ValidationError("--hidden must be positive sizes separated by commas, e.g. 400,400; got '\(hidden)'")
            }
            c.hidden = sizes.map { $0! }
        }
        if let width { c.width = width }
        if let perTaskBatchnorm { c.perTaskBatchNorm = perTaskBatchnorm }
        if let bias { c.bias = bias }
        if let dropout { c.dropout = dropout }
        if let epochs { c.training.epochs = epochs }
        if let iterations { c.training.iterations = iterations }
        if let batchSize { c.training.batchSize = batchSize }
        if let lr { c.training.learningRate = lr }
        if let milestones {
            let epochs = milestones.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !epochs.isEmpty, epochs.allSatisfy({ ($0 ?? 0) >= 1 }) else {
                throw ValidationError("--milestones must be epochs ≥ 1 separated by commas, e.g. 35,40; got '\(milestones)'")
            }
            c.training.milestones = epochs.map { $0! }
        }
        if let lrGamma { c.training.lrGamma = lrGamma }
        if let optimizer { c.training.optimizer = optimizer }
        if let activeClasses { c.training.activeClasses = activeClasses }
        if let momentum { c.training.momentum = momentum }
        if let weightDecay { c.training.weightDecay = weightDecay }
        if let samRho { c.training.samRho = samRho }
        if keepTaskCheckpoints { c.keepTaskCheckpoints = true }
        if let rotationPerTask { c.rotationPerTask = rotationPerTask }
        if let rotationJitter { c.rotationJitter = rotationJitter }
        if let seed { c.training.seed = seed }
        if let fraction { c.fraction = fraction }
        if let testFraction { c.testFraction = testFraction }
        if let validationFraction { c.validationFraction = validationFraction }
        if let padding { c.padding = padding }
        if evaluateOnValidation { c.evaluateOnValidation = true }
        if let classOrder { c.classOrder = classOrder }
        if let dataDir { c.dataDirectory = dataDir }
        do { try c.validate() } catch let error as StrategyError { throw ValidationError(error.naming(Self.flag(for:))) } catch let error as ConfigurationError {
            throw ValidationError(error.description)
        }
        return c
    }
}

extension ExperimentOptions {
    /// The flag that sets configuration `key`: `training.lr_gamma` → `--lr-gamma`, `test_fraction` →
    /// `--test-fraction`, a strategy option (`mind.teacher_lr`, `gamma`) → its registry flag; nil for keys no flag sets.
    static func flag(for key: String) -> String? {
        let name = key.hasPrefix("training.") ? String(key.dropFirst("training.".count)) : key
        let option = name.split(separator: ".").last.map(String.init) ?? name
        if name.contains(".") || !topLevelKeys.contains(name) {
            let owner = name.contains(".") ? name.split(separator: ".").first.map(String.init) : nil
            let specs = StrategyRegistry.all.filter { owner == nil || $0.name == owner }.flatMap(\.hyperparameters)
            return specs.first { $0.key == option }.map { "--\($0.flag)" }
        }
        return "--" + name.replacingOccurrences(of: "_", with: "-")
    }

    /// Configuration keys (with `training.` dropped) that a flag of the same name, dashed, sets.
    private static let topLevelKeys: Set<String> = [
        "benchmark", "scenario", "tasks", "strategy", "model", "hidden", "width", "fraction", "test_fraction",
        "validation_fraction", "evaluate_on_validation", "class_order", "padding", "data_dir", "per_task_batchnorm", "bias", "dropout",
        "rotation_per_task", "rotation_jitter",
        "epochs", "iterations", "batch_size", "lr", "milestones", "lr_gamma", "optimizer", "momentum", "weight_decay", "seed", "active_classes", "sam_rho",
    ]

    /// Applies one `--set` value: `mas.lambda=1`, `lambda=1`, or `--lambda=1` (a paper-named flag, which
    /// `StrategyFlags.rewrite` turns into this form), to every strategy of `strategies` it reaches.
    func apply(_ setting: String, to c: inout ExperimentConfiguration, strategies: [String]) throws {
        let isFlag = setting.hasPrefix("--")
        let body = isFlag ? String(setting.dropFirst(2)) : setting
        guard let equals = body.firstIndex(of: "=") else {
            throw ValidationError(isFlag ? "--\(body) needs a value, e.g. --\(body) 1"
                                         : "--set \(setting): expected strategy.option=value, e.g. --set mas.lambda=1")
        }
        let name = String(body[..<equals]), value = String(body[body.index(after: equals)...])
        let source = isFlag ? "--\(name)" : "--set \(setting)"
        let key = isFlag ? name.replacingOccurrences(of: "-", with: "_") : name
        do {
            // Each strategy that has the option gets it; when none has it, the first names the options it has.
            func reads(_ strategy: String) -> Bool {
                key.contains(".") || !StrategyRegistry.options(reachedBy: key, in: (try? StrategyRegistry.descriptors(of: strategy)) ?? []).isEmpty
            }
            if let dot = key.firstIndex(of: ".") {
                let owner = String(key[..<dot])
                let parts = Set(strategies.flatMap { $0.split(separator: "+").map(String.init) })
                if StrategyRegistry.descriptor(named: owner) != nil, !parts.contains(owner) {
                    throw ValidationError("\(source): \(owner) is not a strategy of this run (\(strategies.joined(separator: ", ")))")
                }
            }
            let readers = strategies.filter(reads)
            for strategy in readers.isEmpty ? Array(strategies.prefix(1)) : readers {
                var trial = c
                trial.strategy = strategy
                try trial.setHyperparameter(key, to: value, source: source)
                c.hyperparameters = trial.hyperparameters
                if key.contains(".") { break }
            }
        } catch let error as ConfigurationError {
            throw ValidationError(error.description)
        } catch let error as StrategyError {
            throw ValidationError(error.naming(Self.flag(for:)))
        }
    }
}

extension OptimizerKind: ExpressibleByArgument {}
extension ActiveClasses: ExpressibleByArgument {}

/// Where a finished run is recorded: the SQLite index of runs (`engram runs`).
struct StoreOptions: ParsableArguments {
    @Option(help: "The SQLite store every finished run is recorded in (`engram runs` lists it).")
    var store: String = RunStore.defaultPath

    @Flag(help: "Do not record the run in the store.")
    var noStore = false

    /// The store's path, nil with --no-store.
    var path: String? { noStore ? nil : store }
}

/// `engram run`: one continual-learning experiment.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a stream of tasks with one strategy and measure what it forgets.",
        discussion: """
        With no arguments: MAS (λ = 1) on 5-task Permuted MNIST (domain-incremental), MLP 784-400-400-10, \
        one epoch per task — about a minute on two cores. Writes DIR/config.yaml, DIR/results.json, \
        DIR/accuracy_matrix.csv, DIR/checkpoint.safetensors and DIR/log.txt.

        """ + Strategies.flagsHelp)

    @OptionGroup var experiment: ExperimentOptions

    @Option(help: "Output directory.")
    var out: String = Self.latestRun

    /// The default output directory: the latest run, replaced by every run that does not name its own --out.
    static let latestRun = "runs/latest"

    @Flag(help: "Only errors and the final summary.")
    var quiet = false

    @Flag(help: "Print the final summary as JSON on standard output.")
    var json = false

    @Flag(help: "Replace a finished run in --out (without it, a directory holding results.json is refused; the default runs/latest is always replaced).")
    var overwrite = false

    @Flag(help: "Train data-parallel over the ranks of an MPI job: mpirun -n N engram run … --data-parallel (or srun). Each rank trains on its shard of every batch; gradients are summed in one allreduce per step, BatchNorm statistics synchronised; rank 0 writes the run.")
    var dataParallel = false

    @OptionGroup var store: StoreOptions

    func validate() throws {
        guard !out.trimmingCharacters(in: .whitespaces).isEmpty else { throw ValidationError("--out must name a directory, got ''") }
    }

    func run() throws {
        let configuration = try experiment.resolve()
        let finished = URL(fileURLWithPath: out).appendingPathComponent("results.json")
        if !overwrite && out != Self.latestRun && FileManager.default.fileExists(atPath: finished.path) {
            throw ValidationError("\(out) holds a finished run (\(finished.lastPathComponent)); pass --overwrite to replace it, or choose another --out")
        }
        try RunDriver(configuration: configuration, directory: out, quiet: quiet, json: json, store: store.path,
                      dataParallel: dataParallel).run(resume: false)
    }
}

/// Ctrl-C (SIGINT) during `run`/`resume`: the first asks the run to stop after its next checkpoint (and say how
/// to resume), a second stops at once (the last checkpoint stays valid: they are written atomically).
enum InterruptHandling {
    nonisolated(unsafe) private static var source: DispatchSourceSignal?
    nonisolated(unsafe) private static var count = 0

    static func install() {
        guard source == nil else { return }
        signal(SIGINT, SIG_IGN)
        let s = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        s.setEventHandler {
            count += 1
            if count == 1 {
                RunInterruption.request()
                FileHandle.standardError.write(Data("\nengram: stopping after the next checkpoint (Ctrl-C again to stop now)\n".utf8))
            } else {
                FileHandle.standardError.write(Data("\nengram: stopped; resume from the last checkpoint with engram resume\n".utf8))
                exit(130)
            }
        }
        s.resume()
        source = s
    }
}

/// A point of an MPI sweep runs as a child of its rank; when the rank dies (killed, or its job ended), the point must
/// not run on as an orphan holding its directory's lock. With ENGRAM_EXIT_WITH_PARENT=1 (set by `sweep --mpi`) a
/// thread watches the parent and exits when it is gone; the last checkpoint stays valid (written atomically), so the
/// rerun of the sweep resumes the point from it.
enum ParentWatch {
    static func installIfRequested() {
        guard ProcessInfo.processInfo.environment["ENGRAM_EXIT_WITH_PARENT"] == "1" else { return }
        let parent = getppid()
        // On Linux the kernel ends this process as soon as the rank exits (no window in which an orphan finishes
        // the point while a rerun starts it again); the watch below covers other systems and a parent that was
        // gone before the request.
        if Runtime.dieWithParent(), getppid() == parent { return }
        Thread.detachNewThread {
            while getppid() == parent { usleep(200_000) }
            FileHandle.standardError.write(Data("engram: the sweep rank that started this point is gone; stopping (resume from the last checkpoint)\n".utf8))
            exit(143)
        }
    }
}

/// Shared by `run` and `resume`: sets up logging and progress, runs, prints the summary.
struct RunDriver {
    let configuration: ExperimentConfiguration
    let directory: String
    let quiet: Bool
    let json: Bool
    /// Print the one-line (or JSON) summary on standard output at the end.
    var printSummary = true
    /// The run store the finished run is recorded in (nil: none).
    var store: String? = nil
    /// Train as a member of the MPI job's data-parallel group (`--data-parallel`).
    var dataParallel = false

    func run(resume: Bool) throws {
        guard dataParallel else { return try run(resume: resume, group: nil) }
        guard let group = DataParallelMPI.join() else {
            throw ValidationError("--data-parallel: this engram was built without MPI; install Open MPI (Debian: libopenmpi-dev) and build again")
        }
        if let threads = SweepMPI.threadsPerRank() { setenv("OPENBLAS_NUM_THREADS", String(threads), 1); BLAS.setThreads(threads) }
        do {
            if group.rank == 0 {
                try run(resume: resume, group: group)
            } else {
                // The other ranks compute as rank 0 does and write nothing: no directory, log or summary.
                try Self.prepareProcess()
                let run = try ExperimentRun(configuration: configuration, directory: URL(fileURLWithPath: directory))
                run.group = group
                _ = try run.run(resume: resume)
            }
        } catch let exit as ExitCode where exit.rawValue == 130 {
            DataParallelMPI.leave()
            throw exit
        } catch is RunInterrupted {
            DataParallelMPI.leave()
            throw ExitCode(130)
        } catch {
            // The other ranks may be waiting in a collective for this one: end the job.
            let message = (error as? ValidationError)?.message ?? "\(error)"
            FileHandle.standardError.write(Data("engram run --data-parallel (rank \(group.rank) of \(group.size)): \(message)\n".utf8))
            DataParallelMPI.abort(1)
        }
        DataParallelMPI.leave()
    }

    /// What every process that trains sets up first: Ctrl-C handling, the parent watch of a sweep's point, the
    /// allocator, and the threads of OpenBLAS and oneDNN (honours OPENBLAS_NUM_THREADS; enables single-threaded thin
    /// GEMMs); a bad ENGRAM_BACKEND stops it in one line.
    static func prepareProcess() throws {
        if let problem = ComputeBackend.environmentProblem() { throw ValidationError(problem) }
        InterruptHandling.install()
        ParentWatch.installIfRequested()
        Runtime.configureAllocator()
        BLAS.setThreads(BLAS.threads)
    }

    private func run(resume: Bool, group: (any ProcessGroup)?) throws {
        try Self.prepareProcess()
        let dir = URL(fileURLWithPath: directory)
        do { try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true) } catch {
            throw ValidationError("cannot create --out \(directory): \(error.localizedDescription)")
        }
        try configuration.resolved().yamlText().write(to: dir.appendingPathComponent("config.yaml"), atomically: true, encoding: .utf8)
        let logURL = dir.appendingPathComponent("log.txt")
        if !FileManager.default.fileExists(atPath: logURL.path) { FileManager.default.createFile(atPath: logURL.path, contents: nil) }
        let logHandle = try FileHandle(forWritingTo: logURL)
        _ = try logHandle.seekToEnd()
        let logFile = LogFile(handle: logHandle, path: logURL.path)
        let logger = Logger(label: "engram.run") { _ in RunLogHandler(file: logFile, console: !quiet) }
        let parallel = group.map { " — data-parallel over \($0.size) MPI ranks, \(BLAS.threads) OpenBLAS thread\(BLAS.threads == 1 ? "" : "s") each" } ?? ""
        logger.info("\(resume ? "resuming" : "starting") \(configuration.strategy) on \(configuration.benchmark) (\(configuration.scenario)-incremental, \(configuration.tasks) tasks, seed \(configuration.training.seed)) → \(directory)\(parallel)")
        logger.info("compute: \(ComputeBackend.current == .oneDNN ? "oneDNN" : "OpenBLAS") for matrix products and convolutions, \(BLAS.threads) thread\(BLAS.threads == 1 ? "" : "s")")
        let progress = ProgressReporter(logger: logger, quiet: quiet, taskCount: configuration.tasks,
                                        epochs: configuration.training.iterations == nil ? configuration.training.epochs : nil)
        let run = try ExperimentRun(configuration: configuration, directory: dir)
        run.group = group
        run.onEvent = progress.handle
        run.onDataLocated = { data in
            for place in data.rejected { logger.info("data: not using \(place.path): \(place.reason)") }
            let files = data.files.map { "\(URL(fileURLWithPath: $0.path).lastPathComponent) md5 \($0.md5)" }.joined(separator: ", ")
            logger.info("data: \(data.dataset) from \(data.directory)\(data.downloaded ? " (downloaded)" : "") — \(files)")
        }
        let results: RunResults
        // The run's own log.txt says why it stopped: the terminal or the sweep's output that showed the error may be gone.
        let fileLogger = Logger(label: "engram.run") { _ in RunLogHandler(file: logFile, console: false) }
        do { results = try run.run(resume: resume) } catch let stop as RunInterrupted {
            logger.info("\(stop.description)")
            throw ExitCode(130)
        } catch let error as StrategyError where error.key != nil {
            // A value found wrong once the stream is known (a memory smaller than its classes): named as its flag.
            let named = ValidationError(error.naming(ExperimentOptions.flag(for:)))
            fileLogger.error("failed: \(named)")
            throw named
        } catch {
            fileLogger.error("failed: \(error)")
            throw error
        }
        do { try RunReport.write(forRunIn: dir) } catch { logger.warning("could not write the report: \(error)") }
        // The directory is the source of truth: a store that cannot take the run costs one warning, never the run.
        if let store {
            do { try RunStore(path: store).record(directory: dir) } catch { logger.warning("not recorded in the run store: \(error)") }
        }
        let m = results.metrics
        func pct(_ x: Double?) -> String { x.map { String(format: "%.2f", 100 * $0) } ?? "–" }
        if !printSummary {
        } else if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(results), as: UTF8.self))
        } else {
            let basis = results.headlineLabel.map { " [\($0)]" } ?? ""
            print("\(configuration.strategy) on \(configuration.benchmark): ACC\(basis) \(pct(m.averageAccuracy)) %  "
                  + "forgetting \(pct(m.forgetting)) %  BWT \(pct(m.backwardTransfer)) %  FWT \(pct(m.forwardTransfer)) %  "
                  + "(results in \(directory)/results.json)")
            if results.headlineIsTaskAgnostic, let aware = results.taskAwareMetrics {
                print("  task-aware (the task given, not part of the \(results.scenario.rawValue) scenario): "
                      + "ACC \(pct(aware.averageAccuracy)) %  forgetting \(pct(aware.forgetting)) %")
            }
            for tag in results.taskAgnostic ?? [] {
                print("  task-agnostic (\(tag.rule)): ACC \(pct(tag.averageAccuracy)) %  forgetting \(pct(tag.forgetting)) %  "
                      + "task prediction \(pct(tag.averageTaskPrediction)) %")
            }
        }
        logger.info("finished: ACC\(results.headlineLabel.map { " [\($0)]" } ?? "") \(pct(m.averageAccuracy)) %, forgetting \(pct(m.forgetting)) %, BWT \(pct(m.backwardTransfer)) %")
    }
}

/// `engram resume DIR`: continues an interrupted run from its last checkpoint.
struct Resume: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Continue an interrupted run from its last checkpoint (results identical to an uninterrupted run).")

    @Argument(help: "The run's output directory (holding config.yaml and checkpoint.safetensors).")
    var directory: String

    @Flag(help: "Only errors and the final summary.")
    var quiet = false

    @Flag(help: "Print the final summary as JSON on standard output.")
    var json = false

    @Flag(help: "Train data-parallel over the ranks of an MPI job: mpirun -n N engram run … --data-parallel (or srun). Each rank trains on its shard of every batch; gradients are summed in one allreduce per step, BatchNorm statistics synchronised; rank 0 writes the run.")
    var dataParallel = false

    @OptionGroup var store: StoreOptions

    func run() throws {
        let configPath = URL(fileURLWithPath: directory).appendingPathComponent("config.yaml").path
        guard let text = try? String(contentsOfFile: configPath, encoding: .utf8) else {
            throw ValidationError("\(configPath) not found: is \(directory) an Engram run directory?")
        }
        let configuration: ExperimentConfiguration
        do { configuration = try YAMLDecoder().decode(ExperimentConfiguration.self, from: text) } catch {
            throw ValidationError("\(configPath): \(ConfigurationError.describe(error))")
        }
        try RunDriver(configuration: configuration, directory: directory, quiet: quiet, json: json, store: store.path,
                      dataParallel: dataParallel).run(resume: true)
    }
}
