import EngramTensor
import EngramNN
import EngramData
import EngramCL
import Foundation

/// An error of the report layer that names the file or directory concerned.
public struct ReportError: Error, CustomStringConvertible, Equatable {
    /// What went wrong, with the path.
    public let description: String

    /// An error with the given message.
    public init(_ description: String) { self.description = description }
}

/// Reads run directories (those written by `engram run`: `results.json`, `config.yaml`, …).
public enum RunDirectory {
    /// Name of the results file in a run directory.
    public static let resultsName = ExperimentRun.resultsName
    /// Name of the configuration file in a run directory.
    public static let configurationName = "config.yaml"
    /// Name of the report a single run's directory receives.
    public static let reportName = "report.html"

    /// Whether `directory` holds a `results.json`.
    public static func isRun(_ directory: URL) -> Bool {
        FileManager.default.fileExists(atPath: directory.appendingPathComponent(resultsName).path)
    }

    /// The results of the run in `directory`.
    /// - Throws: `ReportError` naming the path when `results.json` is missing or unreadable.
    public static func loadResults(from directory: URL) throws -> RunResults {
        let url = directory.appendingPathComponent(resultsName)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ReportError("\(directory.path): no such directory")
        }
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw ReportError("\(url.path) not found: is \(directory.path) an Engram run directory (has the run finished)?")
        }
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ReportError("cannot read \(url.path): \(error.localizedDescription)")
        }
        do { return try JSONDecoder().decode(RunResults.self, from: data) } catch {
            throw ReportError("\(url.path) is not a valid Engram results file: \(describe(error))")
        }
    }

    /// The text of `config.yaml` in `directory`, if there is one.
    public static func configurationText(in directory: URL) -> String? {
        try? String(contentsOf: directory.appendingPathComponent(configurationName), encoding: .utf8)
    }

    /// The run directories to report on for the paths given on the command line: each path that
    /// is a run is taken as is; a path that is not is searched (recursively) for run directories.
    /// The result is sorted by path within each argument.
    /// - Throws: `ReportError` naming the path when it does not exist or holds no run.
    public static func expand(_ paths: [URL]) throws -> [URL] {
        var runs: [URL] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path.path, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw ReportError("\(path.path): no such directory")
            }
            if isRun(path) { runs.append(path); continue }
            let found = findRuns(under: path)
            guard !found.isEmpty else {
                throw ReportError("\(path.appendingPathComponent(resultsName).path) not found, and no run directory (with \(resultsName)) below \(path.path)")
            }
            runs += found
        }
        return runs
    }

    private static func findRuns(under directory: URL) -> [URL] {
        guard let enumerator = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: nil) else { return [] }
        var found: [URL] = []
        for case let url as URL in enumerator where url.lastPathComponent == resultsName {
            found.append(url.deletingLastPathComponent())
        }
        return found.map(\.standardizedFileURL).sorted { $0.path < $1.path }
    }

    private static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, let context):
            return "missing key '\((context.codingPath + [key]).map(\.stringValue).joined(separator: "."))'"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context),
             DecodingError.dataCorrupted(let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? context.debugDescription : "\(path): \(context.debugDescription)"
        default:
            return "\(error)"
        }
    }
}

/// Mean and sample standard deviation of a set of values (e.g. one metric over seeds).

extension MeanStd {
    /// `mean ± std` formatted (the ± part only with more than one value).
    public func formatted(_ format: ValueFormat) -> String {
        std.map { "\(format.string(mean)) ± \(format.string($0))" } ?? format.string(mean)
    }
}
