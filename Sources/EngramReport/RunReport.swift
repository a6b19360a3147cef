import EngramTensor
import EngramNN
import EngramData
import EngramCL
import Foundation
import Plot

/// The report of one run: configuration, metrics, the accuracy matrix as a heatmap, per-task
/// accuracy over the stream, and training time and strategy memory per task — one self-contained
/// HTML page (inline SVG, no network).
///
/// ```swift
/// let report = try RunReport(directory: URL(fileURLWithPath: "runs/latest"))
/// try report.write(to: URL(fileURLWithPath: "runs/latest/report.html"))
/// ```
public struct RunReport: Sendable {
    /// The run's results.
    public var results: RunResults
    /// The page's heading.
    public var title: String
    /// The run directory shown under the title, if known.
    public var source: String?
    /// The text of `config.yaml`, shown verbatim under the configuration table if given.
    public var configurationText: String?
    /// Interpolations between checkpoints of the run (`engram analyze interpolate`), shown as the loss landscape.
    public var interpolations: [Interpolation] = []

    /// A report of `results`; the title defaults to "strategy on benchmark (seed s)".
    public init(results: RunResults, title: String? = nil, source: String? = nil, configurationText: String? = nil) {
        self.results = results
        self.title = title ?? "\(results.strategy) on \(results.benchmark) (seed \(results.seed))"
        self.source = source
        self.configurationText = configurationText
    }

    /// The report of the run in `directory` (its `results.json`, and `config.yaml` if present).
    /// - Throws: `ReportError` naming the path when `results.json` is missing or unreadable.
    public init(directory: URL) throws {
        self.init(results: try RunDirectory.loadResults(from: directory), source: directory.path,
                  configurationText: RunDirectory.configurationText(in: directory))
        interpolations = InterpolationReport.load(fromRunIn: directory)
    }

    /// Writes the report of the run in `directory` to `directory/report.html`; returns its URL.
    @discardableResult
    public static func write(forRunIn directory: URL) throws -> URL {
        let url = directory.appendingPathComponent(RunDirectory.reportName)
        try RunReport(directory: directory).write(to: url)
        return url
    }

    /// Writes the page to `url` (atomically).
    public func write(to url: URL) throws { try ReportPage.write(html(), to: url) }

