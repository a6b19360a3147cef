import EngramTensor
import EngramNN
import EngramData
import EngramCL
import EngramReport
import Foundation
import Testing

@Suite struct RunReportTests {
    let results: RunResults
    init() throws {
        results = try makeResults(strategy: "mas", seed: 3, lambda: 2,
                                  rows: [[0.981, 0.12, 0.10], [0.902, 0.973, 0.11], [0.853, 0.904, 0.966]],
                                  baseline: [0.1, 0.1, 0.1], seconds: [12.5, 13.25, 14], memory: [0, 3_827_440, 3_827_440])
    }

    @Test func theHeatmapShowsEveryEntryOfTheMatrix() {
        let html = RunReport(results: results).html()
        for value in ["98.1", "12.0", "90.2", "97.3", "85.3", "90.4", "96.6"] { #expect(html.contains(">\(value)<"), "\(value)") }
        #expect(html.contains("after task 3"))
    }

    @Test func theMetricsTableGivesEveryMetricInPercent() throws {
        let html = RunReport(results: results).html()
        let m = results.metrics
        for metric in [m.averageAccuracy, m.forgetting, m.backwardTransfer, m.forwardTransfer, m.learningAccuracy] {
            #expect(html.contains(NumberFormat.percent(try #require(metric), decimals: 2)))
        }
        for name in ["ACC", "Forgetting", "BWT", "FWT", "Learning accuracy"] { #expect(html.contains(name)) }
    }

    @Test func theConfigurationTimeAndMemoryAppear() {
        let html = RunReport(results: results).html()
        for text in ["hyperparameters.mas.lambda", "training.lr", "permuted-mnist", "13.25", "3.65 MiB", "478,410"] {
            #expect(html.contains(text), "\(text)")
        }
    }

    @Test func thePageIsSelfContained() {
        let html = RunReport(results: results).html()
        #expect(!html.contains("http://") || !html.replacingOccurrences(of: "http://www.w3.org/2000/svg", with: "").contains("http://"))
        #expect(!html.contains("https://"))
        #expect(!html.contains("<script"))
        #expect(!html.contains("<link"))
    }

    @Test func thePageParsesAsXML() {
        let parsed = parseXML(RunReport(results: results).html())
        #expect(parsed.ok, "\(parsed.error ?? "")")
    }

    @Test func taskAwareAndTaskAgnosticAccuracyAppearSideBySide() throws {
        var withTAg = results
        var record = TaskAgnosticRecord(rule: "top-two-lowest-entropy")
        record.accuracy = [[0.97], [0.61, 0.66], [0.402, 0.513, 0.724]]
        record.taskPrediction = [[1], [0.7, 0.72], [0.45, 0.55, 0.8]]
        withTAg.taskAgnostic = [TaskAgnosticSummary(record)]
        let summary = try #require(withTAg.taskAgnostic?.first)
        #expect(abs(summary.averageAccuracy - 0.546333) < 1e-5)
        #expect(abs(summary.forgetting - ((0.97 - 0.402) + (0.66 - 0.513)) / 2) < 1e-6, "stored as Float")
        let html = RunReport(results: withTAg).html()
        for text in ["Task-aware and task-agnostic accuracy", "TAw (task given)", "TAg (top-two-lowest-entropy)",
                     NumberFormat.percent(summary.averageAccuracy, decimals: 2), NumberFormat.percent(0.6, decimals: 2),
                     ">72.4<"] {
            #expect(html.contains(text), "\(text)")
        }
        #expect(parseXML(html).ok)
        #expect(!RunReport(results: results).html().contains("task-agnostic"), "no TAg section without TAg results")
    }

    @Test func theSameResultsGiveTheSameBytes() {
        #expect(RunReport(results: results).html() == RunReport(results: results).html())
    }

    @Test func writingForARunDirectoryCreatesReportHTML() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("engram-report-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try results.jsonData().write(to: dir.appendingPathComponent("results.json"))
        try "strategy: mas\n".write(to: dir.appendingPathComponent("config.yaml"), atomically: true, encoding: .utf8)
        let url = try RunReport.write(forRunIn: dir)
        #expect(url.lastPathComponent == "report.html")
        let html = try String(contentsOf: url, encoding: .utf8)
        #expect(html.contains("strategy: mas"))
        #expect(html.contains(dir.path))
    }
}

@Suite struct RunDirectoryTests {
    func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("engram-report-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func aMissingResultsFileIsNamedInTheError() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let error = #expect(throws: ReportError.self) { try RunDirectory.loadResults(from: dir) }
        #expect(error?.description.contains(dir.appendingPathComponent("results.json").path) == true)
    }

    @Test func anUnreadableResultsFileIsNamedInTheError() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data("{\"benchmark\": 1}".utf8).write(to: dir.appendingPathComponent("results.json"))
        let error = #expect(throws: ReportError.self) { try RunDirectory.loadResults(from: dir) }
        #expect(error?.description.contains("results.json is not a valid Engram results file") == true)
    }

    @Test func aDirectoryOfRunsExpandsToItsRunsInOrder() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in ["b-seed1", "a-seed0"] {
            let run = dir.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
            try makeResults(rows: rows(final: 0.5)).jsonData().write(to: run.appendingPathComponent("results.json"))
        }
        let runs = try RunDirectory.expand([dir])
        #expect(runs.map(\.lastPathComponent) == ["a-seed0", "b-seed1"])
    }

