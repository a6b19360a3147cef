import Engram
import ArgumentParser
import Foundation
#if ENGRAM_MPI
import CMPI
#endif

/// `engram sweep FILE --mpi` under `mpirun -n N` (or Slurm's `srun`): the grid's points spread over the ranks of any
/// number of machines. Rank 0 hands out points one at a time as ranks ask (long and short runs mix), runs points
/// itself between answering, records every finished point in the run store (ranks may share a network file system
/// on which SQLite is unsafe) and writes the summary and report once every rank has stopped. Every point runs as a
/// child process (`engram run` / `engram resume`) writing its directory exactly as a local sweep does, so a rank
/// that dies loses only its current point, and rerunning the same command resumes the grid: finished points are
/// skipped, interrupted ones continue from their checkpoint. OpenBLAS gets the cores of a machine divided among the
/// ranks on it (`OMPI_COMM_WORLD_LOCAL_SIZE`), unless OPENBLAS_NUM_THREADS is set.
enum SweepMPI {
    /// Message tags: a rank asks for work (value: −1, or the point it finished ×2 + 1 if it failed), rank 0 assigns
    /// one (value: the point's index ×2 + 1 to resume it, −1 to stop).
    static let request: Int32 = 1, assignment: Int32 = 2

    static var available: Bool {
        #if ENGRAM_MPI
        return true
        #else
        return false
        #endif
    }

    /// The environment of the points' processes: OpenBLAS threads = this machine's cores ÷ the ranks on it.
    static func childEnvironment() -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        if let threads = threadsPerRank() { environment["OPENBLAS_NUM_THREADS"] = String(threads) }
        // Children are not MPI processes: without this, Open MPI's variables make them try to join the job.
        for key in environment.keys where key.hasPrefix("OMPI_") || key.hasPrefix("PMIX_") { environment[key] = nil }
        // A point stops when its rank dies (ParentWatch), so a rerun finds no orphan holding the point's directory.
        environment["ENGRAM_EXIT_WITH_PARENT"] = "1"
        return environment
    }

    /// OpenBLAS threads for each rank: this machine's cores ÷ the ranks on it (`OMPI_COMM_WORLD_LOCAL_SIZE`, or
    /// `SLURM_NTASKS_PER_NODE`); nil when OPENBLAS_NUM_THREADS is set (the user's choice stands).
    static func threadsPerRank() -> Int? {
        let environment = ProcessInfo.processInfo.environment
        guard environment["OPENBLAS_NUM_THREADS"] == nil else { return nil }
        let local = environment["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap(Int.init) ?? environment["SLURM_NTASKS_PER_NODE"].flatMap(Int.init) ?? 1
        return max(1, ProcessInfo.processInfo.activeProcessorCount / max(local, 1))
    }

    /// Waits (up to `seconds`) until no process holds `directory`'s run lock — a point of a killed job still stopping;
    /// true when it is free.
    static func waitUntilFree(_ directory: URL, seconds: Double = 30) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while RunDirectoryLock.isHeld(in: directory) {
            if Date() > deadline { return false }
            usleep(100_000)
        }
        return true
    }
}

#if ENGRAM_MPI
extension SweepExecutor {
    /// Joins the MPI job: this process's rank and the number of ranks.
    static func joinMPI() -> (rank: Int, size: Int) {
        var provided: Int32 = 0
        MPI_Init_thread(nil, nil, Int32(MPI_THREAD_SINGLE), &provided)
        var rank: Int32 = 0, size: Int32 = 1
        MPI_Comm_rank(engram_mpi_comm_world(), &rank)
        MPI_Comm_size(engram_mpi_comm_world(), &size)
        return (Int(rank), Int(size))
    }

    static func leaveMPI() { MPI_Finalize() }

    static func send(_ value: Int64, to rank: Int32, tag: Int32) {
        var v = value
        MPI_Send(&v, 1, engram_mpi_int64(), rank, tag, engram_mpi_comm_world())
    }

    /// A rank other than 0: asks for a point, runs it, reports it, until told to stop.
    func work(rank: Int) -> [Failure]? {
        let environment = SweepMPI.childEnvironment()
        var report: Int64 = -1
        while true {
            Self.send(report, to: 0, tag: SweepMPI.request)
            var assigned: Int64 = 0
            MPI_Recv(&assigned, 1, engram_mpi_int64(), 0, SweepMPI.assignment, engram_mpi_comm_world(), engram_mpi_status_ignore())
            guard assigned >= 0 else { return nil }
            let point = sweep.points[Int(assigned / 2)]
            let ok = (try? runChild(point, resume: assigned % 2 == 1, environment: environment, rank: rank)) ?? false
            report = (assigned / 2) * 2 + (ok ? 0 : 1)
        }
    }

