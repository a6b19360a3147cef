import EngramTensor
import EngramNN
import EngramData
import EngramCL
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The `engram` executable, as a user runs it (built by `swift test` beside the test bundle).
let engramExecutable: String = {
    if let env = ProcessInfo.processInfo.environment["ENGRAM_BIN"], !env.isEmpty { return env }
    return repositoryRoot + "/.build/release/engram"
}()

/// Starts `engram` with `arguments` (and `environment` added to this process's); output goes to `log`.
func launch(_ arguments: [String], log: URL, environment: [String: String] = [:]) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: engramExecutable)
    process.arguments = arguments
    if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    FileManager.default.createFile(atPath: log.path, contents: nil)
    let handle = try FileHandle(forWritingTo: log)
    handle.seekToEndOfFile()
    process.standardOutput = handle
    process.standardError = handle
    try process.run()
    return process
}

/// Runs `engram` to completion and returns its exit status.
@discardableResult
func engram(_ arguments: [String], log: URL, environment: [String: String] = [:]) throws -> Int32 {
    let p = try launch(arguments, log: log, environment: environment)
    p.waitUntilExit()
    return p.terminationStatus
}

@Suite(.serialized) struct CommandLineTests {
    let common = ["--benchmark", "permuted-mnist", "--tasks", "3", "--epochs", "2", "--hidden", "64", "--batch-size", "32",
                  "--fraction", "0.05", "--seed", "3", "--strategy", "mas", "--quiet", "--data-dir", datasetsRoot]

    func matrix(_ dir: URL) throws -> AccuracyMatrix {
        try JSONDecoder().decode(RunResults.self, from: Data(contentsOf: dir.appendingPathComponent("results.json"))).matrix
    }

