import EngramTensor
import EngramNN
import EngramData
import EngramCL
import Testing

@Suite(.serialized) struct EBLLTests {
    @Test("at the start of a new task the code loss (and the distillation) is zero, and grows once the features move")
    func codeLossIsZeroAtTheStartOfATask() throws {
        var config = smallSplitMNIST(strategy: "ebll", fraction: 0.01)
        config.training.batchSize = 16
        let ebll = try EBLL(lambda: 1, lambdaCode: 1, codeSize: 20, autoencoderEpochs: 2)
        var added: Float? = nil, code: Float? = nil, movedCode: Float? = nil
        let probe = FirstBatchProbe(ebll, task: 1) { taskLoss, output, batch, context in
            added = ebll.loss(taskLoss: taskLoss, output: output, batch: batch, context: context).item - taskLoss.item
            let f = GradMode.withoutGrad { context.model.features(batch.inputs) }
            code = EBLL.codeLoss(features: f, oldFeatures: f, autoencoders: ebll.autoencoders).item
            movedCode = EBLL.codeLoss(features: f * 1.5, oldFeatures: f, autoencoders: ebll.autoencoders).item
        }
        let trainer = try makeTrainer(config, strategy: probe)
        let model = trainer.context.model
        try trainer.train(from: TrainingPosition(task: 0))
        #expect(ebll.autoencoders.count == 1 && ebll.autoencoders[0].codeSize == 20 && ebll.autoencoders[0].featureSize == 100)
        #expect(ebll.memoryBytes == (100 * 20 * 2 + 20 + 100) * 4)
        try trainer.train(from: TrainingPosition(task: 1))
        #expect(abs(try #require(added)) < 1e-6)
        #expect(try #require(code) == 0)
        #expect(try #require(movedCode) > 1e-4)
        #expect(ebll.memoryBytes == model.parameterCount * 4 + 2 * (100 * 20 * 2 + 20 + 100) * 4)
        let copy = try EBLL()
        try copy.loadState(try ebll.saveState(), context: trainer.context)
        #expect(copy.memoryBytes == ebll.memoryBytes && copy.autoencoders[1].encoderWeight == ebll.autoencoders[1].encoderWeight)
    }

    @Test("the code loss's gradient with respect to the features matches central finite differences")
    func codeLossGradient() {
        var rng = RandomGenerator(seed: 7)
        let ae = TaskAutoencoder(featureSize: 6, codeSize: 3, using: &rng)
        let old = Tensor.uniform([2, 6], low: 0, high: 2, using: &rng)
        let start = Tensor.uniform([2, 6], low: 0, high: 2, using: &rng).scalars
        let f = Tensor(shape: [2, 6], scalars: start, requiresGrad: true)
        let analytic = EBLL.codeLoss(features: f, oldFeatures: old, autoencoders: [ae, ae]).gradients(withRespectTo: [f])[0].scalars
        for i in 0..<start.count {
            var plus = start, minus = start
            plus[i] += 1e-2; minus[i] -= 1e-2
            let lp = EBLL.codeLoss(features: Tensor(shape: [2, 6], scalars: plus), oldFeatures: old, autoencoders: [ae, ae]).item
            let lm = EBLL.codeLoss(features: Tensor(shape: [2, 6], scalars: minus), oldFeatures: old, autoencoders: [ae, ae]).item
            let numeric = (lp - lm) / 2e-2
            #expect(abs(numeric - analytic[i]) <= 2e-3 + 2e-2 * abs(numeric), "∂/∂f[\(i)]: \(analytic[i]) vs \(numeric)")
        }
    }
}
