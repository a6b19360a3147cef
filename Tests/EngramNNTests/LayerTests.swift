import EngramTensor
import Testing
import EngramNN

/// The parameters of `module` whose name is in `names` (all when nil), in order.
func parameters(_ module: any Module, _ names: [String]? = nil) -> [Tensor] {
    let all = module.namedParameters()
    guard let names else { return all.map(\.1) }
    return names.map { name in
        guard let p = all.first(where: { $0.0 == name })?.1 else { fatalError("no parameter \(name) in \(all.map(\.0))") }
        return p
    }
}

/// Smaller finite-difference steps for networks with ReLUs inside.
let kinkSteps: [Float] = [3e-3, 1e-3, 3e-4]
/// A deep ResNet on a batch of 4 (BatchNorm over 4 values in the last stage) is kinkier still.
let deepKinkSteps: [Float] = [3e-3, 1e-3, 3e-4, 1e-4, 3e-5]

@Suite struct LinearTests {
    @Test("Linear computes x·Wᵀ + b and flattens higher-rank input")
    func forward() {
        var rng = RandomGenerator(seed: 300)
        let layer = Linear(6, 4, using: &rng)
        let x = randomTensor([3, 6], seed: 301, requiresGrad: false)
        #expect(layer(x).scalars == Tensor.linear(x, weight: layer.weight, bias: layer.bias).scalars)
        let x4 = randomTensor([3, 1, 2, 3], seed: 302, requiresGrad: false)
        #expect(layer(x4).shape == [3, 4])
        #expect(layer(x4).scalars == layer(x4.reshaped([3, 6])).scalars)
        #expect(layer.inFeatures == 6 && layer.outFeatures == 4)
        #expect(Linear(3, 2, bias: false, using: &rng).namedParameters().map(\.0) == ["weight"])
    }

    @Test("Linear's gradients w.r.t. input, weight and bias match central differences", arguments: [true, false])
    func gradients(bias: Bool) {
        var rng = RandomGenerator(seed: 303)
        let layer = Linear(5, 3, bias: bias, using: &rng)
        let x = randomTensor([4, 5], seed: 304)
        checkGradients(wrt: [x] + parameters(layer)) { layer(x) }
        let x4 = randomTensor([2, 5, 1, 1], seed: 305)
        checkGradients(wrt: [x4]) { layer(x4) }
    }

    @Test("recordsActivations keeps the last input and output with its gradient after backward()")
    func recording() {
        var rng = RandomGenerator(seed: 306)
        let layer = Linear(3, 2, using: &rng)
        layer.recordsActivations = true
        let x = randomTensor([4, 3], seed: 307)
        let y = layer(x)
        (y * y).sum().backward()
        #expect(layer.lastInput === x && layer.lastOutput === y)
        expectClose(y.grad!.scalars, y.scalars.map { 2 * $0 }, rtol: 1e-6)
        layer.clearRecord()
        #expect(layer.lastInput == nil && layer.perSampleAbsoluteGradientSum() == nil)
    }
}

@Suite struct Conv2dTests {
    @Test("Conv2d's gradients w.r.t. input, weight and bias match central differences",
          arguments: [(1, 0, true), (2, 1, true), (1, 1, false), (2, 0, false)])
    func gradients(stride: Int, padding: Int, bias: Bool) {
        var rng = RandomGenerator(seed: 310)
        let conv = Conv2d(2, 3, kernelSize: 3, stride: stride, padding: padding, bias: bias, using: &rng)
        let x = randomTensor([2, 2, 5, 6], seed: 311)
        checkGradients(wrt: [x] + parameters(conv)) { conv(x) }
    }

    @Test("Conv2d uses Tensor.conv2d with its geometry and names its parameters weight and bias")
    func forward() {
        var rng = RandomGenerator(seed: 312)
        let conv = Conv2d(3, 4, kernelSize: 3, stride: 2, padding: 1, using: &rng)
        let x = randomTensor([2, 3, 7, 6], seed: 313, requiresGrad: false)
        let y = conv(x)
        #expect(y.shape == [2, 4, 4, 3])
        #expect(y.scalars == Tensor.conv2d(x, weight: conv.weight, bias: conv.bias, stride: 2, padding: 1).scalars)
        #expect(conv.namedParameters().map(\.0) == ["weight", "bias"])
        #expect(conv.weight.shape == [4, 3, 3, 3] && conv.bias?.shape == [4])
    }
}

