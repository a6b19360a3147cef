import EngramTensor
import Testing
import EngramNN

/// The parameter-free option-A shortcut of the CIFAR ResNets.
@Suite struct ZeroPaddingShortcutTests {
    @Test("the shortcut keeps every other pixel and pads the extra channels with zeros on both sides")
    func handComputedCase() {
        // x: one sample, 2 channels of 3×3 with values 0..<18; out 4 channels, stride 2.
        let x = Tensor.arange(0, 18).reshaped([1, 2, 3, 3])
        let y = ZeroPaddingShortcut(2, 4, stride: 2)(x)
        #expect(y.shape == [1, 4, 2, 2])
        // channel 0: zeros; 1: x[0] at (0,0), (0,2), (2,0), (2,2) = 0, 2, 6, 8; 2: the same of x[1]; 3: zeros
        #expect(y.scalars == [0, 0, 0, 0, 0, 2, 6, 8, 9, 11, 15, 17, 0, 0, 0, 0])
        #expect(ZeroPaddingShortcut(2, 4, stride: 2).namedParameters().isEmpty)
        // An odd extra channel count puts the larger half after: 2 → 5 is 1 zero channel before, 2 after.
        let z = ZeroPaddingShortcut(2, 5, stride: 1)(x)
        #expect(z.shape == [1, 5, 3, 3])
        #expect(Array(z.scalars[9..<27]) == x.scalars)
        #expect(z.scalars[..<9].allSatisfy { $0 == 0 } && z.scalars[27...].allSatisfy { $0 == 0 })
    }

    @Test("the shortcut's input gradient matches finite differences")
    func gradient() {
        let x = randomTensor([2, 3, 5, 4], seed: 801)
        checkGradients(wrt: [x]) { ZeroPaddingShortcut(3, 6, stride: 2)(x).tanh() }
    }

    @Test("a BasicBlock with the zero-padding shortcut has no shortcut parameters and correct gradients")
    func blockWithZeroPadding() {
        var rng = RandomGenerator(seed: 802)
        let block = BasicBlock(2, 4, stride: 2, shortcut: .zeroPadding, using: &rng)
        #expect(block.shortcut is ZeroPaddingShortcut)
        #expect(block.namedParameters().map(\.0) == ["conv1.weight", "bn1.weight", "bn1.bias", "conv2.weight", "bn2.weight", "bn2.bias"])
        let x = randomTensor([3, 2, 6, 6], seed: 803)
        checkGradients(wrt: [x] + parameters(block), tolerance: 2e-2, entriesPerTensor: 8, kinkSteps: kinkSteps) { block(x) }
    }
}

/// `Models.cifarResNet`, the ResNet-20/32/… of He et al. (2016, §4.2).
@Suite struct CIFARResNetTests {
    @Test("cifarResNet(depth: 20) has ResNet-20's 269,722 parameters for 3 channels and 10 classes")
    func parameterCount() {
        var rng = RandomGenerator(seed: 810)
        // 3×3 conv weights are in·out·9, BatchNorms 2·channels, shortcuts none, n = 3 blocks per stage:
        // stem 3·16·9 + 2·16 = 464;
        // stage 1: 3·(2·16·16·9 + 2·2·16) = 3·4672 = 14,016;
        // stage 2: (16·32·9 + 32·32·9 + 2·2·32) + 2·(2·32·32·9 + 2·2·32) = 13,952 + 37,120 = 51,072;
        // stage 3: (32·64·9 + 64·64·9 + 2·2·64) + 2·(2·64·64·9 + 2·2·64) = 55,552 + 147,968 = 203,520;
        // head 64·10 + 10 = 650. Total 269,722; with 1 input channel the stem loses 2·16·9 = 288.
        let model = Models.cifarResNet(depth: 20, inputChannels: 3, classes: 10, using: &rng)
        #expect(model.parameterCount == 269_722)
        #expect(Models.cifarResNet(depth: 20, inputChannels: 1, classes: 10, using: &rng).parameterCount == 269_434)
        // ResNet-32: n = 5, two more blocks in each stage: + 2·(4672 + 18,560 + 73,984) = 194,432.
        #expect(Models.cifarResNet(depth: 32, inputChannels: 3, classes: 10, using: &rng).parameterCount == 464_154)
        let names = model.namedParameters().map(\.0)
        for expected in ["features.0.weight", "features.1.weight", "features.3.0.conv1.weight", "features.3.2.bn2.bias",
                         "features.4.0.conv1.weight", "features.5.2.conv2.weight", "head.weight", "head.bias"] {
            #expect(names.contains(expected), "\(expected)")
        }
        #expect(!names.contains { $0.contains("shortcut") })
        #expect(Set(names).count == names.count)
    }

    @Test("cifarResNet maps 1×28×28 and 3×32×32 images to class scores through global average pooling")
    func outputShapes() {
        var rng = RandomGenerator(seed: 811)
        let mnist = Models.cifarResNet(depth: 20, inputChannels: 1, classes: 10, using: &rng)
        #expect(mnist(randomTensor([2, 1, 28, 28], seed: 812, requiresGrad: false)).shape == [2, 10])
        let cifar = Models.cifarResNet(depth: 20, inputChannels: 3, classes: 0, headsPerTask: [5, 3], using: &rng)
        let x = randomTensor([2, 3, 32, 32], seed: 813, requiresGrad: false)
        #expect(cifar(x).shape == [2, 5])
        cifar.setActiveTask(1)
        #expect(cifar(x).shape == [2, 3])
    }

