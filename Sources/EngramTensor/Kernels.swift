import CEngramKernels
import Dispatch

/// Per-plane sums of one channel of an [N, C, …] tensor: `body` gets, for b < planes, Σᵢ x[b, ·, i] of the planes at
/// `base + b·stride` (C kernels, eight accumulators per plane, four planes interleaved; see `engram_plane_sums`).
@inline(__always)
func withPlaneSums<R>(_ base: UnsafePointer<Float>, stride: Int, planes: Int, inner: Int,
                      _ body: (UnsafeBufferPointer<Float>) -> R) -> R {
    withUnsafeTemporaryAllocation(of: Float.self, capacity: Swift.max(planes, 1)) { sums in
        engram_plane_sums(base, stride, planes, inner, sums.baseAddress!)
        return body(UnsafeBufferPointer(rebasing: sums[..<planes]))
    }
}

/// Per-plane Σᵢ (x − center)² of one channel's planes (as `withPlaneSums`).
@inline(__always)
func withPlaneSquaredDeviations<R>(_ base: UnsafePointer<Float>, center: Float, stride: Int, planes: Int, inner: Int,
                                   _ body: (UnsafeBufferPointer<Float>) -> R) -> R {
    withUnsafeTemporaryAllocation(of: Float.self, capacity: Swift.max(planes, 1)) { squares in
        engram_plane_squared_deviations(base, center, stride, planes, inner, squares.baseAddress!)
        return body(UnsafeBufferPointer(rebasing: squares[..<planes]))
    }
}

/// Per-plane Σᵢ p and Σᵢ p·q of one channel's planes of two tensors of the same shape, reading each plane once.
@inline(__always)
func withPlaneSumsAndDots<R>(_ p: UnsafePointer<Float>, _ q: UnsafePointer<Float>, stride: Int, planes: Int, inner: Int,
                             _ body: (UnsafeBufferPointer<Float>, UnsafeBufferPointer<Float>) -> R) -> R {
    let width = Swift.max(planes, 1)  // a shard of a data-parallel batch may hold no sample: never an empty allocation
    return withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * width) { buffer in
        engram_plane_sums_and_dots(p, q, stride, planes, inner, buffer.baseAddress!, buffer.baseAddress! + width)
        return body(UnsafeBufferPointer(rebasing: buffer[..<planes]), UnsafeBufferPointer(rebasing: buffer[width..<(width + planes)]))
    }
}

/// Splits `0..<count` into one contiguous range per configured thread and runs `body` on each, concurrently when
/// `work` (elements touched) is large enough to pay for the hand-off; serially otherwise. Items must be
/// independent: every result is computed by one thread with the same code, so it does not depend on the split.
func forEachRange(_ count: Int, work: Int, _ body: @Sendable (Range<Int>) -> Void) {
    let parts = Swift.min(BLAS.configuredThreads, count)
    guard parts > 1, work >= 1 << 15 else { body(0..<count); return }
    DispatchQueue.concurrentPerform(iterations: parts) { part in
        body((part * count / parts)..<((part + 1) * count / parts))
    }
}
