import ArgumentParser
import EngramCL
import EngramReport
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
    @Option(help: "Strategy: \(StrategyFactory.names.joined(separator: ", ")) (combine with +).")
    var strategy: String?

    @Option(parsing: .unconditional, help: "λ, regularization strength (MAS, MAS-local, EWC, online EWC, RWalk); λ_o, distillation weight (LwF, EBLL).")
    var lambda: Float?
    @Option(parsing: .unconditional, help: "c, SI's surrogate-loss strength.")
    var c: Float?
    @Option(parsing: .unconditional, help: "ξ, SI's damping (also RWalk's ε).")
    var xi: Float?
    @Option(parsing: .unconditional, help: "γ, online EWC's decay.")
    var gamma: Float?
    @Option(help: "MAS: the output whose squared norm is differentiated (logits or softmax).")
    var masOutput: MASOutput?
    @Option(help: "MAS: exact per-sample gradients or the batch approximation (exact or batch).")
    var masMode: MASGradientMode?
    @Option(help: "How importance of successive tasks combines (sum or average).")
    var accumulation: ImportanceAccumulation?
    @Option(help: "EWC, online EWC, mode-IMM: the Fisher's label — exact (expectation over the model's predictive distribution, the paper's Fisher; default), sampled (one label drawn per sample) or empirical (true labels).")
    var fisher: FisherEstimator?
    @Option(help: "MAS: unlabeled data the importance is measured on after each task (train or test inputs).")
    var importanceData: ImportanceData?
    @Option(parsing: .unconditional, help: "MAS: measure the importance in chunks of this many samples (bounds memory; a task's chunks form one estimate).")
    var importanceChunk: Int?
    @Option(parsing: .unconditional, help: "α: RWalk's Fisher moving-average weight (0.9); EBLL's autoencoder reconstruction weight (1e-6; the task loss has weight 1).")
    var alpha: Float?
    @Option(parsing: .unconditional, help: "T, the distillation temperature of LwF and EBLL (default 2); MIND's task-agnostic softmax temperature τ (default 6.5).")
    var temperature: Float?
    @Option(parsing: .unconditional, help: "λ_c, EBLL's code-preservation weight (0.1).")
    var lambdaCode: Float?
    @Option(parsing: .unconditional, help: "EBLL: code size of the autoencoders (100).")
    var codeSize: Int?
    @Option(parsing: .unconditional, help: "EBLL: epochs of autoencoder training after each task (5).")
    var aeEpochs: Int?
    @Option(parsing: .unconditional, help: "IMM: λ of the L2-transfer penalty λ‖θ − θ_{t−1}‖² (0: pure weight-transfer).")
    var l2Transfer: Float?
    @Option(parsing: .unconditional, help: "PackNet: p, the fraction of each task's weights freed by pruning after it (0.75).")
    var pruneRatio: Double?
    @Option(parsing: .unconditional, help: "PackNet: epochs of re-training the kept weights after pruning (1).")
    var retrainEpochs: Int?
    @Option(parsing: .unconditional, help: "MIND: β, the weight of the distillation from each task's teacher (5).")
    var distillBeta: Float?
    @Option(help: "MIND: the distillation divergence, symmetric-kl (½(KL(p‖q) + KL(q‖p)), the authors' code; default) or js (Jensen–Shannon, as the paper writes).")
    var distillLoss: MINDDistillation?
    @Option(help: "MAS, MAS-local, EWC, online EWC, SI, RWalk: how the quadratic penalty steps — gradient (added to the loss; default) or proximal (closed form after the optimizer step, stable for any λ·Ω).")
    var penaltyStep: PenaltyStep?
    @Option(help: "LwF, EBLL: multiply the distillation term by T², true or false (false, as Li & Hoiem).")
    var temperatureSquared: Bool?
    @Option(parsing: .unconditional, help: "MIND: epochs of teacher training per task (default: --epochs).")
    var teacherEpochs: Int?
    @Option(parsing: .unconditional, help: "MIND: the teacher's AdamW learning rate (0.005).")
    var teacherLr: Float?
    @Option(parsing: .unconditional, help: "MIND: the teacher's AdamW weight decay (0).")
    var teacherWeightDecay: Float?
    @Option(help: "MIND: teacher epochs at which its learning rate is halved, e.g. 35 (default: 70 % of the teacher epochs).")
    var teacherMilestones: String?
    @Option(help: "MIND: re-estimate each task's BatchNorm statistics exactly over its training data after its teacher and its sub-network train, true or false (true).")
    var preciseBatchnorm: Bool?

    @Option(help: "Model: \(ExperimentConfiguration.models.joined(separator: ", ")) (resnet20/32: CIFAR ResNets with option-A shortcuts; with --strategy pnn, mlp / cnn is a progressive network of one MLP / convolutional column per task).")
    var model: String?
    @Option(help: "Hidden sizes of the MLP (of the linear layers after the cnn's conv blocks), e.g. 400,400.")
    var hidden: String?
    @Option(parsing: .unconditional, help: "ResNet width nf; cnn: channels of the first conv block (the second has twice as many).")
    var width: Int?
    @Option(help: "ResNets (resnet18r, resnet20, resnet32) and cnn: one BatchNorm (γ, β, running statistics) per task, true or false (default: true with mind, mind-self or packnet, false otherwise).")
    var perTaskBatchnorm: Bool?
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
    @Option(parsing: .unconditional, help: "SGD momentum.")
    var momentum: Float?
    @Option(parsing: .unconditional, help: "Weight decay.")
    var weightDecay: Float?
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
    @Option(help: "Split benchmarks: class order natural, seeded or icarl (CIFAR-100).")
    var classOrder: String?
    @Option(help: "Directory searched first for datasets.")
    var dataDir: String?

    /// The configuration file (if any) with the flags applied over it.
    func resolve() throws -> ExperimentConfiguration {
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
        if let lambda { c.hyperparameters.lambda = lambda }
        if let v = self.c { c.hyperparameters.c = v }
        if let xi { c.hyperparameters.xi = xi }
        if let gamma { c.hyperparameters.gamma = gamma }
        if let masOutput { c.hyperparameters.masOutput = masOutput }
        if let masMode { c.hyperparameters.masMode = masMode }
        if let accumulation { c.hyperparameters.accumulation = accumulation }
        if let importanceData { c.hyperparameters.importanceData = importanceData }
        if let importanceChunk { c.hyperparameters.importanceChunk = importanceChunk }
        if let alpha { c.hyperparameters.alpha = alpha }
        if let temperature { c.hyperparameters.temperature = temperature }
        if let lambdaCode { c.hyperparameters.lambdaCode = lambdaCode }
        if let codeSize { c.hyperparameters.codeSize = codeSize }
        if let aeEpochs { c.hyperparameters.autoencoderEpochs = aeEpochs }
        if let l2Transfer { c.hyperparameters.l2Transfer = l2Transfer }
        if let pruneRatio { c.hyperparameters.pruneRatio = pruneRatio }
        if let retrainEpochs { c.hyperparameters.retrainEpochs = retrainEpochs }
        if let distillBeta { c.hyperparameters.distillBeta = distillBeta }
        if let distillLoss { c.hyperparameters.distillLoss = distillLoss }
        if let penaltyStep { c.hyperparameters.penaltyStep = penaltyStep }
        if let temperatureSquared { c.hyperparameters.temperatureSquared = temperatureSquared }
        if let teacherEpochs { c.hyperparameters.teacherEpochs = teacherEpochs }
        if let teacherLr { c.hyperparameters.teacherLearningRate = teacherLr }
        if let teacherWeightDecay { c.hyperparameters.teacherWeightDecay = teacherWeightDecay }
        if let preciseBatchnorm { c.hyperparameters.preciseBatchNorm = preciseBatchnorm }
        if let teacherMilestones {
            let epochs = teacherMilestones.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard epochs.allSatisfy({ ($0 ?? 0) > 0 }) else {
                throw ValidationError("--teacher-milestones must be epochs ≥ 1 separated by commas, e.g. 35; got '\(teacherMilestones)'")
            }
            c.hyperparameters.teacherMilestones = epochs.compactMap { $0 }
        }
        if let fisher {
            c.hyperparameters.fisher = fisher
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
        if let momentum { c.training.momentum = momentum }
        if let weightDecay { c.training.weightDecay = weightDecay }
        if let seed { c.training.seed = seed }
        if let fraction { c.fraction = fraction }
        if let testFraction { c.testFraction = testFraction }
        if let validationFraction { c.validationFraction = validationFraction }
        if let padding { c.padding = padding }
        if evaluateOnValidation { c.evaluateOnValidation = true }
        if let classOrder { c.classOrder = classOrder }
        if let dataDir { c.dataDirectory = dataDir }
        do { try c.validate() } catch let error as StrategyError { throw ValidationError(error.description) }
        return c
    }
}

