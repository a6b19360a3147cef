import EngramTensor
import EngramData
import EngramNN
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What `results.json` holds: what was run, the accuracy matrix and its metrics, cost per task, and — where the run
/// yields both — task-aware (TAw) and task-agnostic (TAg) figures side by side. The layout (schema version 2) is
/// documented in `docs/results-schema.md`; files of the older layout (camelCase `matrix` / `metrics` objects) are
/// still read.
///
/// The headline figures (`matrix`, `metrics`) never use the task id where the scenario does not give it: in the
/// domain- and class-incremental scenarios a method that picks its sub-network by the task (MIND) is scored by its
/// primary task-agnostic rule, its task-aware figures kept apart in `taskAwareMatrix`. In the task-incremental
/// scenario the headline is task-aware (the task is given by definition) and the task-agnostic figures are the extra.
public struct RunResults: Sendable, Codable, Equatable {
    /// The `schema_version` this type writes.
    public static let schemaVersion = 2

    public var benchmark: String
    public var scenario: Scenario
    public var strategy: String
    public var seed: UInt64
    /// The headline accuracy matrix R[i][j] (accuracy on task j after training task i): task-aware in the
    /// task-incremental scenario and for runs without task-agnostic figures, else the primary task-agnostic
    /// rule's (entries above the diagonal are nil: that rule only chooses among the tasks seen). The task-aware
    /// matrix carries the untrained model's accuracies as the forward-transfer baseline.
    public var matrix: AccuracyMatrix
    /// Metrics of `matrix`.
    public var metrics: ContinualMetrics
    /// The task-aware matrix, when the run has both task-aware and task-agnostic figures (else nil).
    public var taskAwareMatrix: AccuracyMatrix?
    /// The primary task-agnostic rule's matrix (lower triangular), when the run has both kinds of figures.
    public var taskAgnosticMatrix: AccuracyMatrix?
    /// Wall-clock training seconds per task.
    public var secondsPerTask: [Double]
    /// Training samples processed per task by the trainer's loop (nil when unknown, e.g. older files).
    public var samplesPerTask: [Int]?
    /// Bytes held by the strategy after each task (importance, anchors, buffers …).
    public var strategyMemoryBytes: [Int]
    /// Trainable scalars of the model.
    public var parameterCount: Int
    /// Wall-clock seconds of the whole run (data loading, training, evaluation, checkpoints; summed over resumes).
    public var wallSeconds: Double?
    /// Peak resident set size of the process that finished the run, in bytes.
    public var peakRSSBytes: Int?
    /// The library that computed the matrix products and convolutions of the process that finished the run
    /// (`onednn` or `openblas`, ``ComputeBackend``); nil in older files. The two backends round differently, so the
    /// same seed gives a different trajectory on each (docs/results-schema.md).
    public var computeBackend: String?
    /// The OpenBLAS threads of the process that finished the run (oneDNN uses as many); nil in older files.
    public var computeThreads: Int?
    /// The dataset files the run read, with their MD5 (nil for older files and prebuilt benchmarks).
    public var dataFiles: [DataFileRecord]?
    /// The accuracies around each consolidation phase (SRC's sleep), for methods that have one.
    public var consolidation: ConsolidationSummary?
    /// The resolved configuration (``ExperimentConfiguration/resolved()``) for runs written by this version.
    public var configuration: ExperimentConfiguration
    /// Task-agnostic (TAg) results, one per inference rule (the first is the method's primary rule), when the
    /// method and model have them. Setting them re-derives the headline and the TAw/TAg matrices.
    public var taskAgnostic: [TaskAgnosticSummary]? {
        didSet { assignFigures(taskAware: taskAwareMatrix ?? matrix) }
    }

    /// Results whose headline follows the scenario: `taskAwareMatrix` is the matrix measured with the task given
    /// (plain accuracy for single-head models), `taskAgnostic` the task-agnostic rules, primary first.
    public init(benchmark: String, scenario: Scenario, strategy: String, seed: UInt64, taskAwareMatrix: AccuracyMatrix,
                taskAgnostic: [TaskAgnosticSummary]?, secondsPerTask: [Double], samplesPerTask: [Int]? = nil,
                strategyMemoryBytes: [Int], parameterCount: Int, configuration: ExperimentConfiguration,
                wallSeconds: Double? = nil, peakRSSBytes: Int? = nil) {
        self.benchmark = benchmark
        self.scenario = scenario
        self.strategy = strategy
        self.seed = seed
        self.matrix = taskAwareMatrix
        self.metrics = taskAwareMatrix.metrics
        self.secondsPerTask = secondsPerTask
        self.samplesPerTask = samplesPerTask
        self.strategyMemoryBytes = strategyMemoryBytes
        self.parameterCount = parameterCount
        self.configuration = configuration
        self.taskAgnostic = taskAgnostic
        self.wallSeconds = wallSeconds
        self.peakRSSBytes = peakRSSBytes
        assignFigures(taskAware: taskAwareMatrix)
    }

