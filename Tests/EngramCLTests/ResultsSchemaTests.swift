import EngramTensor
import EngramNN
import EngramData
import EngramCL
import Foundation
import Testing
import Yams

/// Runs `configuration` in a fresh directory and returns its results.json as a JSON object, with the results.
func runAndReadResultsFile(_ configuration: ExperimentConfiguration) throws -> (object: [String: Any], results: RunResults, directory: URL) {
    let directory = try temporaryDirectory("engram-schema-\(configuration.strategy)")
    let results = try ExperimentRun(configuration: configuration, directory: directory).run()
    let data = try Data(contentsOf: directory.appendingPathComponent(ExperimentRun.resultsName))
    let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    return (object, results, directory)
}

/// The numbers of a JSON value (nested arrays and objects flattened, nulls and strings skipped).
func numbers(in value: Any?) -> [Double] {
    if let array = value as? [Any] { return array.flatMap { numbers(in: $0) } }
    if let object = value as? [String: Any] { return object.keys.sorted().flatMap { numbers(in: object[$0]) } }
    if let number = value as? Double { return [number] }
    if let number = value as? Int { return [Double(number)] }
    if let number = value as? NSNumber, !(value is Bool) { return [number.doubleValue] }
    return []
}

/// How many significant digits the shortest round-trip form of `x` has (`0.9156` → 4).
func significantDigits(_ x: Double) -> Int {
    var text = "\(x)".lowercased()
    if let e = text.firstIndex(of: "e") { text = String(text[..<e]) }
    let digits = text.filter(\.isNumber).drop { $0 == "0" }
    return max(1, String(digits.reversed()).drop { $0 == "0" }.count)
}

/// The keys every schema-2 results.json has at its top level.
let schemaKeys = ["schema_version", "benchmark", "scenario", "strategy", "seed", "accuracy_matrix", "average_accuracy",
                  "average_forgetting", "bwt", "fwt", "learning_accuracy", "wall_seconds", "seconds_per_task",
                  "samples_per_second_per_task", "peak_rss_bytes", "strategy_memory_bytes", "parameter_count", "configuration"]

/// The keys of runs that have both task-aware and task-agnostic figures.
let bothFiguresKeys = ["accuracy_matrix_taw", "accuracy_matrix_tag", "average_accuracy_taw", "average_accuracy_tag",
                       "average_forgetting_taw", "average_forgetting_tag"]

