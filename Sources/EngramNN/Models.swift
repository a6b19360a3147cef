import EngramTensor

/// How a residual block's shortcut matches shapes when the stride or the channel count changes
/// (He et al. 2016, §3.3); with equal shapes the shortcut is the identity either way.
public enum ResidualShortcut: Sendable {
    /// Option B: a 1×1 convolution with the block's stride, then BatchNorm.
    case projection
    /// Option A: parameter-free, every stride-th pixel and zero-padded extra channels (`ZeroPaddingShortcut`).
    case zeroPadding
}

/// The parameter-free "option A" shortcut of He et al. (2016) for CIFAR ResNets:
/// y = pad_c(x[:, :, ::s, ::s]) — every s-th pixel, then ⌊(out − in)/2⌋ zero channels before and the
/// rest after, as `F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4))` in the reference.
public final class ZeroPaddingShortcut: Module {
    public let inChannels: Int, outChannels: Int, stride: Int
    public var isTraining = true

    public init(_ inChannels: Int, _ outChannels: Int, stride: Int) {
        precondition(inChannels > 0 && outChannels >= inChannels && stride >= 1,
                     "ZeroPaddingShortcut: needs 0 < in ≤ out and a positive stride, got \(inChannels)→\(outChannels), s=\(stride)")
        self.inChannels = inChannels; self.outChannels = outChannels; self.stride = stride
    }

    public func forward(_ x: Tensor) -> Tensor {
        precondition(x.rank == 4 && x.shape[1] == inChannels, "ZeroPaddingShortcut expects [N, \(inChannels), H, W], got \(x.shape)")
        let y = x.subsampled2d(stride: stride)
        let extra = outChannels - inChannels
        guard extra > 0 else { return y }
        let before = extra / 2, after = extra - before
        var parts: [Tensor] = []
        if before > 0 { parts.append(Tensor.zeros([y.shape[0], before, y.shape[2], y.shape[3]])) }
        parts.append(y)
        if after > 0 { parts.append(Tensor.zeros([y.shape[0], after, y.shape[2], y.shape[3]])) }
        return Tensor.concatenate(parts, axis: 1)
    }
}

/// The residual block of ResNets (He et al. 2016): relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)).
/// When the stride or channel count changes the shortcut is a 1×1 convolution + BatchNorm (`.projection`,
/// ResNet-18) or parameter-free subsampling and zero channels (`.zeroPadding`, CIFAR ResNets).
/// With `taskNorms` T every BatchNorm is a `TaskBatchNorm` with T tasks.
public final class BasicBlock: Module {
    public let conv1: Conv2d, conv2: Conv2d
    /// `BatchNorm`, or `TaskBatchNorm` when built with `taskNorms`.
    public let bn1: any Module, bn2: any Module
    /// nil for the identity.
    public let shortcut: (any Module)?
    public var isTraining = true