    /// Sets the headline and the TAw/TAg matrices from the task-aware matrix and `taskAgnostic`: the primary rule's
    /// matrix is the headline outside the task-incremental scenario.
    private mutating func assignFigures(taskAware: AccuracyMatrix) {
        let primary = taskAgnostic?.first.map { $0.matrix(taskCount: taskAware.taskCount) }
        taskAwareMatrix = primary == nil ? nil : taskAware
        taskAgnosticMatrix = primary
        matrix = scenario != .taskIncremental ? primary ?? taskAware : taskAware
        metrics = matrix.metrics
    }

    /// Whether the headline figures are task-agnostic while the run also has task-aware ones (MIND in the
    /// domain- and class-incremental scenarios).
    public var headlineIsTaskAgnostic: Bool { taskAgnosticMatrix != nil && scenario != .taskIncremental }

    /// How the headline accuracy was measured, for labels: `TAg (rule)` or `TAw` when the run has both kinds of
    /// figures, nil when it has only one (e.g. a single-head run of a method that never uses the task id).
    public var headlineLabel: String? {
        guard taskAgnosticMatrix != nil, let rule = taskAgnostic?.first?.rule else { return nil }
        return headlineIsTaskAgnostic ? "TAg (\(rule))" : "TAw"
    }

    /// Metrics of the task-aware matrix (nil without both kinds of figures).
    public var taskAwareMetrics: ContinualMetrics? { taskAwareMatrix?.metrics }
    /// Metrics of the primary task-agnostic matrix (nil without both kinds of figures).
    public var taskAgnosticMetrics: ContinualMetrics? { taskAgnosticMatrix?.metrics }

    /// Training samples per second of each task's training time (nil when the samples are unknown).
    public var samplesPerSecondPerTask: [Double]? {
        guard let samplesPerTask, samplesPerTask.count == secondsPerTask.count else { return nil }
        return zip(samplesPerTask, secondsPerTask).map { $1 > 0 ? Double($0) / $1 : 0 }
    }

