import Engram
import ArgumentParser

@main
struct Engram: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engram",
        abstract: "Continual learning: train on a stream of tasks, protect what was learned, measure forgetting.",
        subcommands: [Run.self, Resume.self, Compare.self, Sweep.self, Report.self, Analyze.self, Runs.self, Bench.self, Datasets.self, Inspect.self, Strategies.self],
        defaultSubcommand: Run.self
    )

    /// Parses the command line with the strategies' paper-named flags (`--lambda 1`) turned into `--set` values.
    static func main() {
        main(StrategyFlags.rewrite(Array(CommandLine.arguments.dropFirst())))
    }
}
