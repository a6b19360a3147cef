import EngramTensor
import EngramNN
import EngramData
import EngramCL
import Foundation
import Testing

/// Records the optimizer's learning rate when each epoch's batches are requested and at every step.
final class LearningRateProbe: Strategy {
    var name: String { "finetune" }
    /// (epoch, learning rate) per epoch, in order.
    var perEpoch: [(Int, Float)] = []
    /// The learning rate at every optimizer step.
    var perStep: [Float] = []
    func trainingBatches(task: Int, epoch: Int, context: TrainingContext) -> Batches {
        perEpoch.append((epoch, context.optimizer.learningRate))
        return context.stream.trainingBatches(task: task, epoch: epoch, batchSize: context.configuration.batchSize)
    }
    func afterStep(context: TrainingContext) { perStep.append(context.optimizer.learningRate) }
}

/// The per-task multi-step learning-rate schedule of `TrainingConfiguration` as the `Trainer` applies it.
@Suite struct TrainingConfigurationScheduleTests {
    func configuration() -> ExperimentConfiguration {
        var c = smallPermutedMNIST(strategy: "finetune", tasks: 2, fraction: 0.01)
        c.hidden = [16]
        c.training.epochs = 4
        c.training.batchSize = 200
        c.training.learningRate = 0.1
        c.training.milestones = [2, 3]
        c.training.lrGamma = 0.5
        return c
    }

    @Test("milestones [2, 3] with γ 0.5 give lr 0.1, 0.1, 0.05, 0.025 over four epochs, again in every task")
    func multiStepPerTask() throws {
        let probe = LearningRateProbe()
        let trainer = try makeTrainer(configuration(), strategy: probe)
        _ = try trainer.run()
        let expected: [Float] = [0.1, 0.1, 0.05, 0.025]
        #expect(probe.perEpoch.map(\.0) == [0, 1, 2, 3, 0, 1, 2, 3])
        #expect(probe.perEpoch.map(\.1) == expected + expected)
        #expect(Set(probe.perStep) == Set(expected))
        #expect(probe.perStep.last == 0.025)
        #expect((0..<4).map { configuration().training.learningRate(epoch: $0) } == expected)
    }

    @Test("a task resumed at an epoch trains with that epoch's learning rate")
    func resumedEpochGetsItsRate() throws {
        let probe = LearningRateProbe()
        let trainer = try makeTrainer(configuration(), strategy: probe)
        try trainer.train(from: TrainingPosition(task: 0, epoch: 3, stepInTask: 3))
        #expect(probe.perEpoch.map(\.1) == [0.025])
        try trainer.train(from: TrainingPosition(task: 1, epoch: 2))
        #expect(probe.perEpoch.map(\.1) == [0.025, 0.05, 0.025])
    }

    @Test("without milestones the learning rate stays at lr")
    func constantWithoutMilestones() throws {
        var c = configuration()
        c.training.milestones = []
        let probe = LearningRateProbe()
        _ = try makeTrainer(c, strategy: probe).run()
        #expect(probe.perEpoch.allSatisfy { $0.1 == 0.1 })
    }

    @Test("milestones below 1 and γ outside (0, 1] are refused with the configuration key's name")
    func invalidSchedule() {
        for (milestones, gamma, flag) in [([0, 3], Float(0.1), "training.milestones"), ([-1], 0.1, "training.milestones"),
                                          ([2], 0, "training.lr_gamma"), ([2], 1.5, "training.lr_gamma"), ([2], -0.5, "training.lr_gamma")] {
            var c = TrainingConfiguration()
            c.milestones = milestones
            c.lrGamma = gamma
            #expect { try c.validate() } throws: { "\($0)".hasPrefix(flag + " must") && ($0 as? StrategyError)?.key == flag }
        }
        var c = TrainingConfiguration()
        c.milestones = [35, 40]
        c.lrGamma = 1
        #expect(throws: Never.self) { try c.validate() }
    }
}