    /// Pretty-printed JSON with sorted keys (schema version 2).
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }

    // MARK: Codable: writes schema version 2, reads it and the older layout

    enum CodingKeys: String, CodingKey {
        case schemaVersion = "schema_version"
        case benchmark, scenario, strategy, seed, configuration
        case accuracyMatrix = "accuracy_matrix", randomBaselineAccuracy = "random_baseline_accuracy"
        case averageAccuracy = "average_accuracy", averageForgetting = "average_forgetting", bwt, fwt
        case learningAccuracy = "learning_accuracy"
        case accuracyMatrixTAw = "accuracy_matrix_taw", accuracyMatrixTAg = "accuracy_matrix_tag"
        case averageAccuracyTAw = "average_accuracy_taw", averageAccuracyTAg = "average_accuracy_tag"
        case averageForgettingTAw = "average_forgetting_taw", averageForgettingTAg = "average_forgetting_tag"
        case headlineInference = "headline_inference"
        case wallSeconds = "wall_seconds", secondsPerTask = "seconds_per_task", samplesPerTask = "samples_per_task"
        case samplesPerSecondPerTask = "samples_per_second_per_task", peakRSSBytes = "peak_rss_bytes"
        case strategyMemoryBytes = "strategy_memory_bytes", parameterCount = "parameter_count"
        case taskAgnostic = "task_agnostic", dataFiles = "data_files", batchNorm = "batch_norm"
        case consolidation, computeBackend = "compute_backend", computeThreads = "compute_threads"
        // The older layout (no schema_version).
        case matrix, metrics
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let taskAware: AccuracyMatrix
        if c.contains(.schemaVersion) {
            let version = try c.decode(Int.self, forKey: .schemaVersion)
            guard version <= Self.schemaVersion else {
                throw DecodingError.dataCorruptedError(forKey: .schemaVersion, in: c, debugDescription:
                    "schema_version \(version) is newer than this Engram reads (\(Self.schemaVersion)); update Engram")
            }
            let rows = try c.decodeIfPresent([[Double?]].self, forKey: .accuracyMatrixTAw)
                ?? c.decode([[Double?]].self, forKey: .accuracyMatrix)
            let baseline = try c.decodeIfPresent([Double].self, forKey: .randomBaselineAccuracy)
            guard let matrix = accuracyMatrix(entries: rows, randomBaseline: baseline) else {
                throw DecodingError.dataCorruptedError(forKey: .accuracyMatrix, in: c,
                                                       debugDescription: "not a square accuracy matrix with one baseline entry per task")
            }
            taskAware = matrix
        } else {
            // Older layout: `matrix` is the task-aware matrix.
            taskAware = try c.decode(AccuracyMatrix.self, forKey: .matrix)
        }
        self.init(benchmark: try c.decode(String.self, forKey: .benchmark),
                  scenario: try c.decode(Scenario.self, forKey: .scenario),
                  strategy: try c.decode(String.self, forKey: .strategy),
                  seed: try c.decode(UInt64.self, forKey: .seed),
                  taskAwareMatrix: taskAware,
                  taskAgnostic: try c.decodeIfPresent([TaskAgnosticSummary].self, forKey: .taskAgnostic),
                  secondsPerTask: try c.decode([Double].self, forKey: .secondsPerTask),
                  samplesPerTask: try c.decodeIfPresent([Int].self, forKey: .samplesPerTask),
                  strategyMemoryBytes: try c.decode([Int].self, forKey: .strategyMemoryBytes),
                  parameterCount: try c.decode(Int.self, forKey: .parameterCount),
                  configuration: try c.decode(ExperimentConfiguration.self, forKey: .configuration),
                  wallSeconds: try c.decodeIfPresent(Double.self, forKey: .wallSeconds),
                  peakRSSBytes: try c.decodeIfPresent(Int.self, forKey: .peakRSSBytes))
        dataFiles = try c.decodeIfPresent([DataFileRecord].self, forKey: .dataFiles)
        computeBackend = try c.decodeIfPresent(String.self, forKey: .computeBackend)
        computeThreads = try c.decodeIfPresent(Int.self, forKey: .computeThreads)
        consolidation = try c.decodeIfPresent(ConsolidationSummary.self, forKey: .consolidation)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        func matrixRows(_ m: AccuracyMatrix) -> [[Double?]] { m.values.map { $0.map { $0.map(significant) } } }
        func number(_ x: Double?, _ key: CodingKeys) throws {
            if let x { try c.encode(significant(x), forKey: key) } else { try c.encodeNil(forKey: key) }
        }
        try c.encode(Self.schemaVersion, forKey: .schemaVersion)
        try c.encode(benchmark, forKey: .benchmark)
        try c.encode(scenario, forKey: .scenario)
        try c.encode(strategy, forKey: .strategy)
        try c.encode(seed, forKey: .seed)
        try c.encode(configuration.batchNormLayout, forKey: .batchNorm)
        try c.encode(matrixRows(matrix), forKey: .accuracyMatrix)
        let baseline = (taskAwareMatrix ?? matrix).randomBaseline
        try c.encodeIfPresent(baseline.map { $0.map(significant) }, forKey: .randomBaselineAccuracy)
        try number(metrics.averageAccuracy, .averageAccuracy)
        try number(metrics.forgetting, .averageForgetting)
        try number(metrics.backwardTransfer, .bwt)
        try number(metrics.forwardTransfer, .fwt)
        try number(metrics.learningAccuracy, .learningAccuracy)
        if let taskAwareMatrix, let taskAgnosticMatrix {
            let (aware, agnostic) = (taskAwareMatrix.metrics, taskAgnosticMatrix.metrics)
            try c.encode(matrixRows(taskAwareMatrix), forKey: .accuracyMatrixTAw)
            try c.encode(matrixRows(taskAgnosticMatrix), forKey: .accuracyMatrixTAg)
            try number(aware.averageAccuracy, .averageAccuracyTAw)
            try number(agnostic.averageAccuracy, .averageAccuracyTAg)
            try number(aware.forgetting, .averageForgettingTAw)
            try number(agnostic.forgetting, .averageForgettingTAg)
        }
        try c.encodeIfPresent(headlineLabel, forKey: .headlineInference)
        try number(wallSeconds, .wallSeconds)
        try c.encode(secondsPerTask.map(significant), forKey: .secondsPerTask)
        try c.encodeIfPresent(samplesPerTask, forKey: .samplesPerTask)
        if let rates = samplesPerSecondPerTask {
            try c.encode(rates.map(significant), forKey: .samplesPerSecondPerTask)
        } else {
            try c.encodeNil(forKey: .samplesPerSecondPerTask)
        }
        if let peakRSSBytes { try c.encode(peakRSSBytes, forKey: .peakRSSBytes) } else { try c.encodeNil(forKey: .peakRSSBytes) }
        try c.encode(strategyMemoryBytes, forKey: .strategyMemoryBytes)
        try c.encode(parameterCount, forKey: .parameterCount)
        try c.encodeIfPresent(computeBackend, forKey: .computeBackend)
        try c.encodeIfPresent(computeThreads, forKey: .computeThreads)
        try c.encode(configuration, forKey: .configuration)
        try c.encodeIfPresent(taskAgnostic, forKey: .taskAgnostic)
        try c.encodeIfPresent(dataFiles, forKey: .dataFiles)
        try c.encodeIfPresent(consolidation, forKey: .consolidation)
    }
}

