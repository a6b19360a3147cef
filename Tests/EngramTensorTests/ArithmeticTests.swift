import Testing
import EngramTensor

enum BinaryOp: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case add = "+", subtract = "−", multiply = "×", divide = "÷"
    var testDescription: String { rawValue }
    func callAsFunction(_ a: Tensor, _ b: Tensor) -> Tensor {
        switch self {
        case .add: a + b
        case .subtract: a - b
        case .multiply: a * b
        case .divide: a / b
        }
    }
    func scalar(_ a: Float, _ b: Float) -> Float {
        switch self {
        case .add: a + b
        case .subtract: a - b
        case .multiply: a * b
        case .divide: a / b
        }
    }
}

struct BroadcastCase: Sendable, CustomTestStringConvertible {
    let a: [Int], b: [Int], result: [Int]
    var testDescription: String { "\(a) with \(b)" }
    static let all: [BroadcastCase] = [
        .init(a: [3, 4], b: [3, 4], result: [3, 4]),        // same shape
        .init(a: [3, 4], b: [], result: [3, 4]),            // rank-0 scalar on the right
        .init(a: [], b: [3, 4], result: [3, 4]),            // rank-0 scalar on the left
        .init(a: [3, 4], b: [4], result: [3, 4]),           // row
        .init(a: [3, 4], b: [3, 1], result: [3, 4]),        // column
        .init(a: [2, 1, 4], b: [3, 1], result: [2, 3, 4]),  // 3-D, both sides broadcast
        .init(a: [1, 3, 1], b: [2, 3, 4], result: [2, 3, 4]),
    ]
}

/// Index of `outIndex` (a multi-index of the broadcast result) into an operand of `shape`.
func broadcastOffset(_ outIndex: [Int], _ shape: [Int]) -> Int {
    let pad = outIndex.count - shape.count
    var offset = 0
    for (axis, extent) in shape.enumerated() {
        offset = offset * extent + (extent == 1 ? 0 : outIndex[pad + axis])
    }
    return offset
}

func multiIndex(_ flat: Int, _ shape: [Int]) -> [Int] {
    var rest = flat
    var index = [Int](repeating: 0, count: shape.count)
    for axis in stride(from: shape.count - 1, through: 0, by: -1) {
        index[axis] = rest % shape[axis]
        rest /= shape[axis]
    }
    return index
}

@Suite struct TensorArithmeticTests {
    @Test("binary operations broadcast to the NumPy shape with the right values",
          arguments: BinaryOp.allCases, BroadcastCase.all)
    func broadcastValues(op: BinaryOp, c: BroadcastCase) {
        let a = randomTensor(c.a, seed: 1, requiresGrad: false)
        let b = uniformTensor(c.b, seed: 2, low: 0.5, high: 2, requiresGrad: false)
        let y = op(a, b)
        #expect(y.shape == c.result)
        var expected: [Float] = []
        for i in 0..<c.result.reduce(1, *) {
            let idx = multiIndex(i, c.result)
            expected.append(op.scalar(a.scalars[broadcastOffset(idx, c.a)], b.scalars[broadcastOffset(idx, c.b)]))
        }
        expectClose(y.scalars, expected, rtol: 0, atol: 0)
    }

    @Test("binary operations' gradients match central differences under broadcasting",
          arguments: BinaryOp.allCases, BroadcastCase.all)
    func broadcastGradients(op: BinaryOp, c: BroadcastCase) {
        let a = randomTensor(c.a, seed: 3)
        // Denominators stay away from zero; signs vary.
        let b = randomTensor(c.b, seed: 4, std: 0.5, awayFromZero: 0.7)
        checkGradients(wrt: [a, b]) { op(a, b) }
    }

    @Test("only the operand that requires gradients receives one", arguments: BinaryOp.allCases)
    func oneSidedGradients(op: BinaryOp) {
        let a = randomTensor([3, 4], seed: 5)
        let constant = randomTensor([4], seed: 6, awayFromZero: 0.7, requiresGrad: false)
        checkGradients(wrt: [a]) { op(a, constant) }
        let b = randomTensor([3, 1], seed: 7, awayFromZero: 0.7)
        let left = randomTensor([3, 4], seed: 8, requiresGrad: false)
        checkGradients(wrt: [b]) { op(left, b) }
        #expect(left.grad == nil && constant.grad == nil)
    }

    @Test("tensor–scalar operations have the right values and gradients")
    func scalarOperations() {
        let x = randomTensor([2, 5], seed: 9, awayFromZero: 0.5)
        let cases: [(String, (Tensor) -> Tensor, (Float) -> Float)] = [
            ("x + 2", { $0 + 2 }, { $0 + 2 }), ("2 + x", { 2 + $0 }, { 2 + $0 }),
            ("x − 2", { $0 - 2 }, { $0 - 2 }), ("2 − x", { 2 - $0 }, { 2 - $0 }),
            ("x · 3", { $0 * 3 }, { $0 * 3 }), ("3 · x", { 3 * $0 }, { 3 * $0 }),
            ("x / 4", { $0 / 4 }, { $0 / 4 }), ("4 / x", { 4 / $0 }, { 4 / $0 }),
            ("−x", { -$0 }, { -$0 }),
        ]
        for (name, op, reference) in cases {
            let y = op(x)
            #expect(y.shape == x.shape, "\(name)")
            expectClose(y.scalars, x.scalars.map(reference), rtol: 1e-6, atol: 0)
            let problems = gradientMismatches(wrt: [x]) { op(x) }
            #expect(problems.isEmpty, "\(name): \(problems)")
        }
    }

    @Test("broadcast result shapes follow the right-aligned NumPy rule")
    func broadcastShapes() {
        let y = Tensor([1, 2, 3]) + Tensor(shape: [1, 1], scalars: [10])
        #expect(y.shape == [1, 3])
        #expect(y.scalars == [11, 12, 13])
        let z = Tensor(shape: [4, 1, 2], scalars: Array(repeating: 1, count: 8)) * Tensor(shape: [3, 1], scalars: [1, 2, 3])
        #expect(z.shape == [4, 3, 2])
        #expect(z.scalars.prefix(6) == [1, 1, 2, 2, 3, 3])
    }
}