    /// Runs one point as a child process and waits for it; true when it finished.
    func runChild(_ point: SweepPoint, resume: Bool, environment: [String: String], rank: Int) throws -> Bool {
        guard SweepMPI.waitUntilFree(sweep.directory(for: point)) else {
            note("rank \(rank): \(point.name) is held by another process; not started")
            return false
        }
        let process = try launchChild(point, resume: resume, environment: environment, recording: ["--no-store"])
        if !quiet { note("rank \(rank): \(resume ? "resuming" : "started") \(point.name)") }
        process.process.waitUntilExit()
        try? process.log.close()
        return isDone(point, child: process.process)
    }

    /// Whether `point` is done once its `child` exited: the child finished it, or the point's directory holds a finished
    /// run of its configuration anyway — a process of an earlier, killed job (a rank outliving its `mpirun` for a
    /// moment) completed it while this job started it again, and the child refused the finished directory.
    func isDone(_ point: SweepPoint, child: Process) -> Bool {
        if child.terminationReason == .exit && child.terminationStatus == 0 { return true }
        if case .finished = (try? sweep.state(of: point)) { return true }
        return false
    }

    /// Rank 0: answers requests, runs points itself in between, records finished points in the store.
    func coordinate(_ todo: [(SweepPoint, resume: Bool)], ranks: Int) throws -> [Failure] {
        let index = Dictionary(uniqueKeysWithValues: sweep.points.enumerated().map { ($1.name, $0) })
        var queue = todo[...]
        var failures: [Failure] = []
        var stopped = 0
        let environment = SweepMPI.childEnvironment()
        var own: (point: SweepPoint, process: Process, log: FileHandle, url: URL)?
        let recorder = store.flatMap { try? RunStore(path: $0) }
        func finished(_ point: SweepPoint, ok: Bool, rank: Int) {
            let dir = sweep.directory(for: point)
            if ok {
                if let recorder { do { try recorder.record(directory: dir) } catch { note("\(point.name): not recorded in the run store: \(error)") } }
                if !quiet { note("✓ \(point.name) (rank \(rank))") }
            } else {
                failures.append(Failure(point: point, reason: "failed on rank \(rank)", log: dir.appendingPathComponent("output.log")))
                note("✗ \(point.name) failed on rank \(rank); log: \(dir.appendingPathComponent("output.log").path)")
            }
        }
        while !queue.isEmpty || own != nil || stopped < ranks - 1 {
            // Requests first: a waiting rank is an idle machine.
            var flag: Int32 = 0
            var status = MPI_Status()
            MPI_Iprobe(engram_mpi_any_source(), SweepMPI.request, engram_mpi_comm_world(), &flag, &status)
            if flag != 0 {
                var report: Int64 = 0
                MPI_Recv(&report, 1, engram_mpi_int64(), status.MPI_SOURCE, SweepMPI.request, engram_mpi_comm_world(), &status)
                if report >= 0 { finished(sweep.points[Int(report / 2)], ok: report % 2 == 0, rank: Int(status.MPI_SOURCE)) }
                if let (point, resume) = queue.popFirst() {
                    Self.send(Int64(index[point.name]!) * 2 + (resume ? 1 : 0), to: status.MPI_SOURCE, tag: SweepMPI.assignment)
                } else {
                    Self.send(-1, to: status.MPI_SOURCE, tag: SweepMPI.assignment)
                    stopped += 1
                }
                continue
            }
            if let job = own, !job.process.isRunning {
                try? job.log.close()
                finished(job.point, ok: isDone(job.point, child: job.process), rank: 0)
                own = nil
            }
            if own == nil, let (point, resume) = queue.popFirst() {
                guard SweepMPI.waitUntilFree(sweep.directory(for: point)) else {
                    finished(point, ok: false, rank: 0)
                    continue
                }
                let job = try launchChild(point, resume: resume, environment: environment, recording: ["--no-store"])
                if !quiet { note("rank 0: \(resume ? "resuming" : "started") \(point.name)") }
                own = (point, job.process, job.log, job.url)
                continue
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return failures
    }
}
#endif
