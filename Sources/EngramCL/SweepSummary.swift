import EngramTensor
import EngramNN
import EngramData
import Foundation

/// Mean and sample standard deviation (n − 1 in the denominator) of a set of values.
public struct MeanStd: Sendable, Codable, Equatable {
    public var mean: Double
    /// Sample standard deviation; nil with fewer than two values.
    public var std: Double?
    /// How many values were summarized.
    public var count: Int

    /// The mean and sample standard deviation of `values`; nil when there are none.
    public init?(_ values: [Double]) {
        guard !values.isEmpty else { return nil }
        let n = Double(values.count)
        mean = values.reduce(0, +) / n
        count = values.count
        if values.count > 1 {
            let m = mean
            std = (values.reduce(0) { $0 + ($1 - m) * ($1 - m) } / (n - 1)).squareRoot()
        } else {
            std = nil
        }
    }

    /// `mean ± std` scaled by `scale` (100 for percentages), e.g. `97.12 ± 0.31`; just the mean for one value.
    public func formatted(scale: Double = 100, digits: Int = 2) -> String {
        let m = String(format: "%.\(digits)f", scale * mean)
        guard let std else { return m }
        return m + " ± " + String(format: "%.\(digits)f", scale * std)
    }
}

/// One row of a summary: the runs of one grid group (equal in everything but the seed) and their metrics.
public struct SummaryRow: Sendable, Codable, Equatable {
    /// The group's name (`mas__lambda=1`).
    public var group: String
    /// The group's grid values other than the seed, keyed by their dotted configuration key.
    public var parameters: [String: GridValue]
    public var strategy: String
    public var seeds: [UInt64]
    /// ACC, forgetting, BWT, FWT and learning accuracy (fractions in [0, 1], not percent) over the seeds.
    public var accuracy: MeanStd?
    public var forgetting: MeanStd?
    public var backwardTransfer: MeanStd?
    public var forwardTransfer: MeanStd?
    public var learningAccuracy: MeanStd?
    /// Mean training seconds per run.
    public var seconds: MeanStd?
    /// Bytes the strategy held at the end of the stream.
    public var memoryBytes: MeanStd?
    /// How the headline metrics above were measured when the runs have both task-aware and task-agnostic
    /// figures: `TAw` (task-incremental) or `TAg (rule)` (domain-/class-incremental); nil otherwise.
    public var headline: String?
    /// Task-aware (TAw) ACC, when the runs have task-agnostic figures too.
    public var taskAwareAccuracy: MeanStd?
    /// Task-agnostic (TAg) ACC, forgetting and task-prediction accuracy under the method's own rule
    /// (`taskAgnosticRule`), when the runs have them.
    public var taskAgnosticAccuracy: MeanStd?
    public var taskAgnosticForgetting: MeanStd?
    public var taskPrediction: MeanStd?
    public var taskAgnosticRule: String?

    enum CodingKeys: String, CodingKey {
        case group, parameters, strategy, seeds, forgetting, seconds
        case accuracy = "acc", backwardTransfer = "bwt", forwardTransfer = "fwt", learningAccuracy = "learning_accuracy"
        case memoryBytes = "memory_bytes", taskAgnosticAccuracy = "tag_acc", taskAgnosticForgetting = "tag_forgetting"
        case headline, taskAwareAccuracy = "taw_acc"
        case taskPrediction = "task_prediction", taskAgnosticRule = "tag_rule"
    }
}

/// The summary of a comparison or sweep: one row per group of runs, metrics as mean ± std over seeds.
public struct ResultsSummary: Sendable, Codable, Equatable {
    public var rows: [SummaryRow]
    /// Points whose last attempt failed, with the reason (absent when none failed): a summary read by a script
    /// shows what is missing from `rows` and why.
    public var failed: [FailedPoint]?

    /// A point that did not finish because its run stopped with an error.
    public struct FailedPoint: Sendable, Codable, Equatable {
        public var name: String
        public var reason: String
        public init(name: String, reason: String) { self.name = name; self.reason = reason }
    }

    /// Groups the finished points by ``SweepPoint/group`` (keeping the order in which groups first appear)
    /// and summarizes each group's metrics over its seeds.
    public init(_ runs: [(point: SweepPoint, results: RunResults)]) {
        var order: [String] = []
        var members: [String: [(point: SweepPoint, results: RunResults)]] = [:]
        for run in runs {
            if members[run.point.group] == nil { order.append(run.point.group) }
            members[run.point.group, default: []].append(run)
        }
        rows = order.map { group in
            let runs = members[group]!
            let metrics = runs.map(\.results.metrics)
            return SummaryRow(
                group: group,
                parameters: Dictionary(uniqueKeysWithValues: runs[0].point.groupAssignments.map { ($0.key, $0.value) }),
                strategy: runs[0].results.strategy,
                seeds: runs.map(\.results.seed),
                accuracy: MeanStd(metrics.compactMap(\.averageAccuracy)),
                forgetting: MeanStd(metrics.compactMap(\.forgetting)),
                backwardTransfer: MeanStd(metrics.compactMap(\.backwardTransfer)),
                forwardTransfer: MeanStd(metrics.compactMap(\.forwardTransfer)),
                learningAccuracy: MeanStd(metrics.compactMap(\.learningAccuracy)),
                seconds: MeanStd(runs.map { $0.results.secondsPerTask.reduce(0, +) }),
                memoryBytes: MeanStd(runs.compactMap { $0.results.strategyMemoryBytes.last.map(Double.init) }),
                headline: runs.first?.results.headlineLabel,
                taskAwareAccuracy: MeanStd(runs.compactMap { $0.results.taskAwareMetrics?.averageAccuracy }),
                taskAgnosticAccuracy: MeanStd(runs.compactMap { $0.results.taskAgnostic?.first?.averageAccuracy }),
                taskAgnosticForgetting: MeanStd(runs.compactMap { $0.results.taskAgnostic?.first?.forgetting }),
                taskPrediction: MeanStd(runs.compactMap { $0.results.taskAgnostic?.first?.averageTaskPrediction }),
                taskAgnosticRule: runs.first?.results.taskAgnostic?.first?.rule)
        }
    }

