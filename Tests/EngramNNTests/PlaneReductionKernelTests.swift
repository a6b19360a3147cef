import Testing
import CEngramKernels
import EngramTensor

/// Batch normalization's per-plane reductions in C (`engram_plane_sums`, `…_squared_deviations`, `…_sums_and_dots`):
/// the bits of the Swift reductions they replaced — eight accumulators, lane j taking elements j, j + 8, …, combined
/// ((a₀ + a₁) + (a₂ + a₃)) + ((a₄ + a₅) + (a₆ + a₇)), the rest added in order — for every plane, whatever the plane
/// count (the kernels interleave four or two planes) and plane length (the eight-element body and its tail).
@Suite struct PlaneReductionKernelTests {
    /// The Swift reduction the kernels replaced, as it was: Σᵢ f(i) with eight accumulators.
    static func eightAccumulatorSum(_ n: Int, _ term: (Int) -> Float) -> Float {
        var a = [Float](repeating: 0, count: 8)
        var i = 0
        while i + 8 <= n {
            for lane in 0..<8 { a[lane] += term(i + lane) }
            i += 8
        }
        var s = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))
        while i < n { s += term(i); i += 1 }
        return s
    }

    static let shapes: [(planes: Int, inner: Int)] = [(1, 0), (1, 5), (3, 8), (4, 13), (5, 49), (7, 196), (9, 784), (32, 17)]

    @Test("plane sums, squared deviations and sums with dots give the eight-accumulator Swift reduction's bits",
          arguments: shapes.indices)
    func planeReductionsMatchTheSwiftReduction(shape: Int) {
        let (planes, inner) = Self.shapes[shape]
        // Planes strided as one channel of an [N, 3, inner] tensor; values of mixed magnitude so that the order of
        // the additions shows in the low bits.
        let stride = 3 * inner, offset = inner
        var rng = RandomGenerator(seed: UInt64(shape))
        let count = Swift.max(planes * stride, 1)
        let x = Tensor.normal([count], using: &rng).scalars.enumerated().map { $1 * ($0 % 7 == 0 ? 1000 : 1) }
        let y = Tensor.normal([count], using: &rng).scalars
        let center: Float = 0.37
        var sums = [Float](repeating: .nan, count: planes), squares = sums, sums2 = sums, dots = sums
        x.withUnsafeBufferPointer { px in
            y.withUnsafeBufferPointer { py in
                engram_plane_sums(px.baseAddress! + offset, stride, planes, inner, &sums)
                engram_plane_squared_deviations(px.baseAddress! + offset, center, stride, planes, inner, &squares)
                engram_plane_sums_and_dots(px.baseAddress! + offset, py.baseAddress! + offset, stride, planes, inner,
                                           &sums2, &dots)
            }
        }
        for k in 0..<planes {
            let base = offset + k * stride
            let expectedSum = Self.eightAccumulatorSum(inner) { x[base + $0] }
            let expectedSquares = Self.eightAccumulatorSum(inner) { (x[base + $0] - center) * (x[base + $0] - center) }
            let expectedDot = Self.eightAccumulatorSum(inner) { x[base + $0] * y[base + $0] }
            #expect(sums[k].bitPattern == expectedSum.bitPattern, "plane \(k): \(sums[k]) vs \(expectedSum)")
            #expect(sums2[k].bitPattern == expectedSum.bitPattern, "plane \(k): \(sums2[k]) vs \(expectedSum)")
            #expect(squares[k].bitPattern == expectedSquares.bitPattern, "plane \(k): \(squares[k]) vs \(expectedSquares)")
            #expect(dots[k].bitPattern == expectedDot.bitPattern, "plane \(k): \(dots[k]) vs \(expectedDot)")
        }
    }
}
