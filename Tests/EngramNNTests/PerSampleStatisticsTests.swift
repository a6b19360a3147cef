import EngramTensor
import Testing
import EngramNN

@Suite struct PerSampleGradientStatisticsTests {
    /// An MLP 6-8-5-3 whose Linear layers record activations, and a seeded batch of 10.
    func setup(seed: UInt64) -> (Classifier, [(String, Linear)], Tensor) {
        var rng = RandomGenerator(seed: seed)
        let model = Models.mlp(input: 6, hidden: [8, 5], classes: 3, using: &rng)
        let linears = model.namedModules().compactMap { name, m in (m as? Linear).map { (name, $0) } }
        for (_, l) in linears { l.recordsActivations = true }
        let x = randomTensor([10, 6], seed: seed + 1, requiresGrad: false)
        return (model, linears, x)
    }

    /// |a − b| ≤ 1e-5·|b| entry-wise, with a floor of 1e-6 of the tensor's largest entry.
    func expectRelativelyClose(_ a: Tensor, _ b: Tensor, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(a.shape == b.shape, "\(what)", sourceLocation: sourceLocation)
        let largest = b.scalars.map { Swift.abs($0) }.max() ?? 0
        #expect(largest > 0, "\(what) is all zero", sourceLocation: sourceLocation)
        let bad = zip(a.scalars, b.scalars).filter { Swift.abs($0 - $1) > 1e-5 * Swift.abs($1) + 1e-6 * largest }
        #expect(bad.isEmpty, "\(what): \(bad.prefix(3)) of \(a.count) differ", sourceLocation: sourceLocation)
    }

    @Test("MAS: Σₖ|gₖ| from |Δ|ᵀ|X| equals the per-sample loop for every Linear layer (loss ‖F(x)‖²)")
    func masStatistics() {
        let (model, linears, x) = setup(seed: 400)
        let reference = perSampleGradientStatistics(model: model, inputs: x) { out, _ in Losses.squaredL2Norm(out) }
        model.zeroGrad()
        Losses.squaredL2Norm(model(x), reduction: .sum).backward()
        #expect(linears.map(\.0) == ["features.1", "features.3", "head"])
        for (name, layer) in linears {
            let stats = layer.perSampleAbsoluteGradientSum()!
            expectRelativelyClose(stats.weight, reference["\(name).weight"]!.absSum, "\(name).weight |g|")
            expectRelativelyClose(stats.bias, reference["\(name).bias"]!.absSum, "\(name).bias |g|")
            let direct = PerSampleGradients.linearAbsoluteSum(input: layer.lastInput!, outputGradient: layer.lastOutput!.grad!)
            #expect(direct.weight.scalars == stats.weight.scalars)
        }
    }

    @Test("EWC: Σₖgₖ² from (Δ∘Δ)ᵀ(X∘X) equals the per-sample loop for every Linear layer (cross-entropy)")
    func ewcStatistics() {
        let (model, linears, x) = setup(seed: 410)
        let targets = [0, 2, 1, 1, 0, 2, 2, 0, 1, 0]
        let reference = perSampleGradientStatistics(model: model, inputs: x) { out, k in
            Losses.crossEntropy(out, targets: [targets[k]])
        }
        model.zeroGrad()
        Losses.crossEntropy(model(x), targets: targets, reduction: .sum).backward()
        for (name, layer) in linears {
            let squared = layer.perSampleSquaredGradientSum()!
            expectRelativelyClose(squared.weight, reference["\(name).weight"]!.sqSum, "\(name).weight g²")
            expectRelativelyClose(squared.bias, reference["\(name).bias"]!.sqSum, "\(name).bias g²")
            let absolute = layer.perSampleAbsoluteGradientSum()!
            expectRelativelyClose(absolute.weight, reference["\(name).weight"]!.absSum, "\(name).weight |g|")
        }
    }

    @Test("the per-sample reference sums single-sample gradients and leaves parameters' grad alone")
    func referenceLoop() {
        var rng = RandomGenerator(seed: 420)
        let layer = Linear(3, 2, using: &rng)
        let x = randomTensor([2, 3], seed: 421, requiresGrad: false)
        let stats = perSampleGradientStatistics(model: layer, inputs: x) { out, _ in out.sum() }
        // ∂(Σ y)/∂W for one sample is the sample repeated in each row; for b it is 1.
        let v = x.scalars
        let columnAbs: [Float] = (0..<3).map { j in Swift.abs(v[j]) + Swift.abs(v[3 + j]) }
        let columnSq: [Float] = (0..<3).map { j in v[j] * v[j] + v[3 + j] * v[3 + j] }
        let expectedAbs = columnAbs + columnAbs, expectedSq = columnSq + columnSq
        expectClose(stats["weight"]!.absSum.scalars, expectedAbs, rtol: 1e-6)
        expectClose(stats["weight"]!.sqSum.scalars, expectedSq, rtol: 1e-6)
        #expect(stats["bias"]!.absSum.scalars == [2, 2] && stats["bias"]!.sqSum.scalars == [2, 2])
        #expect(layer.weight.grad == nil && layer.bias!.grad == nil)
    }

    @Test("with a mean-reduced batch loss the GEMM statistics are the per-sample ones scaled by 1/n (|·|) and 1/n² (²)")
    func meanReduction() {
        let (model, linears, x) = setup(seed: 430)
        let reference = perSampleGradientStatistics(model: model, inputs: x) { out, _ in Losses.squaredL2Norm(out) }
        Losses.squaredL2Norm(model(x)).backward()
        let (name, layer) = linears[1]
        let absolute = layer.perSampleAbsoluteGradientSum()!.weight * 10
        let squared = layer.perSampleSquaredGradientSum()!.weight * 100
        expectRelativelyClose(absolute, reference["\(name).weight"]!.absSum, "\(name).weight |g|")
        expectRelativelyClose(squared, reference["\(name).weight"]!.sqSum, "\(name).weight g²")
    }
}
