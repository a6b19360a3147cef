import Engram
import ArgumentParser
import Foundation

/// `engram compare`: several strategies on the same stream and seeds, one summary table.
struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run several strategies on the same stream and seeds; summarize them as mean ± std over seeds.",
        discussion: """
        Every (strategy, seed) runs into DIR/<strategy>__seed=<s>/ with the experiment given by the other flags \
        (or --config). Rerunning skips finished runs and resumes interrupted ones. Prints ACC, forgetting, BWT \
        and FWT (%) per strategy and writes DIR/summary.csv and DIR/summary.json. Hyper-parameter flags \
        (--lambda …) apply to every strategy that reads them; unset ones take each strategy's default.

        """ + Strategies.flagsHelp)

    @Option(help: "Comma-separated strategies (combine with +, e.g. ewc+si).")
    var strategies: String = "finetune,ewc,si,mas"

    @Option(help: "Comma-separated seeds.")
    var seeds: String = "0"

    @OptionGroup var experiment: ExperimentOptions

    @Option(help: "Output directory.")
    var out: String = "runs/compare"

    @Option(help: "How many runs at once, each in its own process.")
    var jobs: Int = 1

    @Flag(help: "Only errors and the summary.")
    var quiet = false

    @Flag(help: "Print the summary as JSON on standard output.")
    var json = false

    @OptionGroup var store: StoreOptions

    func validate() throws {
        guard jobs >= 1 else { throw ValidationError("--jobs must be at least 1, got \(jobs)") }
        _ = try parsedStrategies()
        _ = try parsedSeeds()
    }

    func parsedStrategies() throws -> [String] {
        let names = strategies.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !names.isEmpty else { throw ValidationError("--strategies must name at least one strategy") }
        guard Set(names).count == names.count else { throw ValidationError("--strategies lists a strategy twice: '\(strategies)'") }
        for name in names {
            do { _ = try StrategyRegistry.parts(of: name) } catch let error as StrategyError { throw ValidationError("--strategies: \(error.description)") }
        }
        return names
    }

    func parsedSeeds() throws -> [UInt64] {
        let parts = seeds.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let values = parts.compactMap { UInt64($0) }
        guard !parts.isEmpty, values.count == parts.count else {
            throw ValidationError("--seeds must be non-negative integers separated by commas, e.g. 0,1,2; got '\(seeds)'")
        }
        guard Set(values).count == values.count else { throw ValidationError("--seeds lists a seed twice: '\(seeds)'") }
        return values
    }

    func run() throws {
        let specification = SweepSpecification(
            base: try experiment.resolve(strategies: try parsedStrategies()),
            grid: ["strategy": try parsedStrategies().map { .string($0) },
                   SweepSpecification.seedKey: try parsedSeeds().map { .int(Int($0)) }])
        let points: [SweepPoint]
        do { points = try specification.expand() } catch let error as SweepError { throw ValidationError(error.description) }
        let sweep = SweepDirectory(points: points, directory: URL(fileURLWithPath: out))
        try FileManager.default.createDirectory(at: sweep.directory, withIntermediateDirectories: true)
        try SweepExecutor(sweep: sweep, jobs: jobs, quiet: quiet, json: json, store: store.path).run(sensitivity: false)
    }
}