/// What a consolidation phase after each task changed (`results.json` key `consolidation`): the accuracy on
/// every task just before each phase next to the headline matrix's row just after it.
public struct ConsolidationSummary: Sendable, Codable, Equatable {
    /// The phase's name (`sleep`).
    public var phase: String
    /// Row i: accuracy on each task after training task i, before its consolidation (all tasks, as the matrix).
    public var accuracyBefore: [[Double]]
    /// Row i: accuracy on each task after task i's consolidation (the task-aware matrix's row i).
    public var accuracyAfter: [[Double]]
    /// Mean over tasks 0…i of the change the phase made, per task i (after − before).
    public var averageChange: [Double]
    /// Wall-clock seconds of each phase.
    public var seconds: [Double]

    enum CodingKeys: String, CodingKey {
        case phase, seconds
        case accuracyBefore = "accuracy_before", accuracyAfter = "accuracy_after", averageChange = "average_change"
    }

    public init(phase: String, before: [[Float]], after: [[Float]], seconds: [Double]) {
        self.phase = phase
        accuracyBefore = before.map { $0.map { significant(Double($0)) } }
        accuracyAfter = after.map { $0.map { significant(Double($0)) } }
        averageChange = zip(before, after).enumerated().map { i, rows in
            significant(Self.seenMean(zip(rows.1, rows.0).map { Double($0) - Double($1) }, afterTask: i))
        }
        self.seconds = seconds.map(significant)
    }

    /// Mean of `row[0...i]`: over the tasks seen after task i.
    public static func seenMean(_ row: [Double], afterTask i: Int) -> Double {
        let seen = row.prefix(i + 1)
        return seen.reduce(0, +) / Double(seen.count)
    }
}

/// A square matrix from rows whose entries may be missing; nil unless square with one baseline entry per task.
func accuracyMatrix(entries rows: [[Double?]], randomBaseline: [Double]?) -> AccuracyMatrix? {
    guard !rows.isEmpty, rows.allSatisfy({ $0.count == rows.count }), randomBaseline.map({ $0.count == rows.count }) ?? true,
          rows.allSatisfy({ $0.allSatisfy { $0?.isFinite ?? true } }) else { return nil }
    var matrix = AccuracyMatrix(taskCount: rows.count)
    for (i, row) in rows.enumerated() {
        for (j, value) in row.enumerated() { if let value { matrix.record(value, afterTraining: i, onTask: j) } }
    }
    matrix.randomBaseline = randomBaseline
    return matrix
}

/// `x` rounded to 6 significant digits (how `results.json` writes accuracies, metrics and rates).
func significant(_ x: Double) -> Double {
    guard x.isFinite, x != 0 else { return x }
    return Double(String(format: "%.6g", x)) ?? x
}

/// One task-agnostic inference rule's results over a run.
public struct TaskAgnosticSummary: Sendable, Codable, Equatable {
    /// `max-logit` (multi-head models), `top-two-lowest-entropy` / `most-confident` (MIND).
    public var rule: String
    /// Row i: accuracy on tasks 0…i after training task i (task and label right).
    public var accuracy: [[Double]]
    /// Row i: fraction of each seen task's test samples assigned to the right task.
    public var taskPrediction: [[Double]]
    /// Mean of the last row.
    public var averageAccuracy: Double
    /// Mean over tasks j < T−1 of max_{i ∈ [j, T−1)} a[i][j] − a[T−1][j] (0 for one task).
    public var forgetting: Double
    /// Mean of the last row of `taskPrediction`.
    public var averageTaskPrediction: Double

    enum CodingKeys: String, CodingKey {
        case rule, accuracy, forgetting
        case taskPrediction = "task_prediction", averageAccuracy = "average_accuracy"
        case averageTaskPrediction = "average_task_prediction"
    }

    /// The rule's accuracies as a T×T matrix (nil above the diagonal: the rule chooses among the tasks seen).
    public func matrix(taskCount: Int) -> AccuracyMatrix {
        var m = AccuracyMatrix(taskCount: max(taskCount, 1))
        for (i, row) in accuracy.enumerated() where i < m.taskCount {
            for (j, value) in row.enumerated() where j < m.taskCount && value.isFinite { m.record(value, afterTraining: i, onTask: j) }
        }
        return m
    }

