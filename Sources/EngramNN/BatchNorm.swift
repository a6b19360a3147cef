import EngramTensor

/// Batch normalization over the channel axis of [N, C] (BatchNorm1d) or [N, C, H, W] (BatchNorm2d)
/// input: y = γ·(x − μ)/√(σ² + ε) + β. In training it normalizes with the batch statistics and
/// updates the running ones, r ← (1 − m)·r + m·batch (unbiased variance), as PyTorch does; with
/// `momentum` nil, the cumulative average r ← r + (batch − r)/k of the k batches seen since the last reset.
public final class BatchNorm: PerSampleRecording {
    public let gamma: Tensor?
    public let beta: Tensor?
    public let runningMean: Tensor
    public let runningVariance: Tensor
    public let batchesTracked: Tensor
    /// m of the running-statistics update; nil: cumulative average over the batches seen (PyTorch's momentum=None).
    public var momentum: Float?
    public let epsilon: Float
    public var isTraining = true
    /// In training, the data-parallel group whose members hold the other shards of the batch: the layer then
    /// normalises with the whole batch's statistics (synchronised BatchNorm); nil: this process's batch alone.
    public var group: (any ProcessGroup)?
    /// Keep the last input and output (whose gradient is retained) for per-sample gradient statistics.
    public var recordsActivations = false
    public private(set) var lastInput: Tensor?
    public private(set) var lastOutput: Tensor?

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
                                                   training: isTraining, epsilon: epsilon, group: group)
        if isTraining {
            batchesTracked.scalars[0] += 1
            let m = momentum ?? 1 / batchesTracked.scalars[0]
            runningMean.scalars = zip(runningMean.scalars, mean).map { (1 - m) * $0 + m * $1 }
            runningVariance.scalars = zip(runningVariance.scalars, variance).map { (1 - m) * $0 + m * $1 }
        }
        if recordsActivations {
            let recorded = y.recordedForPerSampleStatistics()
            lastInput = x
            lastOutput = recorded
            return recorded
        }
        return y
    }

    /// Σₖ|∂ℓ_k/∂γ|, Σₖ|∂ℓ_k/∂β| over the last recorded batch (after `backward()`), exact — in evaluation mode only,
    /// where the layer is a per-channel affine map (in training the batch statistics couple the samples: nil).
    public func perSampleAbsoluteGradientSum() -> (weight: Tensor, bias: Tensor)? { perSampleSum(squared: false) }

    /// Σₖ(∂ℓ_k/∂γ)², Σₖ(∂ℓ_k/∂β)² over the last recorded batch, in evaluation mode only (as above).
    public func perSampleSquaredGradientSum() -> (weight: Tensor, bias: Tensor)? { perSampleSum(squared: true) }

    private func perSampleSum(squared: Bool) -> (weight: Tensor, bias: Tensor)? {
        guard !isTraining, gamma != nil, let x = lastInput, let delta = lastOutput?.grad else { return nil }
        let s = PerSampleGradients.batchNormPerSampleSum(input: x, outputGradient: delta, runningMean: runningMean.scalars,
                                                         runningVariance: runningVariance.scalars, epsilon: epsilon, squared: squared)
        return (s.gamma, s.beta)
    }

    /// Forgets the recorded activations.
    public func clearRecord() { lastInput = nil; lastOutput = nil }
}

extension BatchNorm {
    /// Replaces the running statistics by their exact average over `passes` forward passes in training mode
    /// ("precise BatchNorm", Wu & Johnson 2021): r = (1/K)·Σ_k batch statistics_k. The network's weights do not
    /// move, so evaluation then normalizes with the statistics of the final weights instead of a moving average
    /// dragged along while they changed. `norms` are the layers to re-estimate (other layers keep theirs; the
    /// model's training/evaluation mode is restored); `passes` runs the forward passes.
    public static func recalibrate(_ norms: [BatchNorm], in model: any Module, passes: () throws -> Void) rethrows {
        guard !norms.isEmpty else { return }
        let saved = norms.map { ($0.momentum, $0.isTraining) }
        let others = model.namedModules().compactMap { $0.1 as? BatchNorm }.filter { n in !norms.contains { $0 === n } }
        let othersTraining = others.map(\.isTraining)
        for n in others { n.isTraining = false }
        for n in norms {
            n.momentum = nil
            n.isTraining = true
            n.runningMean.scalars = [Float](repeating: 0, count: n.channels)
            n.runningVariance.scalars = [Float](repeating: 1, count: n.channels)
            n.batchesTracked.scalars[0] = 0
        }
        defer {
            for (n, (m, t)) in zip(norms, saved) { n.momentum = m; n.isTraining = t }
            for (n, t) in zip(others, othersTraining) { n.isTraining = t }
        }
        try GradMode.withoutGrad { try passes() }
    }
}
