import EngramNN
import Foundation

/// What `results.json` holds: the run's configuration, accuracy matrix, metrics, and cost per task.
public struct RunResults: Sendable, Codable, Equatable {
    public var benchmark: String
    public var scenario: Scenario
    public var strategy: String
    public var seed: UInt64
    /// R[i][j] (plus the untrained model's accuracies as the forward-transfer baseline).
    public var matrix: AccuracyMatrix
    public var metrics: ContinualMetrics
    /// Wall-clock training seconds per task.
    public var secondsPerTask: [Double]
    /// Bytes held by the strategy after each task (importance, anchors, buffers …).
    public var strategyMemoryBytes: [Int]
    /// Trainable scalars of the model.
    public var parameterCount: Int
    public var configuration: ExperimentConfiguration
    /// Task-agnostic (TAg) results, one per inference rule, when the method and model have them; the
    /// accuracy matrix above is task-aware (TAw) in the task-incremental scenario.
    public var taskAgnostic: [TaskAgnosticSummary]?

    enum CodingKeys: String, CodingKey {
        case benchmark, scenario, strategy, seed, matrix, metrics, configuration
        case secondsPerTask = "seconds_per_task"
        case strategyMemoryBytes = "strategy_memory_bytes"
        case parameterCount = "parameter_count"
        case taskAgnostic = "task_agnostic"
    }

