import EngramCL
import EngramReport
import Foundation
import GRDB

/// Errors of the run store, each one line naming the store or the run directory.
public struct StoreError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// One run as the store holds it: where its directory is (the source of truth), every resolved configuration key
/// (`strategy`, `training.lr`, `hyperparameters.mas.lambda`, …) and every scalar of its `results.json`
/// (`average_accuracy`, `forgetting`, `wall_seconds`, …), with when, from which code and on which host it was recorded.
public struct StoredRun: Sendable, Equatable {
    public var directory: String
    public var settings: [String: String]
    public var metrics: [String: Double]
    public var recordedAt: String
    public var gitCommit: String?
    public var host: String?

    /// A setting or a metric by name (settings first), as text.
    public func value(_ key: String) -> String? {
        settings[key] ?? metrics[key].map { $0.formatted() }
    }
}

extension Double {
    /// The shortest text that reads back as this number (integral values without a fraction).
    func formatted() -> String {
        if self == rounded(), abs(self) < 1e15 { return String(Int64(self)) }
        return "\(self)"
    }
}

/// Every run and sweep point in one SQLite database (GRDB; write-ahead log, a busy timeout so that a sweep's
/// processes and MPI ranks can record at once): an index over the run directories, which stay the source of truth —
/// ``rebuild(from:)`` makes it again from them.
///
/// Tables: `runs` (one row per run directory: benchmark, scenario, strategy, seed, recording time, git commit,
/// host, and `results.json` whole), `settings` (run, key, value: every resolved configuration key, dotted) and
/// `metrics` (run, key, value: every number at the top level of `results.json`). Query them with any SQLite client;
/// `engram runs` filters, groups and exports them.
public final class RunStore {
    /// Where runs are recorded unless `--store` says otherwise.
    public static let defaultPath = "runs/engram.sqlite"
    public let path: String
    let database: DatabaseQueue