    /// Writes the accuracies rounded to 6 significant digits.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(rule, forKey: .rule)
        try c.encode(accuracy.map { $0.map(significant) }, forKey: .accuracy)
        try c.encode(taskPrediction.map { $0.map(significant) }, forKey: .taskPrediction)
        try c.encode(significant(averageAccuracy), forKey: .averageAccuracy)
        try c.encode(significant(forgetting), forKey: .forgetting)
        try c.encode(significant(averageTaskPrediction), forKey: .averageTaskPrediction)
    }

    public init(_ record: TaskAgnosticRecord) {
        rule = record.rule
        accuracy = record.accuracy.map { $0.map(Double.init) }
        taskPrediction = record.taskPrediction.map { $0.map(Double.init) }
        let last = accuracy.last ?? []
        averageAccuracy = last.isEmpty ? 0 : last.reduce(0, +) / Double(last.count)
        let lastPrediction = taskPrediction.last ?? []
        averageTaskPrediction = lastPrediction.isEmpty ? 0 : lastPrediction.reduce(0, +) / Double(lastPrediction.count)
        let rows = accuracy, n = rows.count
        if n > 1 {
            let drops = (0..<(n - 1)).map { j in (j..<(n - 1)).map { rows[$0][j] }.max()! - rows[n - 1][j] }
            forgetting = drops.reduce(0, +) / Double(drops.count)
        } else {
            forgetting = 0
        }
    }
}

/// Errors of a run's files (checkpoints, results) that name the file and the problem.
public struct RunError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// One continual-learning experiment in a directory: trains, checkpoints after every epoch and task
/// (atomically), resumes from the last checkpoint, and writes `results.json` and `accuracy_matrix.csv`.
public final class ExperimentRun {
    /// The resolved configuration (``ExperimentConfiguration/resolved()``) of the run.
    public let configuration: ExperimentConfiguration
    public let directory: URL
    public var onEvent: ((TrainingEvent) -> Void)?
    /// Called once the dataset is located, with the files used and the places rejected before them (the CLI logs them).
    public var onDataLocated: ((LocatedDataset) -> Void)?
    /// The dataset files of the last `run` (path and MD5), written to results.json as `data_files`.
    public private(set) var dataFiles: [DataFileRecord]?
    /// Called after each checkpoint is written (tests use it to interrupt a run).
    public var afterCheckpoint: ((TrainingPosition) throws -> Void)?
    /// The data-parallel group this process trains in (nil: alone); see ``Trainer/group``. Member 0 writes the
    /// directory (checkpoints, results); the others write nothing, read the checkpoint when resuming, and return
    /// the same results. After every task the members check that they hold bit-identical parameters, and a stop
    /// requested on any member (Ctrl-C) stops all of them at the same checkpoint.
    public var group: (any ProcessGroup)?

    public static let checkpointName = "checkpoint.safetensors"
    public static let resultsName = "results.json"
    public static let matrixName = "accuracy_matrix.csv"

    public init(configuration: ExperimentConfiguration, directory: URL) throws {
        try configuration.validate()
        self.configuration = configuration.resolved()
        self.directory = directory
    }

    public var checkpointURL: URL { directory.appendingPathComponent(Self.checkpointName) }

    /// Where `keep_task_checkpoints` keeps the checkpoint written after task `task` (from 1).
    public func taskCheckpointURL(afterTask task: Int) -> URL {
        directory.appendingPathComponent("checkpoints").appendingPathComponent("task-\(task).safetensors")
    }

    /// Trains the stream (resuming from `checkpoint.safetensors` when `resume` is set and it exists), writes
    /// the results, and returns them as `results.json` holds them.
    @discardableResult
    public func run(resume: Bool = false, benchmark prebuilt: ContinualBenchmark? = nil) throws -> RunResults {
        let start = Date()
        wallSecondsBeforeResume = 0
        let writes = (group?.rank ?? 0) == 0
        var lock: RunDirectoryLock?
        if writes {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            lock = try RunDirectoryLock(directory: directory)
        }
        defer { lock?.release() }
        let benchmark: ContinualBenchmark
        if let prebuilt { benchmark = prebuilt } else {
            let (built, data) = try configuration.makeLocatedBenchmark()
            benchmark = built
            dataFiles = data.files
            onDataLocated?(data)
        }
        let trainer = try makeTrainer(for: benchmark)
        let model = trainer.context.model
        trainer.onEvent = onEvent
        if let group {
            if let reason = DataParallel.unsupportedReason(strategy: trainer.strategy) {
                throw RunError("data-parallel training does not support \(configuration.strategy): \(reason)")
            }
            trainer.group = group
        }
        var position = TrainingPosition()
        var results = StreamResult()
        if resume, FileManager.default.fileExists(atPath: checkpointURL.path) {
            (position, results) = try restore(into: trainer)
        }
        let wallBefore = wallSecondsBeforeResume
        trainer.onCheckpoint = { [unowned self] position, results in
            let taskEnd = position.epoch == 0 && position.stepInTask == 0
            if let group = self.group, taskEnd, !DataParallel.membersAgree(on: model, group: group) {
                throw RunError("data-parallel members hold different parameters after task \(position.task) (member \(group.rank) of \(group.size)); "
                               + "the transport's sums differ between members — the run stops before writing a checkpoint")
            }
            if writes {
                try self.saveCheckpoint(trainer: trainer, position: position, results: results,
                                        wallSeconds: wallBefore + Date().timeIntervalSince(start))
                if self.configuration.keepTaskCheckpoints == true, taskEnd, position.task > 0 {
                    try self.keepCheckpoint(afterTask: position.task)
                }
            }
            try self.afterCheckpoint?(position)
            var stop = RunInterruption.isRequested
            if let group = self.group {
                var requests = [stop ? 1.0 : 0.0]
                group.sum(&requests)
                stop = requests[0] > 0
            }
            if stop { throw RunInterrupted(position: position, directory: self.directory) }
        }
        // The closure holds the trainer, which holds the closure: broken when the run ends, or every run of a
        // process (a sweep's in-process runs, the tests) would keep its model and data alive.
        defer { trainer.onCheckpoint = nil }
        let final = try trainer.run(from: position, results: results)
        let output = try makeResults(final, benchmark: benchmark, model: model,
                                     wallSeconds: wallBefore + Date().timeIntervalSince(start))
        let data = try output.jsonData()
        if writes { try write(data, to: Self.resultsName) }
        // What the file holds (numbers rounded as written), so a run's return value equals its results.json read back.
        let written = try JSONDecoder().decode(RunResults.self, from: data)
        if writes { try write(Data(written.matrix.csv().utf8), to: Self.matrixName) }
        return written
    }