/// The model keys of `ExperimentConfiguration`: model names, per-task BatchNorm and the schedule keys.
@Suite struct ExperimentConfigurationModelTests {
    @Test("an unknown model name is refused with a message listing the models")
    func unknownModel() {
        var c = smallPermutedMNIST(strategy: "finetune")
        for name in ["resnet20", "resnet32", "resnet18r", "mlp"] {
            c.model = name
            #expect(throws: Never.self) { try c.validate() }
        }
        c.model = "resnet50"
        #expect { try c.validate() } throws: { "\($0)".contains("model must") && "\($0)".contains("resnet20") && "\($0)".contains("resnet50") }
    }

    @Test("per-task BatchNorm is on by default exactly when the strategy list contains mind, mind-self or packnet")
    func perTaskBatchNormDefault() {
        var c = ExperimentConfiguration()
        for (strategy, expected) in [("mind", true), ("mind-self", true), ("ewc+mind", true), ("mas", false),
                                     ("packnet", true), ("packnet+mas", true), ("packnets", false), ("mindful", false)] {
            c.strategy = strategy
            #expect(c.usesPerTaskBatchNorm == expected, "\(strategy)")
        }
        c.strategy = "mind"
        c.perTaskBatchNorm = false
        #expect(!c.usesPerTaskBatchNorm)
        c.strategy = "finetune"
        c.perTaskBatchNorm = true
        #expect(c.usesPerTaskBatchNorm)
    }

    @Test("milestones, lr_gamma and per_task_batchnorm survive an encode–decode round trip under their YAML names")
    func roundTrip() throws {
        var c = ExperimentConfiguration()
        c.model = "resnet32"
        c.perTaskBatchNorm = true
        c.training.milestones = [35, 40]
        c.training.lrGamma = 0.5
        let data = try JSONEncoder().encode(c)
        let object = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        #expect(object["per_task_batchnorm"] as? Bool == true)
        let training = object["training"] as! [String: Any]
        #expect(training["milestones"] as? [Int] == [35, 40] && training["lr_gamma"] as? Double == 0.5)
        #expect(try JSONDecoder().decode(ExperimentConfiguration.self, from: data) == c)
        let defaults = try JSONDecoder().decode(ExperimentConfiguration.self, from: Data("{}".utf8))
        #expect(defaults.perTaskBatchNorm == nil && defaults.training.milestones.isEmpty && defaults.training.lrGamma == 0.1)
    }

    @Test("resnet20 and resnet32 build CIFAR ResNets for the benchmark, with per-task BatchNorm for mind")
    func makesCIFARResNets() throws {
        var c = smallSplitMNIST(strategy: "finetune", fraction: 0.01)
        c.model = "resnet20"
        let benchmark = try c.makeBenchmark()
        let plain = c.makeModel(for: benchmark)
        #expect(plain.parameterCount == 269_434 - 650 + 5 * (64 * 2 + 2))  // 1 input channel, five 2-way heads
        #expect(!plain.namedParameters().contains { $0.0.contains(".tasks.") })
        c.perTaskBatchNorm = true
        let perTask = c.makeModel(for: benchmark)
        #expect(perTask.parameterCount == plain.parameterCount + 4 * 1376)
        #expect(perTask.namedParameters().contains { $0.0 == "features.1.tasks.4.weight" })
        c.model = "resnet32"
        c.perTaskBatchNorm = nil
        #expect(c.makeModel(for: benchmark).parameterCount == 269_434 - 650 + 194_432 + 5 * 130)
    }

    @Test("the cnn model gets one BatchNorm per task with mind: 2·(20 + 40) affine parameters more per extra task")
    func cnnWithPerTaskBatchNorm() throws {
        var c = smallSplitMNIST(strategy: "finetune", fraction: 0.01)
        c.model = "cnn"
        c.hidden = [16]
        let benchmark = try c.makeBenchmark()
        let plain = c.makeModel(for: benchmark)
        c.strategy = "mind"
        let perTask = c.makeModel(for: benchmark)
        #expect(perTask.parameterCount == plain.parameterCount + 4 * 2 * (20 + 40))
        #expect(perTask.namedParameters().contains { $0.0 == "features.1.bn.tasks.3.weight" })
    }
}
