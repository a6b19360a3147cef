import ArgumentParser

@main
struct Engram: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engram",
        abstract: "Continual learning: train on a stream of tasks, protect what was learned, measure forgetting.",
        subcommands: [Run.self, Resume.self, Bench.self, Inspect.self, Report.self],
        defaultSubcommand: Run.self
    )
}