    @Test("convolutions start from N(0, 2/(k·k·out_channels)) and BatchNorms from γ = 1, β = 0")
    func initialization() {
        var rng = RandomGenerator(seed: 814)
        let model = Models.cifarResNet(depth: 20, inputChannels: 3, classes: 10, using: &rng)
        let weights = Dictionary(uniqueKeysWithValues: model.namedParameters())
        let conv = summary(weights["features.5.1.conv1.weight"]!.scalars)  // 64·64·9 = 36,864 draws
        #expect(abs(conv.mean) < 0.002)
        #expect(abs(conv.variance / (2.0 / (9 * 64)) - 1) < 0.05)
        let stem = summary(weights["features.0.weight"]!.scalars)
        #expect(abs(stem.variance / (2.0 / (9 * 16)) - 1) < 0.25)
        #expect(weights["features.3.1.bn1.weight"]!.scalars.allSatisfy { $0 == 1 })
        #expect(weights["features.3.1.bn1.bias"]!.scalars.allSatisfy { $0 == 0 })
    }

    @Test("a small cifarResNet's gradients match finite differences")
    func gradients() {
        var rng = RandomGenerator(seed: 815)
        let model = Models.cifarResNet(depth: 8, inputChannels: 1, classes: 3, using: &rng)
        let x = randomTensor([3, 1, 8, 8], seed: 816)
        checkGradients(wrt: [x] + parameters(model, ["features.0.weight", "features.4.0.conv1.weight",
                                                     "features.5.0.bn2.weight", "head.weight"]),
                       tolerance: 2e-2, entriesPerTensor: 4, kinkSteps: deepKinkSteps) { model(x) }
    }

    @Test("with taskNorms every BatchNorm is per task and named tasks.<t>")
    func taskNormNames() {
        var rng = RandomGenerator(seed: 817)
        let model = Models.cifarResNet(depth: 20, inputChannels: 3, classes: 10, taskNorms: 3, using: &rng)
        #expect(!model.namedModules().contains { $0.1 is BatchNorm && !$0.0.contains(".tasks.") })
        // BatchNorm parameters 2·(16 + 6·16 + 6·32 + 6·64) = 1376, in two more copies.
        #expect(model.parameterCount == 269_722 + 2 * 1376)
        let names = model.namedParameters().map(\.0)
        #expect(names.contains("features.1.tasks.2.weight") && names.contains("features.4.0.bn1.tasks.1.bias"))
        let resnet18 = Models.resnet18Reduced(classes: 10, nf: 4, taskNorms: 2, using: &rng)
        #expect(resnet18.namedParameters().map(\.0).contains("features.4.0.shortcut.1.tasks.1.weight"))
        #expect(!resnet18.namedModules().contains { $0.1 is BatchNorm && !$0.0.contains(".tasks.") })
    }

    @Test("with taskNorms, training task 1 leaves task 0's BatchNorms bit-identical and its eval output unchanged")
    func taskNormsIsolateTasks() {
        var rng = RandomGenerator(seed: 818)
        let model = Models.cifarResNet(depth: 8, inputChannels: 1, classes: 0, headsPerTask: [2, 2], taskNorms: 2, using: &rng)
        let x = randomTensor([8, 1, 8, 8], seed: 819, requiresGrad: false)
        let labels = [0, 1, 1, 0, 1, 0, 0, 1]
        func train(_ task: Int, _ parameters: [(String, Tensor)], steps: Int = 3) {
            let optimizer = SGD(parameters, learningRate: 0.1, momentum: 0.9, weightDecay: 5e-4)
            model.train()
            model.setActiveTask(task)
            for _ in 0..<steps {
                optimizer.zeroGrad()
                Losses.crossEntropy(model(x), targets: labels).backward()
                optimizer.step()
            }
        }
        func taskZeroNorms() -> [String: [Float]] {
            Dictionary(uniqueKeysWithValues: model.stateDictionary().filter { $0.0.contains(".tasks.0.") }.map { ($0.0, $0.1.scalars) })
        }
        func evalOutput(_ task: Int) -> [Float] {
            let restore = model.enterEvaluationMode()
            defer { restore() }
            model.setActiveTask(task)
            return GradMode.withoutGrad { model(x).scalars }
        }
        train(0, model.namedParameters())
        let norms = taskZeroNorms(), output = evalOutput(0)
        #expect(norms.count == 5 * 7)  // seven BatchNorms (stem + 2 per block), weight, bias and three buffers each
        let taskOne = model.stateDictionary().filter { $0.0.contains(".tasks.1.") }.map { $0.1.scalars }

        // Shared convolutions frozen, as a parameter-isolation method would: task 0 computes exactly as before.
        train(1, model.namedParameters().filter { !$0.0.hasSuffix("conv1.weight") && !$0.0.hasSuffix("conv2.weight") && $0.0 != "features.0.weight" })
        #expect(taskZeroNorms() == norms)
        #expect(evalOutput(0) == output)
        #expect(model.stateDictionary().filter { $0.0.contains(".tasks.1.") }.map { $0.1.scalars } != taskOne)

        // Everything trainable: the shared weights move, task 0's normalization still does not.
        train(1, model.namedParameters())
        #expect(taskZeroNorms() == norms)
        #expect(evalOutput(0) != output)
    }
}
