import Engram
import ArgumentParser
import Foundation
import Yams
#if canImport(Glibc)
import Glibc
#endif

/// `engram sweep FILE.yaml`: a grid over hyper-parameters and seeds, resumable, several runs at once.
struct Sweep: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a grid of configurations (hyper-parameters × seeds) and summarize it as mean ± std over seeds.",
        discussion: """
        FILE.yaml holds `base:` (keys of config.yaml), `grid:` (dotted keys → lists of values) and optionally \
        `out:`. Example (examples/mas-lambda-sweep.yaml):

          out: runs/mas-lambda-sweep
          base: {benchmark: permuted-mnist, tasks: 5, strategy: mas, fraction: 0.2}
          grid:
            hyperparameters.lambda: [0.01, 0.1, 1, 10]
            training.seed: [0, 1, 2]

        Every point runs in DIR/<name>/ (e.g. mas__lambda=1__seed=0). Rerunning the command skips finished \
        points and resumes interrupted ones. Writes DIR/summary.csv and DIR/summary.json.
        """)

    @Argument(help: "The sweep specification (YAML).")
    var file: String

    @Option(help: "Output directory (default: `out:` of the file, else runs/<file name>).")
    var out: String?

    @Option(help: "How many points to run at once, each in its own process.")
    var jobs: Int = 1

    @Flag(help: "List the points and their state (finished, interrupted, pending, or failed: the reason its log ends with) without running anything.")
    var list = false

    @Flag(help: "Run again the points whose last attempt failed (by default they are skipped and listed: a divergence or a bad setting fails the same way again).")
    var retryFailed = false

    @Flag(help: "Only errors and the summary.")
    var quiet = false

    @Flag(help: "Print the summary as JSON on standard output.")
    var json = false

    @OptionGroup var store: StoreOptions

    @Flag(help: "Spread the points over the ranks of an MPI job: mpirun -n N engram sweep FILE --mpi (or srun). Rank 0 hands out points, records them and writes the summary; rerunning resumes.")
    var mpi = false

    func validate() throws {
        guard jobs >= 1 else { throw ValidationError("--jobs must be at least 1, got \(jobs)") }
    }

    func run() throws {
        let text: String
        do { text = try String(contentsOfFile: file, encoding: .utf8) } catch {
            throw ValidationError("cannot read \(file): \(error.localizedDescription)")
        }
        let specification: SweepSpecification
        do { specification = try YAMLDecoder().decode(SweepSpecification.self, from: text) } catch {
            throw ValidationError("\(file): \(ConfigurationError.describe(error))")
        }
        let name = URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
        let directory = out ?? specification.output ?? "runs/\(name)"
        let points: [SweepPoint]
        do { points = try specification.expand() } catch let error as SweepError {
            throw ValidationError("\(file): \(error.description)")
        }
        let sweep = SweepDirectory(points: points, directory: URL(fileURLWithPath: directory))
        if list {
            for point in points {
                let state: String
                switch try sweep.state(of: point) {
                case .finished: state = "finished"
                case let unfinished:
                    let failure = Self.lastFailure(in: sweep.directory(for: point)).map { "failed: \($0)" }
                    state = failure ?? (unfinished == .pending ? "pending" : "interrupted")
                }
                print(point.name.padding(toLength: max(40, point.name.count + 2), withPad: " ", startingAt: 0) + state)
            }
            return
        }
        try FileManager.default.createDirectory(at: sweep.directory, withIntermediateDirectories: true)
        try text.write(to: sweep.directory.appendingPathComponent("sweep.yaml"), atomically: true, encoding: .utf8)
        try SweepExecutor(sweep: sweep, jobs: jobs, quiet: quiet, json: json, store: store.path, mpi: mpi, retryFailed: retryFailed)
            .run(sensitivity: true)
    }
}

extension Sweep {
    /// Why a point's last attempt stopped, when it failed: the message of the `error failed: …` line its run wrote
    /// last into log.txt (nil when the log ends any other way — finished, interrupted, still running — or is absent).
    static func lastFailure(in directory: URL) -> String? {
        guard let text = try? String(contentsOf: directory.appendingPathComponent("log.txt"), encoding: .utf8),
              let last = text.split(separator: "\n").last, let marker = last.range(of: " error failed: ") else { return nil }
        return String(last[marker.upperBound...])
    }
}

