import Testing
import EngramTensor

/// Row-major [rows, cols] matrix entry, read as op(M) (transposed when asked).
func entry(_ m: Tensor, _ i: Int, _ j: Int, transposed: Bool) -> Double {
    Double(transposed ? m.scalars[j * m.shape[1] + i] : m.scalars[i * m.shape[1] + j])
}

struct TransposeCase: Sendable, CustomTestStringConvertible {
    let a: Bool, b: Bool
    var testDescription: String { "\(a ? "Aᵀ" : "A")·\(b ? "Bᵀ" : "B")" }
    static let all = [TransposeCase(a: false, b: false), .init(a: true, b: false), .init(a: false, b: true), .init(a: true, b: true)]
}

@Suite struct MatmulTests {
    let m = 3, k = 4, n = 5

    func operands(_ c: TransposeCase, seed: UInt64) -> (Tensor, Tensor) {
        (randomTensor(c.a ? [k, m] : [m, k], seed: seed), randomTensor(c.b ? [n, k] : [k, n], seed: seed + 1))
    }

    @Test("matmul equals the naive triple loop for every transpose combination", arguments: TransposeCase.all)
    func values(c: TransposeCase) {
        let (a, b) = operands(c, seed: 60)
        let y = a.matmul(b, transposeSelf: c.a, transposeOther: c.b)
        #expect(y.shape == [m, n])
        var expected: [Float] = []
        for i in 0..<m {
            for j in 0..<n {
                var s: Double = 0
                for p in 0..<k { s += entry(a, i, p, transposed: c.a) * entry(b, p, j, transposed: c.b) }
                expected.append(Float(s))
            }
        }
        expectClose(y.scalars, expected, rtol: 1e-5, atol: 1e-5)
    }

    @Test("matmul's gradients match central differences for every transpose combination", arguments: TransposeCase.all)
    func gradients(c: TransposeCase) {
        let (a, b) = operands(c, seed: 62)
        checkGradients(wrt: [a, b]) { a.matmul(b, transposeSelf: c.a, transposeOther: c.b) }
    }

    @Test("a larger product agrees with the naive loop (BLAS blocking paths)")
    func largerProduct() {
        let a = randomTensor([37, 70], seed: 64, requiresGrad: false)
        let b = randomTensor([50, 70], seed: 65, requiresGrad: false)
        let y = a.matmul(b, transposeOther: true)
        var worst: Double = 0
        for i in 0..<37 {
            for j in 0..<50 {
                var s: Double = 0
                for p in 0..<70 { s += entry(a, i, p, transposed: false) * entry(b, p, j, transposed: true) }
                worst = Swift.max(worst, Swift.abs(s - Double(y.scalars[i * 50 + j])))
            }
        }
        #expect(worst < 1e-4)
    }
}

@Suite struct LinearOperationTests {
    @Test("Tensor.linear computes x·Wᵀ + b like the naive loop, with and without bias", arguments: [true, false])
    func values(withBias: Bool) {
        let x = randomTensor([4, 3], seed: 66, requiresGrad: false)
        let w = randomTensor([5, 3], seed: 67, requiresGrad: false)
        let b = randomTensor([5], seed: 68, requiresGrad: false)
        let y = Tensor.linear(x, weight: w, bias: withBias ? b : nil)
        #expect(y.shape == [4, 5])
        var expected: [Float] = []
        for r in 0..<4 {
            for o in 0..<5 {
                var s = withBias ? Double(b.scalars[o]) : 0
                for i in 0..<3 { s += Double(x.scalars[r * 3 + i]) * Double(w.scalars[o * 3 + i]) }
                expected.append(Float(s))
            }
        }
        expectClose(y.scalars, expected, rtol: 1e-5, atol: 1e-6)
    }

    @Test("Tensor.linear's gradients match central differences, with and without bias", arguments: [true, false])
    func gradients(withBias: Bool) {
        let x = randomTensor([4, 3], seed: 69)
        let w = randomTensor([5, 3], seed: 70)
        let b = randomTensor([5], seed: 71)
        if withBias {
            checkGradients(wrt: [x, w, b]) { Tensor.linear(x, weight: w, bias: b) }
        } else {
            checkGradients(wrt: [x, w]) { Tensor.linear(x, weight: w, bias: nil) }
        }
    }

    @Test("Tensor.linear gives gradients only to operands that require them")
    func partialGradients() {
        let x = randomTensor([4, 3], seed: 72, requiresGrad: false)
        let w = randomTensor([5, 3], seed: 73)
        let b = randomTensor([5], seed: 74, requiresGrad: false)
        checkGradients(wrt: [w]) { Tensor.linear(x, weight: w, bias: b) }
        let x2 = randomTensor([4, 3], seed: 75)
        let w2 = randomTensor([5, 3], seed: 76, requiresGrad: false)
        let b2 = randomTensor([5], seed: 77)
        checkGradients(wrt: [x2, b2]) { Tensor.linear(x2, weight: w2, bias: b2) }
    }
}
