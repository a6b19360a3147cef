import EngramTensor
import EngramNN
import EngramData
import EngramCL
import Foundation
import Testing

/// Behaviours that distinguish the methods, on real Permuted MNIST (small subset, fixed seed).
@Suite(.serialized) struct StrategyBehaviourTests {
    func run(_ strategy: String, lambda: Float? = nil, c: Float? = nil, tasks: Int = 3, fraction: Double = 0.05,
             configure: (inout ExperimentConfiguration) -> Void = { _ in }) throws -> RunResults {
        var config = smallPermutedMNIST(strategy: strategy, tasks: tasks, fraction: fraction)
        config.hyperparameters[shared: "lambda"] = lambda.map { .double(Double($0)) }
        config.hyperparameters[shared: "c"] = c.map { .double(Double($0)) }
        configure(&config)
        return try ExperimentRun(configuration: config, directory: try temporaryDirectory("engram-\(strategy)")).run()
    }

    @Test("joint training ends with a higher average accuracy than fine-tuning")
    func jointBeatsFinetune() throws {
        let finetune = try run("finetune")
        let joint = try run("joint")
        print("ACC: finetune \(finetune.metrics.averageAccuracy!), joint \(joint.metrics.averageAccuracy!)")
        #expect(joint.metrics.averageAccuracy! > finetune.metrics.averageAccuracy! + 0.02)
    }

    @Test("MAS holds exactly Ω and θ* (2 × parameters) after each of 10 tasks; EWC grows by 2 × parameters per task, plus its consolidated quadratic (2 × parameters) from the second task")
    func memoryOverTenTasks() throws {
        let configure: (inout ExperimentConfiguration) -> Void = { $0.hidden = [16]; $0.training.batchSize = 64 }
        let mas = try run("mas", lambda: 1, tasks: 10, fraction: 0.005, configure: configure)
        let bytes = 2 * mas.parameterCount * 4
        #expect(mas.strategyMemoryBytes == Array(repeating: bytes, count: 10))
        let ewc = try run("ewc", lambda: 1, tasks: 10, fraction: 0.005, configure: configure)
        #expect(ewc.strategyMemoryBytes == (1...10).map { ($0 + ($0 > 1 ? 1 : 0)) * bytes })
    }

    @Test("the same seed gives bit-identical results")
    func sameSeedSameNumbers() throws {
        let a = try run("mas", lambda: 1)
        let b = try run("mas", lambda: 1)
        #expect(a.matrix == b.matrix)
    }
}
