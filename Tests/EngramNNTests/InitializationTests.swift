import EngramTensor
import Testing
import EngramNN

/// (min, max, mean, variance) of the values, in Double.
func summary(_ values: [Float]) -> (min: Double, max: Double, mean: Double, variance: Double) {
    let d = values.map(Double.init)
    let mean = d.reduce(0, +) / Double(d.count)
    let variance = d.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(d.count)
    return (d.min()!, d.max()!, mean, variance)
}

@Suite struct InitializationTests {
    @Test("Linear weights and biases lie within ±1/√fan_in with the uniform variance 1/(3·fan_in)")
    func linear() {
        var rng = RandomGenerator(seed: 700)
        let layer = Linear(1000, 400, using: &rng)
        let bound = 1 / Double(1000).squareRoot()
        let w = summary(layer.weight.scalars)
        #expect(w.min >= -bound && w.max <= bound)
        #expect(w.min < -0.99 * bound && w.max > 0.99 * bound)
        #expect(Swift.abs(w.mean) < 0.01 * bound)
        #expect(Swift.abs(w.variance / (1.0 / 3000) - 1) < 0.02)
        let b = summary(layer.bias!.scalars)
        #expect(b.min >= -bound && b.max <= bound && b.max - b.min > bound)
        #expect(layer.weight.requiresGrad && layer.bias!.requiresGrad)
    }

    @Test("Conv2d weights lie within ±1/√(C·k²) with variance 1/(3·C·k²)")
    func conv() {
        var rng = RandomGenerator(seed: 701)
        let conv = Conv2d(16, 64, kernelSize: 3, using: &rng)
        let fanIn = 16.0 * 9
        let bound = 1 / fanIn.squareRoot()
        let w = summary(conv.weight.scalars)
        #expect(w.min >= -bound && w.max <= bound && w.min < -0.99 * bound && w.max > 0.99 * bound)
        #expect(Swift.abs(w.variance / (1 / (3 * fanIn)) - 1) < 0.04)
        let b = summary(conv.bias!.scalars)
        #expect(b.min >= -bound && b.max <= bound)
    }

    @Test("Initialization.kaimingUniform with a = √5 has bound 1/√fan_in; a = 0 gives √(6/fan_in)")
    func kaiming() {
        var rng = RandomGenerator(seed: 702)
        let w = Initialization.kaimingUniform([2000], fanIn: 50, using: &rng).scalars.map { Swift.abs($0) }
        #expect(w.max()! <= 1 / Float(50).squareRoot() && w.max()! > 0.98 / Float(50).squareRoot())
        let relu = Initialization.kaimingUniform([2000], fanIn: 50, a: 0, using: &rng).scalars.map { Swift.abs($0) }
        let reluBound = (6 / Float(50)).squareRoot()
        #expect(relu.max()! <= reluBound * (1 + 1e-6) && relu.max()! > 0.98 * reluBound)
    }

    @Test("the same generator state gives the same initial weights")
    func reproducible() {
        var a = RandomGenerator(seed: 703), b = RandomGenerator(seed: 703)
        #expect(Linear(5, 3, using: &a).weight.scalars == Linear(5, 3, using: &b).weight.scalars)
        #expect(Linear(5, 3, using: &a).weight.scalars != Linear(5, 3, using: &a).weight.scalars)
    }
}