    /// Pretty-printed JSON with sorted keys.
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }
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
    public let configuration: ExperimentConfiguration
    public let directory: URL
    public var onEvent: ((TrainingEvent) -> Void)?
    /// Called after each checkpoint is written (tests use it to interrupt a run).
    public var afterCheckpoint: ((TrainingPosition) throws -> Void)?

    public static let checkpointName = "checkpoint.safetensors"
    public static let resultsName = "results.json"
    public static let matrixName = "accuracy_matrix.csv"

    public init(configuration: ExperimentConfiguration, directory: URL) throws {
        try configuration.validate()
        self.configuration = configuration
        self.directory = directory
    }

    public var checkpointURL: URL { directory.appendingPathComponent(Self.checkpointName) }

    /// Trains the stream (resuming from `checkpoint.safetensors` when `resume` is set and it exists)
    /// and writes the results.
    @discardableResult
    public func run(resume: Bool = false, benchmark prebuilt: ContinualBenchmark? = nil) throws -> RunResults {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let benchmark = try prebuilt ?? configuration.makeBenchmark()
        let model = configuration.makeModel(for: benchmark)
        let stream = BenchmarkStream(benchmark: benchmark, layout: configuration.model == "mlp" ? .flat : .image,
                                     normalization: configuration.model == "mlp" ? .unitRange : .dataset(configuration.dataset),
                                     augmentation: configuration.dataset == .cifar100 ? .cifar : nil,
                                     evaluationSplit: configuration.evaluateOnValidation ? .validation : .test)
        let strategy = try StrategyFactory.make(configuration.strategy, configuration.hyperparameters)
        let trainer = try Trainer(model: model, stream: stream, strategy: strategy, configuration: configuration.training)
        trainer.onEvent = onEvent
        trainer.context.makeFreshModel = { [configuration] rng in configuration.makeModel(for: benchmark, using: &rng) }
        var position = TrainingPosition()
        var results = StreamResult()
        if resume, FileManager.default.fileExists(atPath: checkpointURL.path) {
            (position, results) = try restore(into: trainer)
        }
        trainer.onCheckpoint = { [unowned self] position, results in
            try self.saveCheckpoint(trainer: trainer, position: position, results: results)
            try self.afterCheckpoint?(position)
        }
        let final = try trainer.run(from: position, results: results)
        let output = try makeResults(final, benchmark: benchmark, model: model)
        try write(output.jsonData(), to: Self.resultsName)
        try write(Data(output.matrix.csv().utf8), to: Self.matrixName)
        return output
    }

    func makeResults(_ r: StreamResult, benchmark: ContinualBenchmark, model: Classifier) throws -> RunResults {
        let matrix = try AccuracyMatrix(rows: r.accuracy.map { $0.map(Double.init) },
                                        randomBaseline: r.initialAccuracy.map(Double.init))
        return RunResults(benchmark: configuration.benchmark, scenario: benchmark.scenario, strategy: configuration.strategy,
                          seed: configuration.training.seed, matrix: matrix, metrics: matrix.metrics,
                          secondsPerTask: r.secondsPerTask, strategyMemoryBytes: r.strategyMemoryBytes,
                          parameterCount: model.parameterCount, configuration: configuration,
                          taskAgnostic: r.taskAgnostic?.map(TaskAgnosticSummary.init))
    }

    /// Writes the checkpoint: model, optimizer, strategy state, dropout generators, position and results so far.
    func saveCheckpoint(trainer: Trainer, position: TrainingPosition, results: StreamResult) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let generators = trainer.context.model.namedModules().compactMap { path, m in
            (m as? Dropout).map { (path, [$0.generator.state.0, $0.generator.state.1, $0.generator.state.2, $0.generator.state.3]) }
        }
        let metadata: [String: String] = [
            "engram.position": String(decoding: try encoder.encode(position), as: UTF8.self),
            "engram.results": String(decoding: try encoder.encode(results), as: UTF8.self),
            "engram.configuration": String(decoding: try encoder.encode(configuration), as: UTF8.self),
            "engram.dropout_generators": String(decoding: try encoder.encode(Dictionary(uniqueKeysWithValues: generators)), as: UTF8.self),
        ]
        try Checkpoint.save(model: trainer.context.model, optimizer: trainer.context.optimizer,
                            extra: trainer.strategy.stateTensors().map { ("strategy.\($0.0)", $0.1) },
                            metadata: metadata, to: checkpointURL)
    }

    /// Loads the checkpoint into the trainer; returns where to continue.
    func restore(into trainer: Trainer) throws -> (TrainingPosition, StreamResult) {
        let checkpoint = try Checkpoint.read(from: checkpointURL)
        let decoder = JSONDecoder()
        func decode<T: Decodable>(_ type: T.Type, _ key: String) throws -> T {
            guard let text = checkpoint.metadata[key] else {
                throw RunError("\(checkpointURL.path): not an Engram run checkpoint (no '\(key)' metadata)")
            }
            do { return try decoder.decode(T.self, from: Data(text.utf8)) } catch {
                throw RunError("\(checkpointURL.path): metadata '\(key)' is unreadable: \(error)")
            }
        }
        let saved = try decode(ExperimentConfiguration.self, "engram.configuration")
        guard saved == configuration else {
            throw RunError("\(checkpointURL.path) was written by a run with a different configuration; resume it with its own config.yaml")
        }
        do { try checkpoint.restore(into: trainer.context.model, optimizer: trainer.context.optimizer) } catch {
            throw RunError("\(checkpointURL.path): \(error)")
        }
        var strategyState: [String: Tensor] = [:]
        for (k, v) in checkpoint.extra where k.hasPrefix("strategy.") { strategyState[String(k.dropFirst(9))] = v }
        try trainer.strategy.loadState(strategyState)
        let generators = try decode([String: [UInt64]].self, "engram.dropout_generators")
        for (path, m) in trainer.context.model.namedModules() {
            if let d = m as? Dropout, let s = generators[path], s.count == 4 { d.generator = RandomGenerator(state: (s[0], s[1], s[2], s[3])) }
        }
        return (try decode(TrainingPosition.self, "engram.position"), try decode(StreamResult.self, "engram.results"))
    }

    func write(_ data: Data, to name: String) throws {
        let url = directory.appendingPathComponent(name)
        do { try data.write(to: url, options: .atomic) } catch {
            throw RunError("cannot write \(url.path): \(error.localizedDescription)")
        }
    }
}
