import EngramTensor
import EngramNN
import EngramData
import EngramCL
import Foundation
import Testing

/// Interrupted runs, resumed from their checkpoints, end with exactly the numbers of uninterrupted runs.
@Suite(.serialized) struct ResumeTests {
    struct Interrupted: Error {}

    func configuration(_ strategy: String) -> ExperimentConfiguration {
        var c = smallPermutedMNIST(strategy: strategy, tasks: 3, fraction: 0.02)
        c.hidden = [32]
        c.training.epochs = 2
        // EWC's exact Fisher with λ = 100 overflows SGD (lr 0.05, momentum 0.9) here: 2·η_eff·(λ/2)·F > 2.
        if strategy.split(separator: "+").contains("ewc") { c.hyperparameters["ewc", "lambda"] = 10 }
        if strategy == "mas-proximal-step" {
            c.strategy = "mas"
            c.hyperparameters[shared: "penalty_step"] = "proximal"
        }
        return c
    }

    /// Runs `strategy`, stops it right after checkpoint number `stopAfter`, resumes it, returns the final results.
    func interruptedRun(_ strategy: String, stopAfter: Int) throws -> (RunResults, TrainingPosition) {
        let dir = try temporaryDirectory("engram-resume")
        let first = try ExperimentRun(configuration: configuration(strategy), directory: dir)
        var seen = 0
        var stoppedAt = TrainingPosition()
        first.afterCheckpoint = { position in
            seen += 1
            if seen == stopAfter { stoppedAt = position; throw Interrupted() }
        }
        #expect(throws: Interrupted.self) { try first.run() }
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("results.json").path))
        let second = try ExperimentRun(configuration: configuration(strategy), directory: dir)
        return (try second.run(resume: true), stoppedAt)
    }

    /// Every registered strategy is covered by `StrategyContractTests`; these are the variants it does not build:
    /// a composite and a non-default penalty step, on an MLP with four stopping points.
    @Test("a run resumed mid-task or between tasks gives bit-identical results", arguments: ["ewc+si", "mas-proximal-step"])
    func resumedRunsMatch(strategy: String) throws {
        let reference = try ExperimentRun(configuration: configuration(strategy), directory: try temporaryDirectory("engram-ref")).run()
        // Checkpoints: task 0 epoch 1 (mid-task), after task 0, task 1 epoch 1, after task 1, …
        for stop in [1, 2, 3, 4] {
            let (resumed, position) = try interruptedRun(strategy, stopAfter: stop)
            #expect(resumed.matrix == reference.matrix, "\(strategy) stopped at \(position)")
            #expect(resumed.strategyMemoryBytes == reference.strategyMemoryBytes)
        }
    }

    @Test("resuming with a different configuration is refused with a message naming the checkpoint")
    func configurationMismatchIsRefused() throws {
        let dir = try temporaryDirectory("engram-mismatch")
        let run = try ExperimentRun(configuration: configuration("mas"), directory: dir)
        run.afterCheckpoint = { _ in throw Interrupted() }
        #expect(throws: Interrupted.self) { try run.run() }
        var other = configuration("mas")
        other.training.seed = 7
        do {
            try ExperimentRun(configuration: other, directory: dir).run(resume: true)
            Issue.record("resume with another configuration must fail")
        } catch let error as RunError {
            #expect(error.description.contains("checkpoint.safetensors"))
            #expect(error.description.contains("different configuration"))
        }
    }

    @Test("a corrupt checkpoint gives one clear error naming the file")
    func corruptCheckpoint() throws {
        let dir = try temporaryDirectory("engram-corrupt")
        try Data([1, 2, 3]).write(to: dir.appendingPathComponent(ExperimentRun.checkpointName))
        do {
            try ExperimentRun(configuration: configuration("mas"), directory: dir).run(resume: true)
            Issue.record("a corrupt checkpoint must be rejected")
        } catch {
            #expect("\(error)".contains("checkpoint.safetensors"))
        }
    }
}

/// What a finished run leaves behind in its process.
@Suite struct ExperimentRunLifetimeTests {
    final class Sentinel {}

    @Test("a finished run releases its trainer (and with it the model and data): a process running many runs does not grow")
    func finishedRunReleasesItsTrainer() throws {
        weak var released: Sentinel?
        do {
            let sentinel = Sentinel()
            released = sentinel
            let run = try ExperimentRun(configuration: smallPermutedMNIST(strategy: "finetune", tasks: 2, fraction: 0.02),
                                        directory: try temporaryDirectory("engram-lifetime"))
            // The trainer holds this closure, so the sentinel lives exactly as long as the trainer.
            run.onEvent = { [sentinel] _ in _ = sentinel }
            try run.run()
        }
        #expect(released == nil, "the trainer of a finished run is still alive")
    }
}
