import EngramTensor
import Foundation
import Testing
import EngramNN

/// log Σ exp over `values`, in Double.
func logSumExp(_ values: [Double]) -> Double {
    let m = values.max()!
    return m + Foundation.log(values.map { Foundation.exp($0 - m) }.reduce(0, +))
}

func row(_ t: Tensor, _ r: Int) -> [Double] {
    let c = t.shape[1]
    return t.scalars[(r * c)..<((r + 1) * c)].map(Double.init)
}

@Suite struct LossesTests {
    @Test("crossEntropy equals logsumexp(z) − z_y, averaged, summed or per sample")
    func crossEntropyValues() {
        let logits = Tensor(shape: [2, 3], scalars: [1, 2, 3, 1, 1, 1])
        // Row 0: log(e + e² + e³) − 3 = 0.4076059644; row 1: log 3 = 1.0986122887.
        let perSample = Losses.crossEntropy(logits, targets: [2, 0], reduction: .none)
        #expect(perSample.shape == [2])
        expectClose(perSample.scalars, [0.40760596, 1.09861229], rtol: 1e-6)
        expectClose([Losses.crossEntropy(logits, targets: [2, 0]).item], [0.75310913], rtol: 1e-6)
        expectClose([Losses.crossEntropy(logits, targets: [2, 0], reduction: .sum).item], [1.50621825], rtol: 1e-6)
        #expect(Losses.crossEntropy(logits, targets: [2, 0]).shape == [])
        // Stable with huge logits.
        let huge = Losses.crossEntropy(Tensor(shape: [1, 2], scalars: [1000, -1000]), targets: [1])
        #expect(huge.item == 2000)
    }

    @Test("crossEntropy's gradient matches central differences for every reduction",
          arguments: [Reduction.mean, .sum, .none])
    func crossEntropyGradients(reduction: Reduction) {
        let logits = randomTensor([4, 5], seed: 200, std: 2)
        checkGradients(wrt: [logits]) { Losses.crossEntropy(logits, targets: [0, 4, 2, 2], reduction: reduction) }
    }

    @Test("crossEntropy with allowedClasses is the cross-entropy over those logits only, masked ones get no gradient",
          arguments: [Reduction.mean, .none])
    func crossEntropyMasked(reduction: Reduction) {
        let logits = randomTensor([3, 6], seed: 201, std: 2)
        let allowed = [1, 3, 4], targets = [3, 1, 4]
        let loss = Losses.crossEntropy(logits, targets: targets, allowedClasses: allowed, reduction: .none)
        for r in 0..<3 {
            let z = row(logits, r)
            let expected = logSumExp(allowed.map { z[$0] }) - z[targets[r]]
            #expect(Swift.abs(Double(loss.scalars[r]) - expected) < 1e-5)
        }
        let g = Losses.crossEntropy(logits, targets: targets, allowedClasses: allowed, reduction: reduction)
            .gradients(withRespectTo: [logits], seed: reduction == .none ? Tensor([1, 2, 3]) : nil)[0]
        for r in 0..<3 { for j in [0, 2, 5] { #expect(g.scalars[r * 6 + j] == 0) } }
        checkGradients(wrt: [logits]) {
            Losses.crossEntropy(logits, targets: targets, allowedClasses: allowed, reduction: reduction)
        }
    }

    @Test("nll picks −log p[y] and its gradient matches central differences", arguments: [Reduction.mean, .sum, .none])
    func nll(reduction: Reduction) {
        let x = randomTensor([3, 4], seed: 202)
        let lp = x.logSoftmax()
        let value = Losses.nll(lp, targets: [1, 0, 3], reduction: .none)
        expectClose(value.scalars, [-lp.scalars[1], -lp.scalars[4], -lp.scalars[11]], rtol: 1e-6)
        // nll ∘ logSoftmax is cross-entropy.
        expectClose([Losses.nll(lp, targets: [1, 0, 3]).item], [Losses.crossEntropy(x, targets: [1, 0, 3]).item], rtol: 1e-5)
        checkGradients(wrt: [x]) { Losses.nll(x.logSoftmax(), targets: [1, 0, 3], reduction: reduction) }
        let raw = randomTensor([3, 4], seed: 203)
        checkGradients(wrt: [raw]) { Losses.nll(raw, targets: [2, 2, 0], reduction: reduction) }
    }

    @Test("mse is the mean (or sum) of squared differences and its gradient matches central differences",
          arguments: [Reduction.mean, .sum, .none])
    func mse(reduction: Reduction) {
        let a = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4]), b = Tensor(shape: [2, 2], scalars: [0, 2, 5, 1])
        #expect(Losses.mse(a, b).item == 3.5)  // (1 + 0 + 4 + 9) / 4
        #expect(Losses.mse(a, b, reduction: .sum).item == 14)
        #expect(Losses.mse(a, b, reduction: .none).scalars == [1, 0, 4, 9])
        let p = randomTensor([3, 4], seed: 204), t = randomTensor([3, 4], seed: 205)
        checkGradients(wrt: [p, t]) { Losses.mse(p, t, reduction: reduction) }
    }

