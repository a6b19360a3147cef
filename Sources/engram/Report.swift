import Engram
import ArgumentParser
import Foundation

/// `engram report DIR…`: (re)generates a self-contained HTML report.
struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a self-contained HTML report (inline SVG charts, no network) of one run or a comparison of several.",
        discussion: """
        One run directory: writes DIR/report.html (accuracy-matrix heatmap, per-task accuracy over the stream, \
        ACC/forgetting/BWT/FWT, time and memory per task, the configuration). Several run directories, or a \
        directory holding run subdirectories: writes a comparison (per-method bars with mean ± std over seeds, \
        summary table, ACC against the memory each method holds besides the network, sensitivity curves when a hyper-parameter such as λ varies) to --out \
        (default: the first directory's parent/report.html).
        """)

    @Argument(help: "Run directories (holding results.json), or directories that hold run directories.")
    var directories: [String]

    @Option(help: "Where to write a comparison report (default: the first directory's parent/report.html).")
    var out: String?

    @Option(help: "The report's title.")
    var title: String?

    func validate() throws {
        guard !directories.isEmpty else { throw ValidationError("give at least one run directory") }
    }

    func run() throws {
        let urls = directories.map { URL(fileURLWithPath: $0).standardizedFileURL }
        if urls.count == 1, RunDirectory.isRun(urls[0]) {
            var report = try RunReport(directory: urls[0])
            if let title { report.title = title }
            let target = out.map { URL(fileURLWithPath: $0) } ?? urls[0].appendingPathComponent(RunDirectory.reportName)
            try report.write(to: target)
            print("wrote \(target.path)")
            return
        }
        let runs = try RunDirectory.expand(urls)
        let target = out.map { URL(fileURLWithPath: $0) }
            ?? (urls.count == 1 && !RunDirectory.isRun(urls[0]) ? urls[0] : urls[0].deletingLastPathComponent())
                .appendingPathComponent(RunDirectory.reportName)
        try ComparisonReport(directories: runs, title: title).write(to: target)
        print("wrote \(target.path) (\(runs.count) runs)")
    }
}