    /// The complete HTML page.
    public func html() -> String {
        let r = results
        let c = r.configuration
        var subtitle = "\(r.scenario.rawValue) · \(r.matrix.taskCount) tasks · model \(c.model)"
        if c.model == "mlp" { subtitle += " \(c.hidden.map(String.init).joined(separator: "-"))" }
        subtitle += " · \(formatCount(r.parameterCount)) parameters"
        var body: [Node<HTML.BodyContext>] = [.h1(.text(title)), .p(.class("subtitle"), .text(subtitle))]
        if let source { body.append(.p(.class("note"), .text("Run directory: \(source)"))) }

        body.append(.h2("Metrics"))
        body.append(metricsTable())
        if let label = r.headlineLabel {
            body.append(.p(.class("note"), .text(r.headlineIsTaskAgnostic
                ? "Headline figures are task-agnostic, \(label): the \(r.scenario.rawValue) scenario does not give the task at "
                  + "test time. Task-aware figures (the task given) are listed separately below."
                : "Headline figures are task-aware (TAw): the \(r.scenario.rawValue) scenario gives the task at test time. "
                  + "Task-agnostic figures are listed below.")))
        }
        body.append(.p(.class("note"), .text("""
            ACC: mean final accuracy over all tasks. Forgetting: mean drop from the best accuracy on a task \
            (since it was learned) to the final one, over all but the last task. BWT: mean change from just-learned \
            to final accuracy (negative = forgetting). FWT: accuracy on a task just before training it, minus the \
            untrained model's. Learning accuracy: mean accuracy on each task right after learning it.
            """)))

        if let tag = r.taskAgnostic, !tag.isEmpty {
            body.append(.h2("Task-aware and task-agnostic accuracy"))
            body.append(taskAgnosticTable(tag))
            body.append(.p(.class("note"), .text("""
                TAw: the task of each test sample is given\(r.headlineIsTaskAgnostic ? "" : " (the accuracy matrix below)"). \
                TAg: it is not — \
                \(tag.map(\.rule).joined(separator: ", ")) picks the task among those seen so far; a sample counts \
                when both its task and its label are right. Task prediction: samples assigned to their own task.
                """)))
            body.append(.div(.class("charts"), ReportPage.figure(svg: taskAgnosticHeatmap(tag[0]).svg(),
                caption: "Row i: task-agnostic accuracy on the tasks seen after training task i (\(tag[0].rule)).")))
        }

        body.append(.h2(r.headlineLabel.map { "Accuracy matrix, \($0)" } ?? "Accuracy matrix"))
        body.append(.div(.class("charts"),
            ReportPage.figure(svg: heatmap().svg(), caption: "Row i: test accuracy on every task after training task i. "
                + "Above the diagonal: tasks not trained yet (transfer); below: what is remembered."),
            ReportPage.figure(svg: streamChart().svg(), caption: "Accuracy on each task across the stream; dashed before the task is trained. "
                + "Black: mean accuracy over the tasks seen so far.")
        ))

        if let phase = r.consolidation {
            body.append(.h2("Accuracy around each \(phase.phase) phase"))
            body.append(.div(.class("charts"), ReportPage.figure(svg: consolidationChart(phase).svg(),
                caption: "Accuracy on each task just after training task i (T i) and after the \(phase.phase) that follows it "
                    + "(\(phase.phase.prefix(1).uppercased()) i): the phase is an event in the stream. Black: mean over the tasks seen.")))
            body.append(ReportPage.table(header: ["after task", "mean before", "mean after", "change", "seconds"],
                rows: phase.accuracyBefore.indices.map { i -> [String] in
                    let before: Double = ConsolidationSummary.seenMean(phase.accuracyBefore[i], afterTask: i)
                    let after: Double = ConsolidationSummary.seenMean(phase.accuracyAfter[i], afterTask: i)
                    let seconds: String = i < phase.seconds.count ? String(format: "%.1f", phase.seconds[i]) : "–"
                    return ["\(i + 1)", NumberFormat.percent(before, decimals: 2), NumberFormat.percent(after, decimals: 2),
                            NumberFormat.percent(phase.averageChange[i], decimals: 2), seconds]
                }))
        }

        for interpolation in interpolations {
            body.append(.h2("Loss landscape: from \(URL(fileURLWithPath: interpolation.from).lastPathComponent) to \(URL(fileURLWithPath: interpolation.to).lastPathComponent)"))
            body.append(contentsOf: InterpolationReport(interpolation).nodes())
        }

        body.append(.h2("Cost per task"))
        body.append(.div(.class("charts"),
            ReportPage.figure(svg: timeChart().svg()),
            ReportPage.figure(svg: memoryChart().svg())
        ))
        body.append(costTable())

        body.append(.h2("Configuration"))
        body.append(ReportPage.table(header: ["setting", "value"],
                                     rows: effectiveConfiguration(c).map { [$0.key, $0.isDefault ? "\($0.value) (default)" : $0.value] }))
        if let configurationText {
            body.append(.element(named: "details", nodes: [
                .element(named: "summary", text: RunDirectory.configurationName),
                .element(named: "pre", text: configurationText),
            ]))
        }
        return ReportPage.document(title: "Engram report: \(title)", body: body)
    }

    // MARK: Parts (internal so the comparison report can reuse them)

    func metricsTable() -> Node<HTML.BodyContext> {
        let m = results.metrics
        let basis = results.headlineLabel.map { ", \($0)" } ?? ""
        let rows: [(String, Double?)] = [("ACC (average accuracy\(basis))", m.averageAccuracy), ("Forgetting", m.forgetting),
                                         ("BWT (backward transfer)", m.backwardTransfer), ("FWT (forward transfer)", m.forwardTransfer),
                                         ("Learning accuracy", m.learningAccuracy)]
        return ReportPage.table(header: ["metric", "value (%)"],
                                rows: rows.map { [$0.0, $0.1.map { NumberFormat.percent($0, decimals: 2) } ?? "–"] },
                                numericColumns: [1])
    }