@Suite struct BatchNormTests {
    @Test("BatchNorm updates running statistics as PyTorch: momentum 0.1, unbiased variance")
    func runningStatistics() {
        let bn = BatchNorm(2)
        // Channel 0: 1, 2, 3, 4 (mean 2.5, unbiased variance 5/3); channel 1: 2, 4, 6, 8 (mean 5, variance 20/3).
        let x = Tensor(shape: [4, 2], scalars: [1, 2, 2, 4, 3, 6, 4, 8])
        _ = bn(x)
        // mean: 0.9·0 + 0.1·[2.5, 5] = [0.25, 0.5]; var: 0.9·1 + 0.1·[5/3, 20/3] = [1.0666667, 1.5666667]
        expectClose(bn.runningMean.scalars, [0.25, 0.5], rtol: 1e-6)
        expectClose(bn.runningVariance.scalars, [1.0666667, 1.5666667], rtol: 1e-6)
        #expect(bn.batchesTracked.item == 1)
        _ = bn(x)
        // mean: 0.9·0.25 + 0.25 = 0.475, 0.9·0.5 + 0.5 = 0.95;
        // var: 0.9·1.0666667 + 0.1666667 = 1.1266667, 0.9·1.5666667 + 0.6666667 = 2.0766667
        expectClose(bn.runningMean.scalars, [0.475, 0.95], rtol: 1e-6)
        expectClose(bn.runningVariance.scalars, [1.1266667, 2.0766667], rtol: 1e-6)
        #expect(bn.batchesTracked.item == 2)
        // Evaluation uses (and keeps) the running statistics.
        bn.eval()
        let y = bn(x)
        expectClose(bn.runningMean.scalars, [0.475, 0.95], rtol: 1e-6)
        #expect(bn.batchesTracked.item == 2)
        let expected = x.scalars.enumerated().map { i, v in
            (v - bn.runningMean.scalars[i % 2]) / (bn.runningVariance.scalars[i % 2] + 1e-5).squareRoot()
        }
        expectClose(y.scalars, expected, rtol: 1e-5)
    }

    @Test("BatchNorm2d running statistics pool over batch and space")
    func runningStatistics2d() {
        let bn = BatchNorm(1, momentum: 0.5)
        let x = Tensor(shape: [2, 1, 1, 2], scalars: [0, 2, 4, 6])  // mean 3, unbiased variance 20/3
        _ = bn(x)
        expectClose(bn.runningMean.scalars, [1.5], rtol: 1e-6)
        expectClose(bn.runningVariance.scalars, [0.5 + 10.0 / 3], rtol: 1e-6)
    }

    @Test("BatchNorm starts with γ = 1, β = 0, running mean 0 and variance 1, and names its state as PyTorch")
    func initialState() {
        let bn = BatchNorm(3)
        #expect(bn.gamma?.scalars == [1, 1, 1] && bn.beta?.scalars == [0, 0, 0])
        #expect(bn.runningMean.scalars == [0, 0, 0] && bn.runningVariance.scalars == [1, 1, 1])
        #expect(bn.namedParameters().map(\.0) == ["weight", "bias"])
        #expect(bn.namedBuffers().map(\.0) == ["running_mean", "running_var", "num_batches_tracked"])
        #expect(BatchNorm(3, affine: false).namedParameters().isEmpty)
    }

    @Test("BatchNorm's gradients match central differences in training and evaluation, [N,C] and [N,C,H,W]",
          arguments: [[5, 3], [3, 2, 3, 2]], [true, false])
    func gradients(shape: [Int], training: Bool) {
        let bn = BatchNorm(shape[1])
        bn.gamma!.scalars = [1.5, 0.5, -0.8].prefix(shape[1]).map { $0 }
        bn.beta!.scalars = [0.1, -0.3, 0.2].prefix(shape[1]).map { $0 }
        bn.runningMean.scalars = [0.2, -0.1, 0.3].prefix(shape[1]).map { $0 }
        bn.runningVariance.scalars = [0.7, 1.4, 2.0].prefix(shape[1]).map { $0 }
        bn.isTraining = training
        let x = randomTensor(shape, seed: 320, std: 1.5, mean: 0.3)
        checkGradients(wrt: [x] + parameters(bn)) { bn(x) }
    }
}

