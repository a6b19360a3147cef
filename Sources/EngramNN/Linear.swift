import EngramTensor

/// Fully connected layer y = x·Wᵀ + b, W: [out, in], b: [out].
///
/// With `recordsActivations` on, the layer keeps its last input and output (whose gradient is
/// retained), which gives per-sample gradient statistics (`perSampleAbsoluteGradientSum()`),
/// activations for Hebbian importance, and activation gradients.
public final class Linear: PerSampleRecording {
    public let weight: Tensor
    public let bias: Tensor?
    public var isTraining = true
    /// Keep the last input and output (see `lastInput`, `lastOutput`).
    public var recordsActivations = false
    public private(set) var lastInput: Tensor?
    public private(set) var lastOutput: Tensor?

    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, using rng: inout RandomGenerator) {
        precondition(inFeatures > 0 && outFeatures > 0, "Linear needs positive sizes, got \(inFeatures)→\(outFeatures)")
        weight = Initialization.kaimingUniform([outFeatures, inFeatures], fanIn: inFeatures, using: &rng)
        self.bias = bias ? Initialization.bias(outFeatures, fanIn: inFeatures, using: &rng) : nil
    }

    public var inFeatures: Int { weight.shape[1] }
    public var outFeatures: Int { weight.shape[0] }

    public var localParameters: [(String, Tensor)] {
        bias.map { [("weight", weight), ("bias", $0)] } ?? [("weight", weight)]
    }

    public func forward(_ x: Tensor) -> Tensor {
        let y = Tensor.linear(x.rank == 2 ? x : x.flattened(), weight: weight, bias: bias)
        if recordsActivations {
            let recorded = y.recordedForPerSampleStatistics()
            lastInput = x
            lastOutput = recorded
            return recorded
        }
        return y
    }

    /// Σₖ|∂ℓ_k/∂W|, Σₖ|∂ℓ_k/∂b| over the last recorded batch (after `backward()`), exact: |Δ|ᵀ|X|.
    public func perSampleAbsoluteGradientSum() -> (weight: Tensor, bias: Tensor)? {
        guard let x = lastInput, let delta = lastOutput?.grad else { return nil }
        return PerSampleGradients.linearAbsoluteSum(input: x.rank == 2 ? x : x.flattened(), outputGradient: delta)
    }

    /// Σₖ(∂ℓ_k/∂W)², Σₖ(∂ℓ_k/∂b)² over the last recorded batch (after `backward()`), exact: (Δ∘Δ)ᵀ(X∘X).
    public func perSampleSquaredGradientSum() -> (weight: Tensor, bias: Tensor)? {
        guard let x = lastInput, let delta = lastOutput?.grad else { return nil }
        return PerSampleGradients.linearSquaredSum(input: x.rank == 2 ? x : x.flattened(), outputGradient: delta)
    }

    /// Σₖ Dₖ⊗(xₖ∘xₖ), Σₖ Dₖ over the last recorded batch for D [n, out], squared output gradients already summed
    /// over several backward passes through it (the exact Fisher's classes, which share xₖ∘xₖ).
    public func perSampleSquaredGradientSum(summedSquaredOutputGradient d: [Float]) -> (weight: Tensor, bias: Tensor)? {
        guard let x = lastInput, let y = lastOutput else { return nil }
        return PerSampleGradients.linearSquaredSum(input: x.rank == 2 ? x : x.flattened(),
                                                   summedSquaredOutputGradient: Tensor(shape: y.shape, scalars: d))
    }

    /// Forgets the recorded activations.
    public func clearRecord() { lastInput = nil; lastOutput = nil }
}
