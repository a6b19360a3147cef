import EngramCL
import Foundation
import Testing

/// MIND on real task-incremental Split MNIST (small subsets, fixed seeds).
@Suite(.serialized) struct MINDTests {
    @Test("each task's sub-network is a disjoint random share of about 1/T of every hidden layer")
    func subNetworksAreDisjointShares() throws {
        var config = smallSplitMNIST(strategy: "mind", fraction: 0.01)
        config.hidden = [32]
        let mind = try MIND(teacherEpochs: 1)
        let trainer = try makeTrainer(config, strategy: mind)
        for t in 0..<5 { try trainer.train(from: TrainingPosition(task: t)) }
        let masks = try #require(mind.masks)
        for (name, p) in trainer.context.model.namedParameters() where MIND.isGated(name, p) {
            var seen = 0
            for t in 0..<5 {
                let n = masks.count(ownedBy: t, in: name)
                #expect(abs(Double(n) / Double(p.count) - 0.2) < 0.01, "\(name): task \(t) owns \(n) of \(p.count)")
                seen += n
            }
            // One owner per entry: the shares add up to the whole layer, none counted twice.
            #expect(seen == p.count, "\(name)")
        }
    }

    @Test("entries of earlier tasks are bit-identical after later tasks train, and so are their accuracies")
    func earlierTasksStayFrozen() throws {
        var config = smallSplitMNIST(strategy: "mind", fraction: 0.02)
        config.hidden = [32]
        let mind = try MIND()
        let trainer = try makeTrainer(config, strategy: mind)
        try trainer.train(from: TrainingPosition(task: 0))
        let parameters = trainer.context.model.namedParameters()
        let accuracy0 = trainer.evaluate(task: 0)
        let snapshot = parameters.map { $0.1.scalars }
        try trainer.train(from: TrainingPosition(task: 1))
        try trainer.train(from: TrainingPosition(task: 2))
        var checked = 0
        for ((name, p), before) in zip(parameters, snapshot) {
            for i in 0..<p.count where mind.masks!.owner(name, i) == 0 {
                #expect(p.scalars[i] == before[i], "\(name)[\(i)] moved")
                checked += 1
            }
        }
        #expect(checked > 0)
        #expect(trainer.evaluate(task: 0) == accuracy0)
    }

    @Test("the JS distillation term is zero when the student equals the teacher and positive otherwise")
    func distillationVanishesForEqualLogits() {
        let a = Tensor(shape: [2, 3], scalars: [0.3, -1.2, 2.0, 0.1, 0.5, -0.7])
        let b = Tensor(shape: [2, 3], scalars: [1.3, 0.2, -2.0, 0.1, 0.9, 0.7])
        #expect(abs(MIND.distillationLoss(student: a, teacher: a, temperature: 6.5).item) < 1e-6)
        #expect(MIND.distillationLoss(student: a, teacher: b, temperature: 6.5).item > 1e-4)
    }

    @Test("MIND forgets at most 1 point on 5-task Split MNIST and predicts tasks above chance without task labels")
    func mindDoesNotForgetAndInfersTasks() throws {
        let config = smallSplitMNIST(strategy: "mind")
        let mind = try MIND()
        let trainer = try makeTrainer(config, strategy: mind)
        let result = try trainer.run()
        let matrix = result.accuracy
        let final = matrix.last!
        let accuracy = final.reduce(0, +) / Float(final.count)
        var forgetting: Float = 0
        for j in 0..<4 {
            var best: Float = 0
            for i in j..<4 { best = max(best, matrix[i][j]) }
            forgetting += (best - final[j]) / 4
        }
        let (tag, taskAccuracy) = mind.taskAgnosticAccuracy(trainer)
        let (tagMax, taskAccuracyMax) = mind.taskAgnosticAccuracy(trainer, rule: .mostConfident)
        print("MIND split MNIST task-IL: TAw ACC \(accuracy), forgetting \(forgetting); "
              + "TAg accuracy \(tag), task prediction \(taskAccuracy) (top-2/entropy); "
              + "TAg \(tagMax), task prediction \(taskAccuracyMax) (most confident)")
        #expect(forgetting <= 0.01)
        #expect(accuracy > 0.9)
        #expect(taskAccuracy > 0.2 && tag > 0.1)
        #expect(taskAccuracyMax > 0.2 && tagMax > 0.1)
        #expect(result.strategyMemoryBytes.last == trainer.context.model.namedParameters().reduce(0) { $0 + $1.1.count })
    }

    @Test("MIND is built by the factory from its name with the reference defaults")
    func factoryBuildsMIND() throws {
        let mind = try #require(try StrategyFactory.make("mind") as? MIND)
        #expect(mind.distillBeta == 5 && mind.temperature == 6.5 && mind.teacherEpochs == nil)
        #expect(throws: StrategyError.self) { try MIND(temperature: 0) }
    }
}