@Suite struct BasicBlockTests {
    @Test("BasicBlock's gradients match finite differences in training and evaluation, with and without a shortcut",
          arguments: [(2, 2, 1), (2, 3, 2), (2, 3, 1)])
    func gradients(inChannels: Int, outChannels: Int, stride: Int) {
        var rng = RandomGenerator(seed: 330)
        let block = BasicBlock(inChannels, outChannels, stride: stride, using: &rng)
        #expect((block.shortcut != nil) == (inChannels != outChannels || stride != 1))
        let x = randomTensor([3, inChannels, 4, 4], seed: 331)
        let y = block(x)
        #expect(y.shape == [3, outChannels, 4 / stride, 4 / stride])
        // ReLUs after BatchNorm: a parameter step shifts whole channels across kinks, hence kinkSteps. The smallest
        // kink step (3e-4) is within the Float rounding of the forward pass: a different summation order (oneDNN's
        // convolutions) moves one central difference by 5 %, so finite differences run on the OpenBLAS backend and the
        // oneDNN backend's gradients are compared with OpenBLAS's below.
        ComputeBackend.using(.openBLAS) {
            checkGradients(wrt: [x] + parameters(block), tolerance: 2e-2, entriesPerTensor: 8, kinkSteps: kinkSteps) { block(x) }
        }
        for backend in ComputeBackend.usable where backend != .openBLAS {
            let wrt = [x] + parameters(block)
            let r = randomTensor(y.shape, seed: 332, requiresGrad: false)
            let reference = ComputeBackend.using(.openBLAS) { block(x).gradients(withRespectTo: wrt, seed: r) }
            let other = ComputeBackend.using(backend) { block(x).gradients(withRespectTo: wrt, seed: r) }
            for (a, b) in zip(other, reference) {
                let scale = b.scalars.map { Swift.abs($0) }.max() ?? 0
                expectClose(a.scalars, b.scalars, rtol: 1e-4, atol: 1e-5 * Swift.max(scale, 1))
            }
        }
        block.eval()
        checkGradients(wrt: [x] + parameters(block), tolerance: 2e-2, entriesPerTensor: 8, kinkSteps: kinkSteps) { block(x) }
    }

    @Test("BasicBlock is relu(bn2(conv2(relu(bn1(conv1 x)))) + x) without a shortcut")
    func identityShortcut() {
        var rng = RandomGenerator(seed: 332)
        let block = BasicBlock(2, 2, using: &rng)
        block.eval()
        let x = randomTensor([2, 2, 3, 3], seed: 333, requiresGrad: false)
        let inner = block.bn2(block.conv2(block.bn1(block.conv1(x)).relu()))
        #expect(block(x).scalars == (inner + x).relu().scalars)
        #expect(block.namedParameters().map(\.0) == ["conv1.weight", "bn1.weight", "bn1.bias", "conv2.weight", "bn2.weight", "bn2.bias"])
    }
}

