import EngramTensor

/// A layer that can record its last input and output and give, after `backward()`, the sums over the batch of
/// each sample's absolute parameter gradient, Σₖ|∂ℓ_k/∂θ| (`weight` and `bias` for its `localParameters` of those
/// names), from one batched pass: Linear (|Δ|ᵀ|X|), Conv2d (one GEMM per sample), BatchNorm in evaluation mode.
public protocol PerSampleRecording: Module {
    var recordsActivations: Bool { get set }
    /// The last recorded output, whose gradient `backward()` keeps (nil when nothing is recorded).
    var lastOutput: Tensor? { get }
    /// Σₖ|∂ℓ_k/∂θ| over the last recorded batch, after `backward()` (MAS).
    func perSampleAbsoluteGradientSum() -> (weight: Tensor, bias: Tensor)?
    /// Σₖ(∂ℓ_k/∂θ)² over the last recorded batch, after `backward()` (the diagonal Fisher of EWC).
    func perSampleSquaredGradientSum() -> (weight: Tensor, bias: Tensor)?
    func clearRecord()
}

extension Tensor {
    /// A recorded layer output whose gradient `backward()` will keep: retained if it already takes part in the
    /// graph; made a new leaf that requires gradients if it does not (recording is on with gradients enabled but
    /// nothing upstream requires them — the importance pass freezes the parameters so the backward pass computes
    /// only the activations' gradients Δ, not the batch's parameter gradients it would throw away).
    func recordedForPerSampleStatistics() -> Tensor {
        if requiresGrad { retainGrad(); return self }
        guard GradMode.isEnabled else { return self }
        return Tensor(shape: shape, scalars: scalars, requiresGrad: true)
    }
}

/// 2-D convolution over NCHW input, weight [out, in, k, k], optional bias [out]
/// (PyTorch's `Conv2d` semantics and initialization).
public final class Conv2d: PerSampleRecording {
    public let weight: Tensor
    public let bias: Tensor?
    public let stride: Int
    public let padding: Int
    public var isTraining = true
    /// Keep the last input and output (for Hebbian importance and activation gradients).
    public var recordsActivations = false
    public private(set) var lastInput: Tensor?
    public private(set) var lastOutput: Tensor?

    public init(_ inChannels: Int, _ outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                bias: Bool = true, using rng: inout RandomGenerator) {
        precondition(inChannels > 0 && outChannels > 0 && kernelSize > 0 && stride > 0 && padding >= 0,
                     "Conv2d: invalid geometry in=\(inChannels) out=\(outChannels) k=\(kernelSize) s=\(stride) p=\(padding)")
        let fanIn = inChannels * kernelSize * kernelSize
        weight = Initialization.kaimingUniform([outChannels, inChannels, kernelSize, kernelSize], fanIn: fanIn, using: &rng)
        self.bias = bias ? Initialization.bias(outChannels, fanIn: fanIn, using: &rng) : nil
        self.stride = stride
        self.padding = padding
    }

    public var localParameters: [(String, Tensor)] {
        bias.map { [("weight", weight), ("bias", $0)] } ?? [("weight", weight)]
    }

    public func forward(_ x: Tensor) -> Tensor {
        let y = Tensor.conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding)
        if recordsActivations {
            let recorded = y.recordedForPerSampleStatistics()
            lastInput = x
            lastOutput = recorded
            return recorded
        }
        return y
    }

    /// Σₖ|∂ℓ_k/∂W|, Σₖ|∂ℓ_k/∂b| over the last recorded batch (after `backward()`), exact: one GEMM per sample
    /// (`PerSampleGradients.conv2dPerSampleSum`). The bias entry is zeros when the layer has no bias.
    public func perSampleAbsoluteGradientSum() -> (weight: Tensor, bias: Tensor)? { perSampleSum(squared: false) }

    /// Σₖ(∂ℓ_k/∂W)², Σₖ(∂ℓ_k/∂b)² over the last recorded batch (after `backward()`), exact.
    public func perSampleSquaredGradientSum() -> (weight: Tensor, bias: Tensor)? { perSampleSum(squared: true) }

    private func perSampleSum(squared: Bool) -> (weight: Tensor, bias: Tensor)? {
        guard let x = lastInput, let delta = lastOutput?.grad else { return nil }
        return PerSampleGradients.conv2dPerSampleSum(input: x, outputGradient: delta, kernelSize: weight.shape[2],
                                                     stride: stride, padding: padding, squared: squared)
    }

    /// Forgets the recorded activations.
    public func clearRecord() { lastInput = nil; lastOutput = nil }
}
