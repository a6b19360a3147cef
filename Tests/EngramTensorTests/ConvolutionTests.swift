import Testing
import EngramTensor

struct ConvCase: Sendable, CustomTestStringConvertible {
    let input: [Int]          // N, C, H, W
    let outChannels: Int, kernel: Int, stride: Int, padding: Int, bias: Bool
    var testDescription: String {
        "\(input) → \(outChannels) ch, k\(kernel) s\(stride) p\(padding)\(bias ? " +bias" : "")"
    }
    static let all: [ConvCase] = [
        .init(input: [2, 2, 5, 6], outChannels: 3, kernel: 3, stride: 1, padding: 0, bias: true),
        .init(input: [2, 2, 5, 6], outChannels: 3, kernel: 3, stride: 1, padding: 1, bias: false),
        .init(input: [2, 3, 7, 5], outChannels: 2, kernel: 3, stride: 2, padding: 1, bias: true),
        .init(input: [1, 2, 6, 7], outChannels: 3, kernel: 3, stride: 2, padding: 0, bias: false),
        .init(input: [2, 3, 4, 5], outChannels: 2, kernel: 1, stride: 1, padding: 0, bias: true),
        .init(input: [2, 3, 5, 4], outChannels: 4, kernel: 1, stride: 2, padding: 0, bias: false),
        .init(input: [1, 1, 3, 4], outChannels: 2, kernel: 3, stride: 1, padding: 2, bias: true),
    ]
}