    @Test("a results.json of the old layout (camelCase matrix and metrics, no schema_version) is still read")
    func anOldLayoutResultsFileIsRead() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let old = """
            {"benchmark": "split-mnist", "scenario": "task-il", "strategy": "finetune", "seed": 1,
             "configuration": {"benchmark": "split-mnist", "scenario": "task", "tasks": 2, "strategy": "finetune"},
             "matrix": {"taskCount": 2, "values": [[0.99, 0.5], [0.7, 0.98]], "randomBaseline": [0.5, 0.5]},
             "metrics": {"averageAccuracy": 0.84, "forgetting": 0.29},
             "seconds_per_task": [1.5, 2], "strategy_memory_bytes": [0, 0], "parameter_count": 1000,
             "task_agnostic": [{"rule": "max-logit", "accuracy": [[0.99], [0.6, 0.9]], "task_prediction": [[1], [0.6, 0.9]],
                                "average_accuracy": 0.75, "forgetting": 0.39, "average_task_prediction": 0.75}]}
            """
        try Data(old.utf8).write(to: dir.appendingPathComponent("results.json"))
        let results = try RunDirectory.loadResults(from: dir)
        #expect(results.matrix.values == [[0.99, 0.5], [0.7, 0.98]])
        #expect(abs(results.metrics.averageAccuracy! - 0.84) < 1e-12 && results.headlineLabel == "TAw")
        #expect(abs(results.taskAgnosticMetrics!.averageAccuracy! - 0.75) < 1e-12)
        let html = RunReport(results: results).html()
        #expect(html.contains("Headline figures are task-aware (TAw)") && parseXML(html).ok)
    }

    @Test("a schema-2 results.json with a task-agnostic headline is read and labelled as such in the report")
    func aSchemaTwoTaskAgnosticHeadlineIsLabelled() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var results = try makeResults(strategy: "mind", rows: [[0.99, 0.5], [0.97, 0.98]])
        var record = TaskAgnosticRecord(rule: "top-two-lowest-entropy")
        record.accuracy = [[0.99], [0.5, 0.7]]
        record.taskPrediction = [[1], [0.6, 0.8]]
        results.taskAgnostic = [TaskAgnosticSummary(record)]
        try results.jsonData().write(to: dir.appendingPathComponent("results.json"))
        let read = try RunDirectory.loadResults(from: dir)
        #expect(read.headlineIsTaskAgnostic && abs(read.metrics.averageAccuracy! - 0.6) < 1e-6)
        #expect(abs(read.taskAwareMetrics!.averageAccuracy! - 0.975) < 1e-6)
        let html = RunReport(results: read).html()
        #expect(html.contains("Headline figures are task-agnostic, TAg (top-two-lowest-entropy)"))
        #expect(html.contains("Accuracy matrix, TAg (top-two-lowest-entropy)") && parseXML(html).ok)
    }

    @Test func aDirectoryWithoutRunsIsAnErrorNamingIt() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let error = #expect(throws: ReportError.self) { try RunDirectory.expand([dir]) }
        #expect(error?.description.contains(dir.path) == true)
    }
}

@Suite struct MeanStdTests {
    @Test func theStandardDeviationUsesTheSampleDivisor() throws {
        let s = try #require(MeanStd([0.8, 0.9, 1.0]))
        #expect(abs(s.mean - 0.9) < 1e-12)
        #expect(abs(s.std! - 0.1) < 1e-12)
        #expect(s.count == 3)
    }

    @Test func oneValueHasZeroSpreadAndNoValuesNoStatistics() {
        #expect(MeanStd([0.5]) != nil && MeanStd([0.5])?.std == nil)
        #expect(MeanStd([]) == nil)
    }
}

