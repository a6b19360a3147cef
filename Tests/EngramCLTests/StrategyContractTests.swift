import EngramTensor
import EngramNN
import EngramData
import EngramCL
import Foundation
import Testing

/// The properties every registered strategy shares, checked over the whole registry (a new method is covered by
/// registering it): it builds with its declared defaults, its declaration is consistent, a run stopped mid-task or
/// between tasks resumes bit-identically, and its checkpointed state round-trips.
@Suite(.serialized) struct StrategyContractTests {
    /// A small task-incremental Split MNIST run every strategy supports, with two epochs per task (so there are
    /// mid-task checkpoints) and each method's slow phases shortened.
    static func configuration(_ strategy: String) -> ExperimentConfiguration {
        var c = smallSplitMNIST(strategy: strategy, fraction: 0.01)
        // A small convolutional network with one shared BatchNorm: resume must restore the normalization modes too.
        c.model = "cnn"
        c.width = 4
        c.hidden = [16]
        c.perTaskBatchNorm = false
        // A method that converts only MLPs (SRC) gets a small one; one without a task-incremental form (REMIND) the
        // class-incremental stream.
        let descriptor = StrategyRegistry.descriptor(named: strategy)!
        if let models = descriptor.models, !models.contains("cnn") { c.model = models[0] }
        if !descriptor.scenarios.contains(.taskIncremental) { c.scenario = "class" }
        c.training.epochs = 2
        c.training.batchSize = 16
        let options = StrategyRegistry.descriptor(named: strategy)!.hyperparameters.map(\.key)
        if options.contains("teacher_epochs") { c.hyperparameters[strategy, "teacher_epochs"] = 1 }
        if options.contains("ae_epochs") { c.hyperparameters[strategy, "ae_epochs"] = 1 }
        if options.contains("fitting_epochs") { c.hyperparameters[strategy, "fitting_epochs"] = 2 }
        if options.contains("duration") { c.hyperparameters[strategy, "duration"] = 300 }
        if options.contains("base_epochs") { c.hyperparameters[strategy, "base_epochs"] = 1; c.hyperparameters[strategy, "replay_samples"] = 4 }
        if strategy == "src" { c.hyperparameters[strategy, "thresholds"] = .list([14.5, 38]) }
        // EWC's exact Fisher with λ = 100 overflows SGD (lr 0.05, momentum 0.9) here: 2·η_eff·(λ/2)·F > 2.
        if strategy == "ewc" || strategy == "online-ewc" { c.hyperparameters[strategy, "lambda"] = 10 }
        // MAS's Ω on convolutions before BatchNorm is large (≈ 10³): λ = 1 overflows the gradient step here.
        if strategy == "mas" || strategy == "mas-local" { c.hyperparameters[strategy, "lambda"] = 0.01 }
        return c
    }