/// Direct convolution (cross-correlation with zero padding), accumulated in Double.
func naiveConv2d(_ x: Tensor, _ w: Tensor, _ b: Tensor?, stride: Int, padding: Int) -> (shape: [Int], values: [Float]) {
    let (n, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (o, k) = (w.shape[0], w.shape[2])
    let oh = (h + 2 * padding - k) / stride + 1, ow = (wd + 2 * padding - k) / stride + 1
    var out: [Float] = []
    for bi in 0..<n {
        for oc in 0..<o {
            for i in 0..<oh {
                for j in 0..<ow {
                    var s = Double(b?.scalars[oc] ?? 0)
                    for ic in 0..<c {
                        for ki in 0..<k {
                            for kj in 0..<k {
                                let (y, xx) = (i * stride - padding + ki, j * stride - padding + kj)
                                guard y >= 0 && y < h && xx >= 0 && xx < wd else { continue }
                                s += Double(x.scalars[((bi * c + ic) * h + y) * wd + xx])
                                    * Double(w.scalars[((oc * c + ic) * k + ki) * k + kj])
                            }
                        }
                    }
                    out.append(Float(s))
                }
            }
        }
    }
    return ([n, o, oh, ow], out)
}

@Suite struct Conv2dOperationTests {
    func operands(_ c: ConvCase, seed: UInt64) -> (Tensor, Tensor, Tensor?) {
        let x = randomTensor(c.input, seed: seed)
        let w = randomTensor([c.outChannels, c.input[1], c.kernel, c.kernel], seed: seed + 1, std: 0.5)
        let b = c.bias ? randomTensor([c.outChannels], seed: seed + 2) : nil
        return (x, w, b)
    }

    @Test("conv2d equals a direct convolution loop, on every backend", arguments: ComputeBackend.usable, ConvCase.all)
    func values(backend: ComputeBackend, c: ConvCase) {
        let (x, w, b) = operands(c, seed: 90)
        let y = ComputeBackend.using(backend) { Tensor.conv2d(x, weight: w, bias: b, stride: c.stride, padding: c.padding) }
        let (shape, expected) = naiveConv2d(x, w, b, stride: c.stride, padding: c.padding)
        #expect(y.shape == shape)
        expectClose(y.scalars, expected, rtol: 1e-5, atol: 1e-5)
    }

    @Test("conv2d's gradients match central differences for input, weight and bias, on every backend",
          arguments: ComputeBackend.usable, ConvCase.all)
    func gradients(backend: ComputeBackend, c: ConvCase) {
        let (x, w, b) = operands(c, seed: 93)
        ComputeBackend.using(backend) {
            checkGradients(wrt: [x, w] + (b.map { [$0] } ?? [])) {
                Tensor.conv2d(x, weight: w, bias: b, stride: c.stride, padding: c.padding)
            }
        }
    }

    @Test("conv2d without recording gives the same values as with recording")
    func gradModeIndependent() {
        let c = ConvCase.all[2]
        let (x, w, b) = operands(c, seed: 96)
        let y1 = Tensor.conv2d(x, weight: w, bias: b, stride: c.stride, padding: c.padding)
        let y2 = GradMode.withoutGrad { Tensor.conv2d(x, weight: w, bias: b, stride: c.stride, padding: c.padding) }
        #expect(y1.scalars == y2.scalars && y1.requiresGrad && !y2.requiresGrad)
    }
}

/// Convolutions of the shapes the models use (channel counts that are and are not multiples of oneDNN's blocks of
/// 8/16, stride-2 3×3 and 1×1 shortcuts, a single sample), computed by oneDNN and by im2col + GEMM.
@Suite struct ComputeBackendTests {
    static let modelCases: [ConvCase] = [
        .init(input: [4, 3, 32, 32], outChannels: 20, kernel: 3, stride: 1, padding: 1, bias: false),
        .init(input: [3, 20, 16, 16], outChannels: 40, kernel: 3, stride: 2, padding: 1, bias: false),
        .init(input: [3, 20, 16, 16], outChannels: 40, kernel: 1, stride: 2, padding: 0, bias: false),
        .init(input: [5, 16, 14, 14], outChannels: 16, kernel: 3, stride: 1, padding: 1, bias: true),
        .init(input: [1, 1, 28, 28], outChannels: 8, kernel: 5, stride: 1, padding: 0, bias: true),
        .init(input: [2, 64, 4, 4], outChannels: 160, kernel: 3, stride: 1, padding: 1, bias: false),
        .init(input: [3, 2, 4, 4], outChannels: 2, kernel: 3, stride: 1, padding: 1, bias: false),
    ]

    /// Output and the gradients of Σ y·r for a fixed random r, under one backend.
    func run(_ backend: ComputeBackend, _ c: ConvCase) -> [[Float]] {
        let x = randomTensor(c.input, seed: 7)
        let w = randomTensor([c.outChannels, c.input[1], c.kernel, c.kernel], seed: 8, std: 0.2)
        let b = c.bias ? randomTensor([c.outChannels], seed: 9) : nil
        return ComputeBackend.using(backend) {
            let y = Tensor.conv2d(x, weight: w, bias: b, stride: c.stride, padding: c.padding)
            let r = randomTensor(y.shape, seed: 10, requiresGrad: false)
            (y * r).sum().backward()
            return [y.scalars, x.grad!.scalars, w.grad!.scalars] + (b.map { [$0.grad!.scalars] } ?? [])
        }
    }

    @Test("oneDNN and OpenBLAS (im2col + GEMM) agree on a convolution's output and all gradients to 1e-5 relative",
          arguments: modelCases)
    func backendsAgree(c: ConvCase) throws {
        try #require(ComputeBackend.isOneDNNAvailable, "built without oneDNN: nothing to compare")
        let reference = run(.openBLAS, c), fast = run(.oneDNN, c)
        for (a, b) in zip(fast, reference) {
            let scale = b.map { Swift.abs($0) }.max() ?? 1
            expectClose(a, b, rtol: 1e-5, atol: 1e-5 * Swift.max(scale, 1))
        }
    }

    @Test("oneDNN convolutions and matrix products give bit-identical results when repeated with the same thread count")
    func oneDNNIsDeterministic() throws {
        try #require(ComputeBackend.isOneDNNAvailable, "built without oneDNN")
        for c in Self.modelCases.prefix(3) { #expect(run(.oneDNN, c) == run(.oneDNN, c)) }
        let a = randomTensor([300, 200], seed: 14), b = randomTensor([200, 150], seed: 15)
        let products = (0..<2).map { _ in ComputeBackend.using(.oneDNN) { a.matmul(b).scalars } }
        #expect(products[0] == products[1])
    }

    @Test("oneDNN's and OpenBLAS's matrix products agree to 1e-5 relative, with every transposition and thin shapes",
          arguments: [(10, 400, 784), (128, 400, 400), (1, 7, 3), (33, 1, 65), (257, 130, 19)])
    func matrixProductsAgree(m: Int, n: Int, k: Int) throws {
        try #require(ComputeBackend.isOneDNNAvailable, "built without oneDNN: nothing to compare")
        for (tA, tB) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = randomTensor(tA ? [k, m] : [m, k], seed: 11), b = randomTensor(tB ? [n, k] : [k, n], seed: 12)
            let r = randomTensor([m, n], seed: 13, requiresGrad: false)
            func run(_ backend: ComputeBackend) -> [[Float]] {
                ComputeBackend.using(backend) {
                    let y = a.matmul(b, transposeSelf: tA, transposeOther: tB)
                    let g = (y * r).sum().gradients(withRespectTo: [a, b])
                    return [y.scalars, g[0].scalars, g[1].scalars]
                }
            }
            for (x, y) in zip(run(.oneDNN), run(.openBLAS)) {
                let scale = y.map { Swift.abs($0) }.max() ?? 1
                expectClose(x, y, rtol: 1e-5, atol: 1e-5 * Swift.max(scale, 1))
            }
        }
    }

    @Test("using(_:_:) scopes the backend to its body")
    func scopedBackend() {
        let before = ComputeBackend.current
        ComputeBackend.using(.openBLAS) { #expect(ComputeBackend.current == .openBLAS) }
        #expect(ComputeBackend.current == before)
    }
}

struct PoolCase: Sendable, CustomTestStringConvertible {
    let input: [Int], kernel: Int, stride: Int?, padding: Int
    var testDescription: String { "\(input) k\(kernel) s\(stride.map(String.init) ?? "=k") p\(padding)" }
    static let all: [PoolCase] = [
        .init(input: [2, 2, 4, 6], kernel: 2, stride: nil, padding: 0),
        .init(input: [1, 2, 5, 5], kernel: 3, stride: 2, padding: 1),
        .init(input: [2, 1, 5, 6], kernel: 3, stride: 1, padding: 1),
        .init(input: [1, 3, 5, 4], kernel: 2, stride: 1, padding: 0),
        .init(input: [2, 2, 5, 7], kernel: 2, stride: 2, padding: 0),
    ]
}

/// Naive pooling: max over the window's in-bounds entries, or their sum / k² (padding counted).
func naivePool(_ x: Tensor, kernel k: Int, stride s: Int, padding p: Int, max: Bool) -> (shape: [Int], values: [Float]) {
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1
    var out: [Float] = []
    for plane in 0..<(n * c) {
        for i in 0..<oh {
            for j in 0..<ow {
                var best = -Float.infinity, sum: Double = 0
                for ki in 0..<k {
                    for kj in 0..<k {
                        let (y, xx) = (i * s - p + ki, j * s - p + kj)
                        guard y >= 0 && y < h && xx >= 0 && xx < w else { continue }
                        let v = x.scalars[(plane * h + y) * w + xx]
                        best = Swift.max(best, v)
                        sum += Double(v)
                    }
                }
                out.append(max ? best : Float(sum / Double(k * k)))
            }
        }
    }
    return ([n, c, oh, ow], out)
}

@Suite struct PoolingTests {
    @Test("maxPool2d equals the naive window maximum", arguments: PoolCase.all)
    func maxValues(c: PoolCase) {
        let x = randomTensor(c.input, seed: 100, requiresGrad: false)
        let y = x.maxPool2d(kernel: c.kernel, stride: c.stride, padding: c.padding)
        let (shape, expected) = naivePool(x, kernel: c.kernel, stride: c.stride ?? c.kernel, padding: c.padding, max: true)
        #expect(y.shape == shape)
        #expect(y.scalars == expected)
    }

    @Test("maxPool2d's gradient matches central differences without ties", arguments: PoolCase.all)
    func maxGradients(c: PoolCase) {
        let x = distinctTensor(c.input, seed: 101)
        checkGradients(wrt: [x]) { x.maxPool2d(kernel: c.kernel, stride: c.stride, padding: c.padding) }
    }

    @Test("avgPool2d equals the naive window mean with zero padding counted", arguments: PoolCase.all)
    func averageValues(c: PoolCase) {
        let x = randomTensor(c.input, seed: 102, requiresGrad: false)
        let y = x.avgPool2d(kernel: c.kernel, stride: c.stride, padding: c.padding)
        let (shape, expected) = naivePool(x, kernel: c.kernel, stride: c.stride ?? c.kernel, padding: c.padding, max: false)
        #expect(y.shape == shape)
        expectClose(y.scalars, expected, rtol: 1e-5, atol: 1e-6)
    }

    @Test("avgPool2d's gradient matches central differences, with padding", arguments: PoolCase.all)
    func averageGradients(c: PoolCase) {
        let x = randomTensor(c.input, seed: 103)
        checkGradients(wrt: [x]) { x.avgPool2d(kernel: c.kernel, stride: c.stride, padding: c.padding) }
    }

    @Test("globalAveragePool averages each plane and its gradient matches central differences")
    func globalAverage() {
        let x = Tensor(shape: [1, 2, 2, 2], scalars: [1, 2, 3, 4, 10, 20, 30, 40])
        let y = x.globalAveragePool()
        #expect(y.shape == [1, 2] && y.scalars == [2.5, 25])
        let r = randomTensor([2, 3, 3, 4], seed: 104)
        checkGradients(wrt: [r]) { r.globalAveragePool() }
    }
}
