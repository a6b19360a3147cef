import EngramTensor
import EngramNN
import EngramData
import EngramCL
import Foundation
import Testing

/// PackNet on real task-incremental Split MNIST (small subset, fixed seed).
@Suite(.serialized) struct PackNetTests {
    /// PackNet on a reduced ResNet-18 of width 4 (1 % of Split MNIST, batch 64).
    static func smallResNet() -> ExperimentConfiguration {
        var config = smallSplitMNIST(strategy: "packnet", fraction: 0.01)
        config.model = "resnet18r"
        config.width = 4
        config.training.batchSize = 64
        return config
    }

    @Test("PackNet forgets at most 1 point on 5-task Split MNIST, far less than fine-tuning")
    func packNetDoesNotForget() throws {
        let finetune = try runExperiment(smallSplitMNIST(strategy: "finetune"))
        let packnet = try runExperiment(smallSplitMNIST(strategy: "packnet"))
        let (f, p) = (finetune.metrics.forgetting!, packnet.metrics.forgetting!)
        print("forgetting (split MNIST, task-IL): finetune \(f), packnet \(p); "
              + "ACC finetune \(finetune.metrics.averageAccuracy!), packnet \(packnet.metrics.averageAccuracy!)")
        #expect(p <= 0.01)
        #expect(p + 0.02 <= f)
        #expect(packnet.metrics.averageAccuracy! > 0.9)
    }

    @Test("after a task, each layer keeps a quarter of its weights for it and later tasks leave them bit-identical")
    func earlierTasksStayFrozen() throws {
        var config = smallSplitMNIST(strategy: "packnet", fraction: 0.02)
        config.hidden = [32]
        let packnet = try PackNet(pruneRatio: 0.75, retrainEpochs: 1)
        let trainer = try makeTrainer(config, strategy: packnet)
        try trainer.train(from: TrainingPosition(task: 0))
        let masks = try #require(packnet.masks)
        let parameters = trainer.context.model.namedParameters()
        for (name, p) in parameters where p.rank == 2 && !name.hasPrefix("head.") {
            #expect(masks.count(ownedBy: 0, in: name) == Int((0.25 * Double(p.count)).rounded()), "\(name)")
        }
        let accuracy0 = trainer.evaluate(task: 0)
        let snapshot = parameters.map { $0.1.scalars }
        try trainer.train(from: TrainingPosition(task: 1))
        try trainer.train(from: TrainingPosition(task: 2))
        for ((name, p), before) in zip(parameters, snapshot) {
            for i in 0..<p.count where packnet.masks!.owner(name, i) == 0 {
                #expect(p.scalars[i] == before[i], "\(name)[\(i)] moved")
            }
        }
        #expect(trainer.evaluate(task: 0) == accuracy0)
        #expect(packnet.masks!.count(ownedBy: 1) > 0 && packnet.masks!.count(ownedBy: 2) > 0)
    }

    @Test("on a reduced ResNet with shared BatchNorm, its statistics and a finished task's accuracy do not change while later tasks train")
    func convolutionalModelKeepsEarlierTasks() throws {
        var config = Self.smallResNet()
        config.perTaskBatchNorm = false
        let trainer = try makeTrainer(config, strategy: try PackNet())
        try trainer.train(from: TrainingPosition(task: 0))
        let accuracy0 = trainer.evaluate(task: 0)
        let statistics = trainer.context.model.namedBuffers().map { $0.1.scalars }
        try trainer.train(from: TrainingPosition(task: 1))
        #expect(trainer.context.model.namedBuffers().map { $0.1.scalars } == statistics, "BatchNorm statistics moved")
        #expect(trainer.evaluate(task: 0) == accuracy0)
    }

    @Test("with per-task BatchNorm (the default), task 1 trains its own BatchNorm and task 0's stays bit-identical, its accuracy too")
    func perTaskBatchNormKeepsEarlierTasks() throws {
        let config = Self.smallResNet()
        #expect(config.usesPerTaskBatchNorm)
        let packnet = try PackNet()
        let trainer = try makeTrainer(config, strategy: packnet)
        try trainer.train(from: TrainingPosition(task: 0))
        let accuracy0 = trainer.evaluate(task: 0)
        let model = trainer.context.model
        func state(task: Int) -> [[Float]] {
            (model.namedParameters() + model.namedBuffers()).filter { $0.0.contains(".tasks.\(task).") }.map { $0.1.scalars }
        }
        let task0 = state(task: 0), task1 = state(task: 1)
        #expect(!task0.isEmpty)
        try trainer.train(from: TrainingPosition(task: 1))
        #expect(state(task: 0) == task0, "task 0's BatchNorm moved")
        #expect(state(task: 1) != task1, "task 1's BatchNorm did not train")
        #expect(trainer.evaluate(task: 0) == accuracy0)
        #expect(packnet.masks!.count(ownedBy: 1) > 0)
    }

    @Test("evaluating a task through the trainer leaves the model unchanged")
    func evaluationRestoresTheModel() throws {
        var config = smallSplitMNIST(strategy: "packnet", fraction: 0.01)
        config.hidden = [16]
        let packnet = try PackNet()
        let trainer = try makeTrainer(config, strategy: packnet)
        try trainer.train(from: TrainingPosition(task: 0))
        try trainer.train(from: TrainingPosition(task: 1))
        let before = trainer.context.model.stateDictionary().map { $0.1.scalars }
        _ = trainer.evaluateAll()
        #expect(trainer.context.model.stateDictionary().map { $0.1.scalars } == before)
    }

    @Test("the masks take one byte per parameter after every task")
    func memoryIsOneBytePerParameter() throws {
        var config = smallSplitMNIST(strategy: "packnet", fraction: 0.01)
        config.hidden = [16]
        let run = try runExperiment(config)
        #expect(run.strategyMemoryBytes == Array(repeating: run.parameterCount, count: 5))
    }

    @Test("prune ratio and re-training epochs are read from the configuration and validated")
    func hyperparameters() throws {
        var h = HyperparameterSettings()
        h["packnet", "prune_ratio"] = 0.5
        h["packnet", "retrain_epochs"] = 3
        let s = try #require(try StrategyRegistry.make("packnet", h) as? PackNet)
        #expect(s.pruneRatio == 0.5 && s.retrainEpochs == 3)
        h["packnet", "prune_ratio"] = 1
        #expect(throws: ConfigurationError.self) { try StrategyRegistry.make("packnet", h) }
        let decoded = try JSONDecoder().decode(HyperparameterSettings.self, from: Data(#"{"packnet": {"prune_ratio": 0.6, "retrain_epochs": 2}}"#.utf8))
        #expect(decoded["packnet", "prune_ratio"] == 0.6 && decoded["packnet", "retrain_epochs"] == 2)
    }
}