    @Test("klDivergence equals Σ p(log p − log q) of the softened distributions and is 0 for equal inputs",
          arguments: [Float(1), 2])
    func klValues(temperature: Float) {
        let input = randomTensor([3, 4], seed: 206, std: 2, requiresGrad: false)
        let target = randomTensor([3, 4], seed: 207, std: 2, requiresGrad: false)
        let kl = Losses.klDivergence(input: input, target: target, temperature: temperature, reduction: .none)
        let t = Double(temperature)
        for r in 0..<3 {
            let zp = row(target, r).map { $0 / t }, zq = row(input, r).map { $0 / t }
            let (lp, lq) = (zp.map { $0 - logSumExp(zp) }, zq.map { $0 - logSumExp(zq) })
            let expected = zip(lp, lq).map { Foundation.exp($0) * ($0 - $1) }.reduce(0, +)
            #expect(Swift.abs(Double(kl.scalars[r]) - expected) < 1e-5)
            #expect(expected > 0)
        }
        #expect(Swift.abs(Losses.klDivergence(input: input, target: input, temperature: temperature).item) < 1e-6)
    }

    @Test("klDivergence's gradients match central differences for input and target",
          arguments: [Reduction.mean, .sum, .none], [Float(1), 2])
    func klGradients(reduction: Reduction, temperature: Float) {
        let input = randomTensor([3, 4], seed: 208), target = randomTensor([3, 4], seed: 209)
        checkGradients(wrt: [input, target]) {
            Losses.klDivergence(input: input, target: target, temperature: temperature, reduction: reduction)
        }
    }

    @Test("jensenShannon is symmetric, bounded by log 2 and matches the formula")
    func jsValues() {
        let a = randomTensor([3, 4], seed: 210, std: 2, requiresGrad: false)
        let b = randomTensor([3, 4], seed: 211, std: 2, requiresGrad: false)
        let js = Losses.jensenShannon(a, b, reduction: .none)
        let ba = Losses.jensenShannon(b, a, reduction: .none)
        expectClose(js.scalars, ba.scalars, rtol: 1e-5, atol: 1e-7)
        for r in 0..<3 {
            let (za, zb) = (row(a, r), row(b, r))
            let p = za.map { Foundation.exp($0 - logSumExp(za)) }, q = zb.map { Foundation.exp($0 - logSumExp(zb)) }
            let m = zip(p, q).map { ($0 + $1) / 2 }
            var expected = 0.0
            for j in 0..<4 { expected += 0.5 * p[j] * Foundation.log(p[j] / m[j]) + 0.5 * q[j] * Foundation.log(q[j] / m[j]) }
            #expect(Swift.abs(Double(js.scalars[r]) - expected) < 1e-5)
            #expect(js.scalars[r] > 0 && Double(js.scalars[r]) < Foundation.log(2.0))
        }
        // Disjoint-looking distributions approach log 2.
        let far = Losses.jensenShannon(Tensor(shape: [1, 2], scalars: [50, -50]), Tensor(shape: [1, 2], scalars: [-50, 50]))
        #expect(Swift.abs(Double(far.item) - Foundation.log(2.0)) < 1e-5)
    }

    @Test("jensenShannon's gradients match central differences", arguments: [Float(1), 2])
    func jsGradients(temperature: Float) {
        let a = randomTensor([3, 4], seed: 212), b = randomTensor([3, 4], seed: 213)
        checkGradients(wrt: [a, b]) { Losses.jensenShannon(a, b, temperature: temperature, reduction: .mean) }
        checkGradients(wrt: [a, b]) { Losses.jensenShannon(a, b, temperature: temperature, reduction: .none) }
    }

    @Test("squaredL2Norm is ‖F(x)‖² per sample and its gradient matches central differences",
          arguments: [Reduction.mean, .sum, .none])
    func squaredL2Norm(reduction: Reduction) {
        let y = Tensor(shape: [2, 2], scalars: [3, 4, 1, -1])
        #expect(Losses.squaredL2Norm(y, reduction: .none).scalars == [25, 2])
        #expect(Losses.squaredL2Norm(y).item == 13.5)
        #expect(Losses.squaredL2Norm(y, reduction: .sum).item == 27)
        let x = randomTensor([2, 3, 2, 2], seed: 214)
        #expect(Losses.squaredL2Norm(x, reduction: .none).shape == [2])
        checkGradients(wrt: [x]) { Losses.squaredL2Norm(x, reduction: reduction) }
    }
}
