/// Exact statistics of per-sample gradients of a Linear layer, without a per-sample loop.
///
/// For y = x·Wᵀ + b over a batch with inputs X (n×in) and output gradients Δ = ∂L/∂Y (n×out),
/// the gradient of sample k's loss is g_k = δ_kᵀ x_k (an outer product), so
/// Σₖ |g_k| = |Δ|ᵀ|X| and Σₖ g_k² = (Δ∘Δ)ᵀ(X∘X): one GEMM each. Bias: Σₖ|δ_k| and Σₖ δ_k².
/// MAS (Aljundi et al. 2018) and EWC's diagonal Fisher build on these. They are exact when the
/// batch loss is a sum of per-sample losses and samples do not interact (no batch statistics).
public enum PerSampleGradients {
    /// Σₖ |∂ℓ_k/∂W| and Σₖ |∂ℓ_k/∂b| for a Linear layer.
    public static func linearAbsoluteSum(input: Tensor, outputGradient: Tensor) -> (weight: Tensor, bias: Tensor) {
        statistics(input: input, outputGradient: outputGradient, input: { Swift.abs($0) }, outputGradient: { Swift.abs($0) })
    }

    /// Σₖ (∂ℓ_k/∂W)² and Σₖ (∂ℓ_k/∂b)² for a Linear layer.
    public static func linearSquaredSum(input: Tensor, outputGradient: Tensor) -> (weight: Tensor, bias: Tensor) {
        statistics(input: input, outputGradient: outputGradient, input: { $0 * $0 }, outputGradient: { $0 * $0 })
    }

    /// Σₖ Dₖ⊗(xₖ∘xₖ) and Σₖ Dₖ for D [n, out] already squared and summed elsewhere: the exact Fisher sums
    /// Δ_c∘Δ_c over the classes c of one forward pass before this one product, (Σ_c Δ_c∘Δ_c)ᵀ(X∘X) — a Linear
    /// layer's per-sample gradient Δₖ⊗xₖ squares to Δₖ²⊗xₖ², so the classes share xₖ².
    public static func linearSquaredSum(input: Tensor, summedSquaredOutputGradient: Tensor) -> (weight: Tensor, bias: Tensor) {
        statistics(input: input, outputGradient: summedSquaredOutputGradient, input: { $0 * $0 }, outputGradient: { $0 })
    }

    @inline(__always)
    private static func statistics(input: Tensor, outputGradient: Tensor, input f: (Float) -> Float,
                                   outputGradient g: (Float) -> Float) -> (weight: Tensor, bias: Tensor) {
        precondition(input.rank == 2 && outputGradient.rank == 2 && input.shape[0] == outputGradient.shape[0],
                     "per-sample statistics need X [n, in] and Δ [n, out], got \(input.shape) and \(outputGradient.shape)")
        let (n, fanIn, fanOut) = (input.shape[0], input.shape[1], outputGradient.shape[1])
        let x = mapScalars(input.scalars, f)
        let d = mapScalars(outputGradient.scalars, g)
        let w = gemm(d, transA: true, x, transB: false, m: fanOut, n: fanIn, k: n)
        return (Tensor(shape: [fanOut, fanIn], scalars: w), Tensor(shape: [fanOut], scalars: columnSums(d, rows: n, columns: fanOut)))
    }
}