/// Shared by `sweep` and `compare`: runs the unfinished points (in this process or `jobs` child processes),
/// then prints and writes the summary.
struct SweepExecutor {
    let sweep: SweepDirectory
    let jobs: Int
    let quiet: Bool
    let json: Bool
    /// The run store every finished point is recorded in (nil: none).
    let store: String?
    /// Spread the points over the ranks of an MPI job (`mpirun -n N engram sweep … --mpi`).
    var mpi = false
    /// Run points whose last attempt failed (their log ends with the reason) instead of skipping them.
    var retryFailed = false

    /// A point that did not finish: its name, why, and where its output is.
    struct Failure {
        let point: SweepPoint
        let reason: String
        let log: URL
    }

    /// Prints progress to standard error (standard output carries the summary).
    func note(_ text: String) { FileHandle.standardError.write(Data((text + "\n").utf8)) }

    func run(sensitivity: Bool) throws {
        var ranks = 1
        if mpi {
            #if ENGRAM_MPI
            let (rank, size) = Self.joinMPI()
            defer { Self.leaveMPI() }
            ranks = size
            // The other ranks only run what rank 0 hands them; rank 0 prints, records and summarises.
            if rank != 0 { _ = work(rank: rank); return }
            return try summarise(sensitivity: sensitivity, ranks: ranks)
            #else
            throw ValidationError("--mpi: this engram was built without MPI; install Open MPI (Debian: libopenmpi-dev) and build again")
            #endif
        }
        try summarise(sensitivity: sensitivity, ranks: ranks)
    }

    /// The reason `point`'s last attempt failed, if its log ends with one and it ran the configuration the point has
    /// now (a changed base makes it a new attempt).
    func failedEarlier(_ point: SweepPoint) -> String? {
        let dir = sweep.directory(for: point)
        guard let reason = Sweep.lastFailure(in: dir),
              let written = try? String(contentsOf: dir.appendingPathComponent("config.yaml"), encoding: .utf8),
              let current = try? point.configuration.resolved().yamlText(), written == current else { return nil }
        return reason
    }

    /// Finds the unfinished points, runs them (here, in child processes, or over the MPI job's ranks), then prints
    /// and writes the summary.
    func summarise(sensitivity: Bool, ranks: Int) throws {
        var todo: [(SweepPoint, resume: Bool)] = []
        var skipped: [Failure] = []
        for point in sweep.points {
            let state: SweepPointState
            do { state = try sweep.state(of: point) } catch let error as SweepError { throw ValidationError(error.description) }
            let unfinished: Bool
            if case .finished = state { unfinished = false } else { unfinished = true }
            if unfinished, !retryFailed, let reason = failedEarlier(point) {
                skipped.append(Failure(point: point, reason: reason + " (failed earlier, not run again)",
                                             log: sweep.directory(for: point).appendingPathComponent("log.txt")))
                if !quiet { note("✗ \(point.name): failed earlier, skipped (--retry-failed runs it again)") }
                continue
            }
            switch state {
            case .finished: if !quiet { note("✓ \(point.name): finished earlier, skipped") }
            case .interrupted: todo.append((point, true))
            case .pending: todo.append((point, false))
            }
        }
        if !quiet {
            note("\(sweep.points.count) points, \(sweep.points.count - todo.count) finished, \(todo.count) to run"
                 + (todo.isEmpty ? "" : mpi ? " (over \(ranks) MPI ranks)" : " (\(jobs) at a time)") + " → \(sweep.directory.path)")
        }
        for (point, _) in todo {
            let dir = sweep.directory(for: point)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try point.configuration.resolved().yamlText().write(to: dir.appendingPathComponent("config.yaml"),
                                                                atomically: true, encoding: .utf8)
        }
        var failures: [Failure]
        #if ENGRAM_MPI
        if mpi { failures = try coordinate(todo, ranks: ranks) } else { failures = jobs == 1 ? runInProcess(todo.map(\.0)) : try runInProcesses(todo.map(\.0)) }
        #else
        failures = jobs == 1 ? runInProcess(todo.map(\.0)) : try runInProcesses(todo.map(\.0))
        #endif
        failures = skipped + failures

        let finished: [(point: SweepPoint, results: RunResults)]
        do { finished = try sweep.finishedResults() } catch let error as SweepError { throw ValidationError(error.description) }
        var summary = ResultsSummary(finished)
        if !failures.isEmpty { summary.failed = failures.map { .init(name: $0.point.name, reason: $0.reason) } }
        try summary.write(to: sweep.directory)
        writeComparisonReport(runs: finished.map(\.results), failed: failures.map { ($0.point.name, $0.reason) },
                              to: sweep.directory.appendingPathComponent("report.html"))
        if json {
            print(String(decoding: try summary.jsonData(), as: UTF8.self))
        } else {
            print(summary.table(), terminator: "")
            if sensitivity { print(TextSensitivityChart(rows: summary.rows).render(), terminator: "") }
            print("(\(finished.count) of \(sweep.points.count) runs; \(sweep.directory.path)/summary.csv, summary.json)")
        }
        if !failures.isEmpty {
            note("\(failures.count) point\(failures.count == 1 ? "" : "s") failed (rerun with --retry-failed to run \(failures.count == 1 ? "it" : "them") again):")
            for f in failures { note("  ✗ \(f.point.name): \(f.reason) — log: \(f.log.path)") }
            throw ExitCode.failure
        }
        if RunInterruption.isRequested { throw ExitCode(130) }
    }