    /// TAw next to every TAg rule: final ACC, forgetting and task-prediction accuracy.
    func taskAgnosticTable(_ tag: [TaskAgnosticSummary]) -> Node<HTML.BodyContext> {
        func percent(_ x: Double?) -> String { x.map { NumberFormat.percent($0, decimals: 2) } ?? "–" }
        let m = results.taskAwareMetrics ?? results.metrics
        var rows = [["TAw (task given)", percent(m.averageAccuracy), percent(m.forgetting), "–"]]
        rows += tag.map { ["TAg (\($0.rule))", percent($0.averageAccuracy), percent($0.forgetting), percent($0.averageTaskPrediction)] }
        return ReportPage.table(header: ["inference", "ACC (%)", "forgetting (%)", "task prediction (%)"], rows: rows,
                                numericColumns: [1, 2, 3])
    }

    /// The lower-triangular task-agnostic accuracy matrix of one rule.
    func taskAgnosticHeatmap(_ tag: TaskAgnosticSummary) -> Heatmap {
        let t = tag.accuracy.count
        let values: [[Double?]] = tag.accuracy.map { row in (0..<t).map { $0 < row.count ? row[$0] : nil } }
        return Heatmap(title: "Task-agnostic accuracy (%)", rowLabels: (1...t).map { "after task \($0)" },
                       columnLabels: (1...t).map { "task \($0)" }, values: values,
                       range: 0...1, format: .percent(decimals: 1), rowAxisTitle: "training stage",
                       columnAxisTitle: "accuracy on task", legendTitle: "accuracy (%)")
    }

    /// Rows "after task i", columns "task j" (1-based), values R[i][j].
    func heatmap() -> Heatmap {
        let t = results.matrix.taskCount
        return Heatmap(title: "Accuracy matrix R (%)" + (results.headlineLabel.map { ", \($0)" } ?? ""), rowLabels: (1...t).map { "after task \($0)" },
                       columnLabels: (1...t).map { "task \($0)" }, values: results.matrix.values,
                       range: 0...1, format: .percent(decimals: 1), rowAxisTitle: "training stage",
                       columnAxisTitle: "accuracy on task", legendTitle: "accuracy (%)")
    }

    /// One line per task j over the stages i (solid for i ≥ j, dashed before), plus the running mean.
    func streamChart() -> LineChart {
        let matrix = results.matrix
        let t = matrix.taskCount
        var series: [LineChart.Series] = []
        for j in 0..<t {
            let color = ChartColors.series(j)
            let before = (0...j).compactMap { i in matrix.values[i][j].map { LineChart.Point(x: Double(i + 1), y: $0) } }
            let after = (j..<t).compactMap { i in matrix.values[i][j].map { LineChart.Point(x: Double(i + 1), y: $0) } }
            if before.count > 1 {
                series.append(.init(name: "task \(j + 1) (before training)", points: before, color: color, dashed: true,
                                    inLegend: false, lineWidth: 1.5, markers: false))
            }
            series.append(.init(name: "task \(j + 1)", points: after, color: color))
        }
        let mean = (0..<t).compactMap { i in matrix.averageAccuracy(afterTask: i).map { LineChart.Point(x: Double(i + 1), y: $0) } }
        series.append(.init(name: "mean of seen tasks", points: mean, color: "#000000", lineWidth: 3))
        return LineChart(title: "Per-task accuracy over the stream", xLabel: "after training task", yLabel: "test accuracy (%)",
                         series: series, xTicks: (1...t).map { AxisTick(value: Double($0), label: "\($0)") },
                         yRange: 0...1, yFormat: .percent(decimals: 0), plotWidth: max(320, min(560, Double(t) * 70)))
    }

