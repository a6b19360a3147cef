import ArgumentParser

@main
struct Engram: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engram",
        abstract: "Continual learning: train on a stream of tasks, protect what was learned, measure forgetting.",
        subcommands: [Run.self, Resume.self, Compare.self, Sweep.self, Report.self, Bench.self, Datasets.self, Inspect.self],
        defaultSubcommand: Run.self
    )
}
