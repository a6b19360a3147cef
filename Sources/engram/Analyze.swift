import Engram
import ArgumentParser
import Foundation

/// `engram analyze`: the loss landscape around a run's checkpoints.
struct Analyze: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Look at the loss landscape of a run's checkpoints: linear interpolation between two, Hessian sharpness at one.",
        discussion: """
        Checkpoints are a run's checkpoint.safetensors, or the ones a run keeps after every task with \
        --keep-task-checkpoints (RUN/checkpoints/task-<t>.safetensors). Each analysis rebuilds the run's model, data \
        and strategy from the configuration stored in the checkpoint.
        """,
        subcommands: [Interpolate.self, SharpnessCommand.self])

    /// Where an analysis of `checkpoint` is written by default: its run directory's `analysis/` folder.
    static func defaultFolder(for checkpoint: URL) -> URL {
        var folder = checkpoint.deletingLastPathComponent()
        if folder.lastPathComponent == "checkpoints" { folder = folder.deletingLastPathComponent() }
        return folder.appendingPathComponent("analysis")
    }

    /// A checkpoint's name in the files an analysis writes: its run directory's name, and the task for a kept task
    /// checkpoint (`finetune-task-1`), so analyses of several runs' checkpoints do not overwrite each other.
    static func stem(_ url: URL) -> String {
        let name = url.deletingPathExtension().lastPathComponent
        let folder = url.deletingLastPathComponent()
        if name == "checkpoint" { return folder.lastPathComponent }
        if folder.lastPathComponent == "checkpoints" { return folder.deletingLastPathComponent().lastPathComponent + "-" + name }
        return name
    }

    static func write<T: Encodable>(_ value: T, to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        do {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try encoder.encode(value).write(to: url, options: .atomic)
        } catch { throw ValidationError("cannot write \(url.path): \(error.localizedDescription)") }
    }

    static func load(_ path: String, dataDirectory: String?) throws -> AnalyzedCheckpoint {
        let url = URL(fileURLWithPath: path).standardizedFileURL
        guard FileManager.default.fileExists(atPath: url.path) else { throw ValidationError("checkpoint \(path) does not exist") }
        do { return try AnalyzedCheckpoint(contentsOf: url, dataDirectory: dataDirectory) } catch {
            throw ValidationError("\(error)")
        }
    }
}

