import EngramTensor
import EngramNN
import EngramData
import EngramCL
import Foundation
import Plot

/// Runs that differ only in their seed: one method (a strategy with its hyper-parameters).
public struct RunGroup: Sendable {
    /// The method's name in charts and tables: the strategy, plus the settings that tell it apart
    /// from the other groups (`mas (λ=10)`).
    public var label: String
    /// The strategy name.
    public var strategy: String
    /// The settings that vary between groups, by short name (`λ`, `lr`, …) with their values as text.
    public var settings: [String: String]
    /// The runs, sorted by seed.
    public var runs: [RunResults]
    /// Positions of `runs` in the report's input.
    var indices: [Int] = []

    /// The seeds of the runs.
    public var seeds: [UInt64] { runs.map(\.seed) }

    /// Mean ± std of a metric over the runs that define it (`nil` if none does).
    public func statistic(_ metric: KeyPath<ContinualMetrics, Double?>) -> MeanStd? {
        MeanStd(runs.compactMap { $0.metrics[keyPath: metric] })
    }

    /// Mean ± std over the runs of the mean accuracy on the tasks seen after each training stage.
    public func averageAccuracyOverStream() -> [MeanStd?] {
        let t = runs.map(\.matrix.taskCount).min() ?? 0
        return (0..<t).map { i in MeanStd(runs.compactMap { $0.matrix.averageAccuracy(afterTask: i) }) }
    }

    /// The element-wise mean accuracy matrix over the runs (entries missing in any run are `nil`).
    public func meanMatrix() -> [[Double?]] {
        let t = runs.map(\.matrix.taskCount).min() ?? 0
        return (0..<t).map { i in
            (0..<t).map { j in
                let v = runs.map { $0.matrix.values[i][j] }
                return v.contains(where: { $0 == nil }) ? nil : MeanStd(v.compactMap { $0 })?.mean
            }
        }
    }
}

/// The report of several runs, e.g. strategies × seeds or a hyper-parameter sweep: runs are grouped
/// by method (everything but the seed equal), and the page shows per-method bars of ACC and forgetting
/// (mean ± std over seeds), a summary table, the mean accuracy over the stream, sensitivity curves
/// (metric against λ, c, ξ, γ or lr, one line per strategy) when a hyper-parameter varies, and every run.
///
/// ```swift
/// let report = ComparisonReport(runs: results)           // [RunResults]
/// try report.write(to: URL(fileURLWithPath: "runs/compare/report.html"))
/// ```
public struct ComparisonReport: Sendable {
    /// The runs, as given.
    public var runs: [RunResults]
    /// Where each run came from (parallel to `runs`), shown in the table of runs; may be empty.
    public var sources: [String]
    /// The page's heading.
    public var title: String
    /// The runs grouped by method, in order of first appearance of each strategy, then by setting.
    public let groups: [RunGroup]
    /// Points of a sweep that failed (name and reason), listed under the runs so the page shows what is missing.
    public var failed: [(name: String, reason: String)] = []

    /// The numeric options a sensitivity plot can be drawn against, by option key (`lambda`, `c`, …, from the
    /// strategy registry), and `training.lr`.
    public static var sweepableKeys: [String] {
        var keys: [String] = []
        for d in StrategyRegistry.all {
            for h in d.hyperparameters where !keys.contains(h.key) {
                switch h.kind {
                case .real, .integer: keys.append(h.key)
                default: break
                }
            }
        }
        return keys + ["training.lr"]
    }

    /// The configuration key of the option `key` (from ``sweepableKeys``) for `strategy`: the section of the
    /// first of its parts that has the option; nil when none has it.
    static func configurationKey(_ key: String, for strategy: String) -> String? {
        if key.contains(".") { return key }
        let owner = strategy.split(separator: "+").map(String.init).first { StrategyRegistry.descriptor(named: $0)?.hyperparameter(key) != nil }
        return owner.map { "hyperparameters.\($0).\(key)" }
    }

    /// A report of `runs`; `sources` (optional, one per run) names where each came from.
    public init(runs: [RunResults], title: String? = nil, sources: [String] = []) {
        self.runs = runs
        self.sources = sources.count == runs.count ? sources : []
        self.groups = Self.group(runs)
        let benchmarks = Array(Set(runs.map(\.benchmark))).sorted()
        let scenarios = Array(Set(runs.map(\.scenario.rawValue))).sorted()
        self.title = title ?? "Comparison of \(groups.count) method\(groups.count == 1 ? "" : "s") on "
            + "\(benchmarks.joined(separator: ", ")) (\(scenarios.joined(separator: ", ")))"
    }