@Suite struct DropoutTests {
    @Test("Dropout is the identity in evaluation and zeroes or rescales by 1/(1 − p) in training")
    func forward() {
        var rng = RandomGenerator(seed: 340)
        let dropout = Dropout(0.25, using: &rng)
        let x = uniformTensor([100, 40], seed: 341, low: 1, high: 2, requiresGrad: false)
        dropout.isTraining = false
        #expect(dropout(x) === x)
        dropout.isTraining = true
        let y = dropout(x)
        var zeros = 0
        for (a, b) in zip(x.scalars, y.scalars) {
            if b == 0 { zeros += 1 } else { #expect(Swift.abs(b - a / 0.75) <= 1e-6 * b) }
        }
        #expect(Swift.abs(Double(zeros) / 4000 - 0.25) < 0.03)
        // A fresh mask each call; the same generator state gives the same mask.
        let saved = dropout.generator
        let y2 = dropout(x)
        #expect(y2.scalars != y.scalars)
        dropout.generator = saved
        #expect(dropout(x).scalars == y2.scalars)
    }

    @Test("Dropout's gradient in training matches central differences with a fixed generator")
    func gradients() {
        var rng = RandomGenerator(seed: 342)
        let dropout = Dropout(0.4, using: &rng)
        let fixed = dropout.generator
        let x = randomTensor([4, 6], seed: 343)
        checkGradients(wrt: [x]) {
            dropout.generator = fixed
            return dropout(x)
        }
        dropout.generator = fixed
        let g = dropout(x).sum().gradients(withRespectTo: [x])[0]
        dropout.generator = fixed
        let y = dropout(x)
        for (gi, yi) in zip(g.scalars, y.scalars) { #expect(Swift.abs(gi - (yi == 0 ? 0 : 1 / 0.6)) < 1e-6) }
        #expect(y.scalars.contains(0) && y.scalars.contains { $0 != 0 })
    }
}

@Suite struct MultiHeadTests {
    @Test("MultiHead runs the active task's head only and names heads heads.<task>")
    func forward() {
        var rng = RandomGenerator(seed: 350)
        let mh = MultiHead(inFeatures: 4, classesPerTask: [2, 3], using: &rng)
        let x = randomTensor([5, 4], seed: 351, requiresGrad: false)
        #expect(mh(x).shape == [5, 2])
        mh.activeTask = 1
        #expect(mh(x).scalars == mh.heads[1](x).scalars)
        #expect(mh.forwardAll(x).map(\.shape) == [[5, 2], [5, 3]])
        #expect(mh.namedParameters().map(\.0) == ["heads.0.weight", "heads.0.bias", "heads.1.weight", "heads.1.bias"])
        let model = Classifier(features: Sequential([ReLU()]), head: mh)
        model.setActiveTask(0)
        #expect(mh.activeTask == 0)
    }

    @Test("MultiHead's gradients reach the active head and the input only, matching central differences")
    func gradients() {
        var rng = RandomGenerator(seed: 352)
        let mh = MultiHead(inFeatures: 4, classesPerTask: [2, 3], using: &rng)
        mh.activeTask = 1
        let x = randomTensor([3, 4], seed: 353)
        checkGradients(wrt: [x] + parameters(mh.heads[1])) { mh(x) }
        mh(x).sum().backward()
        #expect(mh.heads[0].weight.grad == nil && mh.heads[1].weight.grad != nil)
    }
}

@Suite struct ResNetTests {
    @Test("resnet18Reduced's gradients w.r.t. a few parameters and the input match finite differences")
    func gradients() {
        var rng = RandomGenerator(seed: 360)
        let model = Models.resnet18Reduced(classes: 5, nf: 4, using: &rng)
        let x = randomTensor([4, 3, 8, 8], seed: 361)
        #expect(model(x).shape == [4, 5])
        let names = ["features.0.weight", "features.1.weight", "features.3.0.conv1.weight", "features.4.0.shortcut.0.weight",
                     "features.5.1.bn2.bias", "features.6.1.conv2.weight", "head.weight", "head.bias"]
        checkGradients(wrt: [x] + parameters(model, names), tolerance: 2e-2, entriesPerTensor: 4, kinkSteps: deepKinkSteps) { model(x) }
    }

    @Test("resnet18Reduced in evaluation mode has gradients matching finite differences")
    func evaluationGradients() {
        var rng = RandomGenerator(seed: 362)
        let model = Models.resnet18Reduced(classes: 3, nf: 4, using: &rng)
        let x = randomTensor([4, 3, 8, 8], seed: 363)
        _ = model(x)  // sets running statistics away from their initial values
        model.eval()
        checkGradients(wrt: [x] + parameters(model, ["features.0.weight", "features.6.0.bn1.weight", "head.weight"]),
                       tolerance: 2e-2, entriesPerTensor: 4, kinkSteps: deepKinkSteps) { model(x) }
    }
}


/// Whole networks under both compute backends: every convolution and matrix product of the model zoo's shapes.
@Suite struct ComputeBackendModelTests {
    @Test("ResNets' outputs and parameter gradients agree between oneDNN and OpenBLAS to 1e-4 relative",
          arguments: ["resnet18r width 4, batch 4", "resnet20, batch 5", "cnn, batch 3"])
    func backendsAgreeOnModels(_ setting: String) throws {
        try #require(ComputeBackend.isOneDNNAvailable, "built without oneDNN: nothing to compare")
        var rng = RandomGenerator(seed: 501)
        let model: Classifier, input: [Int]
        switch setting {
        case let s where s.hasPrefix("resnet18r"):
            model = Models.resnet18Reduced(inputChannels: 3, classes: 10, nf: 4, using: &rng); input = [4, 3, 32, 32]
        case let s where s.hasPrefix("resnet20"):
            model = Models.cifarResNet(depth: 20, inputChannels: 1, classes: 10, using: &rng); input = [5, 1, 28, 28]
        default:
            model = Models.cnn(inputChannels: 1, channels: [6, 8], hidden: [16], classes: 10, using: &rng); input = [3, 1, 28, 28]
        }
        let x = randomTensor(input, seed: 502, requiresGrad: false)
        let targets = (0..<input[0]).map { $0 % 10 }
        func run(_ backend: ComputeBackend) -> (Float, [[Float]]) {
            ComputeBackend.using(backend) {
                model.zeroGrad()
                let loss = Losses.crossEntropy(model(x), targets: targets)
                loss.backward()
                return (loss.item, model.namedParameters().map { $0.1.grad?.scalars ?? [] })
            }
        }
        let (referenceLoss, reference) = run(.openBLAS), (loss, gradients) = run(.oneDNN)
        #expect(abs(loss - referenceLoss) <= 1e-4 * max(1, abs(referenceLoss)))
        for (a, b) in zip(gradients, reference) {
            let scale = b.map { Swift.abs($0) }.max() ?? 0
            expectClose(a, b, rtol: 1e-4, atol: 1e-4 * Swift.max(scale, 1e-3))
        }
    }
}