    /// Whether to start `point` now, and whether from its checkpoint, asked right before it starts (processes sharing
    /// the grid listed their points once; `SweepDirectory.resumeNow`): nil, with a note, when another process is
    /// running it or finished it meanwhile, and nil with a failure (its `log` named) when its state cannot be read.
    func startDecision(_ point: SweepPoint, log: String, failures: inout [Failure]) -> Bool? {
        let dir = sweep.directory(for: point)
        if RunDirectoryLock.isHeld(in: dir) {
            note("⋯ \(point.name): another process is running it, skipped")
            return nil
        }
        do {
            guard let resume = try sweep.resumeNow(point) else {
                note("⋯ \(point.name): finished meanwhile by another process, skipped")
                return nil
            }
            return resume
        } catch {
            failures.append(Failure(point: point, reason: "\(error)", log: dir.appendingPathComponent(log)))
            return nil
        }
    }

    /// One point after another in this process, with the usual progress output unless quiet (each resumes or starts
    /// as `startDecision` finds it when its turn comes).
    func runInProcess(_ todo: [SweepPoint]) -> [Failure] {
        var failures: [Failure] = []
        for (index, point) in todo.enumerated() {
            let dir = sweep.directory(for: point)
            if RunInterruption.isRequested { break }
            guard let resume = startDecision(point, log: "log.txt", failures: &failures) else { continue }
            if !quiet { note("[\(index + 1)/\(todo.count)] \(resume ? "resuming" : "running") \(point.name)") }
            do {
                try RunDriver(configuration: point.configuration, directory: dir.path, quiet: quiet, json: false,
                          printSummary: !quiet && !json, store: store)
                    .run(resume: resume)
            } catch {
                if RunInterruption.isRequested { note("interrupted: rerun the same command to continue the sweep"); break }
                failures.append(Failure(point: point, reason: "\(error)", log: dir.appendingPathComponent("log.txt")))
                note("✗ \(point.name) failed: \(error)")
            }
        }
        return failures
    }

    /// Starts `engram run` (or `engram resume`) on `point` as a child process of this executable, its output appended to
    /// `<point>/output.log`; `recording` says where it records itself (`--store PATH` or `--no-store`).
    func launchChild(_ point: SweepPoint, resume: Bool, environment: [String: String], recording: [String]) throws
        -> (process: Process, log: FileHandle, url: URL) {
        let executable = Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
        let dir = sweep.directory(for: point)
        let logURL = dir.appendingPathComponent("output.log")
        if !FileManager.default.fileExists(atPath: logURL.path) { FileManager.default.createFile(atPath: logURL.path, contents: nil) }
        let log = try FileHandle(forWritingTo: logURL)
        log.seekToEndOfFile()
        let process = Process()
        process.executableURL = executable
        process.arguments = (resume ? ["resume", dir.path, "--quiet"]
            : ["run", "--config", dir.appendingPathComponent("config.yaml").path, "--out", dir.path, "--quiet"]) + recording
        process.environment = environment
        process.standardOutput = log
        process.standardError = log
        do { try process.run() } catch {
            try? log.close()
            throw ValidationError("cannot start \(executable.path): \(error)")
        }
        return (process, log, logURL)
    }