    /// A report of the runs in `directories` (each holding a `results.json`).
    /// - Throws: `ReportError` naming the first path whose `results.json` is missing or unreadable.
    public init(directories: [URL], title: String? = nil) throws {
        let runs = try directories.map { try RunDirectory.loadResults(from: $0) }
        self.init(runs: runs, title: title, sources: directories.map(\.path))
    }

    /// Writes the page to `url` (atomically).
    public func write(to url: URL) throws { try ReportPage.write(html(), to: url) }

    /// The complete HTML page.
    public func html() -> String {
        let seedsPerGroup = Set(groups.map(\.runs.count))
        var subtitle = "\(runs.count) run\(runs.count == 1 ? "" : "s") in \(groups.count) group\(groups.count == 1 ? "" : "s")"
        if seedsPerGroup.count == 1, let n = seedsPerGroup.first { subtitle += ", \(n) seed\(n == 1 ? "" : "s") each" }
        subtitle += "; error bars and ± are the standard deviation over seeds."
        var body: [Node<HTML.BodyContext>] = [.h1(.text(title)), .p(.class("subtitle"), .text(subtitle))]
        guard !runs.isEmpty else { return ReportPage.document(title: "Engram report: \(title)", body: body + [.p("No runs.")]) }

        body.append(.h2("Methods"))
        var charts: [Node<HTML.BodyContext>] = [ReportPage.figure(svg: metricBars().svg())]
        if let stream = streamChart() { charts.append(ReportPage.figure(svg: stream.svg(), caption: "Mean accuracy over the tasks seen so far, mean ± std over seeds.")) }
        if let memory = memoryChart() {
            charts.append(ReportPage.figure(svg: memory.svg(), caption: "ACC against the memory each method holds besides the network "
                + "after the last task (samples, logits, old models, importance; log scale), mean ± std over seeds; one line per "
                + "strategy through its settings (e.g. its memory sizes). Methods that hold nothing are left out of the log axis."))
        }
        body.append(.div(.class("charts"), .group(charts)))
        body.append(summaryTable())

        let sensitivity = sensitivityCharts()
        if !sensitivity.isEmpty {
            body.append(.h2("Sensitivity"))
            body.append(.div(.class("charts"), .group(sensitivity.map { ReportPage.figure(svg: $0.svg()) })))
            body.append(.p(.class("note"), .text("One line per strategy whose hyper-parameter varies (mean ± std over seeds); "
                + "dashed: methods without that hyper-parameter, as a reference.")))
        }

        body.append(.h2("Mean accuracy matrices"))
        let heatmaps = groups.map { g in
            ReportPage.figure(svg: Heatmap(title: "\(g.label) (%)", rowLabels: (1...max(1, g.meanMatrix().count)).map { "after task \($0)" },
                                           columnLabels: (1...max(1, g.meanMatrix().count)).map { "task \($0)" }, values: g.meanMatrix(),
                                           rowAxisTitle: "training stage", columnAxisTitle: "accuracy on task",
                                           legendTitle: "accuracy (%)").svg())
        }
        if groups.count <= 4 {
            body.append(.div(.class("charts"), .group(heatmaps)))
        } else {
            body.append(.element(named: "details", nodes: [
                .element(named: "summary", text: "Show the \(groups.count) mean accuracy matrices"),
                .div(.class("charts"), .group(heatmaps)),
            ]))
        }

        body.append(.h2("Runs"))
        body.append(runsTable())
        if !failed.isEmpty {
            body.append(.h2("Failed points"))
            body.append(ReportPage.table(header: ["point", "why it stopped"], rows: failed.map { [$0.name, $0.reason] }, numericColumns: []))
        }
        return ReportPage.document(title: "Engram report: \(title)", body: body)
    }

    // MARK: Grouping

    static func effectiveSettings(_ run: RunResults) -> [(key: String, value: String)] {
        effectiveConfiguration(run.configuration).filter { $0.key != "training.seed" }.map { (key: $0.key, value: $0.value) }
    }

