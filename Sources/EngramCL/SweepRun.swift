import EngramTensor
import EngramNN
import EngramData
import Foundation

/// Where a sweep point stands in its directory.
public enum SweepPointState: Sendable, Equatable {
    /// `results.json` exists and was written for this point's configuration.
    case finished(RunResults)
    /// A checkpoint exists but no results: the run was interrupted and resumes from the checkpoint.
    case interrupted
    /// Nothing written yet.
    case pending
}

/// A sweep (or comparison) laid out in a directory, one sub-directory per point named after it.
/// Finished points (with `results.json`) are skipped, interrupted ones resume from their checkpoint. The one
/// executor is `engram sweep`/`engram compare` (points in parallel worker processes, each calling ``run(_:onEvent:)``).
public struct SweepDirectory: Sendable {
    public let points: [SweepPoint]
    public let directory: URL

    /// The points of `specification`, to be run under `directory`.
    public init(_ specification: SweepSpecification, directory: URL) throws {
        self.init(points: try specification.expand(), directory: directory)
    }

    /// Given points (e.g. from ``SweepSpecification/expand()``) under `directory`.
    public init(points: [SweepPoint], directory: URL) {
        self.points = points
        self.directory = directory
    }

    /// The run directory of a point.
    public func directory(for point: SweepPoint) -> URL { directory.appendingPathComponent(point.name, isDirectory: true) }

    /// Whether the point is finished, interrupted or not started. Throws when its `results.json` is unreadable
    /// or was written for a different configuration (stale results are never mixed into a summary).
    public func state(of point: SweepPoint) throws -> SweepPointState {
        let dir = directory(for: point)
        let resultsURL = dir.appendingPathComponent(ExperimentRun.resultsName)
        if let data = FileManager.default.contents(atPath: resultsURL.path) {
            let results: RunResults
            do { results = try JSONDecoder().decode(RunResults.self, from: data) } catch {
                throw SweepError("\(resultsURL.path) is unreadable (\(error)); delete it to rerun \(point.name)")
            }
            // Results hold the resolved configuration (older ones the configuration as given).
            guard results.configuration.resolved() == point.configuration.resolved() else {
                throw SweepError("\(resultsURL.path) was written for a different configuration than point \(point.name); "
                                 + "delete \(dir.path) to rerun it, or use another output directory")
            }
            return .finished(results)
        }
        if FileManager.default.fileExists(atPath: dir.appendingPathComponent(ExperimentRun.checkpointName).path) {
            return .interrupted
        }
        return .pending
    }

    /// Whether a point listed earlier as still to run should start now, asked right before it starts: processes sharing
    /// a grid (two `engram sweep` on one file) list their points once, so another may have finished
    /// the point since (nil: skip it, never run it again) or left a checkpoint (true: resume from it). False: start it.
    public func resumeNow(_ point: SweepPoint) throws -> Bool? {
        switch try state(of: point) {
        case .finished: return nil
        case .interrupted: return true
        case .pending: return false
        }
    }

    /// Runs one point in this process (resuming from its checkpoint if there is one) and returns its results.
    @discardableResult
    public func run(_ point: SweepPoint, onEvent: ((TrainingEvent) -> Void)? = nil) throws -> RunResults {
        let run = try ExperimentRun(configuration: point.configuration, directory: directory(for: point))
        run.onEvent = onEvent
        return try run.run(resume: true)
    }

    /// The results of every finished point, in grid order (unfinished points are left out).
    public func finishedResults() throws -> [(point: SweepPoint, results: RunResults)] {
        try points.compactMap { point in
            if case let .finished(results) = try state(of: point) { return (point, results) }
            return nil
        }
    }

    /// The summary of the finished points.
    public func summary() throws -> ResultsSummary { ResultsSummary(try finishedResults()) }
}