    public init(_ inChannels: Int, _ outChannels: Int, stride: Int = 1, shortcut kind: ResidualShortcut = .projection,
                taskNorms: Int? = nil, using rng: inout RandomGenerator) {
        conv1 = Conv2d(inChannels, outChannels, kernelSize: 3, stride: stride, padding: 1, bias: false, using: &rng)
        bn1 = Models.batchNorm(outChannels, taskNorms: taskNorms)
        conv2 = Conv2d(outChannels, outChannels, kernelSize: 3, stride: 1, padding: 1, bias: false, using: &rng)
        bn2 = Models.batchNorm(outChannels, taskNorms: taskNorms)
        if stride != 1 || inChannels != outChannels {
            switch kind {
            case .projection:
                shortcut = Sequential([Conv2d(inChannels, outChannels, kernelSize: 1, stride: stride, bias: false, using: &rng),
                                       Models.batchNorm(outChannels, taskNorms: taskNorms)])
            case .zeroPadding:
                shortcut = ZeroPaddingShortcut(inChannels, outChannels, stride: stride)
            }
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

extension Module {
    /// Whether `path` (a module's or a parameter's dotted name) lies inside a multi-head module of this tree: a
    /// task's own head, which no other task uses.
    public func isInTaskHead(_ path: String) -> Bool {
        namedModules().contains { head, m in m is MultiHead && (path == head || path.hasPrefix(head + ".")) }
    }
}

/// One linear head per task; the active task picks which one runs (task-incremental learning). With
/// `sampleTasks` set (a batch mixing tasks) each sample runs through its own task's head; heads narrower than
/// the widest are padded with `paddingLogit` (a logit no softmax gives weight), so the output is
/// `[batch, widest head]`.
public final class MultiHead: SampleRouted {
    public let heads: [Linear]
    public var activeTask = 0
    public var sampleTasks: [Int]?
    public var isTraining = true
    /// The logit of the units a narrower head lacks in a mixed batch: exp(−1e30 − max) is 0 in Float.
    public static let paddingLogit: Float = -1e30

    /// - Parameter classesPerTask: output size of each task's head.
    public init(inFeatures: Int, classesPerTask: [Int], bias: Bool = true, using rng: inout RandomGenerator) {
        precondition(!classesPerTask.isEmpty, "MultiHead needs at least one task")
        heads = classesPerTask.map { Linear(inFeatures, $0, bias: bias, using: &rng) }
    }

    public var children: [(String, any Module)] { [("heads", Sequential(heads))] }

    public func forward(_ x: Tensor) -> Tensor {
        guard let sampleTasks else {
            precondition(activeTask >= 0 && activeTask < heads.count, "task \(activeTask) has no head (\(heads.count) heads)")
            return heads[activeTask](x)
        }
        precondition(sampleTasks.count == x.shape[0], "\(sampleTasks.count) sample tasks for a batch of \(x.shape[0])")
        precondition(sampleTasks.allSatisfy { heads.indices.contains($0) }, "a sample's task has no head (\(heads.count) heads)")
        // Rows grouped by task (ascending), each group through its head, then put back in the batch's order.
        let width = heads.map(\.outFeatures).max()!
        var groups: [Tensor] = [], order: [Int] = []
        for task in Set(sampleTasks).sorted() {
            let rows = sampleTasks.indices.filter { sampleTasks[$0] == task }
            var out = heads[task](x.indexSelect(rows))
            if out.shape[1] < width {
                out = Tensor.concatenate([out, Tensor.full([rows.count, width - out.shape[1]], Self.paddingLogit)], axis: 1)
            }
            groups.append(out)
            order += rows
        }
        var position = [Int](repeating: 0, count: order.count)
        for (k, row) in order.enumerated() { position[row] = k }
        return Tensor.concatenate(groups, axis: 0).indexSelect(position)
    }

    /// Every head's output side by side (for task-agnostic inference).
    public func forwardAll(_ x: Tensor) -> [Tensor] { heads.map { $0(x) } }
}

/// A classifier = feature extractor + head; parameters are named `features.…` and `head.…`.
public final class Classifier: SampleRouted {
    public let features: any Module
    public let head: any Module
    public var activeTask = 0
    public var sampleTasks: [Int]?
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
    /// - Parameters:
    ///   - headsPerTask: if given, one head per task with these output sizes (multi-head).
    ///   - dropout: probability of the dropout after each hidden ReLU (0: none).
    ///   - bias: whether the Linear layers have biases (SRC's spiking conversion takes networks without).
    public static func mlp(input: Int, hidden: [Int], classes: Int, headsPerTask: [Int]? = nil,
                           dropout: Float = 0, bias: Bool = true, using rng: inout RandomGenerator) -> Classifier {
        var layers: [any Module] = [Flatten()]
        var width = input
        for h in hidden {
            layers.append(Linear(width, h, bias: bias, using: &rng))
            layers.append(ReLU())
            if dropout > 0 { layers.append(Dropout(dropout, using: &rng)) }
            width = h
        }
        let head: any Module = headsPerTask.map { MultiHead(inFeatures: width, classesPerTask: $0, bias: bias, using: &rng) }
            ?? Linear(width, classes, bias: bias, using: &rng)
        return Classifier(features: Sequential(layers), head: head)
    }

    /// A BatchNorm over `channels`, or with `taskNorms` T a `TaskBatchNorm` keeping T sets of γ, β and
    /// running statistics (chosen by `setActiveTask`).
    public static func batchNorm(_ channels: Int, taskNorms: Int?) -> any Module {
        taskNorms.map { TaskBatchNorm(channels, tasks: $0) } ?? BatchNorm(channels)
    }

    /// The reduced ResNet-18 of GEM / A-GEM (Lopez-Paz & Ranzato 2017) for 32×32 inputs: a 3×3 stem
    /// with `nf` filters, four stages of two BasicBlocks with nf, 2nf, 4nf, 8nf filters (strides 1, 2, 2, 2),
    /// global average pooling, then a linear head over 8nf features.
    /// - Parameter taskNorms: if given, every BatchNorm is a `TaskBatchNorm` with this many tasks.
    public static func resnet18Reduced(inputChannels: Int = 3, classes: Int, nf: Int = 20,
                                       headsPerTask: [Int]? = nil, taskNorms: Int? = nil,
                                       using rng: inout RandomGenerator) -> Classifier {
        var layers: [any Module] = [Conv2d(inputChannels, nf, kernelSize: 3, stride: 1, padding: 1, bias: false, using: &rng),
                                    batchNorm(nf, taskNorms: taskNorms), ReLU()]
        var inC = nf
        for (i, mult) in [1, 2, 4, 8].enumerated() {
            let outC = nf * mult
            layers.append(Sequential([BasicBlock(inC, outC, stride: i == 0 ? 1 : 2, taskNorms: taskNorms, using: &rng),
                                      BasicBlock(outC, outC, stride: 1, taskNorms: taskNorms, using: &rng)]))
            inC = outC
        }
        layers.append(GlobalAvgPool())
        let head: any Module = headsPerTask.map { MultiHead(inFeatures: inC, classesPerTask: $0, using: &rng) }
            ?? Linear(inC, classes, using: &rng)
        return Classifier(features: Sequential(layers), head: head)
    }

    /// The CIFAR ResNet of He et al. (2016, §4.2) with depth 6n + 2 (20, 32, 44, 56, 110): a 3×3
    /// convolution to 16 channels, BatchNorm, ReLU, three stages of n BasicBlocks with 16, 32, 64 channels
    /// (strides 1, 2, 2) and parameter-free option-A shortcuts, global average pooling (so any input size
    /// works: 28×28 MNIST as well as 32×32 CIFAR), then a linear head over 64 features. Convolutions start
    /// from N(0, 2/(k·k·out_channels)) as in the reference; BatchNorm from γ = 1, β = 0.
    /// Names: `features.0.weight` (stem), `features.3.0.conv1.weight` (stage 1, block 0), …, `head.weight`.
    /// - Parameters:
    ///   - headsPerTask: if given, one head per task with these output sizes (multi-head).
    ///   - taskNorms: if given, every BatchNorm is a `TaskBatchNorm` with this many tasks.
    public static func cifarResNet(depth: Int, inputChannels: Int = 3, classes: Int, headsPerTask: [Int]? = nil,
                                   taskNorms: Int? = nil, using rng: inout RandomGenerator) -> Classifier {
        precondition(depth >= 8 && (depth - 2) % 6 == 0, "cifarResNet: depth must be 6n + 2 (20, 32, 44, …), got \(depth)")
        let n = (depth - 2) / 6
        var layers: [any Module] = [Conv2d(inputChannels, 16, kernelSize: 3, stride: 1, padding: 1, bias: false, using: &rng),
                                    batchNorm(16, taskNorms: taskNorms), ReLU()]
        var inC = 16
        for (stage, outC) in [16, 32, 64].enumerated() {
            var blocks: [any Module] = []
            for b in 0..<n {
                blocks.append(BasicBlock(inC, outC, stride: stage > 0 && b == 0 ? 2 : 1, shortcut: .zeroPadding,
                                         taskNorms: taskNorms, using: &rng))
                inC = outC
            }
            layers.append(Sequential(blocks))
        }
        layers.append(GlobalAvgPool())
        let features = Sequential(layers)
        for (_, module) in features.namedModules() {
            guard let conv = module as? Conv2d else { continue }
            conv.weight.assign(Initialization.heNormalFanOut(conv.weight.shape, using: &rng))
        }
        let head: any Module = headsPerTask.map { MultiHead(inFeatures: inC, classesPerTask: $0, using: &rng) }
            ?? Linear(inC, classes, using: &rng)
        return Classifier(features: features, head: head)
    }
}