@Suite(.serialized) struct ResultsSchemaTests {
    /// Checks the keys, types and sizes every schema-2 file has, for a run of `tasks` tasks.
    func checkCommonKeys(_ object: [String: Any], tasks: Int) throws {
        for key in schemaKeys { #expect(object.keys.contains(key), "missing \(key)") }
        #expect(object["schema_version"] as? Int == 2)
        #expect(object["benchmark"] is String && object["scenario"] is String && object["strategy"] is String)
        #expect(object["seed"] as? Int != nil)
        let matrix = try #require(object["accuracy_matrix"] as? [[Any]])
        #expect(matrix.count == tasks && matrix.allSatisfy { $0.count == tasks })
        for key in ["average_accuracy", "average_forgetting", "bwt", "learning_accuracy", "wall_seconds"] {
            #expect(numbers(in: object[key]).count == 1, "\(key) is a number")
        }
        #expect(object["fwt"] is NSNull || numbers(in: object["fwt"]).count == 1)
        for key in ["seconds_per_task", "samples_per_second_per_task", "strategy_memory_bytes"] {
            let values = numbers(in: object[key])
            #expect(values.count == tasks, "\(key) has one entry per task")
            #expect(values.allSatisfy { $0 >= 0 }, "\(key)")
        }
        #expect(numbers(in: object["samples_per_second_per_task"]).allSatisfy { $0 > 0 })
        let rss = try #require(object["peak_rss_bytes"] as? Int)
        #expect(rss > 1_000_000, "peak RSS of a process that trained a network is above 1 MB: \(rss)")
        #expect(try #require(object["parameter_count"] as? Int) > 0)
        #expect(object["configuration"] is [String: Any])
        #expect(object["compute_backend"] as? String == ComputeBackend.current.rawValue)
        #expect((object["compute_threads"] as? Int ?? 0) >= 1)
        for key in ["accuracy_matrix", "average_accuracy", "average_forgetting", "bwt", "fwt", "learning_accuracy",
                    "accuracy_matrix_taw", "accuracy_matrix_tag", "average_accuracy_taw", "average_accuracy_tag", "task_agnostic"] {
            for x in numbers(in: object[key]) { #expect(significantDigits(x) <= 6, "\(key): \(x)") }
        }
    }

    @Test("a multi-head task-incremental run writes every schema key, task-aware headline and TAw/TAg figures")
    func multiHeadTaskIncrementalRun() throws {
        var config = smallSplitMNIST(strategy: "finetune", fraction: 0.01)
        config.hidden = [32]
        let (object, results, _) = try runAndReadResultsFile(config)
        try checkCommonKeys(object, tasks: 5)
        for key in bothFiguresKeys { #expect(object.keys.contains(key), "missing \(key)") }
        #expect(object["headline_inference"] as? String == "TAw")
        #expect(numbers(in: object["average_accuracy"]) == numbers(in: object["average_accuracy_taw"]))
        let tag = try #require(object["accuracy_matrix_tag"] as? [[Any]])
        #expect(tag.count == 5 && tag.allSatisfy { $0.count == 5 })
        #expect(tag[0][1] is NSNull, "a task-agnostic rule does not score tasks not seen yet")
        let tagAccuracy = try #require(numbers(in: object["average_accuracy_tag"]).first)
        #expect(abs(tagAccuracy - (try #require(results.taskAgnostic?.first?.averageAccuracy))) < 1e-6)
        // 1 % of each task's ~12 000 training images, one epoch: the counted samples are the training set.
        let samples = try #require(results.samplesPerTask)
        #expect(samples.count == 5 && samples.allSatisfy { $0 > 50 && $0 < 200 }, "\(samples)")
    }

    @Test("a class-incremental MIND run's headline is its primary task-agnostic rule, the task-aware figures apart")
    func classIncrementalMINDHeadlineIsTaskAgnostic() throws {
        var config = smallSplitMNIST(strategy: "mind", fraction: 0.01)
        config.scenario = "class"
        config.hidden = [32]
        config.hyperparameters[config.strategy, "teacher_epochs"] = 1
        let (object, results, directory) = try runAndReadResultsFile(config)
        try checkCommonKeys(object, tasks: 5)
        for key in bothFiguresKeys { #expect(object.keys.contains(key), "missing \(key)") }
        let headline = numbers(in: object["average_accuracy"]), tag = numbers(in: object["average_accuracy_tag"])
        let taw = numbers(in: object["average_accuracy_taw"])
        #expect(headline.count == 1 && headline == tag)
        #expect(headline != taw, "TAw \(taw) must not be the headline")
        #expect(numbers(in: object["average_forgetting"]) == numbers(in: object["average_forgetting_tag"]))
        #expect(object["headline_inference"] as? String == "TAg (top-two-lowest-entropy)")
        #expect(object["fwt"] is NSNull, "no forward transfer without accuracies on unseen tasks")
        #expect(results.headlineIsTaskAgnostic && results.metrics == results.taskAgnosticMetrics)
        #expect(abs(results.metrics.averageAccuracy! - results.taskAgnostic!.first!.averageAccuracy) < 1e-6, "equal up to the 6-digit rounding")
        // The configuration is the resolved one.
        let configuration = try #require(object["configuration"] as? [String: Any])
        #expect(configuration["per_task_batchnorm"] as? Bool == true)
        // Read back by the readers of results.json.
        #expect(try JSONDecoder().decode(RunResults.self, from: Data(contentsOf: directory.appendingPathComponent("results.json"))) == results)
    }

    @Test("a plain domain-incremental finetune run has no TAw/TAg keys and writes its resolved configuration")
    func domainIncrementalFinetuneHasNoTaskAwareKeys() throws {
        var config = smallPermutedMNIST(strategy: "finetune", tasks: 2, fraction: 0.01)
        config.hidden = [32]
        let (object, results, _) = try runAndReadResultsFile(config)
        try checkCommonKeys(object, tasks: 2)
        for key in bothFiguresKeys + ["headline_inference", "task_agnostic"] { #expect(!object.keys.contains(key), "unexpected \(key)") }
        #expect(numbers(in: object["fwt"]).count == 1, "FWT is defined for the full task-aware matrix")
        #expect(results.configuration.perTaskBatchNorm == false)
    }

    @Test("the resolved configuration sets per-task BatchNorm and every option of each strategy of the run")
    func resolvedConfigurationFillsDefaults() {
        var c = ExperimentConfiguration()
        c.strategy = "ewc"
        #expect(c.resolved().hyperparameters.sections == ["ewc": ["lambda": 100.0, "fisher": "exact", "penalty_step": "gradient"]])
        #expect(c.resolved().perTaskBatchNorm == false)
        c.strategy = "mind"
        #expect(c.resolved().hyperparameters["mind", "lambda"] == nil && c.resolved().perTaskBatchNorm == true)
        c.strategy = "ewc+mas"
        #expect(c.resolved().hyperparameters["ewc", "lambda"]?.number == 100 && c.resolved().hyperparameters["mas", "lambda"]?.number == 1,
                "each part keeps its own default λ")
        c.hyperparameters[shared: "lambda"] = 3
        #expect(c.resolved().hyperparameters["ewc", "lambda"]?.number == 3 && c.resolved().hyperparameters["mas", "lambda"]?.number == 3,
                "a value outside sections reaches every part with the option")
        #expect(c.resolved().hyperparameters.shared.isEmpty)
        c.hyperparameters["lwf", "lambda"] = 5
        #expect(c.resolved().hyperparameters.sections["lwf"] == nil, "sections of strategies the run does not use are dropped")
        #expect(c.resolved().resolved() == c.resolved())
    }

    @Test("config.yaml writes floats in their shortest round-trip form and reads back to the same configuration")
    func configurationYAMLWritesShortestFloats() throws {
        var c = ExperimentConfiguration()
        c.training.learningRate = 0.01
        c.training.momentum = 0.9
        c.validationFraction = 0.1
        c.strategy = "mas+mind"
        c.hyperparameters["mas", "lambda"] = 0.3
        c.hyperparameters["mind", "teacher_milestones"] = .list([3, 5])
        let text = try c.resolved().yamlText()
        for line in ["lr: 0.01", "momentum: 0.9", "lr_gamma: 0.1", "validation_fraction: 0.1", "lambda: 0.3",
                     "fraction: 1.0", "weight_decay: 0.0", "per_task_batchnorm: true", "epochs: 1", "distill_beta: 5.0"] {
            #expect(text.contains(line), "\(line) in:\n\(text)")
        }
        #expect(!text.contains("e-"), "no exponent forms:\n\(text)")
        #expect(try YAMLDecoder().decode(ExperimentConfiguration.self, from: text) == c.resolved())
    }

    @Test("the old results.json layout (camelCase matrix and metrics) is still read, and summarized by a sweep")
    func oldLayoutIsStillRead() throws {
        let results = try JSONDecoder().decode(RunResults.self, from: Data(oldLayoutResults.utf8))
        #expect(results.strategy == "mas" && results.scenario == .domainIncremental && results.seed == 0)
        #expect(results.matrix.values == [[0.9, 0.1], [0.8, 0.95]] && results.matrix.randomBaseline == [0.1, 0.1])
        #expect(abs(results.metrics.averageAccuracy! - 0.875) < 1e-12)
        #expect(results.taskAwareMatrix == nil && results.headlineLabel == nil && results.wallSeconds == nil)
        // A sweep directory holding the old file counts the point as finished and summarizes it.
        let directory = try temporaryDirectory("engram-schema-old-sweep")
        defer { try? FileManager.default.removeItem(at: directory) }
        let sweep = try SweepDirectory(SweepSpecification(base: results.configuration, grid: ["seed": [.int(0)]]), directory: directory)
        let pointDirectory = sweep.directory(for: sweep.points[0])
        try FileManager.default.createDirectory(at: pointDirectory, withIntermediateDirectories: true)
        try Data(oldLayoutResults.utf8).write(to: pointDirectory.appendingPathComponent(ExperimentRun.resultsName))
        #expect(try sweep.state(of: sweep.points[0]) == .finished(results))
        let summary = try sweep.summary()
        #expect(summary.rows.count == 1 && abs(summary.rows[0].accuracy!.mean - 0.875) < 1e-12)
        #expect(summary.rows[0].headline == nil)
        // Written again, it is schema 2.
        let object = try #require(try JSONSerialization.jsonObject(with: results.jsonData()) as? [String: Any])
        #expect(object["schema_version"] as? Int == 2 && object["matrix"] == nil)
        #expect(try JSONDecoder().decode(RunResults.self, from: results.jsonData()) == results)
    }

    @Test("an old-layout class-incremental MIND file is read with its task-agnostic headline")
    func oldLayoutMINDGetsTaskAgnosticHeadline() throws {
        let text = oldLayoutResults
            .replacingOccurrences(of: "\"domain-il\"", with: "\"class-il\"")
            .replacingOccurrences(of: "\"parameter_count\"", with: """
                "task_agnostic": [{"rule": "top-two-lowest-entropy", "accuracy": [[0.9], [0.5, 0.7]],
                  "task_prediction": [[1.0], [0.6, 0.8]], "average_accuracy": 0.6, "forgetting": 0.4,
                  "average_task_prediction": 0.7}],
                "parameter_count"
                """)
        let results = try JSONDecoder().decode(RunResults.self, from: Data(text.utf8))
        #expect(results.headlineIsTaskAgnostic)
        #expect(abs(results.metrics.averageAccuracy! - 0.6) < 1e-12)
        #expect(abs(results.taskAwareMetrics!.averageAccuracy! - 0.875) < 1e-12)
    }

    @Test("packnet and pnn are refused in the class- and domain-incremental scenarios, naming the strategy and scenario")
    func taskAwareOnlyMethodsAreRefusedOutsideTaskIncremental() {
        for strategy in ["packnet", "pnn", "mas+packnet"] {
            for scenario in ["class", "domain"] {
                var c = smallSplitMNIST(strategy: strategy)
                c.scenario = scenario
                let error = #expect(throws: StrategyError.self) { try c.validate() }
                let name = strategy.contains("packnet") ? "packnet" : "pnn"
                #expect(error?.description.contains(name) == true && error?.description.contains(scenario) == true,
                        "\(error?.description ?? "")")
                #expect(error?.description.contains("\n") == false)
            }
            var task = smallSplitMNIST(strategy: strategy)
            task.scenario = "task"
            #expect(throws: Never.self) { try task.validate() }
        }
    }
}

/// A results.json as Engram wrote it before schema version 2.
let oldLayoutResults = """
{
  "benchmark" : "permuted-mnist",
  "configuration" : {
    "benchmark" : "permuted-mnist", "scenario" : "domain", "tasks" : 2, "strategy" : "mas",
    "hyperparameters" : {}, "model" : "mlp", "hidden" : [400, 400], "width" : 20,
    "training" : { "epochs" : 1, "batch_size" : 128, "lr" : 0.0099999997764825821, "optimizer" : "sgd",
                   "momentum" : 0.89999997615814209, "weight_decay" : 0, "seed" : 0,
                   "evaluation_batch_size" : 1000, "reset_optimizer_per_task" : true },
    "fraction" : 1, "validation_fraction" : 0, "evaluate_on_validation" : false,
    "identity_first" : true, "class_order" : "natural"
  },
  "matrix" : {
    "randomBaseline" : [0.1, 0.1],
    "taskCount" : 2,
    "values" : [[0.9, 0.1], [0.8, 0.95]]
  },
  "metrics" : {
    "averageAccuracy" : 0.875, "backwardTransfer" : -0.1, "forgetting" : 0.1,
    "forwardTransfer" : 0, "learningAccuracy" : 0.925
  },
  "parameter_count" : 478410,
  "scenario" : "domain-il",
  "seconds_per_task" : [10.5, 11.25],
  "seed" : 0,
  "strategy" : "mas",
  "strategy_memory_bytes" : [0, 3826560]
}
"""
