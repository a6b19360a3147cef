import Engram
import ArgumentParser
import Foundation

/// `engram runs`: the SQLite index of every run — list, filter, group, export, import, rebuild.
struct Runs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Find, filter and compare recorded runs (the SQLite store every run and sweep point is recorded in).",
        discussion: """
        Every finished `engram run`, `resume`, `compare` and sweep point is recorded in the store (default \
        runs/engram.sqlite, --store PATH; --no-store skips it): every resolved configuration key (strategy, \
        training.lr, hyperparameters.mas.lambda, …), every number of results.json (average_accuracy, forgetting, \
        average_forgetting, bwt, fwt, wall_seconds, …), the git commit of the code and the host. The run directories stay the source \
        of truth: `engram runs rebuild DIR…` makes the store again from them.

          engram runs --where strategy=mas --where benchmark=split-mnist
          engram runs --group-by strategy,hyperparameters.mas.lambda --format csv
          engram runs --where scenario=class --where average_accuracy>0.5 --report comparison.html
        """,
        subcommands: [List.self, Import.self, Rebuild.self],
        defaultSubcommand: List.self)

    /// Records the run directories at or below `directories` (after emptying the store with `rebuild`), naming each
    /// that could not be recorded; exits with an error when any could not.
    static func record(_ directories: [String], in store: RunStore, rebuild: Bool) throws {
        let urls = directories.map { URL(fileURLWithPath: $0).standardizedFileURL }
        let result: (recorded: Int, failed: [String])
        do { result = rebuild ? try store.rebuild(from: urls) : try store.importRuns(urls) } catch { throw ValidationError("\(error)") }
        for failure in result.failed { print("not recorded: \(failure)") }
        print("\(rebuild ? "rebuilt" : "recorded") \(result.recorded) runs in \(store.path)")
        if !result.failed.isEmpty { throw ExitCode(1) }
    }

    static func open(_ path: String) throws -> RunStore {
        guard path == RunStore.defaultPath || FileManager.default.fileExists(atPath: path) else {
            throw ValidationError("--store \(path) does not exist (runs are recorded in \(RunStore.defaultPath) unless --store says otherwise)")
        }
        do { return try RunStore(path: path) } catch { throw ValidationError("\(error)") }
    }
}

extension Runs {
    enum Format: String, ExpressibleByArgument, CaseIterable { case table, csv, json }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the recorded runs that pass every --where, or their groups.")

        @Option(help: "The store to read.") var store: String = RunStore.defaultPath
        @Option(name: .customLong("where"), help: "A condition on a setting or metric: key=value (several values: strategy=mas,ewc), !=, <, <=, >, >=. Repeatable; all must hold.")
        var conditions: [String] = []
        @Option(help: "Group by these keys, comma-separated (e.g. strategy,hyperparameters.mas.lambda): one row per group, mean ± std of the metrics.")
        var groupBy: String?
        @Option(help: "Metrics shown, comma-separated.") var metrics = "average_accuracy,average_forgetting,bwt,fwt"
        @Option(help: "Output: table, csv or json.") var format: Format = .table
        @Option(help: "Write the output to this file instead of standard output.") var out: String?
        @Option(help: "Also write a comparison report (HTML, inline SVG) of the selected runs to this file.") var report: String?

        func run() throws {
            let filters = try conditions.map { text in
                do { return try RunFilter(text) } catch { throw ValidationError("\(error)") }
            }
            let store = try Runs.open(store)
            let selected: [StoredRun]
            do { selected = try store.runs(where: filters) } catch { throw ValidationError("\(error)") }
            let shown = metrics.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            var text: String
            if let groupBy {
                let keys = groupBy.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                guard !keys.isEmpty else { throw ValidationError("--group-by must name at least one key, got '\(groupBy)'") }
                text = Self.render(groups: StoredRunGroup.group(selected, by: keys, metrics: shown), keys: keys, metrics: shown, format: format)
            } else {
                text = Self.render(runs: selected, metrics: shown, format: format)
            }
            if let out {
                do { try text.write(toFile: out, atomically: true, encoding: .utf8) } catch {
                    throw ValidationError("cannot write --out \(out): \(error.localizedDescription)")
                }
                print("wrote \(out) (\(selected.count) runs)")
            } else {
                print(text, terminator: "")
            }
            if let report {
                guard !selected.isEmpty else { throw ValidationError("--report: no run matches the conditions") }
                do {
                    try ComparisonReport(directories: selected.map { URL(fileURLWithPath: $0.directory) }).write(to: URL(fileURLWithPath: report))
                } catch { throw ValidationError("--report \(report): \(error)") }
                print("wrote \(report) (\(selected.count) runs)")
            }
        }

        static func number(_ x: Double?) -> String { x.map { String(format: "%.4g", $0) } ?? "" }

