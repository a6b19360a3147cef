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
}