    /// The run's model (freshly initialised), stream, strategy and trainer on `benchmark`.
    func makeTrainer(for benchmark: ContinualBenchmark) throws -> Trainer {
        let model = configuration.makeModel(for: benchmark)
        let stream = BenchmarkStream(benchmark: benchmark, layout: configuration.model == "mlp" ? .flat : .image,
                                     normalization: configuration.model == "mlp" ? .unitRange : .dataset(configuration.dataset),
                                     augmentation: configuration.dataset == .cifar100 ? .cifar : nil,
                                     evaluationSplit: configuration.evaluateOnValidation ? .validation : .test)
        let strategy = try StrategyRegistry.make(configuration.strategy, configuration.hyperparameters)
        let trainer = try Trainer(model: model, stream: stream, strategy: strategy, configuration: configuration.training)
        trainer.context.makeFreshModel = { [configuration] rng in configuration.makeModel(for: benchmark, using: &rng) }
        return trainer
    }

    func makeResults(_ r: StreamResult, benchmark: ContinualBenchmark, model: Classifier, wallSeconds: Double) throws -> RunResults {
        let matrix = try AccuracyMatrix(rows: r.accuracy.map { $0.map(Double.init) },
                                        randomBaseline: r.initialAccuracy.map(Double.init))
        var results = RunResults(benchmark: configuration.benchmark, scenario: benchmark.scenario, strategy: configuration.strategy,
                                 seed: configuration.training.seed, taskAwareMatrix: matrix,
                                 taskAgnostic: r.taskAgnostic?.map(TaskAgnosticSummary.init),
                                 secondsPerTask: r.secondsPerTask, samplesPerTask: r.samplesPerTask,
                                 strategyMemoryBytes: r.strategyMemoryBytes, parameterCount: model.parameterCount,
                                 configuration: configuration, wallSeconds: wallSeconds, peakRSSBytes: ProcessMemory.peakResidentBytes)
        results.dataFiles = dataFiles
        results.computeBackend = ComputeBackend.current.rawValue
        results.computeThreads = BLAS.threads
        if let before = r.accuracyBeforeConsolidation, before.count == r.accuracy.count, let phase = r.consolidationPhase {
            results.consolidation = ConsolidationSummary(phase: phase, before: before, after: r.accuracy,
                                                         seconds: r.consolidationSeconds ?? [])
        }
        return results
    }

    /// Wall-clock seconds the run had spent before the checkpoint it resumed from (0 for a fresh run or an older
    /// checkpoint that did not record them).
    private var wallSecondsBeforeResume: Double = 0

