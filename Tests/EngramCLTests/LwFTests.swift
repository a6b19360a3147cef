import EngramTensor
import EngramNN
import EngramData
import EngramCL
import Foundation
import Testing

/// Σ_{j < oldWidth} p_j log(p_j / q_j) averaged over the rows, p = softmax(old row / T), q = softmax(logit row / T)
/// over all `width` columns — computed by hand in Double.
private func handDistillation(logits: [Double], width: Int, old: [Double], oldWidth: Int, temperature t: Double) -> Double {
    func softmax(_ row: ArraySlice<Double>) -> [Double] {
        let e = row.map { Foundation.exp($0 / t) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }
    let rows = logits.count / width
    var kl = 0.0
    for r in 0..<rows {
        let p = softmax(old[(oldWidth * r)..<(oldWidth * r + oldWidth)]), q = softmax(logits[(width * r)..<(width * r + width)])
        for j in 0..<oldWidth { kl += p[j] * Foundation.log(p[j] / q[j]) }
    }
    return kl / Double(rows)
}

@Suite(.serialized) struct LwFTests {
    @Test("the distillation equals Σ_old p (log p − log q) computed by hand (T² only when asked): a KL over the same 3 classes, or over 2 old classes padded into 3 seen ones",
          arguments: [3, 2])
    func distillationMatchesHandComputedValue(oldWidth: Int) {
        let logits: [Double] = [1, 2, 0.5, -1, 0, 3]      // 2 samples × 3 classes
        let old: [Double] = oldWidth == 3 ? [2, 0, 1, 0.5, 0.5, 1] : [2, 0, 0.5, 0.5]
        let t = 2.0
        let expected = handDistillation(logits: logits, width: 3, old: old, oldWidth: oldWidth, temperature: t)
        func loss(squared: Bool) -> Double {
            let current = Tensor(shape: [2, 3], scalars: logits.map(Float.init))
            let previous = Tensor(shape: [2, oldWidth], scalars: old.map(Float.init))
            let value = oldWidth == 3
                ? LwF.distillationLoss(logits: current, oldLogits: previous, temperature: Float(t), temperatureSquared: squared)
                : LwF.paddedDistillationLoss(logits: current, oldLogits: previous, temperature: Float(t), temperatureSquared: squared)
            return Double(value.item)
        }
        #expect(abs(loss(squared: false) - expected) < 1e-5, "\(loss(squared: false)) vs \(expected)")
        #expect(abs(loss(squared: true) - t * t * expected) < 1e-5)
    }

    @Test("LwF's defaults are Li & Hoiem's (λ_o = 1, T = 2, no T², old classes, additive) and equal logits distil to zero")
    func defaultsFollowThePaper() {
        let defaults = try! StrategyRegistry.make("lwf") as! LwF
        #expect(defaults.temperatureSquared == false && defaults.lambda == 1 && defaults.temperature == 2)
        #expect(defaults.distilledClasses == .old && defaults.lossWeighting == .additive)
        let logits = Tensor(shape: [2, 3], scalars: [2, 0, 1, 0.5, 0.5, 1])
        #expect(abs(LwF.distillationLoss(logits: logits, oldLogits: logits, temperature: 2).item) < 1e-6)
    }

    @Test("at the start of a new task the model equals the old one, so LwF adds nothing to the task loss")
    func distillationIsZeroAtTheStartOfATask() throws {
        var config = smallSplitMNIST(strategy: "lwf", fraction: 0.01)
        config.training.batchSize = 16
        let lwf = try LwF(lambda: 1, temperature: 2)
        var added: Float? = nil, perturbed: Float? = nil
        let probe = FirstBatchProbe(lwf, task: 1) { taskLoss, output, batch, context in
            added = lwf.loss(taskLoss: taskLoss, output: output, batch: batch, context: context).item - taskLoss.item
            // Moving the features changes every old head's output, so the distillation must see it.
            let heads = context.model.head as! MultiHead
            let before = heads.heads[0].weight.scalars
            heads.heads[0].weight.scalars = before.map { $0 * 3 }
            perturbed = lwf.loss(taskLoss: taskLoss, output: output, batch: batch, context: context).item - taskLoss.item
            heads.heads[0].weight.scalars = before
        }
        let trainer = try makeTrainer(config, strategy: probe)
        try trainer.train(from: TrainingPosition(task: 0))
        #expect(lwf.memoryBytes == 0)
        try trainer.train(from: TrainingPosition(task: 1))
        #expect(abs(try #require(added)) < 1e-6)
        #expect(try #require(perturbed) > 1e-3)
        #expect(lwf.memoryBytes == trainer.context.model.parameterCount * 4)
    }

    @Test("class-incremental LwF distils only the logits of earlier tasks' classes")
    func classIncrementalDistilsOldClassesOnly() throws {
        var config = smallSplitMNIST(strategy: "lwf", fraction: 0.01)
        config.scenario = "class"
        config.training.batchSize = 16
        let lwf = try LwF()
        var newClassMoved: Float? = nil, oldClassMoved: Float? = nil
        let probe = FirstBatchProbe(lwf, task: 1) { taskLoss, output, batch, context in
            func shifted(_ column: Int) -> Tensor {
                output + Tensor(shape: output.shape, scalars: (0..<output.count).map { $0 % 10 == column ? 5 : 0 })
            }
            newClassMoved = lwf.loss(taskLoss: Tensor(0), output: shifted(2), batch: batch, context: context).item
            oldClassMoved = lwf.loss(taskLoss: Tensor(0), output: shifted(0), batch: batch, context: context).item
        }
        let trainer = try makeTrainer(config, strategy: probe)
        try trainer.train(from: TrainingPosition(task: 0))
        try trainer.train(from: TrainingPosition(task: 1))
        #expect(abs(try #require(newClassMoved)) < 1e-5)
        #expect(try #require(oldClassMoved) > 0.1)
    }

    @Test("with distilled_classes seen, raising a current-task logit raises the class-incremental distillation")
    func seenClassesDistillationPenalizesNewClasses() throws {
        var config = smallSplitMNIST(strategy: "lwf", fraction: 0.01)
        config.scenario = "class"
        config.training.batchSize = 16
        let lwf = try LwF(distilledClasses: .seen)
        var unchanged: Float? = nil, newClassRaised: Float? = nil, laterClassRaised: Float? = nil
        let probe = FirstBatchProbe(lwf, task: 1) { taskLoss, output, batch, context in
            func shifted(_ column: Int) -> Tensor {
                output + Tensor(shape: output.shape, scalars: (0..<output.count).map { $0 % 10 == column ? 5 : 0 })
            }
            unchanged = lwf.loss(taskLoss: Tensor(0), output: output, batch: batch, context: context).item
            newClassRaised = lwf.loss(taskLoss: Tensor(0), output: shifted(2), batch: batch, context: context).item
            laterClassRaised = lwf.loss(taskLoss: Tensor(0), output: shifted(7), batch: batch, context: context).item
        }
        let trainer = try makeTrainer(config, strategy: probe)
        try trainer.train(from: TrainingPosition(task: 0))
        try trainer.train(from: TrainingPosition(task: 1))
        #expect(try #require(newClassRaised) > (try #require(unchanged)) + 0.1)
        #expect(abs(try #require(laterClassRaised) - (try #require(unchanged))) < 1e-5, "classes not seen yet stay out")
    }

    @Test("with loss_weighting by_task_count the loss at the second task is ½·L_new + ½·λ_o·L_KD")
    func taskCountWeighting() throws {
        var config = smallSplitMNIST(strategy: "lwf", fraction: 0.01)
        config.training.batchSize = 16
        let weighted = try LwF(lambda: 3, lossWeighting: .byTaskCount), additive = try LwF(lambda: 3)
        var pair: (weighted: Float, distillation: Float)? = nil
        let probe = FirstBatchProbe(weighted, task: 1) { taskLoss, output, batch, context in
            // The additive LwF freezes the same old model; perturbing the old head makes the distillation non-zero.
            try! additive.beforeTask(1, context: context)
            let heads = context.model.head as! MultiHead
            let before = heads.heads[0].weight.scalars
            heads.heads[0].weight.scalars = before.map { $0 * 3 }
            let kd = additive.penalty(output: output, batch: batch, context: context)!.item / 3
            pair = (weighted.loss(taskLoss: Tensor(2), output: output, batch: batch, context: context).item, kd)
            heads.heads[0].weight.scalars = before
        }
        let trainer = try makeTrainer(config, strategy: probe)
        try trainer.train(from: TrainingPosition(task: 0))
        try trainer.train(from: TrainingPosition(task: 1))
        let (total, kd) = try #require(pair)
        #expect(kd > 1e-3)
        #expect(abs(total - (0.5 * 2 + 0.5 * 3 * kd)) < 1e-4 * max(1, total), "\(total) vs \(0.5 * 2 + 1.5 * kd)")
        #expect(weighted.newTaskShare(0) == 1 && weighted.newTaskShare(4) == 0.2 && additive.newTaskShare(4) == 1)
    }

    @Test("LwF weighed by the task count is refused beside a method that replaces the task loss, naming the option")
    func taskCountWeightingRefusesCriterionReplacers() throws {
        var h = HyperparameterSettings()
        h["lwf", "loss_weighting"] = "by_task_count"
        #expect { try StrategyRegistry.make("icarl+lwf", h) } throws: { "\($0)".contains("lwf.loss_weighting") && "\($0)".contains("icarl") }
        #expect((try StrategyRegistry.make("lwf", h) as! LwF).lossWeighting == .byTaskCount)
        #expect(throws: Never.self) { try StrategyRegistry.make("icarl+lwf") }
    }
}
