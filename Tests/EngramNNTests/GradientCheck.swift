import EngramTensor
import Testing
import EngramNN

// Test helpers: issue recording around the library's `gradientMismatches`, and seeded input makers.

/// Records an issue for each mismatch found by `gradientMismatches`.
func checkGradients(wrt: [Tensor], step h: Float = 1e-2, tolerance: Double = 2e-3, entriesPerTensor: Int? = nil,
                    kinkSteps: [Float] = [], seed: UInt64 = 0xC0FFEE, sourceLocation: SourceLocation = #_sourceLocation,
                    _ f: () -> Tensor) {
    let problems = gradientMismatches(wrt: wrt, step: h, tolerance: tolerance, entriesPerTensor: entriesPerTensor,
                                      kinkSteps: kinkSteps, seed: seed, f)
    for p in problems { Issue.record(Comment(rawValue: p), sourceLocation: sourceLocation) }
}

// MARK: Inputs

/// N(0, std²) samples that require gradients; with `awayFromZero` m > 0 every value is moved to
/// sign(x)·(|x| + m), so kinks at 0 (relu, abs, clamp) are never within a finite-difference step.
func randomTensor(_ shape: [Int], seed: UInt64, std: Float = 1, mean: Float = 0, awayFromZero margin: Float = 0,
                  requiresGrad: Bool = true) -> Tensor {
    var rng = RandomGenerator(seed: seed, label: "input \(shape)")
    let t = Tensor.normal(shape, mean: 0, std: std, using: &rng)
    let values = t.scalars.map { x in
        (margin > 0 ? (x < 0 ? x - margin : x + margin) : x) + mean
    }
    return Tensor(shape: shape, scalars: values, requiresGrad: requiresGrad)
}

/// Uniform samples in [low, high) that require gradients.
func uniformTensor(_ shape: [Int], seed: UInt64, low: Float, high: Float, requiresGrad: Bool = true) -> Tensor {
    var rng = RandomGenerator(seed: seed, label: "uniform \(shape)")
    return Tensor.uniform(shape, low: low, high: high, using: &rng, requiresGrad: requiresGrad)
}

/// Distinct values, at least `spacing` apart, in random order (max and max-pooling have no ties
/// within a finite-difference step).
func distinctTensor(_ shape: [Int], seed: UInt64, spacing: Float = 0.1, requiresGrad: Bool = true) -> Tensor {
    let n = shape.reduce(1, *)
    var rng = RandomGenerator(seed: seed, label: "distinct \(shape)")
    let order = rng.permutation(n)
    let values = order.map { (Float($0) - Float(n) / 2) * spacing }
    return Tensor(shape: shape, scalars: values, requiresGrad: requiresGrad)
}

// MARK: Comparisons

/// Expects element-wise |a − b| ≤ atol + rtol·|b| and equal shapes.
func expectClose(_ a: Tensor, _ b: Tensor, rtol: Float = 1e-5, atol: Float = 1e-6,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(a.shape == b.shape, "shapes \(a.shape) and \(b.shape) differ", sourceLocation: sourceLocation)
    expectClose(a.scalars, b.scalars, rtol: rtol, atol: atol, sourceLocation: sourceLocation)
}

/// Expects element-wise |a − b| ≤ atol + rtol·|b| and equal counts.
func expectClose(_ a: [Float], _ b: [Float], rtol: Float = 1e-5, atol: Float = 1e-6,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(a.count == b.count, "counts \(a.count) and \(b.count) differ", sourceLocation: sourceLocation)
    var bad = 0
    for (i, (x, y)) in zip(a, b).enumerated() where !(Swift.abs(x - y) <= atol + rtol * Swift.abs(y)) {
        bad += 1
        if bad <= 4 { Issue.record("entry \(i): \(x) vs expected \(y)", sourceLocation: sourceLocation) }
    }
    if bad > 4 { Issue.record("\(bad - 4) more entries differ", sourceLocation: sourceLocation) }
}