@Suite struct ComparisonReportTests {
    func strategiesTimesSeeds() throws -> [RunResults] {
        [try makeResults(strategy: "mas", seed: 1, rows: rows(final: 0.9)),
         try makeResults(strategy: "finetune", seed: 0, rows: rows(final: 0.4)),
         try makeResults(strategy: "mas", seed: 0, rows: rows(final: 0.8)),
         try makeResults(strategy: "finetune", seed: 1, rows: rows(final: 0.6))]
    }

    @Test func runsAreGroupedByStrategyInOrderOfFirstAppearance() throws {
        let report = ComparisonReport(runs: try strategiesTimesSeeds())
        #expect(report.groups.map(\.label) == ["mas", "finetune"])
        #expect(report.groups.map(\.seeds) == [[0, 1], [0, 1]])
    }

    @Test func eachGroupHasTheMeanAndSampleStdOverSeeds() throws {
        let report = ComparisonReport(runs: try strategiesTimesSeeds())
        let mas = try #require(report.groups[0].statistic(\.averageAccuracy))
        #expect(abs(mas.mean - 0.85) < 1e-12)
        #expect(abs(try #require(mas.std) - 0.05 * 2.0.squareRoot()) < 1e-12)
        let finetune = try #require(report.groups[1].statistic(\.averageAccuracy))
        #expect(abs(finetune.mean - 0.5) < 1e-12)
        #expect(abs(try #require(finetune.std) - 0.1 * 2.0.squareRoot()) < 1e-12)
    }

    @Test func theSummaryTableShowsMeanPlusMinusStd() throws {
        let html = ComparisonReport(runs: try strategiesTimesSeeds()).html()
        #expect(html.contains("85.00 ± 7.07"))
        #expect(html.contains("50.00 ± 14.14"))
        #expect(parseXML(html).ok)
    }

    @Test func differentHyperparametersMakeDifferentGroupsLabelledByThem() throws {
        var runs: [RunResults] = []
        for (k, lambda) in [Float(0.1), 1, 10, 100].enumerated() {
            for seed in [UInt64(0), 1] { runs.append(try makeResults(strategy: "mas", seed: seed, lambda: lambda, rows: rows(final: 0.5 + 0.1 * Double(k)))) }
        }
        runs.append(try makeResults(strategy: "finetune", seed: 0, rows: rows(final: 0.3)))
        let report = ComparisonReport(runs: runs)
        #expect(report.groups.map(\.label) == ["mas (λ=0.1)", "mas (λ=1)", "mas (λ=10)", "mas (λ=100)", "finetune"])
        #expect(report.groups[2].settings == ["λ": "10"])
        let html = report.html()
        #expect(html.contains("ACC vs λ"))
        #expect(html.contains("λ (log scale)"))
        #expect(html.contains("forgetting vs λ"))
    }

    @Test func theDefaultLambdaCountsAsItsValue() throws {
        let report = ComparisonReport(runs: [try makeResults(strategy: "mas", lambda: nil, rows: rows(final: 0.5)),
                                             try makeResults(strategy: "mas", lambda: 1, rows: rows(final: 0.6))])
        #expect(report.groups.count == 1)
    }

    @Test func noSensitivityPlotWithoutASweep() throws {
        #expect(!ComparisonReport(runs: try strategiesTimesSeeds()).html().contains(" vs λ"))
    }

    @Test func theSameRunsGiveTheSameBytes() throws {
        let runs = try strategiesTimesSeeds()
        #expect(ComparisonReport(runs: runs).html() == ComparisonReport(runs: runs).html())
    }

    @Test("ACC is plotted against the memory held, one line per strategy through its memory sizes, sorted by bytes")
    func accuracyAgainstMemoryHeld() throws {
        let runs = [try makeResults(strategy: "mas", lambda: 10, rows: rows(final: 0.9), memory: [0, 0, 4_000_000]),
                    try makeResults(strategy: "mas", lambda: 1, rows: rows(final: 0.7), memory: [0, 0, 160_000]),
                    try makeResults(strategy: "ewc", rows: rows(final: 0.5), memory: [0, 0, 2_000_000]),
                    try makeResults(strategy: "finetune", rows: rows(final: 0.2), memory: [0, 0, 0])]
        let chart = try #require(ComparisonReport(runs: runs).memoryChart())
        #expect(chart.series.map(\.name) == ["mas", "ewc"], "finetune holds nothing: not on a log axis")
        #expect(chart.series[0].points.map(\.x) == [160_000, 4_000_000])
        #expect(zip(chart.series[0].points.map(\.y), [0.7, 0.9]).allSatisfy { abs($0 - $1) < 1e-12 })
        #expect(ComparisonReport(runs: runs).html().contains("ACC against memory held"))
        #expect(ComparisonReport(runs: Array(runs.suffix(2))).memoryChart() == nil, "one method holding memory: no chart")
    }
}