extension Analyze {
    struct Interpolate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Loss and accuracy of each task along the line (1 − α)θ_A + αθ_B between two checkpoints.",
            discussion: """
            Writes a table, interpolate-A-B.json and interpolate-A-B.html (inline SVG) to --out (default: A's run \
            directory/analysis; `engram report` on that run shows them). α = 0 and α = 1 reproduce A's and B's \
            accuracies exactly. Both checkpoints must come from runs of the same stream and network (the strategy may \
            differ: a multitask and a continual run, say).
            """)

        @Argument(help: "Checkpoint A (α = 0).") var a: String
        @Argument(help: "Checkpoint B (α = 1).") var b: String
        @Option(help: "Tasks to evaluate, numbered from 1, e.g. 1,2 (default: every task of the stream).") var tasks: String?
        @Option(parsing: .unconditional, help: "Points on the line, evenly spaced from α = 0 to 1.") var points = 11
        @Option(help: "Folder for the JSON and HTML (default: A's run directory/analysis).") var out: String?
        @Option(help: "Directory searched first for the datasets (default: the runs').") var dataDir: String?
        @Flag(help: "Print the JSON instead of the table.") var json = false

        func validate() throws {
            guard points >= 2 else { throw ValidationError("--points must be at least 2, got \(points)") }
        }

        func run() throws {
            let first = try Analyze.load(a, dataDirectory: dataDir), second = try Analyze.load(b, dataDirectory: dataDir)
            let taskCount = first.trainer.context.stream.taskCount
            let chosen: [Int]
            if let tasks {
                let parsed = tasks.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
                guard !parsed.isEmpty, parsed.allSatisfy({ $0.map { (1...taskCount).contains($0) } ?? false }) else {
                    throw ValidationError("--tasks must be task numbers from 1 to \(taskCount) separated by commas, got '\(tasks)'")
                }
                chosen = parsed.map { $0! - 1 }
            } else { chosen = Array(0..<taskCount) }
            let alphas = (0..<points).map { Double($0) / Double(points - 1) }
            var result: Interpolation
            do { result = try Interpolation.measure(from: first, to: second, alphas: alphas, tasks: chosen) } catch {
                throw ValidationError("\(error)")
            }
            let folder = out.map { URL(fileURLWithPath: $0) } ?? Analyze.defaultFolder(for: first.url)
            result.from = relativePath(of: first.url, from: folder)
            result.to = relativePath(of: second.url, from: folder)
            let name = "interpolate-\(Analyze.stem(first.url))-\(Analyze.stem(second.url))"
            try Analyze.write(result, to: folder.appendingPathComponent(name + ".json"))
            do { try InterpolationReport(result).write(to: folder.appendingPathComponent(name + ".html")) } catch {
                throw ValidationError("\(error)")
            }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(result), as: UTF8.self))
                return
            }
            print("α     " + result.tasks.map { "task \($0) loss / acc".padding(toLength: 24, withPad: " ", startingAt: 0) }.joined())
            for (k, alpha) in alphas.enumerated() {
                print(String(format: "%-6.2f", alpha) + result.tasks.indices.map { j in
                    String(format: "%-8.4f / %6.2f %%        ", result.loss[k][j], 100 * result.accuracy[k][j])
                }.joined())
            }
            print("wrote \(folder.appendingPathComponent(name + ".json").path) and .html")
        }
    }

    struct SharpnessCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "sharpness",
            abstract: "Largest Hessian eigenvalues (power iteration) and trace (Hutchinson) of one task's training loss at a checkpoint.",
            discussion: """
            The loss is the mean cross-entropy of --samples training samples of the task, the model in evaluation mode. \
            Hessian-vector products are central differences of gradients, (∇L(θ + εv) − ∇L(θ − εv)) / 2ε along unit \
            vectors, with ε = --step (Engram's autodiff has no second backward pass). Writes \
            sharpness-<checkpoint>-task<t>.json to --out (default: the run directory/analysis).
            """)

        @Argument(help: "The checkpoint.") var checkpoint: String
        @Option(parsing: .unconditional, help: "The task whose loss is measured, numbered from 1.") var task: Int
        @Option(parsing: .unconditional, help: "Eigenvalues to find (largest in magnitude first).") var top = 3
        @Option(parsing: .unconditional, help: "Training samples of the task in the loss.") var samples = 1000
        @Option(parsing: .unconditional, help: "Power iterations per eigenvalue at most.") var iterations = 100
        @Option(parsing: .unconditional, help: "Relative change of the Rayleigh quotient that ends the power iteration.") var tolerance = 1e-4
        @Option(parsing: .unconditional, help: "Rademacher vectors of Hutchinson's trace estimate.") var hutchinson = 50
        @Option(parsing: .unconditional, help: "ε of the central difference of gradients.") var step: Float = 1e-3
        @Option(parsing: .unconditional, help: "Seed of the random starting and probe vectors.") var seed: UInt64 = 0
        @Option(help: "Folder for the JSON (default: the run directory/analysis).") var out: String?
        @Option(help: "Directory searched first for the datasets (default: the run's).") var dataDir: String?
        @Flag(help: "Print the JSON instead of the summary.") var json = false

        func validate() throws {
            guard top >= 1 else { throw ValidationError("--top must be at least 1, got \(top)") }
            guard samples >= 1 else { throw ValidationError("--samples must be at least 1, got \(samples)") }
            guard iterations >= 1 else { throw ValidationError("--iterations must be at least 1, got \(iterations)") }
            guard tolerance > 0 else { throw ValidationError("--tolerance must be positive, got \(tolerance)") }
            guard hutchinson >= 1 else { throw ValidationError("--hutchinson must be at least 1, got \(hutchinson)") }
            guard step > 0 && step.isFinite else { throw ValidationError("--step must be a positive number, got \(step)") }
        }

        func run() throws {
            let loaded = try Analyze.load(checkpoint, dataDirectory: dataDir)
            let count = loaded.trainer.context.stream.taskCount
            guard (1...count).contains(task) else { throw ValidationError("--task must be from 1 to \(count), got \(task)") }
            var result: Sharpness
            do {
                result = try Sharpness.measure(loaded, task: task - 1, samples: samples, top: top, maxIterations: iterations,
                                               tolerance: tolerance, hutchinsonSamples: hutchinson, step: step, seed: seed)
            } catch { throw ValidationError("\(error)") }
            let folder = out.map { URL(fileURLWithPath: $0) } ?? Analyze.defaultFolder(for: loaded.url)
            let target = folder.appendingPathComponent("sharpness-\(Analyze.stem(loaded.url))-task\(task).json")
            result.checkpoint = relativePath(of: loaded.url, from: folder)
            try Analyze.write(result, to: target)
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(result), as: UTF8.self))
                return
            }
            print("task \(task) of \(loaded.url.path): loss \(String(format: "%.4f", result.loss)) on \(result.samples) training samples, \(result.parameters) parameters")
            for (k, value) in result.eigenvalues.enumerated() {
                print(String(format: "  λ%d = %.4g  (residual ‖Hv − λv‖ %.2g, %d iterations", k + 1, value, result.residuals[k], result.iterations[k])
                      + (result.converged[k] ? ")" : "; not converged: raise --iterations — a Rayleigh quotient, at most the true λ₁)"))
            }
            print(String(format: "  tr(H) ≈ %.4g ± %.2g (Hutchinson, %d vectors)", result.trace, result.traceStandardError ?? .nan, result.hutchinsonSamples))
            print("  Hessian-vector products: central difference of gradients, ε = \(result.finiteDifferenceStep)")
            print("wrote \(target.path)")
        }
    }
}