    /// `jobs` child processes of this executable at a time (`engram run --config …` or `engram resume …`),
    /// each writing its output to `<point>/output.log`.
    func runInProcesses(_ todo: [SweepPoint]) throws -> [Failure] {
        var environment = ProcessInfo.processInfo.environment
        if environment["OPENBLAS_NUM_THREADS"] == nil {
            environment["OPENBLAS_NUM_THREADS"] = String(max(1, ProcessInfo.processInfo.activeProcessorCount / jobs))
        }
        var queue = todo[...]
        var running: [(point: SweepPoint, process: Process, log: FileHandle, url: URL, started: Date)] = []
        var failures: [Failure] = []
        var launched = 0
        let signals = ChildSignalForwarding()
        while !queue.isEmpty || !running.isEmpty {
            if let signal = signals.received, !queue.isEmpty {
                note("signal \(signal): stopping the \(running.count) running point\(running.count == 1 ? "" : "s") (they write a checkpoint first) "
                     + "and starting no more; rerun the same command to continue")
                queue.removeAll()
            }
            while running.count < jobs, let point = queue.popFirst() {
                let dir = sweep.directory(for: point)
                guard let resume = startDecision(point, log: "output.log", failures: &failures) else { continue }
                launched += 1
                let job: (process: Process, log: FileHandle, url: URL)
                do { job = try launchChild(point, resume: resume, environment: environment, recording: store.map { ["--store", $0] } ?? ["--no-store"]) } catch {
                    failures.append(Failure(point: point, reason: "\(error)", log: dir.appendingPathComponent("output.log")))
                    continue
                }
                let (process, log, logURL) = job
                if !quiet { note("[\(launched)/\(todo.count)] \(resume ? "resuming" : "started") \(point.name) (pid \(process.processIdentifier), log \(logURL.path))") }
                running.append((point, process, log, logURL, Date()))
                signals.children.insert(process.processIdentifier)
            }
            Thread.sleep(forTimeInterval: 0.2)
            var still: [(point: SweepPoint, process: Process, log: FileHandle, url: URL, started: Date)] = []
            for job in running {
                if job.process.isRunning { still.append(job); continue }
                signals.children.remove(job.process.processIdentifier)
                try? job.log.close()
                let seconds = Int(Date().timeIntervalSince(job.started).rounded())
                if job.process.terminationReason == .exit && job.process.terminationStatus == 0 {
                    if !quiet {
                        let acc = (try? sweep.state(of: job.point)).flatMap { state -> String? in
                            if case let .finished(r) = state {
                                return r.metrics.averageAccuracy.map {
                                    String(format: "ACC %.2f %%", 100 * $0) + (r.headlineLabel.map { " (\($0))" } ?? "")
                                }
                            }
                            return nil
                        } ?? "done"
                        note("✓ \(job.point.name): \(acc) (\(seconds) s)")
                    }
                } else if signals.received != nil {
                    note("⏸ \(job.point.name): stopped (\(seconds) s); rerun the same command to continue it")
                } else {
                    let how = job.process.terminationReason == .exit ? "exit status \(job.process.terminationStatus)"
                        : "killed by signal \(job.process.terminationStatus)"
                    failures.append(Failure(point: job.point, reason: how, log: job.url))
                    note("✗ \(job.point.name) failed (\(how)); log: \(job.url.path)")
                }
            }
            running = still
        }
        return failures
    }
}

/// SIGINT and SIGTERM while a sweep runs child processes (each in its own process group, so a terminal's Ctrl-C
/// does not reach them): the signal is forwarded to every running child — `engram run` stops after its next
/// checkpoint on SIGINT — and the sweep starts no new point, waits for the children, and exits; a second
/// signal is forwarded as well (the children then stop at once). Nothing is left running.
final class ChildSignalForwarding: @unchecked Sendable {
    private let lock = NSLock()
    private var pids = Set<Int32>()
    private var signal: Int32?
    private var sources: [DispatchSourceSignal] = []

    init() {
        for number in [SIGINT, SIGTERM] {
            Glibc.signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak self] in self?.forward(number) }
            source.resume()
            sources.append(source)
        }
    }

    deinit { for s in sources { s.cancel() } }

    /// The children running now.
    var children: Set<Int32> {
        get { lock.lock(); defer { lock.unlock() }; return pids }
        set { lock.lock(); pids = newValue; lock.unlock() }
    }

    /// The first signal received, if any.
    var received: Int32? { lock.lock(); defer { lock.unlock() }; return signal }

    private func forward(_ number: Int32) {
        lock.lock()
        if signal == nil { signal = number; RunInterruption.request() }
        let targets = pids
        lock.unlock()
        for pid in targets { kill(pid, number) }
    }
}

/// The HTML comparison report of a set of runs, written to `url`.
///
/// Writes the comparison report (per-method bars with error bars, sensitivity curves) of `engram compare`
/// and `engram sweep`; a failure is reported but does not fail the command (the summary files exist).
func writeComparisonReport(runs: [RunResults], failed: [(name: String, reason: String)] = [], to url: URL) {
    guard !runs.isEmpty else { return }
    do {
        var report = ComparisonReport(runs: runs)
        report.failed = failed
        try report.write(to: url)
    } catch {
        FileHandle.standardError.write(Data("warning: could not write \(url.path): \(error)\n".utf8))
    }
}