    static func group(_ runs: [RunResults]) -> [RunGroup] {
        var keys: [String] = []
        var members: [String: [(Int, RunResults)]] = [:]
        var settings: [String: [String: String]] = [:]
        for (index, run) in runs.enumerated() {
            let s = effectiveSettings(run)
            let key = s.map { "\($0.key)=\($0.value)" }.joined(separator: "\n")
            if members[key] == nil { keys.append(key); settings[key] = Dictionary(uniqueKeysWithValues: s.map { ($0.key, $0.value) }) }
            members[key, default: []].append((index, run))
        }
        // Settings that tell groups apart (the strategy is the label's head): hyper-parameters that vary
        // among the groups of one strategy, and other settings (benchmark, lr, …) that vary at all.
        let allKeys = Set(settings.values.flatMap(\.keys)).subtracting(["strategy"])
        func varies(_ k: String, among keys: [String]) -> Bool { Set(keys.map { settings[$0]![k] ?? "" }).count > 1 }
        let globallyVarying = allKeys.filter { !$0.hasPrefix("hyperparameters.") && varies($0, among: keys) }
        let strategyOrder = runs.map(\.strategy).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        var groups: [RunGroup] = keys.map { key in
            let s = settings[key]!
            let strategy = s["strategy"] ?? ""
            let siblings = keys.filter { settings[$0]!["strategy"] == strategy }
            let varying = globallyVarying.union(allKeys.filter { $0.hasPrefix("hyperparameters.") && varies($0, among: siblings) }).sorted()
            var shown: [String: String] = [:]
            var parts: [String] = []
            for k in varying {
                guard let v = s[k], !isIrrelevant(k, for: strategy) else { continue }
                shown[shortName(ofConfigurationKey: k, strategy: strategy)] = v
                parts.append("\(shortName(ofConfigurationKey: k, strategy: strategy))=\(v)")
            }
            let label = parts.isEmpty ? strategy : "\(strategy) (\(parts.joined(separator: ", ")))"
            let sorted = members[key]!.sorted { ($0.1.seed, $0.0) < ($1.1.seed, $1.0) }
            return RunGroup(label: label, strategy: strategy, settings: shown, runs: sorted.map(\.1), indices: sorted.map(\.0))
        }
        groups.sort { a, b in
            let ia = strategyOrder.firstIndex(of: a.strategy) ?? 0, ib = strategyOrder.firstIndex(of: b.strategy) ?? 0
            if ia != ib { return ia < ib }
            for k in a.settings.keys.sorted() where a.settings[k] != b.settings[k] {
                if let x = Double(a.settings[k] ?? ""), let y = Double(b.settings[k] ?? "") { return x < y }
                return (a.settings[k] ?? "") < (b.settings[k] ?? "")
            }
            return a.label < b.label
        }
        // Two groups could still share a label (settings of an irrelevant key differ): number them.
        var seen: [String: Int] = [:]
        for k in groups.indices {
            seen[groups[k].label, default: 0] += 1
            if seen[groups[k].label]! > 1 { groups[k].label += " #\(seen[groups[k].label]!)" }
        }
        return groups
    }

    /// Whether a setting has no effect on `strategy` (so labels need not show it): an option in the section of a
    /// strategy that is not part of it.
    static func isIrrelevant(_ key: String, for strategy: String) -> Bool {
        let components = key.split(separator: ".").map(String.init)
        guard components.count == 3, components[0] == "hyperparameters" else { return false }
        return !strategy.split(separator: "+").map(String.init).contains(components[1])
    }

    // MARK: Parts

    func metricBars() -> BarChart {
        func series(_ name: String, _ metric: KeyPath<ContinualMetrics, Double?>, _ color: String) -> BarChart.Series {
            let stats = groups.map { $0.statistic(metric) }
            return .init(name: name, values: stats.map { $0?.mean }, errors: stats.map { s in s?.std }, color: color)
        }
        return BarChart(title: "ACC and forgetting per method (%)", categories: groups.map(\.label),
                        series: [series("ACC", \.averageAccuracy, ChartColors.series(0)),
                                 series("forgetting", \.forgetting, ChartColors.series(3))],
                        yLabel: "%", format: .percent(decimals: 1), plotHeight: 260)
    }

