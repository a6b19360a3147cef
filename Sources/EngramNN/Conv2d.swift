import EngramTensor

/// 2-D convolution over NCHW input, weight [out, in, k, k], optional bias [out]
/// (PyTorch's `Conv2d` semantics and initialization).
public final class Conv2d: Module {
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
            lastInput = x
            lastOutput = y
            if y.requiresGrad { y.retainGrad() }
        }
        return y
    }
}
