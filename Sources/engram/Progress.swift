import Engram
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The run's `log.txt`: lines are appended until a write fails (e.g. a full disk); then one line on standard error
/// says so and the log goes on on the console only — a failed log write never stops (or crashes) the run.
final class LogFile: @unchecked Sendable {
    private let handle: FileHandle
    private let path: String
    private let lock = NSLock()
    private var failed = false

    init(handle: FileHandle, path: String) {
        self.handle = handle
        self.path = path
    }

    func write(_ line: String) {
        lock.lock()
        defer { lock.unlock() }
        guard !failed else { return }
        do { try handle.write(contentsOf: Data(line.utf8)) } catch {
            failed = true
            let reason = (error as NSError).localizedFailureReason ?? (error as NSError).localizedDescription
            FileHandle.standardError.write(Data("engram: cannot write \(path) (\(reason)); logging to the console only\n".utf8))
        }
    }
}

/// Writes log lines to standard error (unless quiet) and to the run's `log.txt`.
struct RunLogHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info
    let file: LogFile?
    let console: Bool

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let stamp = ISO8601DateFormatter().string(from: Date())
        let line = "\(stamp) \(event.level) \(event.message)\n"
        file?.write(line)
        if console { FileHandle.standardError.write(Data("\(event.message)\n".utf8)) }
    }
}

/// Shows training progress: a live bar on a terminal, periodic plain lines otherwise.
final class ProgressReporter {
    let logger: Logger
    let quiet: Bool
    let interactive: Bool
    let taskCount: Int
    let epochs: Int?
    private var taskStart = Date()
    private var lastPrint = Date.distantPast
    private var samplesInTask = 0
    private var batchesDoneInTask = 0
    private var batchesPerEpoch = 1

    init(logger: Logger, quiet: Bool, taskCount: Int, epochs: Int?) {
        self.logger = logger
        self.quiet = quiet
        self.taskCount = taskCount
        self.epochs = epochs
        interactive = isatty(STDERR_FILENO) == 1
    }

    func handle(_ event: TrainingEvent) {
        switch event {
        case let .taskStarted(task, of):
            taskStart = Date()
            samplesInTask = 0
            batchesDoneInTask = 0
            logger.info("task \(task + 1)/\(of): training")
        case let .batchFinished(task, epoch, batch, batches, loss, samples):
            samplesInTask += samples
            batchesDoneInTask += 1
            batchesPerEpoch = batches
            guard !quiet else { return }
            let now = Date()
            let interval = interactive ? 0.1 : 10
            guard now.timeIntervalSince(lastPrint) >= interval || batch == batches - 1 else { return }
            lastPrint = now
            let elapsed = max(now.timeIntervalSince(taskStart), 1e-9)
            let rate = Double(samplesInTask) / elapsed
            let total = batches * (epochs ?? 1)
            let remaining = Double(max(total - batchesDoneInTask, 0)) * elapsed / Double(max(batchesDoneInTask, 1))
            let fraction = Double(batch + 1) / Double(batches)
            let width = 24
            let filled = Int(fraction * Double(width))
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            let text = "task \(task + 1)/\(taskCount) epoch \(epoch + 1)\(epochs.map { "/\($0)" } ?? "") "
                + "[\(bar)] \(batch + 1)/\(batches) loss \(String(format: "%.4f", loss)) "
                + "\(Int(rate)) samples/s ETA \(Int(remaining.rounded()))s"
            if interactive {
                FileHandle.standardError.write(Data("\r\u{1B}[2K\(text)".utf8))
            } else {
                logger.info("\(text)")
            }
        case let .epochFinished(task, epoch, meanLoss):
            if interactive && !quiet { FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8)) }
            logger.info("task \(task + 1) epoch \(epoch + 1): mean loss \(String(format: "%.4f", meanLoss))")
        case let .taskFinished(task, accuracies, seconds):
            let shown = accuracies.prefix(task + 1).map { String(format: "%.2f", 100 * $0) }.joined(separator: " ")
            logger.info("task \(task + 1) done in \(String(format: "%.1f", seconds)) s; accuracy on tasks 1…\(task + 1) (%): \(shown)")
        }
    }
}
