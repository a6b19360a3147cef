import Dispatch

/// Σᵢ pᵢ with eight independent accumulators (breaks the add-latency chain; same result every run).
@inline(__always)
func reduceSum(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
    var a0: Float = 0, a1: Float = 0, a2: Float = 0, a3: Float = 0
    var a4: Float = 0, a5: Float = 0, a6: Float = 0, a7: Float = 0
    var i = 0
    while i + 8 <= n {
        a0 += p[i]; a1 += p[i + 1]; a2 += p[i + 2]; a3 += p[i + 3]
        a4 += p[i + 4]; a5 += p[i + 5]; a6 += p[i + 6]; a7 += p[i + 7]
        i += 8
    }
    var s = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))
    while i < n { s += p[i]; i += 1 }
    return s
}

/// Σᵢ pᵢqᵢ with eight independent accumulators.
@inline(__always)
func reduceDot(_ p: UnsafePointer<Float>, _ q: UnsafePointer<Float>, _ n: Int) -> Float {
    var a0: Float = 0, a1: Float = 0, a2: Float = 0, a3: Float = 0
    var a4: Float = 0, a5: Float = 0, a6: Float = 0, a7: Float = 0
    var i = 0
    while i + 8 <= n {
        a0 += p[i] * q[i]; a1 += p[i + 1] * q[i + 1]; a2 += p[i + 2] * q[i + 2]; a3 += p[i + 3] * q[i + 3]
        a4 += p[i + 4] * q[i + 4]; a5 += p[i + 5] * q[i + 5]; a6 += p[i + 6] * q[i + 6]; a7 += p[i + 7] * q[i + 7]
        i += 8
    }
    var s = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))
    while i < n { s += p[i] * q[i]; i += 1 }
    return s
}

/// Σᵢ (pᵢ − c)² with eight independent accumulators.
@inline(__always)
func reduceSquaredDeviation(_ p: UnsafePointer<Float>, _ c: Float, _ n: Int) -> Float {
    var a0: Float = 0, a1: Float = 0, a2: Float = 0, a3: Float = 0
    var a4: Float = 0, a5: Float = 0, a6: Float = 0, a7: Float = 0
    var i = 0
    while i + 8 <= n {
        let d0 = p[i] - c, d1 = p[i + 1] - c, d2 = p[i + 2] - c, d3 = p[i + 3] - c
        let d4 = p[i + 4] - c, d5 = p[i + 5] - c, d6 = p[i + 6] - c, d7 = p[i + 7] - c
        a0 += d0 * d0; a1 += d1 * d1; a2 += d2 * d2; a3 += d3 * d3
        a4 += d4 * d4; a5 += d5 * d5; a6 += d6 * d6; a7 += d7 * d7
        i += 8
    }
    var s = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))
    while i < n { let d = p[i] - c; s += d * d; i += 1 }
    return s
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