    @Test("ENGRAM_BACKEND picks the compute backend, the log says which, and an unknown value is refused in one line")
    func computeBackendFromEnvironment() throws {
        let refused = try temporaryDirectory("engram-cli-backend-refused")
        let log = refused.appendingPathComponent("out.txt")
        #expect(try engram(["run", "--out", refused.appendingPathComponent("run").path] + common, log: log,
                           environment: ["ENGRAM_BACKEND": "cuda"]) != 0)
        let text = try String(contentsOf: log, encoding: .utf8)
        #expect(text.contains("ENGRAM_BACKEND: unknown value 'cuda' (known: onednn, openblas)"), "\(text)")
        #expect(!FileManager.default.fileExists(atPath: refused.appendingPathComponent("run/results.json").path))

        let chosen = try temporaryDirectory("engram-cli-backend-openblas")
        #expect(try engram(["run", "--out", chosen.path] + common, log: chosen.appendingPathComponent("out.txt"),
                           environment: ["ENGRAM_BACKEND": "openblas"]) == 0)
        let runLog = try String(contentsOf: chosen.appendingPathComponent("log.txt"), encoding: .utf8)
        #expect(runLog.contains("compute: OpenBLAS for matrix products and convolutions"), "\(runLog)")
    }

    @Test("a run that fails says why in its own log.txt, not only on the terminal")
    func failureIsLoggedInTheRunDirectory() throws {
        let dir = try temporaryDirectory("engram-cli-diverges")
        // Plain SGD at lr 10⁶ overflows within the first task.
        let flags = common.filter { $0 != "--quiet" } + ["--lr", "1000000", "--optimizer", "sgd", "--momentum", "0"]
        #expect(try engram(["run", "--out", dir.path] + flags, log: dir.appendingPathComponent("out.txt")) != 0)
        let runLog = try String(contentsOf: dir.appendingPathComponent("log.txt"), encoding: .utf8)
        #expect(runLog.contains("error failed: the loss became"), "\(runLog)")
        let terminal = try String(contentsOf: dir.appendingPathComponent("out.txt"), encoding: .utf8)
        #expect(terminal.components(separatedBy: "the loss became").count == 2, "said once on the terminal: \(terminal)")
    }

    @Test("engram sweep --list names a point that failed and the reason its log ends with")
    func sweepListShowsFailures() throws {
        let dir = try temporaryDirectory("engram-cli-sweep-failure")
        let file = dir.appendingPathComponent("sweep.yaml")
        try """
        out: \(dir.appendingPathComponent("runs").path)
        base: {benchmark: permuted-mnist, tasks: 2, hidden: [16], fraction: 0.02, strategy: finetune, data_dir: \(datasetsRoot),
               training: {epochs: 1, batch_size: 32, optimizer: sgd, momentum: 0}}
        grid:
          training.lr: [0.01, 1.0e+38]
        """.write(to: file, atomically: true, encoding: .utf8)
        let log = dir.appendingPathComponent("out.txt")
        #expect(try engram(["sweep", file.path, "--quiet"], log: log) != 0)
        #expect(try engram(["sweep", file.path, "--list"], log: log) == 0)
        let lines = try String(contentsOf: log, encoding: .utf8).split(separator: "\n").suffix(2)
        #expect(lines.first?.contains("finished") == true, "\(lines)")
        #expect(lines.last?.contains("failed: the loss became") == true, "\(lines)")
        // A rerun skips the failed point (it would fail the same way) and still exits with an error; --retry-failed runs it.
        let failedLog = dir.appendingPathComponent("runs/finetune__lr=1e+38/log.txt")
        func attempts() throws -> Int {
            let text = try String(contentsOf: failedLog, encoding: .utf8)
            return text.components(separatedBy: " starting ").count + text.components(separatedBy: " resuming ").count - 2
        }
        #expect(try attempts() == 1)
        let rerun = dir.appendingPathComponent("rerun.txt")
        #expect(try engram(["sweep", file.path], log: rerun) != 0)
        #expect(try String(contentsOf: rerun, encoding: .utf8).contains("finetune__lr=1e+38: failed earlier, skipped (--retry-failed runs it again)"))
        #expect(try attempts() == 1)
        #expect(try engram(["sweep", file.path, "--quiet", "--retry-failed"], log: rerun) != 0)
        #expect(try attempts() == 2)
        // summary.json names the failed point and why, beside the finished one's row.
        let summary = try JSONDecoder().decode(ResultsSummary.self, from: Data(contentsOf: dir.appendingPathComponent("runs/summary.json")))
        #expect(summary.rows.count == 1 && summary.failed?.map(\.name) == ["finetune__lr=1e+38"])
        #expect(summary.failed?.first?.reason.contains("the loss became nan") == true)
        let report = try String(contentsOf: dir.appendingPathComponent("runs/report.html"), encoding: .utf8)
        #expect(report.contains("Failed points") && report.contains("finetune__lr=1e+38"))
    }

    @Test("the engram executable exists (swift test builds it)")
    func executableExists() {
        #expect(FileManager.default.isExecutableFile(atPath: engramExecutable), "build it with swift build -c release or set ENGRAM_BIN")
    }

    @Test("a run killed with SIGKILL at several points and resumed ends bit-identical to an uninterrupted run")
    func sigkillAndResume() throws {
        // Forty epochs a task (a few seconds a run) rather than `common`'s two, so the run is still going when the
        // kills come, however loaded the machine is.
        let flags = common.enumerated().map { $0.offset > 0 && common[$0.offset - 1] == "--epochs" ? "40" : $0.element }
        let reference = try temporaryDirectory("engram-cli-ref")
        #expect(try engram(["run", "--out", reference.path] + flags, log: reference.appendingPathComponent("out.txt")) == 0)
        let expected = try matrix(reference)

        let dir = try temporaryDirectory("engram-cli-killed")
        let log = dir.appendingPathComponent("out.txt")
        let checkpoint = dir.appendingPathComponent(ExperimentRun.checkpointName)
        var kills = 0
        var arguments = ["run", "--out", dir.path] + flags
        for delay in [0.0, 0.05, 0.15] {
            let process = try launch(arguments, log: log)
            let previous = (try? FileManager.default.attributesOfItem(atPath: checkpoint.path)[.modificationDate]) as? Date
            // Wait for a new checkpoint, then kill at an arbitrary moment after it.
            let deadline = Date().addingTimeInterval(120)
            while process.isRunning && Date() < deadline {
                let current = (try? FileManager.default.attributesOfItem(atPath: checkpoint.path)[.modificationDate]) as? Date
                if let current, current != previous { break }
                usleep(2_000)
            }
            usleep(useconds_t(delay * 1_000_000))
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                kills += 1
            }
            arguments = ["resume", dir.path, "--quiet"]
        }
        #expect(kills >= 1, "the run finished before it could be killed; make it longer")
        #expect(try engram(["resume", dir.path, "--quiet"], log: log) == 0)
        #expect(try matrix(dir) == expected)
    }

    @Test("a finished run is recorded in the store --store names and listed by engram runs; a damaged store costs a warning, not the run")
    func runStore() throws {
        let dir = try temporaryDirectory("engram-cli-store")
        let store = dir.appendingPathComponent("runs.sqlite").path
        let log = dir.appendingPathComponent("out.txt")
        #expect(try engram(["run", "--out", dir.appendingPathComponent("a").path, "--store", store] + common, log: log) == 0)
        let listing = dir.appendingPathComponent("list.csv")
        #expect(try engram(["runs", "--store", store, "--where", "strategy=mas", "--where", "hyperparameters.mas.lambda=1",
                            "--format", "csv", "--out", listing.path], log: log) == 0)
        let rows = try String(contentsOf: listing, encoding: .utf8).split(separator: "\n")
        #expect(rows.count == 2 && rows[1].contains("/a,mas,permuted-mnist,domain,3,"), "\(rows)")
        // A damaged store: the run finishes and keeps its directory; the log says why it was not recorded.
        let damaged = dir.appendingPathComponent("damaged.sqlite")
        try Data(repeating: 0x41, count: 4096).write(to: damaged)
        let b = dir.appendingPathComponent("b")
        #expect(try engram(["run", "--out", b.path, "--store", damaged.path] + common, log: log) == 0)
        #expect(FileManager.default.fileExists(atPath: b.appendingPathComponent("results.json").path))
        #expect(try String(contentsOf: b.appendingPathComponent("log.txt"), encoding: .utf8).contains("not recorded in the run store"))
    }

    @Test("engram strategies --json lists every registered strategy with its options and defaults")
    func strategiesAreListed() throws {
        let dir = try temporaryDirectory("engram-cli-strategies")
        let log = dir.appendingPathComponent("out.json")
        #expect(try engram(["strategies", "--json"], log: log) == 0)
        let list = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: log)) as? [[String: Any]])
        #expect(list.compactMap { $0["name"] as? String } == StrategyRegistry.names)
        let l2 = try #require(list.first { $0["name"] as? String == "l2" })
        let options = try #require(l2["hyperparameters"] as? [[String: Any]])
        #expect(options.compactMap { $0["key"] as? String } == ["lambda", "decay"])
        #expect(options.first?["default"] as? Double == 1 && options.first?["flag"] as? String == "--lambda")
        let packnet = try #require(list.first { $0["name"] as? String == "packnet" })
        #expect(packnet["scenarios"] as? [String] == ["task-il"] && packnet["uses_task_id_at_test"] as? Bool == true)
    }

    @Test("invalid flags give one clear message naming the flag and value, and exit with an error")
    func invalidFlags() throws {
        let dir = try temporaryDirectory("engram-cli-bad")
        let log = dir.appendingPathComponent("out.txt")
        for (flags, needle) in [(["--benchmark", "cifar-7"], "cifar-7"),
                                (["--hidden", "400,x"], "--hidden"), (["--fraction", "2"], "--fraction must be in (0, 1]"),
                                (["--strategy", "nope"], "nope"), (["--lr", "0"], "--lr must be positive"), (["--lambda=-1"], "--lambda"),
                                (["--strategy", "packnet", "--prune-ratio", "1.5"], "--prune-ratio"),
                                (["--model", "resnet50"], "resnet50"), (["--milestones", "0,3"], "--milestones"),
                                (["--milestones", "35,x"], "--milestones"), (["--lr-gamma", "1.5"], "--lr-gamma"),
                                (["--per-task-batchnorm", "maybe"], "--per-task-batchnorm"),
                                (["--strategy", "si", "--lambda", "3"], "si has no option 'lambda'"),
                                (["--strategy", "si", "--set", "mas.lambda=1"], "mas is not a strategy of this run"),
                                (["--strategy", "mas", "--set", "mas.lamda=1"], "did you mean 'lambda'"),
                                (["--strategy", "mas", "--mas-output", "foo"], "one of logits, softmax"),
                                (["--strategy", "mas", "--lambda"], "--lambda needs a value"),
                                (["--strategy", "mind+mind-self"], "replace the task loss")] {
            try Data().write(to: log)
            let status = try engram(["run", "--out", dir.path] + flags, log: log)
            let text = try String(contentsOf: log, encoding: .utf8)
            #expect(status != 0)
            #expect(text.contains(needle), "\(flags): \(text)")
            #expect(!text.contains("Fatal error"), "\(flags) crashed: \(text)")
        }
    }
}