    @Test("every strategy builds from its declared defaults, and every default passes its own checks",
          arguments: StrategyRegistry.names)
    func buildsFromDefaults(strategy: String) throws {
        let descriptor = try #require(StrategyRegistry.descriptor(named: strategy))
        let made = try descriptor.makeWithDefaults()
        #expect(made.name == strategy)
        for spec in descriptor.hyperparameters {
            if let value = spec.defaultValue { #expect(try spec.checked(value, name: spec.key) == value, "\(strategy).\(spec.key)") }
            else { #expect(spec.defaultDescription != nil, "\(strategy).\(spec.key) has neither a default nor a description") }
            #expect(!spec.help.isEmpty)
        }
        #expect(Set(descriptor.hyperparameters.map(\.key)).count == descriptor.hyperparameters.count, "keys are unique")
        #expect(!descriptor.scenarios.isEmpty)
        #expect(descriptor.scenarios.contains(.taskIncremental) || !descriptor.usesTaskIdentityAtTest)
    }

    @Test("a run stopped mid-task or between tasks resumes to bit-identical results", arguments: StrategyRegistry.names)
    func resumesBitIdentically(strategy: String) throws {
        let config = Self.configuration(strategy)
        for position in [TrainingPosition(task: 1, epoch: 1), TrainingPosition(task: 2, epoch: 0)] {
            let (straight, resumed) = try uninterruptedAndResumed(config, interruptAt: position)
            #expect(straight == resumed, "\(strategy) interrupted at task \(position.task), epoch \(position.epoch)")
        }
    }

    @Test("the state a strategy saves after two tasks loads into a fresh instance that saves the same state",
          arguments: StrategyRegistry.names)
    func stateRoundTrips(strategy: String) throws {
        let config = Self.configuration(strategy)
        let original = try StrategyRegistry.make(strategy, config.hyperparameters)
        let trainer = try makeTrainer(config, strategy: original)
        for task in 0..<2 { try trainer.train(from: TrainingPosition(task: task)) }
        let saved = try original.saveState()
        let copy = try StrategyRegistry.make(strategy, config.hyperparameters)
        try copy.loadState(saved, context: trainer.context)
        let again = try copy.saveState()
        #expect(Set(again.tensors.keys) == Set(saved.tensors.keys), "\(strategy): tensor names")
        for (name, tensor) in saved.tensors {
            #expect(again.tensors[name]?.shape == tensor.shape && again.tensors[name]?.scalars == tensor.scalars, "\(strategy): \(name)")
        }
        #expect(again.records == saved.records, "\(strategy): records")
        #expect(copy.memoryBytes == original.memoryBytes)
    }

    @Test("a composite of two methods that both replace the task loss is refused, naming both")
    func twoCriteriaAreRefused() {
        #expect {
            _ = try StrategyRegistry.make("mind+mind-self")
        } throws: { error in
            "\(error)".contains("mind and mind-self") && "\(error)".contains("replace the task loss")
        }
        #expect(throws: Never.self) { _ = try StrategyRegistry.make("mind+ewc") }
    }

    @Test("a composite's loss is the one criterion plus the sum of the parts' penalties")
    func compositeLossAddsPenalties() throws {
        let config = smallPermutedMNIST(strategy: "l2", tasks: 2, fraction: 0.01)
        let (a, b) = (L2(lambda: 1), L2(lambda: 3))
        let composite = CompositeStrategy([a, b])
        let trainer = try makeTrainer(config, strategy: composite)
        try trainer.train(from: TrainingPosition(task: 0))
        for p in trainer.context.model.namedParameters().map(\.1) { p.assign(p + 0.01) }   // move away from θ*
        let batch = try #require(trainer.context.stream.trainingBatches(task: 1, epoch: 0, batchSize: 8).first { _ in true })
        let output = trainer.context.model(batch.inputs)
        let task = Losses.crossEntropy(output, targets: batch.labels)
        let pa = try #require(a.penalty(output: output, batch: batch, context: trainer.context)).item
        let pb = try #require(b.penalty(output: output, batch: batch, context: trainer.context)).item
        #expect(abs(pb - 3 * pa) <= 1e-4 * pb)
        let total = composite.loss(taskLoss: task, output: output, batch: batch, context: trainer.context).item
        #expect(abs(total - (task.item + pa + pb)) <= 1e-5 * total)
        #expect(composite.criterion(taskLoss: task, output: output, batch: batch, context: trainer.context) == nil)
    }

    @Test("a strategy refuses the scenarios its declaration excludes, naming itself and the scenarios it runs",
          arguments: StrategyRegistry.all.filter { $0.scenarios.count < 3 }.map(\.name))
    func refusesUndeclaredScenarios(strategy: String) throws {
        let descriptor = try #require(StrategyRegistry.descriptor(named: strategy))
        for scenario in ["domain", "class"] where !descriptor.scenarios.contains(try {
            var c = ExperimentConfiguration(); c.scenario = scenario; return try c.resolvedScenario()
        }()) {
            var c = Self.configuration(strategy)
            c.scenario = scenario
            #expect {
                try c.validate()
            } throws: { error in
                "\(error)".contains(strategy) && "\(error)".contains("scenario must be task")
            }
        }
    }
}
