import EngramTensor

/// PyTorch's default initialization, so networks start where published results started.
public enum Initialization {
    /// Kaiming-uniform with a = √5 (PyTorch's default for Linear and Conv weights):
    /// U(−b, b) with b = gain·√(3/fan_in), gain = √(2/(1+a²)), which gives b = 1/√fan_in.
    public static func kaimingUniform(_ shape: [Int], fanIn: Int, a: Float = Float(5).squareRoot(),
                                      using rng: inout RandomGenerator) -> Tensor {
        let gain = (2 / (1 + a * a)).squareRoot()
        let bound = gain * (3 / Float(fanIn)).squareRoot()
        return Tensor.uniform(shape, low: -bound, high: bound, using: &rng, requiresGrad: true)
    }

    /// PyTorch's bias rule: U(−1/√fan_in, 1/√fan_in).
    public static func bias(_ count: Int, fanIn: Int, using rng: inout RandomGenerator) -> Tensor {
        let bound = 1 / Float(fanIn).squareRoot()
        return Tensor.uniform([count], low: -bound, high: bound, using: &rng, requiresGrad: true)
    }

    /// He-normal over the fan-out of a convolution weight [out, in, k, k]: N(0, 2/(k·k·out)), the
    /// initialization of the CIFAR ResNets (`weight.normal_(0, sqrt(2 / n))`, n = k·k·out_channels).
    public static func heNormalFanOut(_ shape: [Int], using rng: inout RandomGenerator) -> Tensor {
        precondition(shape.count == 4, "heNormalFanOut expects a convolution weight [out, in, k, k], got \(shape)")
        let fanOut = shape[0] * shape[2] * shape[3]
        return Tensor.normal(shape, std: (2 / Float(fanOut)).squareRoot(), using: &rng, requiresGrad: true)
    }
}
