import EngramTensor

/// A progressive network (Rusu et al. 2016): one column per task, the active task picking the column,
/// earlier columns frozen. The `pnn` strategy works through this protocol, whatever the columns are.
public protocol ProgressiveNetwork: TaskConditioned {
    /// Columns allocated (one per task).
    var columnCount: Int { get }
    /// Column k as a module (its parameters and buffers, named relative to it).
    func column(_ k: Int) -> any Module
}

extension ProgressiveNetwork {
    /// The name prefix of column k's parameters and buffers within this module (`columns.k.`).
    public func columnPrefix(_ k: Int) -> String { "columns.\(k)." }
    /// Trainable scalars of column k (its own layers and its laterals from the earlier columns).
    public func parameterCount(column k: Int) -> Int { column(k).parameterCount }
    /// Scalars of column k's buffers (BatchNorm running statistics); kept with the column once it is frozen.
    public func bufferCount(column k: Int) -> Int { column(k).namedBuffers().reduce(0) { $0 + $1.1.count } }
}

extension ProgressiveMLP: ProgressiveNetwork {
    public var columnCount: Int { columns.count }
    public func column(_ k: Int) -> any Module { columns[k] }
}

/// One convolutional column of a `ProgressiveConvNet`: layers 0 … n−1 are `ConvBlock`s (3×3 conv without
/// bias → BatchNorm → ReLU → 2×2 max-pool), then the hidden Linear–ReLU layers, then the task's head
/// (layer L−1, no ReLU). Column k has lateral adapters U_i^(k:j) into every layer i ≥ 1 from layer i−1 of every
/// earlier column j < k: a 3×3 convolution (padding 1, no bias) when layer i is convolutional, a Linear
/// (no bias) when it is linear (from the flattened output of the last block for the first linear layer).
///
/// Convolutional laterals are summed into the pre-activation *before* the block's BatchNorm:
/// h_i = pool(ReLU(BN(W_i ∗ h_{i−1} + Σ_j U_i^(k:j) ∗ h_{i−1}^(j)))).
///
/// Names: `layers.i.conv.weight`, `layers.i.bn.{weight,bias,running_mean,running_var,num_batches_tracked}` for the
/// blocks, `layers.i.weight` / `layers.i.bias` for the linear layers, `lateral.i.j.weight` (layer i, from column j).
public final class ProgressiveConvColumn: Module {
    public let blocks: [ConvBlock]
    /// The hidden linear layers then the head (the last one).
    public let linears: [Linear]
    /// `lateral[i − 1][j]` = U_i^(k:j) for layers i = 1 … L−1 and earlier columns j = 0 … k − 1
    /// (`Conv2d` for i < blocks.count, `Linear` after).
    public let lateral: [[any Module]]
    public var isTraining = true

    init(index k: Int, inputChannels: Int, flattened: Int, channels: [Int], hidden: [Int], classes: Int,
         using rng: inout RandomGenerator) {
        let inC = [inputChannels] + channels
        blocks = channels.indices.map { ConvBlock(inC[$0], channels[$0], using: &rng) }
        let widths = [flattened] + hidden + [classes]
        linears = (1..<widths.count).map { Linear(widths[$0 - 1], widths[$0], using: &rng) }
        let n = channels.count
        lateral = k == 0 ? [] : (1..<(n + linears.count)).map { i in
            (0..<k).map { _ -> any Module in
                i < n ? Conv2d(channels[i - 1], channels[i], kernelSize: 3, stride: 1, padding: 1, bias: false, using: &rng)
                      : Linear(widths[i - n], widths[i - n + 1], bias: false, using: &rng)
            }
        }
    }

    /// Number of layers L (blocks, hidden linears, head).
    public var layerCount: Int { blocks.count + linears.count }

    public var children: [(String, any Module)] {
        var c: [(String, any Module)] = [("layers", Sequential(blocks as [any Module] + linears as [any Module]))]
        if !lateral.isEmpty {
            c.append(("lateral", ModuleGroup(lateral.enumerated().map { ("\($0.offset + 1)", Sequential($0.element)) })))
        }
        return c
    }

    /// Runs the column alone; it must have no lateral inputs (column 0).
    public func forward(_ x: Tensor) -> Tensor {
        precondition(lateral.isEmpty, "a column with lateral connections needs the earlier columns' activations")
        return run(x, earlier: []).output!
    }

    /// - Parameter earlier: `earlier[j]` = the activations [h_0^(j), …, h_{L−2}^(j)] of column j (the last block's
    ///   output flattened).
    /// - Returns: this column's activations (same layout) and, if `computeHead`, its output.
    func run(_ x: Tensor, earlier: [[Tensor]], computeHead: Bool = true) -> (hidden: [Tensor], output: Tensor?) {
        precondition(earlier.count == (lateral.first?.count ?? 0), "column expects \(lateral.first?.count ?? 0) earlier columns, got \(earlier.count)")
        precondition(x.rank == 4, "a convolutional column needs [N, C, H, W] input, got \(x.shape)")
        var h = x
        var hidden: [Tensor] = []
        for i in 0..<layerCount {
            let isHead = i == layerCount - 1
            if isHead && !computeHead { break }
            let isBlock = i < blocks.count
            var z = isBlock ? blocks[i].conv(h) : linears[i - blocks.count](h)
            if i > 0 && !lateral.isEmpty { for (j, u) in lateral[i - 1].enumerated() { z = z + u(earlier[j][i - 1]) } }
            if isHead { return (hidden, z) }
            if isBlock {
                h = blocks[i].finish(z)
                if i == blocks.count - 1 { h = h.flattened() }
            } else {
                h = z.relu()
            }
            hidden.append(h)
        }
        return (hidden, nil)
    }
}