    func streamChart() -> LineChart? {
        let counts = Set(runs.map(\.matrix.taskCount))
        guard counts.count == 1, let t = counts.first, t > 1 else { return nil }
        let series = groups.map { g in
            LineChart.Series(name: g.label, points: g.averageAccuracyOverStream().enumerated().compactMap { i, s in
                s.map { LineChart.Point(x: Double(i + 1), y: $0.mean, error: $0.std) }
            })
        }
        return LineChart(title: "Mean accuracy on seen tasks", xLabel: "after training task", yLabel: "accuracy (%)",
                         series: series, xTicks: (1...t).map { AxisTick(value: Double($0), label: "\($0)") },
                         yRange: 0...1, yFormat: .percent(decimals: 0), plotWidth: max(260, min(440, Double(t) * 52)), plotHeight: 260)
    }

    /// ACC against the bytes a method holds besides the network after the last task (`strategy_memory_bytes`,
    /// logarithmic axis), one line per strategy (and scenario, when the runs have several) through its groups sorted
    /// by memory; nil unless at least two groups hold memory.
    public func memoryChart() -> LineChart? {
        // Runs of several scenarios: one line per strategy and scenario.
        let scenarios = Set(runs.map(\.scenario))
        let held = groups.compactMap { g -> (strategy: String, bytes: Double, accuracy: MeanStd)? in
            guard let bytes = MeanStd(g.runs.compactMap { $0.strategyMemoryBytes.last.map(Double.init) })?.mean, bytes > 0,
                  let accuracy = g.statistic(\.averageAccuracy), let scenario = g.runs.first?.scenario else { return nil }
            return (scenarios.count > 1 ? "\(g.strategy) (\(scenario.rawValue))" : g.strategy, bytes, accuracy)
        }
        guard held.count >= 2 else { return nil }
        var strategies: [String] = []
        for h in held where !strategies.contains(h.strategy) { strategies.append(h.strategy) }
        let series = strategies.map { name in
            LineChart.Series(name: name, points: held.filter { $0.strategy == name }.sorted { $0.bytes < $1.bytes }.map {
                LineChart.Point(x: $0.bytes, y: $0.accuracy.mean, error: $0.accuracy.std)
            })
        }
        return LineChart(title: "ACC against memory held", xLabel: "memory held besides the network", yLabel: "ACC (%)",
                         series: series, xScale: .logarithmic, yRange: 0...1, yFormat: .percent(decimals: 0), xFormat: .bytes,
                         plotHeight: 260)
    }

    func summaryTable() -> Node<HTML.BodyContext> {
        let format = ValueFormat.percent(decimals: 2)
        let metrics: [KeyPath<ContinualMetrics, Double?>] = [\.averageAccuracy, \.forgetting, \.backwardTransfer, \.forwardTransfer, \.learningAccuracy]
        let withTAg = groups.contains { g in g.runs.contains { $0.taskAgnostic != nil } }
        let rows: [[String]] = groups.map { g in
            let seconds = MeanStd(g.runs.map { $0.secondsPerTask.reduce(0, +) })
            let memory = MeanStd(g.runs.compactMap { $0.strategyMemoryBytes.last.map(Double.init) })
            var row = [g.label, "\(g.runs.count)"] + metrics.map { g.statistic($0)?.formatted(format) ?? "–" }
            if withTAg {
                let tag = g.runs.compactMap { $0.taskAgnostic?.first }
                row += [g.runs.first?.headlineLabel ?? "–"]
                row += [MeanStd(g.runs.compactMap { $0.taskAwareMetrics?.averageAccuracy }),
                        MeanStd(tag.map(\.averageAccuracy)), MeanStd(tag.map(\.forgetting)), MeanStd(tag.map(\.averageTaskPrediction))]
                    .map { $0?.formatted(format) ?? "–" }
            }
            return row + [seconds?.formatted(.fixed(decimals: 1)) ?? "–", memory.map { NumberFormat.bytes($0.mean) } ?? "–"]
        }
        let tagHeader = withTAg ? ["ACC is", "TAw ACC (%)", "TAg ACC (%)", "TAg forgetting (%)", "task pred. (%)"] : []
        let header = ["method", "runs", "ACC (%)", "forgetting (%)", "BWT (%)", "FWT (%)", "learning acc. (%)"] + tagHeader
            + ["training s", "strategy memory"]
        return ReportPage.table(header: header, rows: rows, numericColumns: Set(1..<header.count))
    }