    /// A plain-text table: group, seeds, and ACC, forgetting, BWT, FWT in percent as mean ± std (plus, when some
    /// run has task-agnostic figures, how the headline was measured, the TAw and TAg ACC and task prediction).
    public func table() -> String {
        let withTAg = rows.contains { $0.taskAgnosticAccuracy != nil }
        let header = ["run", "seeds", "ACC (%)", "forgetting (%)", "BWT (%)", "FWT (%)"]
            + (withTAg ? ["ACC is", "TAw ACC (%)", "TAg ACC (%)", "task pred. (%)"] : [])
        let body = rows.map { row in
            [row.group.replacingOccurrences(of: "__", with: "  "), String(row.seeds.count)]
                + [row.accuracy, row.forgetting, row.backwardTransfer, row.forwardTransfer].map { $0?.formatted() ?? "–" }
                + (withTAg ? [row.headline ?? "–"]
                    + [row.taskAwareAccuracy, row.taskAgnosticAccuracy, row.taskPrediction].map { $0?.formatted() ?? "–" } : [])
        }
        let all = [header] + body
        let widths = header.indices.map { c in all.map { $0[c].count }.max()! }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { c, cell in
                let pad = String(repeating: " ", count: widths[c] - cell.count)
                return c == 0 ? cell + pad : pad + cell
            }.joined(separator: "   ")
        }
        let rule = String(repeating: "─", count: widths.reduce(0, +) + 3 * (widths.count - 1))
        return ([line(header), rule] + body.map(line)).joined(separator: "\n") + "\n"
    }

    /// CSV with one row per group: the grid parameters, then each metric's mean and std (fractions, not percent).
    public func csv() -> String {
        let parameterKeys = Array(Set(rows.flatMap(\.parameters.keys))).sorted()
        let metrics = ["acc", "forgetting", "bwt", "fwt", "learning_accuracy", "taw_acc", "tag_acc", "tag_forgetting", "task_prediction"]
        var header = ["group"] + parameterKeys + ["runs", "seeds"]
        for m in metrics { header += ["\(m)_mean", "\(m)_std"] }
        header += ["seconds_mean", "memory_bytes_mean", "headline"]
        func number(_ x: Double?) -> String { x.map { String(format: "%.6g", $0) } ?? "" }
        func quote(_ s: String) -> String { s.contains(",") || s.contains("\"") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s }
        let lines = rows.map { row in
            var cells = [row.group] + parameterKeys.map { row.parameters[$0]?.description ?? "" }
            cells += [String(row.seeds.count), row.seeds.map(String.init).joined(separator: " ")]
            for stat in [row.accuracy, row.forgetting, row.backwardTransfer, row.forwardTransfer, row.learningAccuracy,
                         row.taskAwareAccuracy, row.taskAgnosticAccuracy, row.taskAgnosticForgetting, row.taskPrediction] {
                cells += [number(stat?.mean), number(stat?.std)]
            }
            cells += [number(row.seconds?.mean), number(row.memoryBytes?.mean), row.headline ?? ""]
            return cells.map(quote).joined(separator: ",")
        }
        return ([header.joined(separator: ",")] + lines).joined(separator: "\n") + "\n"
    }

    /// Pretty-printed JSON with sorted keys.
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }

    /// Writes `summary.csv` and `summary.json` into `directory`.
    public func write(to directory: URL) throws {
        for (name, data) in [("summary.csv", Data(csv().utf8)), ("summary.json", try jsonData())] {
            let url = directory.appendingPathComponent(name)
            do { try data.write(to: url, options: .atomic) } catch {
                throw SweepError("cannot write \(url.path): \(error.localizedDescription)")
            }
        }
    }
}

extension RunResults {
    /// The results of a run of `configuration` whose accuracy matrix is `matrix` (benchmark, strategy, seed and
    /// metrics follow from these; summaries and tests build results this way).
    public init(configuration: ExperimentConfiguration, scenario: Scenario, matrix: AccuracyMatrix,
                secondsPerTask: [Double] = [], strategyMemoryBytes: [Int] = [], parameterCount: Int = 0) {
        self.init(benchmark: configuration.benchmark, scenario: scenario, strategy: configuration.strategy,
                  seed: configuration.training.seed, taskAwareMatrix: matrix, taskAgnostic: nil,
                  secondsPerTask: secondsPerTask, strategyMemoryBytes: strategyMemoryBytes,
                  parameterCount: parameterCount, configuration: configuration)
    }
}