    /// Writes the checkpoint: model, optimizer, strategy state, dropout generators, position and results so far.
    func saveCheckpoint(trainer: Trainer, position: TrainingPosition, results: StreamResult, wallSeconds: Double = 0) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let generators = trainer.context.model.namedModules().compactMap { path, m in
            (m as? Dropout).map { (path, [$0.generator.state.0, $0.generator.state.1, $0.generator.state.2, $0.generator.state.3]) }
        }
        let strategyState = try trainer.strategy.saveState()
        let metadata: [String: String] = [
            "engram.strategy_records": String(decoding: try encoder.encode(strategyState.records), as: UTF8.self),
            "engram.position": String(decoding: try encoder.encode(position), as: UTF8.self),
            "engram.results": String(decoding: try encoder.encode(results), as: UTF8.self),
            "engram.configuration": String(decoding: try encoder.encode(configuration), as: UTF8.self),
            "engram.dropout_generators": String(decoding: try encoder.encode(Dictionary(uniqueKeysWithValues: generators)), as: UTF8.self),
            "engram.wall_seconds": String(wallSeconds),
        ]
        try Checkpoint.save(model: trainer.context.model, optimizer: trainer.context.optimizer,
                            extra: strategyState.tensors.sorted { $0.key < $1.key }.map { ("strategy.\($0.key)", $0.value) },
                            metadata: metadata, to: checkpointURL)
    }

    /// Keeps the checkpoint just written as `checkpoints/task-<task>.safetensors`: a hard link to it (the next
    /// checkpoint replaces `checkpoint.safetensors` by a rename, so the link keeps this one's bytes), or a copy where
    /// links are not possible, put in place by a rename so the file is whole or absent.
    func keepCheckpoint(afterTask task: Int) throws {
        let target = taskCheckpointURL(afterTask: task)
        let folder = target.deletingLastPathComponent()
        let temporary = folder.appendingPathComponent(".task-\(task).safetensors.partial-\(getpid())")
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            unlink(temporary.path)
            if link(checkpointURL.path, temporary.path) != 0 {
                try FileManager.default.copyItem(at: checkpointURL, to: temporary)
            }
            guard rename(temporary.path, target.path) == 0 else { throw RunError(String(cString: strerror(errno))) }
        } catch {
            unlink(temporary.path)
            throw RunError("\(target.path): cannot keep the checkpoint of task \(task): \(error)")
        }
    }

    /// Loads the checkpoint (by default the run's; `engram analyze` gives a kept task checkpoint) into the trainer;
    /// returns where to continue.
    func restore(into trainer: Trainer, from url: URL? = nil) throws -> (TrainingPosition, StreamResult) {
        let checkpointURL = url ?? self.checkpointURL
        let checkpoint = try Checkpoint.read(from: checkpointURL)
        let decoder = JSONDecoder()
        func decode<T: Decodable>(_ type: T.Type, _ key: String) throws -> T {
            guard let text = checkpoint.metadata[key] else {
                throw RunError("\(checkpointURL.path): not an Engram run checkpoint (no '\(key)' metadata)")
            }
            do { return try decoder.decode(T.self, from: Data(text.utf8)) } catch {
                throw RunError("\(checkpointURL.path): metadata '\(key)' is unreadable: \(ConfigurationError.describe(error))")
            }
        }
        let saved = try decode(ExperimentConfiguration.self, "engram.configuration")
        // Checkpoints of older versions hold the configuration as given, unresolved.
        guard saved.resolved() == configuration else {
            throw RunError("\(checkpointURL.path) was written by a run with a different configuration; resume it with its own config.yaml")
        }
        do { try checkpoint.restore(into: trainer.context.model, optimizer: trainer.context.optimizer) } catch {
            throw RunError("\(checkpointURL.path): \(error)")
        }
        let position = try decode(TrainingPosition.self, "engram.position")
        let results = try decode(StreamResult.self, "engram.results")
        try Self.check(position, results, taskCount: trainer.context.stream.taskCount, training: configuration.training,
                       source: checkpointURL.path)
        var strategyState = StrategyState()
        for (k, v) in checkpoint.extra where k.hasPrefix("strategy.") { strategyState.tensors[String(k.dropFirst(9))] = v }
        // Checkpoints written before strategies kept records have none.
        strategyState.records = checkpoint.metadata["engram.strategy_records"] == nil ? [:]
            : try decode([String: String].self, "engram.strategy_records")
        // The strategy restores itself at the position the run resumes from.
        let context = trainer.context
        context.task = min(position.task, context.stream.taskCount - 1)
        context.stepInTask = position.stepInTask
        context.model.setActiveTask(context.task)
        do { try trainer.strategy.loadState(strategyState, context: context) } catch {
            throw RunError("\(checkpointURL.path): \(trainer.strategy.name)'s state: \(error); the checkpoint is damaged — start the run again")
        }
        let reexported = try trainer.strategy.saveState()
        let known = Set(reexported.tensors.keys).union(reexported.records.keys)
        if let unknown = strategyState.tensors.keys.sorted().first(where: { !known.contains($0) }) {
            throw RunError("\(checkpointURL.path): tensor 'strategy.\(unknown)' is not part of \(trainer.strategy.name)'s state "
                           + "(renamed or from another method); the checkpoint is damaged — start the run again")
        }
        let generators = try decode([String: [UInt64]].self, "engram.dropout_generators")
        for (path, m) in trainer.context.model.namedModules() {
            if let d = m as? Dropout, let s = generators[path], s.count == 4 { d.generator = RandomGenerator(state: (s[0], s[1], s[2], s[3])) }
        }
        wallSecondsBeforeResume = checkpoint.metadata["engram.wall_seconds"].flatMap(Double.init) ?? 0
        guard wallSecondsBeforeResume.isFinite, wallSecondsBeforeResume >= 0 else {
            throw RunError("\(checkpointURL.path): metadata 'engram.wall_seconds' is \(wallSecondsBeforeResume), not a duration")
        }
        return (position, results)
    }

    /// Refuses a checkpoint position or partial results that no run of this configuration can have written
    /// (a task outside the stream, a negative epoch or step, more result rows than tasks …), naming the value.
    static func check(_ position: TrainingPosition, _ results: StreamResult, taskCount: Int, training: TrainingConfiguration,
                      source: String) throws {
        func fail(_ what: String) -> RunError { RunError("\(source): \(what); the checkpoint is damaged — start the run again") }
        // After the last task the position is taskCount (nothing left to train, results.json still to write).
        guard (0...taskCount).contains(position.task) else { throw fail("position task \(position.task) is outside 0…\(taskCount)") }
        guard position.epoch >= 0, training.iterations != nil || position.epoch <= training.epochs else {
            throw fail("position epoch \(position.epoch) is outside 0…\(training.epochs)")
        }
        guard position.stepInTask >= 0, position.samplesInTask >= 0 else {
            throw fail("position step \(position.stepInTask) / samples \(position.samplesInTask) is negative")
        }
        guard position.secondsInTask.isFinite, position.secondsInTask >= 0 else { throw fail("position seconds \(position.secondsInTask) is not a duration") }
        let rows = results.accuracy.count
        guard rows == position.task,
              results.accuracy.allSatisfy({ $0.count == taskCount && $0.allSatisfy { $0.isFinite && (0...1).contains($0) } }),
              results.initialAccuracy.isEmpty || results.initialAccuracy.count == taskCount,
              results.secondsPerTask.count <= taskCount, results.strategyMemoryBytes.count <= taskCount else {
            throw fail("its partial results (\(rows) rows of accuracies) do not fit position task \(position.task) of \(taskCount)")
        }
    }

    func write(_ data: Data, to name: String) throws {
        let url = directory.appendingPathComponent(name)
        do { try data.write(to: url, options: .atomic) } catch {
            throw RunError("cannot write \(url.path): \(error.localizedDescription)")
        }
    }
}

