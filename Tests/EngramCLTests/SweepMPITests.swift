import EngramCL
import Foundation
import Testing

/// `engram sweep --mpi` under `mpirun --oversubscribe -n 3` on this machine. Skipped (with a note) where Open MPI's
/// `mpirun` is not installed; `.ci/run` installs it.
@Suite(.serialized) struct SweepMPITests {
    static let mpirun: String? = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// A sweep of six small points (two strategies × three seeds) writing to `out`. With `longEpochs`, the two
    /// seed-2 points train that many epochs instead of `epochs`; a second grid lists them, so they are handed out last.
    static func specification(out: URL, epochs: Int = 1, longEpochs: Int? = nil) throws -> URL {
        let file = out.deletingLastPathComponent().appendingPathComponent("\(out.lastPathComponent).yaml")
        let seeds = if let longEpochs {
            """
            grids:
              - {training.seed: [0, 1], epochs: [\(epochs)]}
              - {training.seed: [2], epochs: [\(longEpochs)]}
            """
        } else {
            """
              training.seed: [0, 1, 2]
            """
        }
        let text = """
            out: \(out.path)
            base:
              benchmark: permuted-mnist
              tasks: 2
              hidden: [32]
              fraction: 0.02
              data_dir: \(datasetsRoot)
              training: {epochs: \(epochs), batch_size: 32}
            grid:
              strategy: [finetune, ewc]
            \(seeds)
            """
        try text.write(to: file, atomically: true, encoding: .utf8)
        return file
    }

    /// `mpirun --oversubscribe -n ranks engram sweep FILE --mpi …`, started; one OpenBLAS thread per process so the
    /// numbers match a local sweep's bit for bit.
    static func launchMPI(_ file: URL, ranks: Int, store: URL, log: URL) throws -> Process {
        try launchMPIJob(ranks: ranks, ["sweep", file.path, "--mpi", "--quiet", "--store", store.path], log: log)
    }

    /// `mpirun --oversubscribe -n ranks engram ARGUMENTS`, started (as root where the tests run so), one OpenBLAS
    /// thread per process; output to `log`.
    static func launchMPIJob(ranks: Int, _ arguments: [String], log: URL) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: mpirun!)
        process.arguments = ["--oversubscribe", "-n", "\(ranks)", engramExecutable] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        environment["OPENBLAS_NUM_THREADS"] = "1"
        process.environment = environment
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return process
    }

    static func matrices(_ out: URL) throws -> [String: [[Double?]]] {
        var found: [String: [[Double?]]] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: out.path) {
            let file = out.appendingPathComponent(name).appendingPathComponent("results.json")
            guard let data = try? Data(contentsOf: file) else { continue }
            found[name] = try JSONDecoder().decode(RunResults.self, from: data).matrix.values
        }
        return found
    }

    @Test("an MPI sweep of 6 points over 3 ranks gives the local sweep's results and records every point once")
    func matchesLocalSweep() throws {
        guard Self.mpirun != nil else { print("SweepMPITests: mpirun not installed, skipped"); return }
        let root = try temporaryDirectory("engram-mpi")
        let local = root.appendingPathComponent("local"), distributed = root.appendingPathComponent("mpi")
        let log = root.appendingPathComponent("out.txt")
        setenv("OPENBLAS_NUM_THREADS", "1", 1)
        #expect(try engram(["sweep", Self.specification(out: local).path, "--quiet", "--no-store"], log: log) == 0)
        let store = root.appendingPathComponent("runs.sqlite")
        let mpi = try Self.launchMPI(Self.specification(out: distributed), ranks: 3, store: store, log: log)
        mpi.waitUntilExit()
        #expect(mpi.terminationStatus == 0, "\(String(decoding: (try? Data(contentsOf: log)) ?? Data(), as: UTF8.self))")
        let expected = try Self.matrices(local), got = try Self.matrices(distributed)
        #expect(expected.count == 6 && got == expected)
        #expect(FileManager.default.fileExists(atPath: distributed.appendingPathComponent("summary.csv").path))
        let listing = root.appendingPathComponent("list.csv")
        #expect(try engram(["runs", "--store", store.path, "--format", "csv", "--out", listing.path], log: log) == 0)
        #expect(try String(contentsOf: listing, encoding: .utf8).split(separator: "\n").count == 7)
    }

    @Test("a rank killed mid-sweep loses only its point: rerunning completes the grid without redoing finished points")
    func killedRankResumes() throws {
        guard Self.mpirun != nil else { print("SweepMPITests: mpirun not installed, skipped"); return }
        let root = try temporaryDirectory("engram-mpi-kill")
        let out = root.appendingPathComponent("mpi"), log = root.appendingPathComponent("out.txt")
        // The four short points finish in seconds; the two long ones (handed out last) run far longer than the wait
        // below can be late by, so the kill lands while they run however loaded the machine is.
        let file = try Self.specification(out: out, epochs: 1, longEpochs: 600)
        let store = root.appendingPathComponent("runs.sqlite")
        let first = try Self.launchMPI(file, ranks: 3, store: store, log: log)
        // Wait until the short points have finished and a long one runs, then kill (SIGKILL) the rank running it.
        let deadline = Date().addingTimeInterval(300)
        var victim: Int32?
        while first.isRunning && Date() < deadline {
            if ((try? Self.matrices(out))?.count ?? 0) >= 4, let child = Self.processes(containing: [out.path, "epochs=600"]).first {
                victim = Self.parent(of: child)
                break
            }
            usleep(20_000)
        }
        #expect(first.isRunning && victim != nil, "the sweep ended before a rank could be killed")
        if let victim { kill(victim, SIGKILL) }
        first.waitUntilExit()
        #expect(first.terminationStatus != 0, "mpirun ends the job when a rank dies")
        let done = try Self.matrices(out)
        #expect(done.count == 4, "the short points finished and the long ones did not: \(done.keys.sorted())")
        let stamps = Dictionary(uniqueKeysWithValues: done.keys.map { name in
            (name, (try? FileManager.default.attributesOfItem(atPath: out.appendingPathComponent(name).appendingPathComponent("results.json").path)[.modificationDate]) as? Date)
        })
        let second = try Self.launchMPI(file, ranks: 3, store: store, log: log)
        second.waitUntilExit()
        #expect(second.terminationStatus == 0)
        #expect(try Self.matrices(out).count == 6)
        for (name, stamp) in stamps {
            let now = (try? FileManager.default.attributesOfItem(atPath: out.appendingPathComponent(name).appendingPathComponent("results.json").path)[.modificationDate]) as? Date
            #expect(now == stamp, "\(name) was run again")
        }
    }

    /// The parent process id of `pid` (the fourth field of /proc/PID/stat, after the parenthesised command name).
    static func parent(of pid: Int32) -> Int32? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/stat") else { return nil }
        let stat = String(decoding: data, as: UTF8.self)
        guard let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 1 ? Int32(fields[1]) : nil
    }

    /// Process ids whose command line holds every one of `parts`.
    static func processes(containing parts: [String]) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            let line = String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
            return parts.allSatisfy { line.contains($0) } && !line.contains("mpirun")
        }.sorted()
    }
}
