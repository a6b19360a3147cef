import EngramTensor
import EngramNN
import EngramCL
import Foundation
import Testing

/// Stable SGD: the per-task learning rate, its floor, the recipe's dropout, and the schedule in a run.
@Suite struct StableSGDTests {
    @Test("task t runs at max(η₀·γᵗ, η_min), t counted from 1 as the authors' code, from 0 when asked")
    func learningRatePerTask() {
        let stable = StableSGD(decay: 0.8, minimumLearningRate: 5e-5)
        #expect(abs(stable.learningRate(0.1, task: 0) - 0.08) < 1e-7)
        #expect(abs(stable.learningRate(0.1, task: 2) - 0.0512) < 1e-7)
        #expect(stable.learningRate(0.1, task: 60) == 5e-5, "0.1·0.8⁶¹ ≈ 1.2e-7 is below the floor")
        #expect(StableSGD(decay: 0.5, firstTaskDecayed: false).learningRate(0.1, task: 0) == 0.1)
    }

    @Test("the run's dropout defaults to the recipe's 0.5 with stable-sgd (in the saved configuration) and a given dropout wins")
    func recipeDropout() {
        var c = smallPermutedMNIST(strategy: "stable-sgd")
        #expect(c.usesDropout == 0.5 && c.resolved().dropout == 0.5)
        c.dropout = 0
        #expect(c.usesDropout == 0 && c.resolved().dropout == 0)
        #expect(smallPermutedMNIST(strategy: "finetune").resolved().dropout == 0)
    }

    @Test("results saved when dropout was always written (0) still match their sweep point, for the mlp and the cnn")
    func olderResultsStillMatch() {
        for model in ["mlp", "cnn"] {
            var point = smallSplitMNIST(strategy: "finetune")
            point.model = model
            var saved = point
            saved.dropout = 0
            #expect(saved.resolved() == point.resolved(), "\(model)")
        }
    }

    @Test("in a run every task trains at its decayed rate: the last of three at η₀·γ³, and a composite decays too")
    func scheduleInARun() throws {
        var c = smallPermutedMNIST(strategy: "stable-sgd", tasks: 3, fraction: 0.02)
        c.training.learningRate = 0.1
        let trainer = try makeTrainer(c, strategy: StableSGD(decay: 0.5))
        let results = try trainer.run()
        #expect(abs(trainer.context.optimizer.learningRate - 0.0125) < 1e-7)
        #expect((results.accuracy.last ?? []).allSatisfy { $0 > 0.5 }, "\(results.accuracy)")
        c.strategy = "stable-sgd+ewc"
        _ = try runExperiment(c)
    }
}
