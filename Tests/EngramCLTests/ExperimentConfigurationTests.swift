import EngramTensor
import EngramNN
import EngramData
import EngramCL
import Foundation
import Testing

@Suite struct ExperimentConfigurationTests {
    @Test("a run can be evaluated on a validation split carved from the training data instead of the test set")
    func validationSplitEvaluation() throws {
        var config = smallPermutedMNIST(strategy: "finetune", tasks: 2, fraction: 0.02)
        config.hidden = [16]
        config.validationFraction = 0.2
        let onTest = try ExperimentRun(configuration: config, directory: try temporaryDirectory("engram-val-a")).run()
        config.evaluateOnValidation = true
        let onValidation = try ExperimentRun(configuration: config, directory: try temporaryDirectory("engram-val-b")).run()
        #expect(onTest.matrix != onValidation.matrix)
        // Same training (same split of the training data), so the measured tasks are learned alike.
        #expect(abs(onTest.metrics.averageAccuracy! - onValidation.metrics.averageAccuracy!) < 0.15)
    }

    @Test("invalid validation settings are refused with the flag's name")
    func invalidValidationSettings() {
        var config = smallPermutedMNIST(strategy: "finetune")
        config.validationFraction = 1
        #expect(throws: StrategyError.self) { try config.validate() }
        config.validationFraction = 0
        config.evaluateOnValidation = true
        do { try config.validate(); Issue.record("must be refused") } catch {
            #expect("\(error)".contains("validation_fraction"))
        }
    }

    @Test("a YAML-style partial configuration decodes with defaults for every missing key")
    func partialConfigurationDecodes() throws {
        let json = #"{"strategy": "ewc", "training": {"lr": 0.05}, "hyperparameters": {"lambda": 10}}"#
        let c = try JSONDecoder().decode(ExperimentConfiguration.self, from: Data(json.utf8))
        #expect(c.strategy == "ewc" && c.training.learningRate == 0.05 && c.resolved().hyperparameters["ewc", "lambda"]?.number == 10)
        #expect(c.benchmark == "permuted-mnist" && c.tasks == 5 && c.training.batchSize == 128)
    }

    @Test("the class-incremental loss covers the classes seen so far by default, every unit with active_classes: all")
    func activeClasses() throws {
        let json = #"{"strategy": "finetune", "training": {"active_classes": "all"}}"#
        #expect(try JSONDecoder().decode(ExperimentConfiguration.self, from: Data(json.utf8)).training.activeClasses == .all)
        var config = smallSplitMNIST(strategy: "finetune", fraction: 0.01)
        config.scenario = "class"
        let seen = try makeTrainer(config, strategy: Finetune())
        #expect(seen.context.activeClasses == [0, 1], "task 0 of class-incremental Split MNIST: its two classes")
        config.training.activeClasses = .all
        #expect(try makeTrainer(config, strategy: Finetune()).context.activeClasses == nil, "every unit")
        let bad = #"{"training": {"active_classes": "some"}}"#
        #expect(throws: (any Error).self) { try JSONDecoder().decode(ExperimentConfiguration.self, from: Data(bad.utf8)) }
    }

    @Test("rotation_per_task and rotation_jitter build Mirzadeh et al.'s angles, and are refused elsewhere or out of range, naming the key")
    func steppedRotation() throws {
        var c = smallPermutedMNIST(strategy: "finetune", tasks: 4, fraction: 0.01)
        c.benchmark = "rotated-mnist"
        c.rotationPerTask = 10
        c.rotationJitter = 10
        try c.validate()
        let angles = try c.makeBenchmark().tasks.map(\.transform)
        for (t, transform) in angles.enumerated() {
            var rng = RandomGenerator(seed: 0, label: "rotation/task \(t)")
            #expect(transform == .rotation(degrees: 10 * Double(t) - 10 * rng.nextDouble()))
        }
        var wrong = c
        wrong.rotationJitter = -1
        #expect { try wrong.validate() } throws: { ($0 as? StrategyError)?.key == "rotation_jitter" }
        wrong = c
        wrong.rotationPerTask = nil
        #expect { try wrong.validate() } throws: { ($0 as? StrategyError)?.key == "rotation_jitter" }
        wrong = c
        wrong.benchmark = "permuted-mnist"
        #expect { try wrong.validate() } throws: { ($0 as? StrategyError)?.key == "rotation_per_task" }
    }
}
