import EngramTensor
import EngramNN
import EngramData
import EngramCL
import Foundation
import Testing

/// A sweep specification decoded from JSON (YAML decodes through the same `Codable` conformance).
private func specification(_ json: String) throws -> SweepSpecification {
    try JSONDecoder().decode(SweepSpecification.self, from: Data(json.utf8))
}

/// The smallest real configuration: 2-task permuted MNIST on 1 % of the data, MLP 784-16-10.
private func tinyConfiguration() -> ExperimentConfiguration {
    var c = ExperimentConfiguration()
    c.benchmark = "permuted-mnist"
    c.tasks = 2
    c.strategy = "finetune"
    c.hidden = [16]
    c.fraction = 0.01
    c.training.batchSize = 64
    c.dataDirectory = datasetsRoot
    return c
}

@Suite struct GridValueTests {
    @Test("grid values decode as the most specific type and print as they read in run names")
    func decodesMostSpecificType() throws {
        let values = try JSONDecoder().decode([GridValue].self, from: Data(#"[true, 3, 0.01, 2.5, "mas", [400, 400]]"#.utf8))
        #expect(values == [.bool(true), .int(3), .double(0.01), .double(2.5), .string("mas"), .list([.int(400), .int(400)])])
        #expect(values.map(\.description) == ["true", "3", "0.01", "2.5", "mas", "400-400"])
    }
}

@Suite struct ExperimentConfigurationSettingTests {
    @Test("setting a dotted key reaches nested sections and leaves the rest of the configuration alone")
    func dottedKeysReachNestedConfiguration() throws {
        let base = tinyConfiguration()
        let c = try base.setting("hyperparameters.lambda", to: .double(0.5))
            .setting("training.lr", to: .double(0.05))
            .setting("training.seed", to: .int(7))
            .setting("hidden", to: .list([.int(32), .int(8)]))
            .setting("strategy", to: .string("mas"))
            .setting("hyperparameters.mas.mode", to: .string("batch"))
        #expect(c.hyperparameters[shared: "lambda"] == 0.5 && c.scopingSharedHyperparameters().hyperparameters["mas", "lambda"] == 0.5)
        #expect(c.training.learningRate == 0.05)
        #expect(c.training.seed == 7)
        #expect(c.hidden == [32, 8])
        #expect(c.strategy == "mas")
        #expect(c.hyperparameters["mas", "mode"] == "batch")
        #expect(c.tasks == base.tasks && c.fraction == base.fraction && c.training.batchSize == base.training.batchSize)
    }

    @Test("an unknown key is rejected with an error that names it")
    func unknownKeyIsNamed() {
        for key in ["hyperparameters.lamda", "trainig.seed", "training.seed.value", "nonsense"] {
            #expect {
                _ = try tinyConfiguration().setting(key, to: .int(1))
            } throws: { error in
                (error as? SweepError)?.description.contains("'\(key)'") == true
            }
        }
    }

    @Test("a value of the wrong type is rejected with an error that names the key")
    func wrongTypeIsNamed() {
        #expect {
            _ = try tinyConfiguration().setting("training.seed", to: .string("zero"))
        } throws: { error in
            (error as? SweepError)?.description.contains("'training.seed'") == true
        }
    }
}