    /// Opens (creating it and its folder if needed) the store at `path`.
    public init(path: String) throws {
        self.path = path
        let url = URL(fileURLWithPath: path)
        do { try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true) } catch {
            throw StoreError("\(path): cannot create its folder: \(error.localizedDescription)")
        }
        var configuration = Configuration()
        // Another process recording a run holds the write lock for milliseconds; wait for it rather than fail.
        configuration.busyMode = .timeout(60)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: "PRAGMA foreign_keys = ON")
        }
        do {
            database = try DatabaseQueue(path: path, configuration: configuration)
            try Self.migrator.migrate(database)
        } catch {
            throw StoreError("\(path) is not a usable Engram run store (\(Self.reason(error))); the run directories are "
                             + "untouched — move the file away and rebuild it with: engram runs rebuild DIR…")
        }
    }

    static func reason(_ error: any Error) -> String {
        if let e = error as? DatabaseError { return e.message ?? "\(e.resultCode)" }
        return "\(error)"
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("runs v1") { db in
            try db.create(table: "runs") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("directory", .text).notNull().unique()
                t.column("benchmark", .text)
                t.column("scenario", .text)
                t.column("strategy", .text)
                t.column("seed", .integer)
                t.column("recorded_at", .text).notNull()
                t.column("git_commit", .text)
                t.column("host", .text)
                t.column("results", .text).notNull()
            }
            try db.create(table: "settings") { t in
                t.column("run_id", .integer).notNull().references("runs", onDelete: .cascade)
                t.column("key", .text).notNull()
                t.column("value", .text)
                t.primaryKey(["run_id", "key"])
            }
            try db.create(index: "settings_by_key", on: "settings", columns: ["key", "value"])
            try db.create(table: "metrics") { t in
                t.column("run_id", .integer).notNull().references("runs", onDelete: .cascade)
                t.column("key", .text).notNull()
                t.column("value", .double)
                t.primaryKey(["run_id", "key"])
            }
        }
        return migrator
    }

    /// Records (or replaces) the run in `directory` from its `results.json`; `gitCommit` and `host` say where it ran.
    public func record(directory: URL, gitCommit: String? = RunStore.codeCommit, host: String? = ProcessInfo.processInfo.hostName) throws {
        let resultsURL = directory.appendingPathComponent(ExperimentRun.resultsName)
        let data: Data
        do { data = try Data(contentsOf: resultsURL) } catch {
            throw StoreError("\(resultsURL.path): cannot be read (\(error.localizedDescription))")
        }
        guard case let .object(object)? = try? JSONDecoder().decode(JSONValue.self, from: data) else {
            throw StoreError("\(resultsURL.path): not a JSON object")
        }
        let results: RunResults
        do { results = try JSONDecoder().decode(RunResults.self, from: data) } catch {
            throw StoreError("\(resultsURL.path): not an Engram results file (\(ConfigurationError.describe(error)))")
        }
        var settings = Dictionary(flattenedConfiguration(results.configuration).filter { $0.value != "null" }.map { ($0.key, $0.value) },
                                  uniquingKeysWith: { a, _ in a })
        // The configuration's spelling (`scenario: task`, as typed) wins; results.json's (`task-il`) fills older files.
        for key in ["benchmark", "scenario", "strategy"] where settings[key] == nil {
            if case let .string(v)? = object[key] { settings[key] = v }
        }
        if case let .number(seed)? = object["seed"] { settings["seed"] = seed.formatted() }
        var metrics: [String: Double] = [:]
        for (key, value) in object where key != "seed" {
            if case let .number(x) = value { metrics[key] = x }
        }
        let path = directory.standardizedFileURL.path
        let text = String(decoding: data, as: UTF8.self)
        let now = ISO8601DateFormatter().string(from: Date())
        do {
            // IMMEDIATE: the write lock is taken at BEGIN (waiting through the busy timeout), never upgraded from a read,
            // so concurrent writers queue instead of failing.
            try database.writeWithoutTransaction { db in try db.inTransaction(.immediate) {
                try db.execute(sql: "DELETE FROM runs WHERE directory = ?", arguments: [path])
                try db.execute(sql: """
                    INSERT INTO runs (directory, benchmark, scenario, strategy, seed, recorded_at, git_commit, host, results)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [path, settings["benchmark"], settings["scenario"], settings["strategy"],
                                     settings["seed"].flatMap { Int64($0) }, now, gitCommit, host, text])
                let id = db.lastInsertedRowID
                for (key, value) in settings {
                    try db.execute(sql: "INSERT INTO settings (run_id, key, value) VALUES (?, ?, ?)", arguments: [id, key, value])
                }
                for (key, value) in metrics where value.isFinite {
                    try db.execute(sql: "INSERT INTO metrics (run_id, key, value) VALUES (?, ?, ?)", arguments: [id, key, value])
                }
                return .commit
            } }
        } catch {
            throw StoreError("\(self.path): cannot record \(path) (\(Self.reason(error))); the run directory is intact — "
                             + "add it later with: engram runs import \(path)")
        }
    }

    /// Records every run directory at or below `paths`; returns how many were recorded and the ones that failed
    /// (each with its one-line reason), so one bad directory does not stop the rest.
    @discardableResult
    public func importRuns(_ paths: [URL]) throws -> (recorded: Int, failed: [String]) {
        let directories: [URL]
        do { directories = try RunDirectory.expand(paths) } catch { throw StoreError("\(error)") }
        var recorded = 0, failed: [String] = []
        for directory in directories {
            do { try record(directory: directory); recorded += 1 } catch { failed.append("\(error)") }
        }
        return (recorded, failed)
    }

    /// Empties the store and records every run directory at or below `paths` again.
    @discardableResult
    public func rebuild(from paths: [URL]) throws -> (recorded: Int, failed: [String]) {
        do { try database.write { db in try db.execute(sql: "DELETE FROM runs") } } catch {
            throw StoreError("\(path): cannot be emptied (\(Self.reason(error)))")
        }
        return try importRuns(paths)
    }

    /// Every stored run (in the order of their directories) that passes all `filters`.
    public func runs(where filters: [RunFilter] = []) throws -> [StoredRun] {
        let all: [StoredRun]
        do {
            all = try database.read { db in
                var runs: [Int64: StoredRun] = [:]
                for row in try Row.fetchAll(db, sql: "SELECT id, directory, recorded_at, git_commit, host FROM runs") {
                    runs[row["id"]] = StoredRun(directory: row["directory"], settings: [:], metrics: [:], recordedAt: row["recorded_at"],
                                                gitCommit: row["git_commit"], host: row["host"])
                }
                for row in try Row.fetchAll(db, sql: "SELECT run_id, key, value FROM settings") {
                    runs[row["run_id"]]?.settings[row["key"]] = row["value"]
                }
                for row in try Row.fetchAll(db, sql: "SELECT run_id, key, value FROM metrics") {
                    runs[row["run_id"]]?.metrics[row["key"]] = row["value"]
                }
                return runs.values.sorted { $0.directory < $1.directory }
            }
        } catch { throw StoreError("\(path): cannot be read (\(Self.reason(error)))") }
        let known = Set(all.flatMap { Array($0.settings.keys) + Array($0.metrics.keys) })
        for filter in filters where !known.contains(filter.key) && !all.isEmpty {
            let near = known.sorted().min { editDistance($0, filter.key) < editDistance($1, filter.key) } ?? ""
            throw StoreError("--where \(filter.key): no stored run has this key (nearest: \(near))")
        }
        return all.filter { run in filters.allSatisfy { $0.matches(run) } }
    }

    /// The commit of the source tree this binary was built from (`git rev-parse HEAD` there; nil when it is gone or
    /// not a git checkout), `+dirty` when it had uncommitted changes.
    public static let codeCommit: String? = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        guard FileManager.default.fileExists(atPath: root.appendingPathComponent(".git").path) else { return nil }
        func git(_ arguments: [String]) -> String? {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["git", "-C", root.path] + arguments
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = FileHandle.nullDevice
            do { try process.run() } catch { return nil }
            let output = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { return nil }
            return String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        guard let head = git(["rev-parse", "HEAD"]), !head.isEmpty else { return nil }
        let dirty = git(["status", "--porcelain", "--untracked-files=no"]).map { !$0.isEmpty } ?? false
        return head + (dirty ? "+dirty" : "")
    }()
}

/// Levenshtein distance, for naming the nearest key.
func editDistance(_ a: String, _ b: String) -> Int {
    let x = Array(a), y = Array(b)
    var row = Array(0...y.count)
    for i in 1...max(x.count, 1) where !x.isEmpty {
        var previous = row[0]
        row[0] = i
        for j in 1...max(y.count, 1) where !y.isEmpty {
            let current = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (x[i - 1] == y[j - 1] ? 0 : 1))
            previous = current
        }
    }
    return row[y.count]
}

/// `key=value` (several values: `strategy=mas,ewc`), `key!=value`, `key<value`, `key<=value`, `key>value`,
/// `key>=value` over a run's settings and metrics; numbers compare as numbers (`lambda=1` matches 1.0).
public struct RunFilter: Sendable, Equatable {
    public enum Comparison: String, Sendable, CaseIterable { case equal = "=", notEqual = "!=", less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">=" }
    public let key: String
    public let comparison: Comparison
    public let values: [String]

    /// Parses `text`; throws naming it when it has no comparison or an empty key or value.
    public init(_ text: String) throws {
        // Two-character operators first, so `a<=1` is not read as `a<` `=1`.
        for op in [Comparison.notEqual, .lessOrEqual, .greaterOrEqual, .equal, .less, .greater] {
            if let range = text.range(of: op.rawValue) {
                let key = text[..<range.lowerBound].trimmingCharacters(in: .whitespaces)
                let value = text[range.upperBound...].trimmingCharacters(in: .whitespaces)
                guard !key.isEmpty, !value.isEmpty else { break }
                self.key = key
                comparison = op
                values = op == .equal ? value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } : [value]
                return
            }
        }
        throw StoreError("--where '\(text)': expected key=value (or !=, <, <=, >, >=), e.g. strategy=mas or average_accuracy>0.9")
    }

    public func matches(_ run: StoredRun) -> Bool {
        guard let actual = run.value(key) else { return comparison == .notEqual }
        func order(_ value: String) -> Int? {
            if let a = Double(actual), let b = Double(value) { return a < b ? -1 : a > b ? 1 : 0 }
            return comparison == .equal || comparison == .notEqual ? (actual == value ? 0 : 1) : (actual < value ? -1 : actual > value ? 1 : 0)
        }
        switch comparison {
        case .equal: return values.contains { order($0) == 0 }
        case .notEqual: return order(values[0]) != 0
        case .less: return order(values[0]).map { $0 < 0 } ?? false
        case .lessOrEqual: return order(values[0]).map { $0 <= 0 } ?? false
        case .greater: return order(values[0]).map { $0 > 0 } ?? false
        case .greaterOrEqual: return order(values[0]).map { $0 >= 0 } ?? false
        }
    }
}

/// Runs sharing the values of some keys, with mean and standard deviation (over runs, n − 1) of each metric.
public struct StoredRunGroup: Sendable, Equatable {
    /// The group's values of the grouping keys, in their order ("–" where a run has none).
    public var values: [String]
    public var runs: Int
    /// metric → (mean, standard deviation; nil for one run), over the runs that have it.
    public var statistics: [String: (mean: Double, std: Double?)]

    public static func == (a: StoredRunGroup, b: StoredRunGroup) -> Bool {
        a.values == b.values && a.runs == b.runs && a.statistics.keys == b.statistics.keys
            && a.statistics.allSatisfy { k, v in b.statistics[k].map { $0.mean == v.mean && $0.std == v.std } ?? false }
    }

    /// `runs` grouped by the values of `keys` (groups in sorted order of their values), `metrics` summarised.
    public static func group(_ runs: [StoredRun], by keys: [String], metrics: [String]) -> [StoredRunGroup] {
        var members: [[String]: [StoredRun]] = [:]
        for run in runs { members[keys.map { run.value($0) ?? "–" }, default: []].append(run) }
        return members.keys.sorted { $0.lexicographicallyPrecedes($1) }.map { values in
            let group = members[values]!
            var statistics: [String: (Double, Double?)] = [:]
            for metric in metrics {
                let xs = group.compactMap { $0.metrics[metric] }
                guard !xs.isEmpty else { continue }
                let mean = xs.reduce(0, +) / Double(xs.count)
                let std = xs.count > 1 ? (xs.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(xs.count - 1)).squareRoot() : nil
                statistics[metric] = (mean, std)
            }
            return StoredRunGroup(values: values, runs: group.count, statistics: statistics)
        }
    }
}
