import EngramTensor
import EngramData
import EngramCL
import EngramNN
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

    @Test("the distillation term is zero when the student equals the teacher and positive otherwise")
    func distillationVanishesForEqualLogits() {
        let a = Tensor(shape: [2, 3], scalars: [0.3, -1.2, 2.0, 0.1, 0.5, -0.7])
        let b = Tensor(shape: [2, 3], scalars: [1.3, 0.2, -2.0, 0.1, 0.9, 0.7])
        #expect(abs(MIND.distillationLoss(student: a, teacher: a).item) < 1e-6)
        #expect(MIND.distillationLoss(student: a, teacher: b).item > 1e-4)
        #expect(MIND.distillationLoss(student: a, teacher: b).item == MIND.distillationLoss(student: b, teacher: a).item)
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
        let record = try #require(result.taskAgnostic?.first)
        #expect(record.rule == "top-two-lowest-entropy")
        #expect(record.accuracy.map(\.count) == [1, 2, 3, 4, 5], "row i covers the tasks seen so far")
        #expect(abs(record.accuracy.last!.reduce(0, +) / 5 - mind.taskAgnosticAccuracy(trainer).accuracy) < 1e-5)
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
        let mind = try #require(try StrategyRegistry.make("mind") as? MIND)
        #expect(mind.distillBeta == 5 && mind.temperature == 6.5 && mind.teacherEpochs == nil)
        #expect(mind.variant == .freshTeacher && mind.teacherLearningRate == 0.005 && mind.teacherWeightDecay == 0)
        #expect(mind.milestones(epochs: 50) == [35] && mind.milestones(epochs: 1) == [])
        let selfMIND = try #require(try StrategyRegistry.make("mind-self") as? MIND)
        #expect(selfMIND.variant == .selfDistillation && selfMIND.name == "mind-self")
        #expect(throws: StrategyError.self) { try MIND(temperature: 0) }
        #expect(throws: StrategyError.self) { try MIND(teacherLearningRate: -1) }
        #expect(throws: StrategyError.self) { try MIND(teacherMilestones: [0]) }
    }

    @Test("gated gradients are zero outside the current task's own entries when the optimizer steps")
    func gradientsAreGatedToTheTasksEntries() throws {
        var config = smallSplitMNIST(strategy: "mind", fraction: 0.01)
        config.hidden = [32]
        let mind = try MIND(teacherEpochs: 1)
        var checkedEntries = 0, nonzeroInside = 0
        let probe = AfterBackwardProbe { context in
            guard context.task == 1, let masks = mind.masks else { return }
            for (name, p) in context.model.namedParameters() {
                guard let g = p.grad?.scalars else { continue }
                let own = masks.ownedMask(name, task: 1)
                for i in g.indices {
                    if own[i] == 0 { #expect(g[i] == 0, "\(name)[\(i)] has gradient \(g[i]) outside task 1's mask"); checkedEntries += 1 }
                    else if g[i] != 0 { nonzeroInside += 1 }
                }
            }
        }
        let trainer = try makeTrainer(config, strategy: CompositeStrategy([mind, probe]))
        try trainer.train(from: TrainingPosition(task: 0))
        try trainer.train(from: TrainingPosition(task: 1))
        #expect(checkedEntries > 0 && nonzeroInside > 0)
    }

    @Test("mind-self claims the free entries largest in its teacher and does not forget")
    func selfDistillationSelectsByMagnitude() throws {
        var config = smallSplitMNIST(strategy: "mind-self", fraction: 0.02)
        config.hidden = [32]
        let mind = try MIND(variant: .selfDistillation, teacherEpochs: 1)
        var teacherValues: [String: [Float]] = [:]
        let probe = FirstBatchProbe(mind, task: 1) { _, _, _, _ in teacherValues = mind.teacher.state }
        let trainer = try makeTrainer(config, strategy: probe)
        try trainer.train(from: TrainingPosition(task: 0))
        let accuracy0 = trainer.evaluate(task: 0)
        let masksBefore = try #require(mind.masks)
        try trainer.train(from: TrainingPosition(task: 1))
        let masks = try #require(mind.masks)
        var checked = 0
        for (name, p) in trainer.context.model.namedParameters() where MIND.isGated(name, p) {
            let teacher = try #require(teacherValues[name])
            // Among the entries free before task 1, every one task 1 took is at least as large in the
            // teacher as every one it left.
            let taken = (0..<p.count).filter { masksBefore.owner(name, $0) == nil && masks.owner(name, $0) == 1 }
            let left = (0..<p.count).filter { masks.owner(name, $0) == nil }
            let smallestTaken = taken.map { abs(teacher[$0]) }.min() ?? 0
            let largestLeft = left.map { abs(teacher[$0]) }.max() ?? 0
            #expect(!taken.isEmpty && smallestTaken >= largestLeft, "\(name): \(smallestTaken) < \(largestLeft)")
            checked += 1
        }
        #expect(checked == 1, "the hidden layer (the heads are per task)")
        #expect(trainer.evaluate(task: 0) == accuracy0, "task-aware accuracy of task 0 is unchanged")
    }

    @Test("per-task BatchNorm: task 0's statistics and accuracy are bit-identical after task 1 trains")
    func perTaskBatchNormIsRestoredByTaskID() throws {
        var config = smallSplitMNIST(strategy: "mind", fraction: 0.02)
        config.hidden = [32]
        let benchmark = try config.makeBenchmark()
        var rng = RandomGenerator(seed: 0, label: "model init")
        let norm = TaskBatchNorm(32, tasks: 5)
        let model = Classifier(features: Sequential([Flatten(), Linear(784, 32, using: &rng), norm, ReLU()]),
                               head: MultiHead(inFeatures: 32, classesPerTask: benchmark.headSizes, using: &rng))
        let mind = try MIND(teacherEpochs: 1)
        let trainer = try Trainer(model: model, stream: BenchmarkStream(benchmark: benchmark, layout: .flat),
                                  strategy: mind, configuration: config.training)
        try trainer.train(from: TrainingPosition(task: 0))
        let accuracy0 = trainer.evaluate(task: 0)
        let task0 = norm.norms[0].localParameters.map(\.1.scalars) + norm.norms[0].localBuffers.map(\.1.scalars)
        let task1Before = norm.norms[1].runningMean.scalars
        try trainer.train(from: TrainingPosition(task: 1))
        #expect(norm.norms[0].localParameters.map(\.1.scalars) + norm.norms[0].localBuffers.map(\.1.scalars) == task0)
        #expect(norm.norms[1].runningMean.scalars != task1Before, "task 1 trained its own BatchNorm")
        #expect(trainer.evaluate(task: 0) == accuracy0)
        #expect(mind.masks!.owner("features.2.tasks.1.weight", 0) == 1, "task 1 owns its BatchNorm")
    }

    @Test("in a class-incremental head MIND answers among each task's own classes, forgets nothing task-aware, and beats chance task-agnostic")
    func classIncrementalHeadUsesOwnClasses() throws {
        var config = smallSplitMNIST(strategy: "mind", fraction: 0.02)
        config.scenario = "class"
        config.hidden = [64]
        config.hyperparameters[shared: "teacher_epochs"] = 1
        let results = try runExperiment(config)
        let aware = try #require(results.taskAwareMetrics, "class-IL MIND keeps its task-aware figures apart")
        #expect(aware.forgetting == 0)
        #expect(try #require(aware.averageAccuracy) > 0.85, "task-aware: arg-max over the task's two classes")
        let tag = try #require(results.taskAgnostic?.first)
        print("MIND class-IL split MNIST: TAw \(aware.averageAccuracy!), TAg \(tag.averageAccuracy), task prediction \(tag.averageTaskPrediction)")
        #expect(tag.averageAccuracy > 0.2, "twice chance (0.1 over ten classes); 0.29 measured")
        #expect(tag.averageAccuracy <= tag.averageTaskPrediction + 1e-9)
    }

    @Test("results.json holds task-agnostic results for MIND and finetune but not for task-aware-only PackNet")
    func runResultsCarryTaskAgnosticNumbers() throws {
        var config = smallSplitMNIST(strategy: "mind", fraction: 0.01)
        config.hidden = [32]
        config.hyperparameters["mind", "teacher_epochs"] = 1
        let mind = try runExperiment(config)
        #expect(mind.taskAgnostic?.map(\.rule) == ["top-two-lowest-entropy", "most-confident"])
        let summary = try #require(mind.taskAgnostic?.first)
        #expect(summary.accuracy.count == 5 && summary.averageAccuracy <= summary.averageTaskPrediction + 1e-9)
        let finetune = try runExperiment(config) { $0.strategy = "finetune" }
        #expect(finetune.taskAgnostic?.map(\.rule) == ["max-logit"])
        let packnet = try runExperiment(config) { $0.strategy = "packnet" }
        #expect(packnet.taskAgnostic == nil)
        let json = String(decoding: try mind.jsonData(), as: UTF8.self)
        #expect(json.contains("\"task_agnostic\"") && json.contains("\"average_task_prediction\""))
    }
}

/// Calls `probe` after every backward pass (after the strategies before it in a composite gated the gradients).
final class AfterBackwardProbe: Strategy {
    let probe: (TrainingContext) -> Void
    init(_ probe: @escaping (TrainingContext) -> Void) { self.probe = probe }
    var name: String { "probe" }
    func afterBackward(context: TrainingContext) { probe(context) }
}