    /// Metric (ACC, forgetting) against each hyper-parameter that takes several values within a strategy.
    func sensitivityCharts() -> [LineChart] {
        var charts: [LineChart] = []
        for option in Self.sweepableKeys {
            let name = option.contains(".") ? shortName(ofConfigurationKey: option)
                : groups.lazy.compactMap { Self.configurationKey(option, for: $0.strategy) }.first.map { shortName(ofConfigurationKey: $0) } ?? option
            // Per strategy: value → runs.
            var byStrategy: [(strategy: String, points: [(Double, [RunResults])])] = []
            var references: [RunGroup] = []
            for strategy in groups.map(\.strategy).reduce(into: [String](), { if !$0.contains($1) { $0.append($1) } }) {
                var values: [Double: [RunResults]] = [:]
                for g in groups where g.strategy == strategy {
                    for run in g.runs {
                        guard let key = Self.configurationKey(option, for: strategy),
                              let text = Self.effectiveSettings(run).first(where: { $0.key == key })?.value, let v = Double(text) else { continue }
                        values[v, default: []].append(run)
                    }
                }
                if values.count > 1 {
                    byStrategy.append((strategy, values.keys.sorted().map { ($0, values[$0]!) }))
                } else {
                    references += groups.filter { $0.strategy == strategy }
                }
            }
            guard !byStrategy.isEmpty else { continue }
            let xs = byStrategy.flatMap { $0.points.map(\.0) }
            let lo = xs.min()!, hi = xs.max()!
            let logarithmic = lo > 0 && hi / lo >= 10
            for (metricName, metric) in [("ACC", \ContinualMetrics.averageAccuracy), ("forgetting", \ContinualMetrics.forgetting)] as [(String, KeyPath<ContinualMetrics, Double?>)] {
                var series: [LineChart.Series] = byStrategy.map { s in
                    LineChart.Series(name: s.strategy, points: s.points.compactMap { x, runs in
                        MeanStd(runs.compactMap { $0.metrics[keyPath: metric] }).map { LineChart.Point(x: x, y: $0.mean, error: $0.std) }
                    })
                }
                for (k, g) in references.enumerated() {
                    guard let s = g.statistic(metric) else { continue }
                    series.append(.init(name: g.label, points: [.init(x: lo, y: s.mean), .init(x: hi, y: s.mean)],
                                        color: ChartColors.series(byStrategy.count + k), dashed: true, lineWidth: 1.5, markers: false))
                }
                let ticks = logarithmic ? nil : xs.reduce(into: [Double]()) { if !$0.contains($1) { $0.append($1) } }.sorted().map { AxisTick(value: $0, label: NumberFormat.compact($0)) }
                charts.append(LineChart(title: "\(metricName) vs \(name)", xLabel: "\(name)\(logarithmic ? " (log scale)" : "")",
                                        yLabel: "\(metricName) (%)", series: series, xScale: logarithmic ? .logarithmic : .linear,
                                        xTicks: ticks, yRange: metricName == "ACC" ? 0...1 : nil, yFormat: .percent(decimals: 0),
                                        plotWidth: 340, plotHeight: 240))
            }
        }
        return charts
    }

    func runsTable() -> Node<HTML.BodyContext> {
        let format = ValueFormat.percent(decimals: 2)
        var rows: [[String]] = []
        for g in groups {
            for (run, index) in zip(g.runs, g.indices) {
                let accuracy = (run.metrics.averageAccuracy.map(format.string) ?? "–") + (run.headlineLabel.map { " \($0)" } ?? "")
                var row = [g.label, "\(run.seed)", accuracy,
                           run.metrics.forgetting.map(format.string) ?? "–", run.metrics.backwardTransfer.map(format.string) ?? "–",
                           NumberFormat.fixed(run.secondsPerTask.reduce(0, +), decimals: 1)]
                if !sources.isEmpty { row.append(sources[index]) }
                rows.append(row)
            }
        }
        return ReportPage.table(header: ["method", "seed", "ACC (%)", "forgetting (%)", "BWT (%)", "training s"] + (sources.isEmpty ? [] : ["directory"]),
                                rows: rows, numericColumns: [1, 2, 3, 4, 5])
    }
}