extension MASOutput: ExpressibleByArgument {}
extension MASGradientMode: ExpressibleByArgument {}
extension ImportanceAccumulation: ExpressibleByArgument {}
extension OptimizerKind: ExpressibleByArgument {}
extension ImportanceData: ExpressibleByArgument {}
extension FisherEstimator: ExpressibleByArgument {}
extension MINDDistillation: ExpressibleByArgument {}
extension PenaltyStep: ExpressibleByArgument {}

/// `engram run`: one continual-learning experiment.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a stream of tasks with one strategy and measure what it forgets.",
        discussion: """
        With no arguments: MAS (λ = 1) on 5-task Permuted MNIST (domain-incremental), MLP 784-400-400-10, \
        one epoch per task — about a minute on two cores. Writes DIR/config.yaml, DIR/results.json, \
        DIR/accuracy_matrix.csv, DIR/checkpoint.safetensors and DIR/log.txt.
        """)

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

    func validate() throws {
        guard !out.trimmingCharacters(in: .whitespaces).isEmpty else { throw ValidationError("--out must name a directory, got ''") }
    }

    func run() throws {
        let configuration = try experiment.resolve()
        let finished = URL(fileURLWithPath: out).appendingPathComponent("results.json")
        if !overwrite && out != Self.latestRun && FileManager.default.fileExists(atPath: finished.path) {
            throw ValidationError("\(out) holds a finished run (\(finished.lastPathComponent)); pass --overwrite to replace it, or choose another --out")
        }
        try RunDriver(configuration: configuration, directory: out, quiet: quiet, json: json).run(resume: false)
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

/// Shared by `run` and `resume`: sets up logging and progress, runs, prints the summary.
struct RunDriver {
    let configuration: ExperimentConfiguration
    let directory: String
    let quiet: Bool
    let json: Bool
    /// Print the one-line (or JSON) summary on standard output at the end.
    var printSummary = true

    func run(resume: Bool) throws {
        InterruptHandling.install()
        Runtime.configureAllocator()
        BLAS.setThreads(BLAS.threads)  // honours OPENBLAS_NUM_THREADS; enables single-threaded thin GEMMs
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
        logger.info("\(resume ? "resuming" : "starting") \(configuration.strategy) on \(configuration.benchmark) (\(configuration.scenario)-incremental, \(configuration.tasks) tasks, seed \(configuration.training.seed)) → \(directory)")
        let progress = ProgressReporter(logger: logger, quiet: quiet, taskCount: configuration.tasks,
                                        epochs: configuration.training.iterations == nil ? configuration.training.epochs : nil)
        let run = try ExperimentRun(configuration: configuration, directory: dir)
        run.onEvent = progress.handle
        run.onDataLocated = { data in
            for place in data.rejected { logger.info("data: not using \(place.path): \(place.reason)") }
            let files = data.files.map { "\(URL(fileURLWithPath: $0.path).lastPathComponent) md5 \($0.md5)" }.joined(separator: ", ")
            logger.info("data: \(data.dataset) from \(data.directory)\(data.downloaded ? " (downloaded)" : "") — \(files)")
        }
        let results: RunResults
        do { results = try run.run(resume: resume) } catch let stop as RunInterrupted {
            logger.info("\(stop.description)")
            throw ExitCode(130)
        }
        do { try RunReport.write(forRunIn: dir) } catch { logger.warning("could not write the report: \(error)") }
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

    func run() throws {
        let configPath = URL(fileURLWithPath: directory).appendingPathComponent("config.yaml").path
        guard let text = try? String(contentsOfFile: configPath, encoding: .utf8) else {
            throw ValidationError("\(configPath) not found: is \(directory) an Engram run directory?")
        }
        let configuration: ExperimentConfiguration
        do { configuration = try YAMLDecoder().decode(ExperimentConfiguration.self, from: text) } catch {
            throw ValidationError("\(configPath): \(ConfigurationError.describe(error))")
        }
        try RunDriver(configuration: configuration, directory: directory, quiet: quiet, json: json).run(resume: true)
    }
}
