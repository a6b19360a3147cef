import EngramTensor
import EngramNN
import EngramData
import EngramCL
import Foundation
import Testing

@Suite(.serialized) struct LwFTests {
    @Test("the distillation loss equals KL(softmax(y_o/T) ‖ softmax(ŷ/T)) computed by hand on 2×3 logits (T² only when asked)")
    func distillationMatchesHandComputedKL() {
        let logits: [Double] = [1, 2, 0.5, -1, 0, 3]
        let old: [Double] = [2, 0, 1, 0.5, 0.5, 1]
        let t = 2.0
        func softmax(_ row: ArraySlice<Double>) -> [Double] {
            let e = row.map { Foundation.exp($0 / t) }
            let s = e.reduce(0, +)
            return e.map { $0 / s }
        }
        var kl = 0.0
        for r in 0..<2 {
            let p = softmax(old[(3 * r)..<(3 * r + 3)]), q = softmax(logits[(3 * r)..<(3 * r + 3)])
            for j in 0..<3 { kl += p[j] * Foundation.log(p[j] / q[j]) }
        }
        let expected = kl / 2
        let got = LwF.distillationLoss(logits: Tensor(shape: [2, 3], scalars: logits.map(Float.init)),
                                       oldLogits: Tensor(shape: [2, 3], scalars: old.map(Float.init)), temperature: Float(t))
        #expect(abs(Double(got.item) - expected) < 1e-5, "\(got.item) vs \(expected)")
        let squared = LwF.distillationLoss(logits: Tensor(shape: [2, 3], scalars: logits.map(Float.init)),
                                           oldLogits: Tensor(shape: [2, 3], scalars: old.map(Float.init)), temperature: Float(t),
                                           temperatureSquared: true)
        #expect(abs(Double(squared.item) - t * t * expected) < 1e-5)
        let defaults = try! StrategyRegistry.make("lwf") as! LwF
        #expect(defaults.temperatureSquared == false && defaults.lambda == 1 && defaults.temperature == 2)
        let same = LwF.distillationLoss(logits: Tensor(shape: [2, 3], scalars: old.map(Float.init)),
                                        oldLogits: Tensor(shape: [2, 3], scalars: old.map(Float.init)), temperature: 2)
        #expect(abs(same.item) < 1e-6)
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

    @Test("the padded distillation equals Σ_old p (log p − log q), q the softmax over every seen class, computed by hand")
    func paddedDistillationMatchesHandComputedValue() {
        let logits: [Double] = [1, 2, 0.5, -1, 0, 3]     // 2 samples × 3 seen classes (the last is the current task's)
        let old: [Double] = [2, 0, 0.5, 0.5]              // 2 samples × 2 old classes
        let t = 2.0
        func softmax(_ row: [Double]) -> [Double] {
            let e = row.map { Foundation.exp($0 / t) }
            let s = e.reduce(0, +)
            return e.map { $0 / s }
        }
        var kl = 0.0
        for r in 0..<2 {
            let p = softmax(Array(old[(2 * r)..<(2 * r + 2)])), q = softmax(Array(logits[(3 * r)..<(3 * r + 3)]))
            for j in 0..<2 { kl += p[j] * Foundation.log(p[j] / q[j]) }
        }
        let expected = kl / 2
        let got = LwF.paddedDistillationLoss(logits: Tensor(shape: [2, 3], scalars: logits.map(Float.init)),
                                             oldLogits: Tensor(shape: [2, 2], scalars: old.map(Float.init)), temperature: Float(t))
        #expect(abs(Double(got.item) - expected) < 1e-5, "\(got.item) vs \(expected)")
        let squared = LwF.paddedDistillationLoss(logits: Tensor(shape: [2, 3], scalars: logits.map(Float.init)),
                                                 oldLogits: Tensor(shape: [2, 2], scalars: old.map(Float.init)), temperature: Float(t),
                                                 temperatureSquared: true)
        #expect(abs(Double(squared.item) - t * t * expected) < 1e-5)
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
}
