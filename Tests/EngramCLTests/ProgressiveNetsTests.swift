import EngramTensor
import EngramNN
import EngramData
import EngramCL
import Foundation
import Testing

/// Progressive Neural Networks on real task-incremental Split MNIST (small subset, small columns).
@Suite(.serialized) struct ProgressiveNetsTests {
    static let hidden = [32, 32]

    func config(_ strategy: String) -> ExperimentConfiguration {
        var c = smallSplitMNIST(strategy: strategy)
        c.hidden = Self.hidden
        return c
    }

    /// Parameters of column k of an MLP column d–h₁–…–c: its own layers plus k sets of laterals.
    func columnParameters(_ k: Int, input d: Int = 784, classes c: Int = 2) -> Int {
        let widths = [d] + Self.hidden + [c]
        let own = (1..<widths.count).reduce(0) { $0 + widths[$1 - 1] * widths[$1] + widths[$1] }
        let lateral = (2..<widths.count).reduce(0) { $0 + widths[$1 - 1] * widths[$1] }
        return own + k * lateral
    }

    @Test("pnn forgets exactly nothing on 5-task Split MNIST while fine-tuning forgets")
    func noForgetting() throws {
        let pnn = try runExperiment(config("pnn"))
        let finetune = try runExperiment(config("finetune"))
        print("pnn: ACC \(pnn.metrics.averageAccuracy!), forgetting \(pnn.metrics.forgetting!); "
              + "finetune: ACC \(finetune.metrics.averageAccuracy!), forgetting \(finetune.metrics.forgetting!)")
        print("pnn parameters \(pnn.parameterCount), memory bytes per task \(pnn.strategyMemoryBytes)")
        #expect(pnn.metrics.forgetting! == 0)
        #expect(finetune.metrics.forgetting! > 0)
        for j in 0..<5 { #expect(Set((j..<5).map { pnn.matrix[afterTask: $0, task: j]! }).count == 1, "task \(j)'s accuracy changed") }
        #expect(pnn.metrics.averageAccuracy! > 0.9)
    }

    @Test("the network holds one column per task, column k adding its layers and k sets of laterals; memory counts finished columns")
    func parametersAndMemory() throws {
        var c = config("pnn")
        c.fraction = 0.005
        let pnn = try runExperiment(c)
        let perColumn = (0..<5).map { columnParameters($0) }
        print("parameters per column: \(perColumn)")
        #expect(pnn.parameterCount == perColumn.reduce(0, +))
        #expect(pnn.strategyMemoryBytes == (1...5).map { 4 * perColumn.prefix($0).reduce(0, +) })
    }

    @Test("earlier columns are bit-identical after training a later task, and only the active column changes")
    func earlierColumnsUnchanged() throws {
        var c = config("pnn")
        c.fraction = 0.01
        let strategy = ProgressiveNets()
        let trainer = try makeTrainer(c, strategy: strategy)
        let (_, net) = try ProgressiveNets.network(in: trainer.context.model)
        func snapshot(_ k: Int) -> [[Float]] { net.columns[k].namedParameters().map(\.1.scalars) }
        try trainer.train(from: TrainingPosition(task: 0))
        let column0 = snapshot(0), column1 = snapshot(1), column2 = snapshot(2)
        try trainer.train(from: TrainingPosition(task: 1))
        #expect(snapshot(0) == column0)
        #expect(snapshot(1) != column1)
        #expect(snapshot(2) == column2)
        #expect(trainer.context.optimizer.frozen.count == trainer.context.model.namedParameters().count - net.columns[1].namedParameters().count)
        #expect(strategy.parametersPerColumn == (0..<5).map { columnParameters($0) })
    }

    @Test("pnn is refused outside the task-incremental scenario and with convolutional models")
    func validation() {
        var c = config("pnn")
        c.scenario = "class"
        #expect(throws: StrategyError.self) { try c.validate() }
        c.scenario = "task"
        c.model = "resnet18r"
        #expect(throws: StrategyError.self) { try c.validate() }
    }
}
