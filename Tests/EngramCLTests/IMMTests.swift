import EngramTensor
import EngramNN
import EngramData
import EngramCL
import Testing

@Suite(.serialized) struct IMMTests {
    @Test("mean-IMM of two parameter sets is their average")
    func meanOfTwoIsTheAverage() {
        let merged = IMM.meanMerge([["w": [1, 2, -4]], ["w": [3, 0, 4]]], weights: [0.5, 0.5])
        #expect(merged["w"] == [2, 1, 0])
    }

    @Test("mode-IMM weights each parameter by its Fisher, and falls back to the mean where every Fisher is zero")
    func modeWeightsByFisher() {
        let merged = IMM.modeMerge([["w": [1, 4]], ["w": [3, 0]]], fishers: [["w": [3, 0]], ["w": [1, 0]]],
                                   weights: [0.5, 0.5], epsilon: 1e-8)
        // (½·3·1 + ½·1·3) / (½·3 + ½·1) = 1.5; no Fisher → (4 + 0)/2
        #expect(abs(merged["w"]![0] - 1.5) < 1e-6 && abs(merged["w"]![1] - 2) < 1e-6)
        let weighted = IMM.modeMerge([["w": [1]], ["w": [3]]], fishers: [["w": [2]], ["w": [2]]], weights: [0.75, 0.25])
        #expect(abs(weighted["w"]![0] - 1.5) < 1e-6)
    }

    @Test("after a task the model holds the merge, and the next task starts from the un-merged solution")
    func evaluatesMergedTrainsFromUnmerged() throws {
        var config = smallPermutedMNIST(strategy: "imm-mean", tasks: 2, fraction: 0.01)
        config.training.batchSize = 16
        let imm = try IMM(mode: .mean)
        let trainer = try makeTrainer(config, strategy: imm)
        let initial = ParameterMap.values(of: trainer.context.model.namedParameters())
        try trainer.train(from: TrainingPosition(task: 0))
        try trainer.train(from: TrainingPosition(task: 1))
        #expect(imm.solutions.count == 2 && imm.memoryBytes == 2 * trainer.context.model.parameterCount * 4)
        let model = ParameterMap.values(of: trainer.context.model.namedParameters())
        let expected = IMM.meanMerge(imm.solutions, weights: [0.5, 0.5])
        for (name, v) in model { for i in 0..<v.count { #expect(abs(v[i] - expected[name]![i]) < 1e-6) } }
        try imm.beforeTask(2, context: trainer.context)
        #expect(ParameterMap.values(of: trainer.context.model.namedParameters()) == imm.solutions[1])
        #expect(imm.solutions[0] != initial)
    }

    @Test("mode-IMM holds each task's Fisher and parameters: 2 × parameters per finished task")
    func modeMemory() throws {
        let mode = try runExperiment(smallPermutedMNIST(strategy: "imm-mode"))
        #expect(mode.strategyMemoryBytes == (1...3).map { 2 * $0 * mode.parameterCount * 4 })
    }
}
