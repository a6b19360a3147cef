/// The residual block of ResNet-18 (He et al. 2016): relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)),
/// with a 1×1 convolution + BatchNorm shortcut when the stride or channel count changes.
public final class BasicBlock: Module {
    public let conv1: Conv2d, bn1: BatchNorm, conv2: Conv2d, bn2: BatchNorm
    public let shortcut: Sequential?
    public var isTraining = true

    public init(_ inChannels: Int, _ outChannels: Int, stride: Int = 1, using rng: inout RandomGenerator) {
        conv1 = Conv2d(inChannels, outChannels, kernelSize: 3, stride: stride, padding: 1, bias: false, using: &rng)
        bn1 = BatchNorm(outChannels)
        conv2 = Conv2d(outChannels, outChannels, kernelSize: 3, stride: 1, padding: 1, bias: false, using: &rng)
        bn2 = BatchNorm(outChannels)
        if stride != 1 || inChannels != outChannels {
            shortcut = Sequential([Conv2d(inChannels, outChannels, kernelSize: 1, stride: stride, bias: false, using: &rng),
                                   BatchNorm(outChannels)])
        } else {
            shortcut = nil
        }
    }

    public var children: [(String, any Module)] {
        var c: [(String, any Module)] = [("conv1", conv1), ("bn1", bn1), ("conv2", conv2), ("bn2", bn2)]
        if let shortcut { c.append(("shortcut", shortcut)) }
        return c
    }

    public func forward(_ x: Tensor) -> Tensor {
        let out = bn2(conv2(bn1(conv1(x)).relu()))
        return (out + (shortcut?.forward(x) ?? x)).relu()
    }
}

/// One linear head per task; the active task picks which one runs (task-incremental learning).
public final class MultiHead: TaskConditioned {
    public let heads: [Linear]
    public var activeTask = 0
    public var isTraining = true

    /// - Parameter classesPerTask: output size of each task's head.
    public init(inFeatures: Int, classesPerTask: [Int], using rng: inout RandomGenerator) {
        precondition(!classesPerTask.isEmpty, "MultiHead needs at least one task")
        heads = classesPerTask.map { Linear(inFeatures, $0, using: &rng) }
    }

    public var children: [(String, any Module)] { [("heads", Sequential(heads))] }

    public func forward(_ x: Tensor) -> Tensor {
        precondition(activeTask >= 0 && activeTask < heads.count, "task \(activeTask) has no head (\(heads.count) heads)")
        return heads[activeTask](x)
    }

    /// Every head's output side by side (for task-agnostic inference).
    public func forwardAll(_ x: Tensor) -> [Tensor] { heads.map { $0(x) } }
}

/// A classifier = feature extractor + head; parameters are named `features.…` and `head.…`.
public final class Classifier: TaskConditioned {
    public let features: any Module
    public let head: any Module
    public var activeTask = 0
    public var isTraining = true

    public init(features: any Module, head: any Module) {
        self.features = features
        self.head = head
    }

    public var children: [(String, any Module)] { [("features", features), ("head", head)] }

    public func forward(_ x: Tensor) -> Tensor { head(features(x)) }
}

/// Model builders for the architectures of the continual-learning literature.
public enum Models {
    /// A multilayer perceptron: Linear–ReLU blocks for each hidden size, then a head.
    /// `mlp(input: 784, hidden: [400, 400], classes: 10)` is 784-400-400-10.
    /// - Parameter headsPerTask: if given, one head per task with these output sizes (multi-head).
    public static func mlp(input: Int, hidden: [Int], classes: Int, headsPerTask: [Int]? = nil,
                           dropout: Float = 0, using rng: inout RandomGenerator) -> Classifier {
        var layers: [any Module] = [Flatten()]
        var width = input
        for h in hidden {
            layers.append(Linear(width, h, using: &rng))
            layers.append(ReLU())
            if dropout > 0 { layers.append(Dropout(dropout, using: &rng)) }
            width = h
        }
        let head: any Module = headsPerTask.map { MultiHead(inFeatures: width, classesPerTask: $0, using: &rng) }
            ?? Linear(width, classes, using: &rng)
        return Classifier(features: Sequential(layers), head: head)
    }

    /// The reduced ResNet-18 of GEM / A-GEM (Lopez-Paz & Ranzato 2017) for 32×32 inputs: a 3×3 stem
    /// with `nf` filters, four stages of two BasicBlocks with nf, 2nf, 4nf, 8nf filters (strides 1, 2, 2, 2),
    /// global average pooling, then a linear head over 8nf features.
    public static func resnet18Reduced(inputChannels: Int = 3, classes: Int, nf: Int = 20,
                                       headsPerTask: [Int]? = nil, using rng: inout RandomGenerator) -> Classifier {
        var layers: [any Module] = [Conv2d(inputChannels, nf, kernelSize: 3, stride: 1, padding: 1, bias: false, using: &rng),
                                    BatchNorm(nf), ReLU()]
        var inC = nf
        for (i, mult) in [1, 2, 4, 8].enumerated() {
            let outC = nf * mult
            layers.append(Sequential([BasicBlock(inC, outC, stride: i == 0 ? 1 : 2, using: &rng),
                                      BasicBlock(outC, outC, stride: 1, using: &rng)]))
            inC = outC
        }
        layers.append(GlobalAvgPool())
        let head: any Module = headsPerTask.map { MultiHead(inFeatures: inC, classesPerTask: $0, using: &rng) }
            ?? Linear(inC, classes, using: &rng)
        return Classifier(features: Sequential(layers), head: head)
    }
}