@Suite struct ModelArchitectureTests {
    @Test("Models.mlp(784, [400, 400], 10) has 478410 parameters named features.1, features.3 and head")
    func mlp() {
        var rng = RandomGenerator(seed: 710)
        let model = Models.mlp(input: 784, hidden: [400, 400], classes: 10, using: &rng)
        // 784·400 + 400 + 400·400 + 400 + 400·10 + 10
        #expect(model.parameterCount == 478_410)
        #expect(model.namedParameters().map(\.0) == ["features.1.weight", "features.1.bias", "features.3.weight",
                                                      "features.3.bias", "head.weight", "head.bias"])
        #expect(model(Tensor.zeros([2, 1, 28, 28])).shape == [2, 10])
        let multi = Models.mlp(input: 10, hidden: [8], classes: 0, headsPerTask: [2, 2], using: &rng)
        #expect(multi.namedParameters().map(\.0).suffix(2) == ["head.heads.1.weight", "head.heads.1.bias"])
    }

    @Test("resnet18Reduced(nf: 20, classes: 100) has GEM's 1,109,240 parameters and PyTorch-style names")
    func resnet() {
        var rng = RandomGenerator(seed: 711)
        let model = Models.resnet18Reduced(classes: 100, nf: 20, using: &rng)
        let count = model.parameterCount
        print("resnet18Reduced(nf: 20, classes: 100) parameter count: \(count)")
        // stem 3·20·9 + BN 40 = 580; stage 1: 2·(2·3600 + 80) = 14560;
        // stage 2: (7200 + 14400 + 160 + 800 + 80) + (2·14400 + 160) = 51600;
        // stage 3: (28800 + 57600 + 320 + 3200 + 160) + (2·57600 + 320) = 205600;
        // stage 4: (115200 + 230400 + 640 + 12800 + 320) + (2·230400 + 640) = 820800; head 160·100 + 100 = 16100
        #expect(count == 1_109_240)
        let names = model.namedParameters().map(\.0)
        for expected in ["features.0.weight", "features.1.weight", "features.1.bias", "features.3.0.conv1.weight",
                         "features.3.0.bn1.weight", "features.3.1.conv2.weight", "features.4.0.shortcut.0.weight",
                         "features.4.0.shortcut.1.bias", "features.6.1.bn2.weight", "head.weight", "head.bias"] {
            #expect(names.contains(expected), "\(expected)")
        }
        #expect(names.first == "features.0.weight" && names.last == "head.bias")
        #expect(!names.contains("features.3.0.shortcut.0.weight"))
        #expect(Set(names).count == names.count)
        #expect(model.namedParameters().first { $0.0 == "head.weight" }?.1.shape == [100, 160])
        let buffers = model.namedBuffers().map(\.0)
        #expect(buffers.prefix(3) == ["features.1.running_mean", "features.1.running_var", "features.1.num_batches_tracked"])
    }

    @Test("resnet18Reduced maps 32×32 images to class scores and eval() reaches every BatchNorm")
    func resnetForward() {
        var rng = RandomGenerator(seed: 712)
        let model = Models.resnet18Reduced(classes: 7, nf: 4, using: &rng)
        let x = randomTensor([2, 3, 32, 32], seed: 713, requiresGrad: false)
        #expect(model(x).shape == [2, 7])
        model.eval()
        #expect(model.namedModules().allSatisfy { !$0.1.isTraining })
        let stats = model.namedBuffers().filter { $0.0.hasSuffix("num_batches_tracked") }.map { $0.1.item }
        _ = model(x)
        #expect(model.namedBuffers().filter { $0.0.hasSuffix("num_batches_tracked") }.map { $0.1.item } == stats)
    }

    @Test("a state dictionary loads back into a fresh model with identical outputs")
    func stateRoundTrip() throws {
        var rng = RandomGenerator(seed: 714)
        let a = Models.resnet18Reduced(classes: 3, nf: 4, using: &rng)
        let b = Models.resnet18Reduced(classes: 3, nf: 4, using: &rng)
        let x = randomTensor([2, 3, 8, 8], seed: 715, requiresGrad: false)
        _ = a(x)
        a.eval(); b.eval()
        #expect(a(x).scalars != b(x).scalars)
        try b.load(Dictionary(uniqueKeysWithValues: a.stateDictionary().map { ($0.0, $0.1.detached()) }))
        #expect(a(x).scalars == b(x).scalars)
        #expect(throws: ModuleError.missingTensor("head.bias")) {
            try b.load(Dictionary(uniqueKeysWithValues: a.stateDictionary().filter { $0.0 != "head.bias" }.map { ($0.0, $0.1) }))
        }
    }
}
