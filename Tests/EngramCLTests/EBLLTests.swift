import EngramCL
import Testing

@Suite(.serialized) struct EBLLTests {
    @Test("at the start of a new task the code loss (and the distillation) is zero, and grows once the features move")
    func codeLossIsZeroAtTheStartOfATask() throws {
        var config = smallSplitMNIST(strategy: "ebll", fraction: 0.01)
        config.training.batchSize = 16
        let ebll = try EBLL(lambda: 1, lambdaCode: 1, codeSize: 20, autoencoderEpochs: 2)
        let trainer = try makeTrainer(config, strategy: ebll)
        let model = trainer.context.model
        try trainer.train(from: TrainingPosition(task: 0))
        #expect(ebll.autoencoders.count == 1 && ebll.autoencoders[0].codeSize == 20 && ebll.autoencoders[0].featureSize == 100)
        try ebll.beforeTask(1, context: trainer.context)
        model.setActiveTask(1)
        let batch = try #require(trainer.context.stream.trainingBatches(task: 1, epoch: 0, batchSize: 16).makeIterator().next())
        let loss = ebll.loss(taskLoss: Tensor(0), output: model(batch.inputs), batch: batch, context: trainer.context)
        #expect(abs(loss.item) < 1e-6)
        let f = GradMode.withoutGrad { model.features(batch.inputs) }
        #expect(EBLL.codeLoss(features: f, oldFeatures: f, autoencoders: ebll.autoencoders).item == 0)
        #expect(EBLL.codeLoss(features: f * 1.5, oldFeatures: f, autoencoders: ebll.autoencoders).item > 1e-4)
        let autoencoderBytes = (100 * 20 * 2 + 20 + 100) * 4
        #expect(ebll.memoryBytes == model.parameterCount * 4 + autoencoderBytes)
        let copy = try EBLL()
        try copy.loadState(Dictionary(uniqueKeysWithValues: ebll.stateTensors()))
        #expect(copy.memoryBytes == ebll.memoryBytes && copy.autoencoders[0].encoderWeight == ebll.autoencoders[0].encoderWeight)
    }

    @Test("EBLL with λ_o = 1, λ_c = 1 forgets at least 3 points less than fine-tuning on task-incremental Split MNIST")
    func ebllForgetsLessThanFinetune() throws {
        let finetune = try runExperiment(smallSplitMNIST(strategy: "finetune"))
        let ebll = try runExperiment(smallSplitMNIST(strategy: "ebll"))
        print("forgetting (split MNIST, task-IL): finetune \(finetune.metrics.forgetting!), ebll \(ebll.metrics.forgetting!); "
              + "ACC finetune \(finetune.metrics.averageAccuracy!), ebll \(ebll.metrics.averageAccuracy!); memory \(ebll.strategyMemoryBytes)")
        #expect(ebll.metrics.forgetting! + 0.03 <= finetune.metrics.forgetting!)
    }
}