@Suite struct SweepSpecificationTests {
    @Test("expansion is the cartesian product of the grid, strategy slowest and seed fastest")
    func expandsCartesianProduct() throws {
        let spec = try specification("""
            {"base": {"tasks": 2, "fraction": 0.01},
             "grid": {"training.seed": [0, 1, 2], "hyperparameters.lambda": [0.1, 1], "strategy": ["ewc", "mas"]}}
            """)
        let points = try spec.expand()
        #expect(points.count == 12)
        #expect(Set(points.map(\.name)).count == 12)
        #expect(points.map(\.name).prefix(4) == ["ewc__lambda=0.1__seed=0", "ewc__lambda=0.1__seed=1",
                                                 "ewc__lambda=0.1__seed=2", "ewc__lambda=1__seed=0"])
        #expect(points.last?.name == "mas__lambda=1__seed=2")
        let point = try #require(points.first { $0.name == "mas__lambda=0.1__seed=2" })
        #expect(point.configuration.strategy == "mas")
        #expect(point.configuration.hyperparameters["mas", "lambda"]?.number == 0.1)
        #expect(point.configuration.training.seed == 2)
        #expect(point.configuration.tasks == 2 && point.configuration.fraction == 0.01)
        #expect(point.group == "mas__lambda=0.1")
        #expect(point.groupAssignments == [GridAssignment(key: "strategy", value: .string("mas")),
                                           GridAssignment(key: "hyperparameters.lambda", value: .double(0.1))])
        // Every combination occurs exactly once.
        let combos = Set(points.map { "\($0.configuration.strategy) \($0.configuration.hyperparameters[$0.configuration.strategy, "lambda"]!) \($0.configuration.training.seed)" })
        #expect(combos.count == 12)
    }

    @Test("a grid value outside sections that a point's strategy does not read fails the expansion naming the point")
    func unreadSharedValueIsNamed() throws {
        let spec = try specification(#"{"grid": {"strategy": ["finetune", "mas"], "lambda": [1]}}"#)
        #expect {
            _ = try spec.expand()
        } throws: { error in
            let text = (error as? SweepError)?.description ?? ""
            return text.contains("finetune__lambda=1") && text.contains("has no option 'lambda'")
        }
    }

    @Test("a strategy's section in the grid reaches only that strategy")
    func sectionKeysReachOneStrategy() throws {
        let points = try specification(#"""
            {"base": {"strategy": "ewc+mas"}, "grid": {"hyperparameters.mas.lambda": [0.5], "hyperparameters.ewc.lambda": [50]}}
            """#).expand()
        #expect(points.map(\.name) == ["ewc+mas__hyperparameters.ewc.lambda=50__hyperparameters.mas.lambda=0.5"])
        let resolved = points[0].configuration.resolved().hyperparameters
        #expect(resolved["mas", "lambda"]?.number == 0.5 && resolved["ewc", "lambda"]?.number == 50)
    }

    @Test("names do not depend on the order of the grid's keys, and the base strategy leads when the grid has none")
    func namesAreStable() throws {
        let a = try specification(#"{"base": {"strategy": "mas"}, "grid": {"training.seed": [0, 1], "training.lr": [0.01, 0.1]}}"#)
        let b = try specification(#"{"base": {"strategy": "mas"}, "grid": {"training.lr": [0.01, 0.1], "training.seed": [0, 1]}}"#)
        let names = try a.expand().map(\.name)
        #expect(names == (try b.expand().map(\.name)))
        #expect(names == ["mas__lr=0.01__seed=0", "mas__lr=0.01__seed=1", "mas__lr=0.1__seed=0", "mas__lr=0.1__seed=1"])
    }

    @Test("short aliases stand for their dotted keys")
    func aliasesResolve() throws {
        let points = try specification(#"{"base": {"strategy": "mas"}, "grid": {"lambda": [10], "seed": [3]}}"#).expand()
        #expect(points.map(\.name) == ["mas__lambda=10__seed=3"])
        #expect(points[0].configuration.hyperparameters["mas", "lambda"]?.number == 10 && points[0].configuration.training.seed == 3)
    }

    @Test("an unknown grid key fails the expansion with an error that names the key")
    func unknownGridKeyIsNamed() throws {
        let spec = try specification(#"{"grid": {"hyperparameters.lamda": [1, 10]}}"#)
        #expect {
            _ = try spec.expand()
        } throws: { error in
            (error as? SweepError)?.description.contains("'hyperparameters.lamda'") == true
        }
    }

    @Test("an invalid point (unknown strategy) fails the expansion naming the point")
    func invalidPointIsNamed() throws {
        let spec = try specification(#"{"grid": {"strategy": ["mas", "nope"]}}"#)
        #expect {
            _ = try spec.expand()
        } throws: { error in
            (error as? SweepError)?.description.contains("nope") == true
        }
    }

    @Test("several grids run one after another, each combined with the shared grid, with their own hyper-parameters")
    func severalGridsShareTheCommonKeys() throws {
        let points = try specification(#"""
            {"base": {"strategy": "finetune"}, "grid": {"scenario": ["task", "class"], "seed": [0]},
             "grids": [{"strategy": ["ewc"], "lambda": [1, 10]}, {"strategy": ["si"], "c": [0.5]}]}
            """#).expand()
        #expect(points.map(\.name) == ["ewc__lambda=1__scenario=task__seed=0", "ewc__lambda=1__scenario=class__seed=0",
                                        "ewc__lambda=10__scenario=task__seed=0", "ewc__lambda=10__scenario=class__seed=0",
                                        "si__c=0.5__scenario=task__seed=0", "si__c=0.5__scenario=class__seed=0"])
        #expect(points[5].configuration.hyperparameters["si", "c"]?.number == 0.5 && points[5].configuration.scenario == "class")
        #expect(throws: SweepError.self) {
            try specification(#"{"grid": {"seed": [0]}, "grids": [{"training.seed": [1]}]}"#).expand()
        }
    }

    @Test("an empty grid is one run of the base configuration")
    func emptyGridIsOneRun() throws {
        let points = try specification(#"{"base": {"strategy": "ewc"}}"#).expand()
        #expect(points.map(\.name) == ["ewc"])
        #expect(points[0].configuration.strategy == "ewc")
    }
}

@Suite struct MeanStdTests {
    @Test("mean and sample standard deviation (n − 1) of known values")
    func sampleStatistics() throws {
        let s = try #require(MeanStd([2, 4, 4, 4, 5, 5, 7, 9]))
        #expect(s.mean == 5)
        #expect(abs(s.std! - (32.0 / 7).squareRoot()) < 1e-12)
        #expect(s.count == 8)
        let pair = try #require(MeanStd([0.9, 0.8]))
        #expect(abs(pair.mean - 0.85) < 1e-12 && abs(pair.std! - 0.0707106781186548) < 1e-12)
        #expect(pair.formatted() == "85.00 ± 7.07")
    }

    @Test("one value has no standard deviation and no values have no statistics")
    func degenerateCases() {
        #expect(MeanStd([0.5])?.std == nil)
        #expect(MeanStd([0.5])?.formatted() == "50.00")
        #expect(MeanStd([]) == nil)
    }
}

@Suite struct ResultsSummaryTests {
    /// Results whose final-row accuracies are `accuracies` (two tasks).
    func results(_ point: SweepPoint, final: [Double]) throws -> RunResults {
        let matrix = try AccuracyMatrix(rows: [[1.0, 0.1], final], randomBaseline: [0.1, 0.1])
        return RunResults(configuration: point.configuration, scenario: .domainIncremental, matrix: matrix,
                          secondsPerTask: [1, 2], strategyMemoryBytes: [0, 0], parameterCount: 1)
    }

    @Test("runs are grouped over seeds and each metric is summarized as mean ± sample std")
    func groupsOverSeeds() throws {
        let points = try specification(#"{"grid": {"strategy": ["finetune", "mas"], "seed": [0, 1, 2]}}"#).expand()
        let finals: [[Double]] = [[0.6, 0.9], [0.7, 0.9], [0.8, 0.9], [0.9, 0.9], [0.9, 0.9], [0.9, 0.9]]
        let summary = ResultsSummary(try zip(points, finals).map { ($0, try results($0, final: $1)) })
        #expect(summary.rows.map(\.group) == ["finetune", "mas"])
        let finetune = summary.rows[0]
        #expect(finetune.seeds == [0, 1, 2])
        // ACC = mean of the final row: 0.75, 0.8, 0.85; forgetting of task 1 = 0.4, 0.3, 0.2.
        #expect(abs(finetune.accuracy!.mean - 0.8) < 1e-12 && abs(finetune.accuracy!.std! - 0.05) < 1e-12)
        #expect(abs(finetune.forgetting!.mean - 0.3) < 1e-12 && abs(finetune.forgetting!.std! - 0.1) < 1e-12)
        #expect(summary.rows[1].forgetting!.std == 0)
        #expect(finetune.seconds!.mean == 3)
        #expect(summary.table().contains("80.00 ± 5.00"))
        let csv = summary.csv().split(separator: "\n")
        #expect(csv.count == 3)
        #expect(csv[0].hasPrefix("group,strategy,runs,seeds,acc_mean,acc_std"))
        #expect(csv[1].hasPrefix("finetune,finetune,3,0 1 2,0.8,0.05,"))
        let decoded = try JSONDecoder().decode(ResultsSummary.self, from: summary.jsonData())
        #expect(decoded == summary)
    }
}

@Suite(.serialized) struct SweepDirectoryTests {
    @Test("a finished point is skipped, an interrupted one resumes, and a pending one runs")
    func resumesASweep() throws {
        let dir = try temporaryDirectory("sweep")
        defer { try? FileManager.default.removeItem(at: dir) }
        let spec = SweepSpecification(base: tinyConfiguration(), grid: ["seed": [.int(0), .int(1), .int(2)]])
        let sweep = try SweepDirectory(spec, directory: dir)
        #expect(sweep.points.map(\.name) == ["finetune__seed=0", "finetune__seed=1", "finetune__seed=2"])

        // Point 0 finishes; point 1 is interrupted after its first checkpoint; point 2 is untouched.
        let first = try sweep.run(sweep.points[0])
        let resultsURL = sweep.directory(for: sweep.points[0]).appendingPathComponent("results.json")
        let written = try Data(contentsOf: resultsURL)
        struct Interrupt: Error {}
        let interrupted = try ExperimentRun(configuration: sweep.points[1].configuration, directory: sweep.directory(for: sweep.points[1]))
        interrupted.afterCheckpoint = { _ in throw Interrupt() }
        #expect(throws: Interrupt.self) { try interrupted.run() }

        #expect(try sweep.state(of: sweep.points[0]) == .finished(first))
        #expect(try sweep.state(of: sweep.points[1]) == .interrupted)
        #expect(try sweep.state(of: sweep.points[2]) == .pending)
        #expect(try sweep.summary().rows.first?.seeds == [0])

        var seen: [String: SweepPointState] = [:]
        // What the executor does for each point: finished points are kept, the others run (or resume).
        let all = try sweep.points.map { point in
            let state = try sweep.state(of: point)
            seen[point.name] = state
            if case let .finished(results) = state { return (point: point, results: results) }
            return (point: point, results: try sweep.run(point))
        }
        #expect(seen["finetune__seed=0"] == .finished(first))
        #expect(seen["finetune__seed=1"] == .interrupted)
        #expect(seen["finetune__seed=2"] == .pending)
        #expect(try Data(contentsOf: resultsURL) == written, "a finished point is not run again")
        #expect(all.map(\.results.seed) == [0, 1, 2])
        // The resumed run equals an uninterrupted one.
        let fresh = try ExperimentRun(configuration: sweep.points[1].configuration, directory: try temporaryDirectory("fresh")).run()
        #expect(all[1].results.matrix == fresh.matrix)
        let summary = try sweep.summary()
        #expect(summary.rows.count == 1 && summary.rows[0].seeds == [0, 1, 2])
    }

    @Test("a point listed as pending that another process finished meanwhile is skipped, and one it left interrupted resumes")
    func aPointFinishedByAnotherProcessIsNotRunAgain() throws {
        let dir = try temporaryDirectory("sweep-shared")
        defer { try? FileManager.default.removeItem(at: dir) }
        let spec = SweepSpecification(base: tinyConfiguration(), grid: ["seed": [.int(0), .int(1)]])
        // This process lists its points: both pending.
        let mine = try SweepDirectory(spec, directory: dir)
        #expect(try mine.points.map { try mine.state(of: $0) } == [.pending, .pending])
        // Another process on the same grid finishes point 0 and is interrupted in point 1.
        let other = try SweepDirectory(spec, directory: dir)
        try other.run(other.points[0])
        struct Interrupt: Error {}
        let interrupted = try ExperimentRun(configuration: other.points[1].configuration, directory: other.directory(for: other.points[1]))
        interrupted.afterCheckpoint = { _ in throw Interrupt() }
        #expect(throws: Interrupt.self) { try interrupted.run() }
        // Asked again right before starting: point 0 is skipped, point 1 resumes from the checkpoint.
        #expect(try mine.resumeNow(mine.points[0]) == nil)
        #expect(try mine.resumeNow(mine.points[1]) == true)
        let freshDirectory = try temporaryDirectory("sweep-shared-fresh")
        defer { try? FileManager.default.removeItem(at: freshDirectory) }
        let fresh = try SweepDirectory(spec, directory: freshDirectory)
        #expect(try fresh.resumeNow(fresh.points[0]) == false)
    }

    @Test("results written for another configuration are refused, naming the file")
    func staleResultsAreRefused() throws {
        let dir = try temporaryDirectory("sweep-stale")
        defer { try? FileManager.default.removeItem(at: dir) }
        let old = try SweepDirectory(SweepSpecification(base: tinyConfiguration(), grid: ["seed": [.int(0)]]), directory: dir)
        try old.run(old.points[0])
        var changed = tinyConfiguration()
        changed.training.learningRate = 0.02
        let new = try SweepDirectory(SweepSpecification(base: changed, grid: ["seed": [.int(0)]]), directory: dir)
        #expect(new.points[0].name == old.points[0].name)
        #expect {
            _ = try new.state(of: new.points[0])
        } throws: { error in
            (error as? SweepError)?.description.contains("finetune__seed=0/results.json") == true
        }
    }
}
