import EngramTensor
import EngramNN
import EngramData
import EngramCL
import Testing
import Foundation

/// The repository root (three levels above this file).
let repositoryRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

/// `$ENGRAM_DATA` or `<repo>/../shared/datasets`.
let datasetsRoot: String = {
    if let env = ProcessInfo.processInfo.environment["ENGRAM_DATA"], !env.isEmpty { return env }
    return URL(fileURLWithPath: repositoryRoot).deletingLastPathComponent()
        .appendingPathComponent("shared/datasets").standardizedFileURL.path
}()

/// Real MNIST, read once for all tests.
let sharedMNIST: Result<DatasetPair, any Error> = Result { try MNISTReader.load(directory: datasetsRoot + "/mnist", name: "mnist") }

/// A fresh empty directory.
func temporaryDirectory(_ tag: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(tag)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// A small permuted-MNIST configuration for tests.
func smallPermutedMNIST(strategy: String, tasks: Int = 3, fraction: Double = 0.05, seed: UInt64 = 0) -> ExperimentConfiguration {
    var c = ExperimentConfiguration()
    c.benchmark = "permuted-mnist"
    c.scenario = "domain"
    c.tasks = tasks
    c.strategy = strategy
    c.hidden = [100, 100]
    c.fraction = fraction
    c.training.epochs = 1
    c.training.batchSize = 32
    c.training.learningRate = 0.05
    c.training.seed = seed
    c.dataDirectory = datasetsRoot
    return c
}

/// A small task-incremental Split MNIST configuration (5 tasks of two digits, one head per task).
func smallSplitMNIST(strategy: String, fraction: Double = 0.05, seed: UInt64 = 0) -> ExperimentConfiguration {
    var c = smallPermutedMNIST(strategy: strategy, fraction: fraction, seed: seed)
    c.benchmark = "split-mnist"
    c.scenario = "task"
    c.tasks = 5
    return c
}

/// Runs a configuration in a fresh directory.
func runExperiment(_ configuration: ExperimentConfiguration, configure: (inout ExperimentConfiguration) -> Void = { _ in }) throws -> RunResults {
    var c = configuration
    configure(&c)
    return try ExperimentRun(configuration: c, directory: try temporaryDirectory("engram-\(c.strategy)")).run()
}

/// A trainer over a small benchmark, for tests that drive the hooks by hand.
func makeTrainer(_ configuration: ExperimentConfiguration, strategy: any Strategy) throws -> Trainer {
    let benchmark = try configuration.makeBenchmark()
    let model = configuration.makeModel(for: benchmark)
    let stream = BenchmarkStream(benchmark: benchmark, layout: configuration.model == "mlp" ? .flat : .image)
    return try Trainer(model: model, stream: stream, strategy: strategy, configuration: configuration.training)
}

struct Interrupted: Error {}

/// Runs `configuration` once straight through and once interrupted at the checkpoint `position`
/// then resumed; returns both accuracy matrices (identical when the strategy saves all its state).
func uninterruptedAndResumed(_ configuration: ExperimentConfiguration, interruptAt position: TrainingPosition) throws -> (AccuracyMatrix, AccuracyMatrix) {
    let straight = try runExperiment(configuration)
    let directory = try temporaryDirectory("engram-resume-\(configuration.strategy)")
    let first = try ExperimentRun(configuration: configuration, directory: directory)
    first.afterCheckpoint = { p in if p.task == position.task && p.epoch == position.epoch { throw Interrupted() } }
    #expect(throws: Interrupted.self) { try first.run() }
    let resumed = try ExperimentRun(configuration: configuration, directory: directory).run(resume: true)
    return (straight.matrix, resumed.matrix)
}

/// Wraps a strategy, forwarding every hook, and calls `probe` with the first batch of task `task`
/// (before any step of that task, so the model still equals the one that finished the previous task).
final class FirstBatchProbe: Strategy {
    let inner: any Strategy
    let task: Int
    let probe: (Tensor, Tensor, Batch, TrainingContext) -> Void
    private var done = false

    init(_ inner: any Strategy, task: Int, probe: @escaping (_ taskLoss: Tensor, _ output: Tensor, Batch, TrainingContext) -> Void) {
        self.inner = inner; self.task = task; self.probe = probe
    }

    var name: String { inner.name }
    func beforeTask(_ task: Int, context: TrainingContext) throws { try inner.beforeTask(task, context: context) }
    func criterion(taskLoss: Tensor, output: Tensor, batch: Batch, context: TrainingContext) -> Tensor? {
        if context.task == task && !done {
            done = true
            probe(taskLoss, output, batch, context)
        }
        return inner.criterion(taskLoss: taskLoss, output: output, batch: batch, context: context)
    }
    func penalty(output: Tensor, batch: Batch, context: TrainingContext) -> Tensor? {
        inner.penalty(output: output, batch: batch, context: context)
    }
    func afterBackward(context: TrainingContext) { inner.afterBackward(context: context) }
    func afterStep(context: TrainingContext) { inner.afterStep(context: context) }
    func afterTask(_ task: Int, context: TrainingContext) throws { try inner.afterTask(task, context: context) }
    func beforeEvaluation(task: Int, context: TrainingContext) { inner.beforeEvaluation(task: task, context: context) }
    func afterEvaluation(task: Int, context: TrainingContext) { inner.afterEvaluation(task: task, context: context) }
    var memoryBytes: Int { inner.memoryBytes }
}
