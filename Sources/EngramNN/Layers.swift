import EngramTensor

/// max(x, 0).
public final class ReLU: Module {
    public var isTraining = true
    public init() {}
    public func forward(_ x: Tensor) -> Tensor { x.relu() }
}

/// [N, …] → [N, ∏…].
public final class Flatten: Module {
    public var isTraining = true
    public init() {}
    public func forward(_ x: Tensor) -> Tensor { x.flattened() }
}

/// Max pooling over k×k windows.
public final class MaxPool2d: Module {
    public let kernelSize: Int, stride: Int, padding: Int
    public var isTraining = true
    public init(kernelSize: Int, stride: Int? = nil, padding: Int = 0) {
        self.kernelSize = kernelSize; self.stride = stride ?? kernelSize; self.padding = padding
    }
    public func forward(_ x: Tensor) -> Tensor { x.maxPool2d(kernel: kernelSize, stride: stride, padding: padding) }
}

/// Average pooling over k×k windows.
public final class AvgPool2d: Module {
    public let kernelSize: Int, stride: Int, padding: Int
    public var isTraining = true
    public init(kernelSize: Int, stride: Int? = nil, padding: Int = 0) {
        self.kernelSize = kernelSize; self.stride = stride ?? kernelSize; self.padding = padding
    }
    public func forward(_ x: Tensor) -> Tensor { x.avgPool2d(kernel: kernelSize, stride: stride, padding: padding) }
}

/// Mean over the spatial axes: [N, C, H, W] → [N, C].
public final class GlobalAvgPool: Module {
    public var isTraining = true
    public init() {}
    public func forward(_ x: Tensor) -> Tensor { x.globalAveragePool() }
}

/// Inverted dropout: in training each element is zeroed with probability p and the rest scaled by
/// 1/(1 − p); identity in evaluation. Its generator is seeded, so the masks are reproducible.
public final class Dropout: Module {
    public let probability: Float
    public var generator: RandomGenerator
    public var isTraining = true
    /// Set while a data-parallel member trains on rows `rows` of a batch of `total` samples: the layer draws the
    /// whole batch's mask and applies its rows' part, so every member's generator advances alike and the masks are
    /// those of one process training the whole batch. Inputs of another row count (a replayed batch every member
    /// holds whole) draw their own mask as usual.
    public var rowShard: (rows: Range<Int>, total: Int)?

    public init(_ probability: Float, using rng: inout RandomGenerator) {
        precondition(probability >= 0 && probability < 1, "Dropout probability must be in [0, 1), got \(probability)")
        self.probability = probability
        generator = rng.derived("dropout")
        _ = rng.next()
    }

    public func forward(_ x: Tensor) -> Tensor {
        guard isTraining && probability > 0 else { return x }
        let keep = 1 - probability, scale = 1 / keep
        if let shard = rowShard, x.rank > 0, x.shape[0] == shard.rows.count, shard.total != shard.rows.count {
            let width = x.count / Swift.max(x.shape[0], 1)
            var whole = [Float](repeating: 0, count: shard.total * width)
            for i in 0..<whole.count { whole[i] = generator.nextFloat() < keep ? scale : 0 }
            return x * Tensor(shape: x.shape, scalars: Array(whole[shard.rows.lowerBound * width ..< shard.rows.upperBound * width]))
        }
        var mask = [Float](repeating: 0, count: x.count)
        for i in 0..<mask.count { mask[i] = generator.nextFloat() < keep ? scale : 0 }
        return x * Tensor(shape: x.shape, scalars: mask)
    }
}

/// Modules applied one after another; children are named "0", "1", … as in PyTorch.
public final class Sequential: Module {
    public var layers: [any Module]
    public var isTraining = true
    public init(_ layers: [any Module]) { self.layers = layers }
    public var children: [(String, any Module)] { layers.enumerated().map { ("\($0.offset)", $0.element) } }
    public func forward(_ x: Tensor) -> Tensor { layers.reduce(x) { $1.forward($0) } }
}
