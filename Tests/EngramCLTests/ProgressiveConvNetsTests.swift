import EngramTensor
import EngramNN
import EngramData
import EngramCL
import Foundation
import Testing

/// Progressive Neural Networks of convolutional columns (`--strategy pnn --model cnn`) on real task-incremental
/// Split Fashion-MNIST (small subset, narrow columns).
@Suite(.serialized) struct ProgressiveConvNetsTests {
    func config(_ strategy: String, fraction: Double = 0.02) -> ExperimentConfiguration {
        var c = smallSplitMNIST(strategy: strategy, fraction: fraction)
        c.benchmark = "split-fmnist"
        c.model = "cnn"
        c.width = 4        // blocks of 4 and 8 channels
        c.hidden = [32]
        return c
    }

    /// Parameters of column k of the progressive CNN above on 1×28×28 images with 2-way heads.
    func columnParameters(_ k: Int) -> Int {
        let own = (1 * 4 * 9 + 2 * 4) + (4 * 8 * 9 + 2 * 8) + (8 * 7 * 7 * 32 + 32) + (32 * 2 + 2)
        let lateral = 4 * 8 * 9 + 8 * 7 * 7 * 32 + 32 * 2
        return own + k * lateral
    }

    @Test("training column 1 leaves column 0's parameters and BatchNorm buffers bit-identical, and its outputs too")
    func earlierColumnUnchanged() throws {
        let c = config("pnn", fraction: 0.01)
        let strategy = ProgressiveNets()
        let trainer = try makeTrainer(c, strategy: strategy)
        let model = trainer.context.model
        let (prefix, net) = try ProgressiveNets.progressiveNetwork(in: model)
        #expect(net is ProgressiveConvNet)
        #expect(prefix == "head.")
        func snapshot(_ k: Int) -> [String: [Float]] {
            Dictionary(uniqueKeysWithValues: net.column(k).stateDictionary().map { ($0.0, $0.1.scalars) })
        }
        // A fixed batch of task 0's test images, and column 0's logits on it in evaluation mode.
        let batch = try #require(trainer.context.stream.testBatches(task: 0, batchSize: 64).first(where: { _ in true }))
        func logits() -> [Float] {
            let restore = model.enterEvaluationMode()
            defer { restore() }
            model.setActiveTask(0)
            return model(batch.inputs).scalars
        }
        try trainer.train(from: TrainingPosition(task: 0))
        let column0 = snapshot(0), column1 = snapshot(1), column2 = snapshot(2), output0 = logits()
        #expect(column0.keys.contains("layers.1.bn.running_mean"))
        try trainer.train(from: TrainingPosition(task: 1))
        #expect(snapshot(0) == column0)
        #expect(logits() == output0)
        #expect(snapshot(1)["layers.0.conv.weight"] != column1["layers.0.conv.weight"])
        #expect(snapshot(1)["layers.0.bn.running_mean"] != column1["layers.0.bn.running_mean"])
        #expect(snapshot(2) == column2)
        #expect(strategy.parametersPerColumn == (0..<5).map { columnParameters($0) })
    }

    @Test("pnn with --model cnn forgets exactly nothing on 5-task Split Fashion-MNIST; memory grows by one column per task")
    func noForgetting() throws {
        let pnn = try runExperiment(config("pnn"))
        let finetune = try runExperiment(config("finetune"))
        print("pnn cnn: ACC \(pnn.metrics.averageAccuracy!), forgetting \(pnn.metrics.forgetting!); "
              + "finetune cnn: ACC \(finetune.metrics.averageAccuracy!), forgetting \(finetune.metrics.forgetting!)")
        #expect(pnn.metrics.forgetting! == 0)
        for j in 0..<5 { #expect(Set((j..<5).map { pnn.matrix[afterTask: $0, task: j]! }).count == 1, "task \(j)'s accuracy changed") }
        #expect(pnn.metrics.averageAccuracy! > 0.8)
        let perColumn = (0..<5).map { columnParameters($0) }
        let buffers = (2 * 4 + 1) + (2 * 8 + 1)   // per column: running mean and variance, batches tracked, per BatchNorm
        #expect(pnn.parameterCount == perColumn.reduce(0, +))
        #expect(pnn.strategyMemoryBytes == (1...5).map { 4 * (perColumn.prefix($0).reduce(0, +) + $0 * buffers) })
        // The baseline uses the same blocks: one column with five heads.
        #expect(finetune.parameterCount == perColumn[0] - (32 * 2 + 2) + 5 * (32 * 2 + 2))
    }

    @Test("the CLI accepts --strategy pnn --model cnn and refuses other models with a message naming --model")
    func commandLine() throws {
        let dir = try temporaryDirectory("engram-cli-pnn-cnn")
        let log = dir.appendingPathComponent("out.txt")
        let common = ["--benchmark", "split-fmnist", "--scenario", "task", "--strategy", "pnn", "--fraction", "0.005",
                      "--epochs", "1", "--width", "2", "--hidden", "8", "--quiet", "--data-dir", datasetsRoot]
        let status = try engram(["run", "--out", dir.path, "--model", "cnn"] + common, log: log)
        let text = try String(contentsOf: log, encoding: .utf8)
        #expect(status == 0, "\(text)")
        #expect(text.contains("forgetting 0.00 %"), "\(text)")
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("results.json").path))

        let bad = try temporaryDirectory("engram-cli-pnn-resnet")
        let badLog = bad.appendingPathComponent("out.txt")
        let refused = try engram(["run", "--out", bad.path, "--model", "resnet18r"] + common, log: badLog)
        let message = try String(contentsOf: badLog, encoding: .utf8)
        #expect(refused != 0)
        #expect(message.contains("model must") && message.contains("resnet18r") && message.contains("cnn"), "\(message)")
        #expect(!message.contains("Fatal error"), "\(message)")
    }

    @Test("the configuration: cnn is a model for every strategy; pnn takes mlp or cnn only")
    func validation() throws {
        var c = config("pnn")
        try c.validate()
        c.model = "resnet18r"
        #expect(throws: StrategyError.self) { try c.validate() }
        do { try c.validate() } catch { #expect("\(error)".contains("model must")) }
        c.model = "mlp"
        try c.validate()
        var f = config("ewc")
        try f.validate()
        f.model = "cnn2"
        #expect(throws: StrategyError.self) { try f.validate() }
        #expect(config("pnn").cnnChannels == [4, 8])
    }
}
