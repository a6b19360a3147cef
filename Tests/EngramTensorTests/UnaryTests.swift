import Foundation
import Testing
import EngramTensor

@Suite struct UnaryOperationTests {
    @Test("exp, log, sqrt, sigmoid and tanh compute the libm values")
    func forwardValues() {
        let x = Tensor([0.25, 1, 2.5])
        expectClose(x.exp().scalars, x.scalars.map { Foundation.exp($0) }, rtol: 1e-6)
        expectClose(x.log().scalars, x.scalars.map { Foundation.log($0) }, rtol: 1e-6)
        expectClose(x.sqrt().scalars, x.scalars.map { $0.squareRoot() }, rtol: 1e-6)
        expectClose(x.sigmoid().scalars, x.scalars.map { 1 / (1 + Foundation.exp(-$0)) }, rtol: 1e-6)
        expectClose(x.tanh().scalars, x.scalars.map { Foundation.tanh($0) }, rtol: 1e-6)
        expectClose(Tensor([-2, 3]).pow(3).scalars, [-8, 27], rtol: 1e-6)
        expectClose(Tensor([4, 9]).pow(0.5).scalars, [2, 3], rtol: 1e-6)
        #expect(Tensor([-1.5, 0, 2]).abs().scalars == [1.5, 0, 2])
        #expect(Tensor([-1.5, 0, 2]).relu().scalars == [0, 0, 2])
        #expect(Tensor([-1.5, 0.2, 2]).clamp(min: -1, max: 1).scalars == [-1, 0.2, 1])
    }

    @Test("sigmoid saturates to 0 and 1 without overflow at ±100")
    func sigmoidStability() {
        let y = Tensor([-100, 100, -1000, 1000]).sigmoid()
        #expect(y.scalars.allSatisfy { $0.isFinite })
        #expect(y.scalars[0] < 1e-30 && y.scalars[2] == 0)
        #expect(y.scalars[1] == 1 && y.scalars[3] == 1)
    }

    @Test("neg, exp, sigmoid, tanh and squared gradients match central differences")
    func smoothGradients() {
        let x = randomTensor([3, 4], seed: 11)
        checkGradients(wrt: [x]) { -x }
        checkGradients(wrt: [x]) { x.exp() }
        checkGradients(wrt: [x]) { x.sigmoid() }
        checkGradients(wrt: [x]) { x.tanh() }
        checkGradients(wrt: [x]) { x.squared() }
    }

    @Test("log and sqrt gradients match central differences on positive inputs")
    func positiveDomainGradients() {
        let x = uniformTensor([3, 4], seed: 12, low: 0.5, high: 3)
        checkGradients(wrt: [x]) { x.log() }
        checkGradients(wrt: [x]) { x.sqrt() }
    }

    @Test("pow's gradient matches central differences for integer, fractional and negative exponents")
    func powGradients() {
        let x = randomTensor([3, 4], seed: 13)
        checkGradients(wrt: [x]) { x.pow(2) }
        checkGradients(wrt: [x]) { x.pow(3) }
        let positive = uniformTensor([3, 4], seed: 14, low: 0.5, high: 2)
        checkGradients(wrt: [positive]) { positive.pow(0.5) }
        checkGradients(wrt: [positive]) { positive.pow(-1.5) }
    }

    @Test("abs and relu gradients match central differences away from the kink")
    func kinkedGradients() {
        let x = randomTensor([4, 5], seed: 15, awayFromZero: 0.1)
        #expect(x.scalars.contains { $0 < 0 } && x.scalars.contains { $0 > 0 })
        checkGradients(wrt: [x]) { x.abs() }
        checkGradients(wrt: [x]) { x.relu() }
    }

    @Test("clamp passes the gradient inside the interval and blocks it outside")
    func clampGradients() {
        // Values away from the bounds ±0.5 by more than the step.
        let raw = randomTensor([4, 5], seed: 16, requiresGrad: false).scalars
        let values = raw.map { v -> Float in Swift.abs(Swift.abs(v) - 0.5) < 0.05 ? v * 1.3 : v }
        let x = Tensor(shape: [4, 5], scalars: values, requiresGrad: true)
        checkGradients(wrt: [x]) { x.clamp(min: -0.5, max: 0.5) }
        let g = x.clamp(min: -0.5, max: 0.5).sum().gradients(withRespectTo: [x])[0]
        for (v, d) in zip(values, g.scalars) { #expect(d == (Swift.abs(v) < 0.5 ? 1 : 0)) }
        // One-sided clamps.
        checkGradients(wrt: [x]) { x.clamp(min: -0.5) }
        checkGradients(wrt: [x]) { x.clamp(max: 0.5) }
    }
}