/// Progressive Neural Network of convolutional columns (Rusu et al. 2016), one column per task, for images.
///
/// Column k computes h_i^(k) = f(W_i^(k) h_{i−1}^(k) + Σ_{j<k} U_i^(k:j) h_{i−1}^(j)) (eq. 1) with h_0 = x:
/// for the convolutional layers W and U are 3×3 convolutions and f = 2×2 max-pool ∘ ReLU ∘ BatchNorm (the laterals
/// join before the BatchNorm); for the hidden linear layers W, U are linear maps and f = ReLU; the head has no f.
/// Simplification: the paper's adapters are non-linear (a learned scalar α, a 1×1 convolution / projection to fewer
/// units and a non-linearity, then U); here U is applied directly to h_{i−1}^(j), as in `ProgressiveMLP`.
///
/// With `activeTask = t`, `forward` runs columns 0 … t and returns column t's output. Columns 0 … t − 1 run
/// without gradient recording (no gradient reaches them) and always in evaluation mode, whatever the network's
/// mode: their BatchNorms normalize with their own running statistics, which therefore never change once the
/// column's task is over; column t uses its batch statistics in training and its own running ones in evaluation.
/// All columns are allocated up front; parameters are named `columns.k.layers.i.…` and `columns.k.lateral.i.j.weight`.
public final class ProgressiveConvNet: ProgressiveNetwork {
    public let inputChannels: Int
    public let channels: [Int]
    public let hidden: [Int]
    public let columns: [ProgressiveConvColumn]
    public var activeTask = 0
    public var isTraining = true

    /// - Parameters:
    ///   - inputHeight, inputWidth: image size (each block halves it, rounding down).
    ///   - channels: output channels of each convolutional block, e.g. [32, 64].
    ///   - hidden: sizes of the hidden linear layers, e.g. [128].
    ///   - classesPerTask: head size of each column (one column per task).
    public init(inputChannels: Int, inputHeight: Int, inputWidth: Int, channels: [Int], hidden: [Int],
                classesPerTask: [Int], using rng: inout RandomGenerator) {
        precondition(inputChannels > 0 && !channels.isEmpty && channels.allSatisfy { $0 > 0 } && hidden.allSatisfy { $0 > 0 },
                     "ProgressiveConvNet needs positive sizes and at least one convolutional block")
        self.inputChannels = inputChannels
        self.channels = channels
        self.hidden = hidden
        let flattened = Models.flattenedFeatures(channels: channels, height: inputHeight, width: inputWidth)
        var columns: [ProgressiveConvColumn] = []
        for (k, classes) in classesPerTask.enumerated() {
            columns.append(ProgressiveConvColumn(index: k, inputChannels: inputChannels, flattened: flattened, channels: channels,
                                                 hidden: hidden, classes: classes, using: &rng))
        }
        self.columns = columns
    }

    public var columnCount: Int { columns.count }
    public func column(_ k: Int) -> any Module { columns[k] }

    public var children: [(String, any Module)] { [("columns", Sequential(columns))] }

    public func forward(_ x: Tensor) -> Tensor {
        let t = activeTask
        precondition(t >= 0 && t < columns.count, "task \(t) has no column (\(columns.count) columns)")
        let earlier: [[Tensor]] = GradMode.withoutGrad {
            var hidden: [[Tensor]] = []
            for j in 0..<t {
                // Frozen columns: evaluation mode, so their BatchNorm statistics are used, not updated.
                let restore = columns[j].enterEvaluationMode()
                defer { restore() }
                hidden.append(columns[j].run(x, earlier: hidden, computeHead: false).hidden)
            }
            return hidden
        }
        return columns[t].run(x, earlier: earlier).output!
    }
}

extension Models {
    /// A progressive network of convolutional columns (the block structure of `cnn`), one per task, wrapped
    /// as a `Classifier` (features: identity, head: the `ProgressiveConvNet`, so names are `head.columns.k.…`).
    public static func progressiveCNN(inputChannels: Int, inputHeight: Int = 28, inputWidth: Int = 28, channels: [Int],
                                      hidden: [Int], classesPerTask: [Int], using rng: inout RandomGenerator) -> Classifier {
        Classifier(features: Sequential([]),
                   head: ProgressiveConvNet(inputChannels: inputChannels, inputHeight: inputHeight, inputWidth: inputWidth,
                                            channels: channels, hidden: hidden, classesPerTask: classesPerTask, using: &rng))
    }
}