/// A request to stop the running experiment at its next checkpoint (SIGINT in the CLI): the checkpoint is
/// written, then the run throws `RunInterrupted`.
public enum RunInterruption {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var requested = false

    /// Asks the run to stop after its next checkpoint.
    public static func request() { lock.lock(); requested = true; lock.unlock() }
    /// Withdraws the request (tests; a new run in the same process).
    public static func reset() { lock.lock(); requested = false; lock.unlock() }
    /// Whether a stop was requested.
    public static var isRequested: Bool { lock.lock(); defer { lock.unlock() }; return requested }
}

/// The run stopped on request right after writing the checkpoint at `position`; `engram resume` continues it.
public struct RunInterrupted: Error, CustomStringConvertible {
    public let position: TrainingPosition
    public let directory: URL
    public var description: String {
        "interrupted after the checkpoint at task \(position.task + 1), epoch \(position.epoch + 1); continue with: engram resume \(directory.path)"
    }
}

/// One writer per run directory: an advisory `flock` on `DIR/.engram.lock`, held while a run or resume
/// writes the directory; a second process is refused at once with a message (never two writers interleaving
/// checkpoints). The kernel drops the lock when the process ends, however it ends.
public final class RunDirectoryLock {
    private var descriptor: Int32

    init(directory: URL) throws {
        let path = directory.appendingPathComponent(".engram.lock").path
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw RunError("cannot create \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            descriptor = -1
            throw RunError("\(directory.path) is being written by another engram process (a run or resume of it is still going); "
                           + "wait for it to finish or use another output directory")
        }
    }

    /// Whether another process holds the lock of `directory` now (a sweep does not start a point that is running).
    public static func isHeld(in directory: URL) -> Bool {
        let fd = open(directory.appendingPathComponent(".engram.lock").path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { return true }
        flock(fd, LOCK_UN)
        return false
    }

    func release() {
        guard descriptor >= 0 else { return }
        flock(descriptor, LOCK_UN)
        close(descriptor)
        descriptor = -1
    }

    deinit { release() }
}

/// Memory use of this process.
public enum ProcessMemory {
    /// Peak resident set size in bytes: `getrusage(RUSAGE_SELF).ru_maxrss` (KiB on Linux, bytes on macOS); nil if
    /// the call fails.
    public static var peakResidentBytes: Int? {
        var usage = rusage()
        #if os(Linux)
        guard getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage) == 0 else { return nil }
        return Int(usage.ru_maxrss) * 1024
        #else
        guard getrusage(RUSAGE_SELF, &usage) == 0 else { return nil }
        return Int(usage.ru_maxrss)
        #endif
    }
}
