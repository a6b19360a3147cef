/// Batch normalization over the channel axis of [N, C] (BatchNorm1d) or [N, C, H, W] (BatchNorm2d)
/// input: y = γ·(x − μ)/√(σ² + ε) + β. In training it normalizes with the batch statistics and
/// updates the running ones, r ← (1 − m)·r + m·batch (unbiased variance), as PyTorch does.
public final class BatchNorm: Module {
    public let gamma: Tensor?
    public let beta: Tensor?
    public let runningMean: Tensor
    public let runningVariance: Tensor
    public let batchesTracked: Tensor
    public let momentum: Float
    public let epsilon: Float
    public var isTraining = true

    public init(_ channels: Int, momentum: Float = 0.1, epsilon: Float = 1e-5, affine: Bool = true) {
        precondition(channels > 0, "BatchNorm needs a positive channel count")
        gamma = affine ? Tensor.ones([channels], requiresGrad: true) : nil
        beta = affine ? Tensor.zeros([channels], requiresGrad: true) : nil
        runningMean = Tensor.zeros([channels])
        runningVariance = Tensor.ones([channels])
        batchesTracked = Tensor.zeros([])
        self.momentum = momentum
        self.epsilon = epsilon
    }

    public var channels: Int { runningMean.count }

    public var localParameters: [(String, Tensor)] {
        guard let gamma, let beta else { return [] }
        return [("weight", gamma), ("bias", beta)]
    }

    public var localBuffers: [(String, Tensor)] {
        [("running_mean", runningMean), ("running_var", runningVariance), ("num_batches_tracked", batchesTracked)]
    }

    public func forward(_ x: Tensor) -> Tensor {
        let (y, mean, variance) = Tensor.batchNorm(x, gamma: gamma, beta: beta,
                                                   runningMean: runningMean.scalars, runningVariance: runningVariance.scalars,
                                                   training: isTraining, epsilon: epsilon)
        if isTraining {
            let m = momentum
            runningMean.scalars = zip(runningMean.scalars, mean).map { (1 - m) * $0 + m * $1 }
            runningVariance.scalars = zip(runningVariance.scalars, variance).map { (1 - m) * $0 + m * $1 }
            batchesTracked.scalars[0] += 1
        }
        return y
    }
}
