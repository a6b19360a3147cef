import Testing
import EngramTensor

@Suite struct PerSampleGradientsTests {
    /// Explicit per-sample outer products g_k = δ_kᵀx_k, reduced with f and summed over k (Double).
    func reference(_ x: Tensor, _ delta: Tensor, _ f: (Double) -> Double) -> (weight: [Float], bias: [Float]) {
        let (n, fanIn, fanOut) = (x.shape[0], x.shape[1], delta.shape[1])
        var w = [Double](repeating: 0, count: fanOut * fanIn), b = [Double](repeating: 0, count: fanOut)
        for k in 0..<n {
            for o in 0..<fanOut {
                let d = Double(delta.scalars[k * fanOut + o])
                b[o] += f(d)
                for i in 0..<fanIn { w[o * fanIn + i] += f(d * Double(x.scalars[k * fanIn + i])) }
            }
        }
        return (w.map { Float($0) }, b.map { Float($0) })
    }

    @Test("linearAbsoluteSum equals Σₖ|δₖᵀxₖ| computed sample by sample")
    func absoluteSum() {
        let x = randomTensor([7, 5], seed: 130, requiresGrad: false)
        let delta = randomTensor([7, 3], seed: 131, requiresGrad: false)
        let (w, b) = PerSampleGradients.linearAbsoluteSum(input: x, outputGradient: delta)
        let ref = reference(x, delta) { Swift.abs($0) }
        #expect(w.shape == [3, 5] && b.shape == [3])
        expectClose(w.scalars, ref.weight, rtol: 1e-5, atol: 0)
        expectClose(b.scalars, ref.bias, rtol: 1e-5, atol: 0)
    }

    @Test("linearSquaredSum equals Σₖ(δₖᵀxₖ)² computed sample by sample")
    func squaredSum() {
        let x = randomTensor([7, 5], seed: 132, requiresGrad: false)
        let delta = randomTensor([7, 3], seed: 133, requiresGrad: false)
        let (w, b) = PerSampleGradients.linearSquaredSum(input: x, outputGradient: delta)
        let ref = reference(x, delta) { $0 * $0 }
        expectClose(w.scalars, ref.weight, rtol: 1e-5, atol: 0)
        expectClose(b.scalars, ref.bias, rtol: 1e-5, atol: 0)
    }

    @Test("per-sample sums differ from the batch gradient's absolute value (they are not |Σg|)")
    func notBatchGradient() {
        let x = randomTensor([6, 4], seed: 134, requiresGrad: false)
        let delta = randomTensor([6, 2], seed: 135, requiresGrad: false)
        let w = PerSampleGradients.linearAbsoluteSum(input: x, outputGradient: delta).weight
        let batch = delta.matmul(x, transposeSelf: true).abs()
        #expect(zip(w.scalars, batch.scalars).allSatisfy { $0 >= $1 - 1e-6 })
        #expect(zip(w.scalars, batch.scalars).contains { $0 > $1 + 1e-3 })
    }
}