        static func render(runs: [StoredRun], metrics: [String], format: Format) -> String {
            let keys = ["strategy", "benchmark", "scenario", "seed"]
            switch format {
            case .json:
                let objects: [[String: Any]] = runs.map { run in
                    let commit: Any = run.gitCommit.map { $0 as Any } ?? NSNull(), host: Any = run.host.map { $0 as Any } ?? NSNull()
                    return ["directory": run.directory, "settings": run.settings, "metrics": run.metrics, "recorded_at": run.recordedAt,
                            "git_commit": commit, "host": host]
                }
                return json(objects)
            case .csv:
                let header: [String] = ["directory"] + keys + metrics
                let rows: [[String]] = runs.map { run in
                    let settings: [String] = keys.map { run.settings[$0] ?? "" }
                    return [run.directory] + settings + metrics.map { number(run.metrics[$0]) }
                }
                return csv([header] + rows)
            case .table:
                let rows: [[String]] = runs.map { run in
                    let settings: [String] = keys.map { run.settings[$0] ?? "–" }
                    return [relative(run.directory)] + settings + metrics.map { number(run.metrics[$0]) }
                }
                return table(header: ["run"] + keys + metrics, rows: rows) + "\(runs.count) runs\n"
            }
        }

        static func render(groups: [StoredRunGroup], keys: [String], metrics: [String], format: Format) -> String {
            switch format {
            case .json:
                return json(groups.map { g -> [String: Any] in
                    var stats: [String: Any] = [:]
                    for (metric, s) in g.statistics {
                        let std: Any = s.std.map { $0 as Any } ?? NSNull()
                        stats[metric] = ["mean": s.mean, "std": std] as [String: Any]
                    }
                    return ["group": Dictionary(uniqueKeysWithValues: zip(keys, g.values)), "runs": g.runs, "metrics": stats]
                })
            case .csv:
                let header: [String] = keys + ["runs"] + metrics.flatMap { [$0 + "_mean", $0 + "_std"] }
                let rows: [[String]] = groups.map { g in
                    let cells: [String] = metrics.flatMap { m -> [String] in
                        let s = g.statistics[m]
                        return [number(s?.mean), number(s?.std ?? nil)]
                    }
                    return g.values + ["\(g.runs)"] + cells
                }
                return csv([header] + rows)
            case .table:
                let rows: [[String]] = groups.map { g in
                    let cells: [String] = metrics.map { m -> String in
                        guard let s = g.statistics[m] else { return "–" }
                        return number(s.mean) + (s.std.map { " ± " + number($0) } ?? "")
                    }
                    return g.values + ["\(g.runs)"] + cells
                }
                return table(header: keys + ["runs"] + metrics, rows: rows) + "\(groups.count) groups of \(groups.reduce(0) { $0 + $1.runs }) runs\n"
            }
        }

        static func relative(_ path: String) -> String {
            let here = FileManager.default.currentDirectoryPath + "/"
            return path.hasPrefix(here) ? String(path.dropFirst(here.count)) : path
        }

        static func csv(_ rows: [[String]]) -> String {
            rows.map { $0.map(csvField).joined(separator: ",") }.joined(separator: "\n") + "\n"
        }

        static func csvField(_ s: String) -> String {
            s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
        }

        static func json(_ object: Any) -> String {
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])) ?? Data("[]".utf8)
            return String(decoding: data, as: UTF8.self) + "\n"
        }

        static func table(header: [String], rows: [[String]]) -> String {
            let widths = header.indices.map { i in ([header[i]] + rows.map { $0[i] }).map(\.count).max() ?? 0 }
            func line(_ cells: [String]) -> String {
                cells.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ") + "\n"
            }
            return line(header) + rows.map(line).joined()
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Record existing run directories (and those below the directories given) in the store.")
        @Argument(help: "Run directories, or directories holding run directories.") var directories: [String]
        @Option(help: "The store to record in.") var store: String = RunStore.defaultPath

        func run() throws {
            let store: RunStore
            do { store = try RunStore(path: self.store) } catch { throw ValidationError("\(error)") }
            try Runs.record(directories, in: store, rebuild: false)
        }
    }

    struct Rebuild: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Empty the store and record every run directory below the directories given again.")
        @Argument(help: "Run directories, or directories holding run directories.") var directories: [String]
        @Option(help: "The store to rebuild.") var store: String = RunStore.defaultPath

        func run() throws {
            let store: RunStore
            do { store = try RunStore(path: self.store) } catch {
                // A damaged store is only an index: keep the file aside and make a new one from the directories.
                let aside = self.store + ".damaged-\(Int(Date().timeIntervalSince1970))"
                guard rename(self.store, aside) == 0 else { throw ValidationError("\(error)") }
                print("\(self.store) could not be opened (\(error)); moved to \(aside)")
                do { store = try RunStore(path: self.store) } catch { throw ValidationError("\(error)") }
            }
            try Runs.record(directories, in: store, rebuild: true)
        }
    }
}
