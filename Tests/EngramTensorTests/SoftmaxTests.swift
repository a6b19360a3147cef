import Foundation
import Testing
import EngramTensor

@Suite struct SoftmaxTests {
    @Test("softmax rows sum to one and match exp(x/T)/Σexp(x/T)", arguments: [Float(1), 0.5, 3])
    func values(temperature: Float) {
        let x = randomTensor([3, 5], seed: 80, std: 2, requiresGrad: false)
        let p = x.softmax(temperature: temperature)
        let lp = x.logSoftmax(temperature: temperature)
        for r in 0..<3 {
            let row = x.scalars[(r * 5)..<(r * 5 + 5)].map { Double($0 / temperature) }
            let z = row.map { Foundation.exp($0) }.reduce(0, +)
            let expected = row.map { Float(Foundation.exp($0) / z) }
            expectClose(Array(p.scalars[(r * 5)..<(r * 5 + 5)]), expected, rtol: 1e-5, atol: 1e-7)
            expectClose(Array(lp.scalars[(r * 5)..<(r * 5 + 5)]), row.map { Float($0 - Foundation.log(z)) }, rtol: 1e-5, atol: 1e-6)
            let total = p.scalars[(r * 5)..<(r * 5 + 5)].reduce(0, +)
            #expect(Swift.abs(total - 1) < 1e-6)
        }
    }

    @Test("softmax and log-softmax stay finite and exact with logits of ±1000")
    func stability() {
        let x = Tensor(shape: [3, 3], scalars: [1000, -1000, 0, 1000, 999, -1000, -1000, -1000, -1000])
        let p = x.softmax()
        let lp = x.logSoftmax()
        #expect(p.scalars.allSatisfy { $0.isFinite } && lp.scalars.allSatisfy { $0.isFinite })
        expectClose(Array(p.scalars[0..<3]), [1, 0, 0], atol: 0)
        // [1000, 999]: log-probabilities −log(1 + e⁻¹) and −1 − log(1 + e⁻¹).
        let c = Float(Foundation.log(1 + Foundation.exp(-1.0)))
        expectClose(Array(lp.scalars[3..<5]), [-c, -1 - c], rtol: 1e-6)
        expectClose(Array(p.scalars[6..<9]), [1.0 / 3, 1.0 / 3, 1.0 / 3], rtol: 1e-6)
        #expect(Swift.abs(lp.scalars[5] + 2000 + c) < 1e-3)
        let xg = Tensor(shape: [1, 2], scalars: [1000, -1000], requiresGrad: true)
        let g = xg.logSoftmax().sum().gradients(withRespectTo: [xg])[0]
        #expect(g.scalars.allSatisfy { $0.isFinite })
        expectClose(g.scalars, [-1, 1], atol: 1e-6)
    }

    @Test("softmax's gradient matches central differences, with temperature", arguments: [Float(1), 0.5, 2.5])
    func softmaxGradients(temperature: Float) {
        let x = randomTensor([3, 5], seed: 81)
        checkGradients(wrt: [x]) { x.softmax(temperature: temperature) }
        let x3 = randomTensor([2, 3, 4], seed: 82)
        checkGradients(wrt: [x3]) { x3.softmax(temperature: temperature) }
    }

    @Test("logSoftmax's gradient matches central differences, with temperature", arguments: [Float(1), 0.5, 2.5])
    func logSoftmaxGradients(temperature: Float) {
        let x = randomTensor([3, 5], seed: 83)
        checkGradients(wrt: [x]) { x.logSoftmax(temperature: temperature) }
        let x3 = randomTensor([2, 3, 4], seed: 84)
        checkGradients(wrt: [x3]) { x3.logSoftmax(temperature: temperature) }
    }
}
