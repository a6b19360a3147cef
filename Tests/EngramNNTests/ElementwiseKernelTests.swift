import Testing
import CEngramKernels
import EngramTensor

/// The element-wise C kernels (optimizer step, quadratic penalty, SI's path integral): the same bits on any number of
/// threads as the element-by-element Swift loops they replaced.
@Suite struct ElementwiseKernelTests {
    /// Above the kernels' parallel threshold and not a multiple of the 16-element shares.
    static let count = 100_003

    static func values(_ seed: UInt64) -> [Float] {
        var rng = RandomGenerator(seed: seed)
        return Tensor.normal([count], using: &rng).scalars
    }

    /// Runs `body` with the kernels on `threads` threads, then restores the count (results never depend on it, so
    /// tests running meanwhile are unaffected).
    static func onThreads<T>(_ threads: Int32, _ body: () -> T) -> T {
        let previous = engram_kernels_threads()
        engram_kernels_set_threads(threads)
        defer { engram_kernels_set_threads(previous) }
        return body()
    }

    @Test("the quadratic penalty's gradient, its removal from a gradient and SI's path integral give the Swift loops' bits on one and on two threads",
          arguments: [Int32(1), 2])
    func elementwiseKernelsMatchTheSwiftLoops(threads: Int32) {
        let w = Self.values(1), omega = Self.values(2).map(abs), anchor = Self.values(3), g = Self.values(4)
        let scale: Float = 2 * 0.37
        var expectedGradient = [Float](repeating: 0, count: Self.count)
        var expectedRemoved = g, expectedPath = Self.values(5)
        for i in 0..<Self.count {
            expectedGradient[i] = scale * omega[i] * (w[i] - anchor[i])
            expectedRemoved[i] -= scale * omega[i] * (w[i] - anchor[i])
            expectedPath[i] -= g[i] * (anchor[i] - w[i])
        }
        var gradient = [Float](repeating: .nan, count: Self.count), removed = g, path = Self.values(5)
        Self.onThreads(threads) {
            engram_quadratic_gradient(Self.count, scale, w, omega, anchor, &gradient)
            engram_subtract_quadratic_gradient(Self.count, scale, w, omega, anchor, &removed)
            engram_path_integral_update(Self.count, &path, g, anchor, w)
        }
        #expect(gradient.map(\.bitPattern) == expectedGradient.map(\.bitPattern))
        #expect(removed.map(\.bitPattern) == expectedRemoved.map(\.bitPattern))
        #expect(path.map(\.bitPattern) == expectedPath.map(\.bitPattern))
    }

    @Test("Adam's update split across two threads gives the bits of the single-threaded kernel")
    func adamSplitMatchesOneThread() {
        let g = Self.values(6)
        func run(threads: Int32) -> [[Float]] {
            var w = Self.values(7), m = Self.values(8), v = Self.values(9).map { $0 * $0 }
            Self.onThreads(threads) {
                engram_adam_update_parallel(Self.count, &w, g, &m, &v, 0.9, 0.999, 1e-8, 0.01, 1e-3, 1e-3 / 0.1, 0.03, 0)
            }
            return [w, m, v]
        }
        var w = Self.values(7), m = Self.values(8), v = Self.values(9).map { $0 * $0 }
        engram_adam_update(Self.count, &w, g, &m, &v, 0.9, 0.999, 1e-8, 0.01, 1e-3, 1e-3 / 0.1, 0.03, 0)
        for split in [run(threads: 1), run(threads: 2)] {
            #expect(zip(split, [w, m, v]).allSatisfy { $0.map(\.bitPattern) == $1.map(\.bitPattern) })
        }
        #expect(w != Self.values(7))
    }

    @Test("the penalty's value Σ Ω(θ − θ*)² is the same on one and two threads and matches a double-precision sum")
    func quadraticValueIsIndependentOfThreads() {
        let w = Self.values(1), omega = Self.values(2).map(abs), anchor = Self.values(3)
        var reference: Double = 0
        for i in 0..<Self.count {
            let d = Double(w[i]) - Double(anchor[i])
            reference += Double(omega[i]) * d * d
        }
        let one = Self.onThreads(1) { engram_quadratic_value(Self.count, w, omega, anchor) }
        let two = Self.onThreads(2) { engram_quadratic_value(Self.count, w, omega, anchor) }
        #expect(one.bitPattern == two.bitPattern)
        #expect(abs(one - reference) <= 1e-6 * reference)
        // A hand-computed case: Ω = (1, 2, 3), θ − θ* = (1, −1, 2) gives 1 + 2 + 12 = 15.
        #expect(engram_quadratic_value(3, [1, 0, 4], [1, 2, 3], [0, 1, 2]) == 15)
    }
}