    /// One line per task through the events of the stream — trained (T i), then consolidated (S i) — from the task's
    /// own training on, plus the mean over the tasks seen.
    func consolidationChart(_ phase: ConsolidationSummary) -> LineChart {
        let t = phase.accuracyBefore.count
        let letter = phase.phase.prefix(1).uppercased()
        /// The two events of stage i: trained (x = 2i + 1) and consolidated (x = 2i + 2).
        func pair(_ i: Int, _ before: Double, _ after: Double) -> [LineChart.Point] {
            [LineChart.Point(x: Double(2 * i + 1), y: before), LineChart.Point(x: Double(2 * i + 2), y: after)]
        }
        var series: [LineChart.Series] = []
        for j in 0..<t {
            var points: [LineChart.Point] = []
            for i in j..<t { points += pair(i, phase.accuracyBefore[i][j], phase.accuracyAfter[i][j]) }
            series.append(.init(name: "task \(j + 1)", points: points, color: ChartColors.series(j)))
        }
        var mean: [LineChart.Point] = []
        for i in 0..<t {
            mean += pair(i, ConsolidationSummary.seenMean(phase.accuracyBefore[i], afterTask: i),
                         ConsolidationSummary.seenMean(phase.accuracyAfter[i], afterTask: i))
        }
        series.append(.init(name: "mean of seen tasks", points: mean, color: "#000000", lineWidth: 3))
        var ticks: [AxisTick] = []
        for i in 0..<t {
            ticks.append(AxisTick(value: Double(2 * i + 1), label: "T\(i + 1)"))
            ticks.append(AxisTick(value: Double(2 * i + 2), label: "\(letter)\(i + 1)"))
        }
        let width = max(360, min(640, Double(t) * 110))
        return LineChart(title: "Per-task accuracy before and after each \(phase.phase)", xLabel: "event", yLabel: "test accuracy (%)",
                         series: series, xTicks: ticks, yRange: 0...1, yFormat: .percent(decimals: 0), plotWidth: width)
    }

    func timeChart() -> BarChart {
        let t = results.secondsPerTask.count
        return BarChart(title: "Training time per task", categories: (0..<t).map { "task \($0 + 1)" },
                        series: [.init(name: "seconds", values: results.secondsPerTask, color: ChartColors.series(0))],
                        yLabel: "seconds", format: .compact, plotHeight: 200)
    }

    func memoryChart() -> BarChart {
        let t = results.strategyMemoryBytes.count
        return BarChart(title: "Strategy memory after each task", categories: (0..<t).map { "task \($0 + 1)" },
                        series: [.init(name: "bytes", values: results.strategyMemoryBytes.map(Double.init), color: ChartColors.series(2))],
                        yLabel: "bytes held by the strategy", format: .bytes, plotHeight: 200)
    }

    func costTable() -> Node<HTML.BodyContext> {
        let t = max(results.secondsPerTask.count, results.strategyMemoryBytes.count)
        let rates = results.samplesPerSecondPerTask
        var rows: [[String]] = (0..<t).map { i in
            ["task \(i + 1)",
             i < results.secondsPerTask.count ? NumberFormat.fixed(results.secondsPerTask[i], decimals: 2) : "–",
             rates.map { i < $0.count ? NumberFormat.fixed($0[i], decimals: 0) : "–" } ?? "–",
             i < results.strategyMemoryBytes.count ? NumberFormat.bytes(Double(results.strategyMemoryBytes[i])) : "–"]
        }
        rows.append(["total", NumberFormat.fixed(results.secondsPerTask.reduce(0, +), decimals: 2), "",
                     results.strategyMemoryBytes.last.map { "\(NumberFormat.bytes(Double($0))) (final)" } ?? "–"])
        if let wall = results.wallSeconds {
            rows.append(["whole run (wall clock)", NumberFormat.fixed(wall, decimals: 2), "",
                         results.peakRSSBytes.map { "\(NumberFormat.bytes(Double($0))) (peak RSS)" } ?? "–"])
        }
        return ReportPage.table(header: ["", "training seconds", "training samples/s", "memory"], rows: rows,
                                numericColumns: [1, 2, 3])
    }
}

/// `1234567` → `1,234,567`.
func formatCount(_ n: Int) -> String {
    let digits = String(abs(n))
    var out = ""
    for (k, ch) in digits.enumerated() {
        if k > 0, (digits.count - k) % 3 == 0 { out.append(",") }
        out.append(ch)
    }
    return (n < 0 ? "-" : "") + out
}
