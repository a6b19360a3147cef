import Testing
import EngramTensor

struct BatchNormCase: Sendable, CustomTestStringConvertible {
    let shape: [Int], training: Bool, affine: Bool
    var testDescription: String { "\(shape) \(training ? "training" : "eval")\(affine ? " with γ, β" : "")" }
    static let all: [BatchNormCase] = [[6, 3], [3, 2, 3, 2]].flatMap { s in
        [true, false].flatMap { t in [true, false].map { BatchNormCase(shape: s, training: t, affine: $0) } }
    }
}

@Suite struct BatchNormOperationTests {
    /// Per-channel (mean, biased variance) of [N, C] or [N, C, H, W] values, in Double.
    func channelStatistics(_ x: Tensor) -> [(mean: Double, variance: Double, count: Int)] {
        let (n, c) = (x.shape[0], x.shape[1])
        let inner = x.rank == 4 ? x.shape[2] * x.shape[3] : 1
        return (0..<c).map { ch in
            var values: [Double] = []
            for b in 0..<n { for k in 0..<inner { values.append(Double(x.scalars[(b * c + ch) * inner + k])) } }
            let mean = values.reduce(0, +) / Double(values.count)
            let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)
            return (mean, variance, values.count)
        }
    }

    @Test("in training, batchNorm normalizes with batch statistics and returns the unbiased variance")
    func trainingValues() {
        for shape in [[6, 3], [3, 2, 3, 2]] {
            let x = randomTensor(shape, seed: 110, std: 2, mean: 1.5, requiresGrad: false)
            let gamma = Tensor([2, -1, 0.5].prefix(shape[1]).map { $0 })
            let beta = Tensor([0.5, 1, -3].prefix(shape[1]).map { $0 })
            let c = shape[1]
            let (y, mean, variance) = Tensor.batchNorm(x, gamma: gamma, beta: beta,
                                                       runningMean: .init(repeating: 0, count: c),
                                                       runningVariance: .init(repeating: 1, count: c), training: true)
            let stats = channelStatistics(x)
            let inner = x.count / (shape[0] * c)
            for ch in 0..<c {
                #expect(Swift.abs(Double(mean[ch]) - stats[ch].mean) < 1e-5)
                let unbiased = stats[ch].variance * Double(stats[ch].count) / Double(stats[ch].count - 1)
                #expect(Swift.abs(Double(variance[ch]) - unbiased) < 1e-4 * unbiased)
            }
            var expected: [Float] = []
            for i in 0..<x.count {
                let ch = (i / inner) % c
                let xhat = (Double(x.scalars[i]) - stats[ch].mean) / (stats[ch].variance + 1e-5).squareRoot()
                expected.append(Float(Double(gamma.scalars[ch]) * xhat + Double(beta.scalars[ch])))
            }
            expectClose(y.scalars, expected, rtol: 1e-4, atol: 1e-5)
        }
    }

    @Test("in evaluation, batchNorm uses the running statistics")
    func evaluationValues() {
        let x = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4])
        let (y, _, _) = Tensor.batchNorm(x, gamma: Tensor([2, 1]), beta: Tensor([0, 1]),
                                         runningMean: [1, 0], runningVariance: [4, 0.25], training: false, epsilon: 0)
        // ch0: 2·(x − 1)/2 → 0, 2; ch1: (x − 0)/0.5 + 1 → 5, 9
        expectClose(y.scalars, [0, 5, 2, 9], rtol: 1e-6)
    }

    @Test("batchNorm's gradients match central differences", arguments: BatchNormCase.all)
    func gradients(c: BatchNormCase) {
        let x = randomTensor(c.shape, seed: 111, mean: 0.5)
        let channels = c.shape[1]
        let gamma = c.affine ? randomTensor([channels], seed: 112, std: 0.5, mean: 1) : nil
        let beta = c.affine ? randomTensor([channels], seed: 113) : nil
        let rm = (0..<channels).map { Float($0) * 0.3 - 0.2 }
        let rv = (0..<channels).map { 0.5 + Float($0) * 0.4 }
        checkGradients(wrt: [x] + [gamma, beta].compactMap { $0 }) {
            Tensor.batchNorm(x, gamma: gamma, beta: beta, runningMean: rm, runningVariance: rv, training: c.training).output
        }
    }
}
