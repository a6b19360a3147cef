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
}
