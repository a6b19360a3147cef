/// Broadcasting of two shapes (NumPy rules: right-aligned, extents equal or 1).
struct BroadcastPlan {
    let shape: [Int]
    /// Strides of each operand in the broadcast index space (0 along broadcast axes).
    let aStrides: [Int]
    let bStrides: [Int]

    init(_ a: [Int], _ b: [Int]) {
        let rank = max(a.count, b.count)
        let pa = [Int](repeating: 1, count: rank - a.count) + a
        let pb = [Int](repeating: 1, count: rank - b.count) + b
        var shape = [Int](repeating: 1, count: rank)
        for i in 0..<rank {
            precondition(pa[i] == pb[i] || pa[i] == 1 || pb[i] == 1,
                         "shapes \(a) and \(b) cannot be broadcast together")
            shape[i] = pa[i] == 1 ? pb[i] : pa[i]
        }
        self.shape = shape
        aStrides = BroadcastPlan.strides(pa, shape)
        bStrides = BroadcastPlan.strides(pb, shape)
    }

    static func strides(_ padded: [Int], _ out: [Int]) -> [Int] {
        var strides = [Int](repeating: 0, count: padded.count)
        var s = 1
        for i in stride(from: padded.count - 1, through: 0, by: -1) {
            strides[i] = padded[i] == 1 && out[i] != 1 ? 0 : s
            s *= padded[i]
        }
        return strides
    }

    /// Calls `body(outOffset, aOffset, bOffset, n, aStep, bStep)` for each run along the innermost axis.
    @inline(__always)
    func forEachRun(_ body: (Int, Int, Int, Int, Int, Int) -> Void) {
        let rank = shape.count
        if rank == 0 { body(0, 0, 0, 1, 0, 0); return }
        let inner = shape[rank - 1]
        let sa = aStrides[rank - 1], sb = bStrides[rank - 1]
        let outer = shape.reduce(1, *) / max(inner, 1)
        if inner == 0 { return }
        var index = [Int](repeating: 0, count: rank)
        var oa = 0, ob = 0
        for run in 0..<outer {
            body(run * inner, oa, ob, inner, sa, sb)
            // advance the multi-index over the outer axes
            var axis = rank - 2
            while axis >= 0 {
                index[axis] += 1
                oa += aStrides[axis]
                ob += bStrides[axis]
                if index[axis] < shape[axis] { break }
                oa -= aStrides[axis] * shape[axis]
                ob -= bStrides[axis] * shape[axis]
                index[axis] = 0
                axis -= 1
            }
        }
    }
}

/// Applies `op` element-wise to `a` and `b` broadcast together.
@inline(__always)
func broadcastBinary(_ a: [Float], _ aShape: [Int], _ b: [Float], _ bShape: [Int],
                     _ op: (Float, Float) -> Float) -> ([Float], [Int]) {
    if aShape == bShape {
        let n = a.count
        let out = [Float](unsafeUninitializedCapacity: n) { buf, initialized in
            a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    for i in 0..<n { buf[i] = op(pa[i], pb[i]) }
                }
            }
            initialized = n
        }
        return (out, aShape)
    }
    let plan = BroadcastPlan(aShape, bShape)
    let n = plan.shape.reduce(1, *)
    if b.count == 1 && n == a.count {
        let s = b[0]
        let out = [Float](unsafeUninitializedCapacity: n) { buf, initialized in
            a.withUnsafeBufferPointer { pa in for i in 0..<n { buf[i] = op(pa[i], s) } }
            initialized = n
        }
        return (out, plan.shape)
    }
    if a.count == 1 && n == b.count {
        let s = a[0]
        let out = [Float](unsafeUninitializedCapacity: n) { buf, initialized in
            b.withUnsafeBufferPointer { pb in for i in 0..<n { buf[i] = op(s, pb[i]) } }
            initialized = n
        }
        return (out, plan.shape)
    }
    let out = [Float](unsafeUninitializedCapacity: n) { buf, initialized in
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                plan.forEachRun { o, ia, ib, len, sa, sb in
                    if sa == 1 && sb == 1 {
                        for k in 0..<len { buf[o + k] = op(pa[ia + k], pb[ib + k]) }
                    } else if sa == 1 && sb == 0 {
                        let v = pb[ib]
                        for k in 0..<len { buf[o + k] = op(pa[ia + k], v) }
                    } else if sa == 0 && sb == 1 {
                        let v = pa[ia]
                        for k in 0..<len { buf[o + k] = op(v, pb[ib + k]) }
                    } else {
                        for k in 0..<len { buf[o + k] = op(pa[ia + k * sa], pb[ib + k * sb]) }
                    }
                }
            }
        }
        initialized = n
    }
    return (out, plan.shape)
}

/// Sums `g` (of shape `from`) over the axes along which `shape` was broadcast to `from`.
func sumToShape(_ g: [Float], from: [Int], to shape: [Int]) -> [Float] {
    if from == shape { return g }
    let n = shape.reduce(1, *)
    if n == 1 {
        var s: Float = 0
        g.withUnsafeBufferPointer { p in for v in p { s += v } }
        return [s]
    }
    let plan = BroadcastPlan(from, shape)
    precondition(plan.shape == from, "internal: cannot reduce \(from) to \(shape)")
    var out = [Float](repeating: 0, count: n)
    out.withUnsafeMutableBufferPointer { po in
        g.withUnsafeBufferPointer { pg in
            plan.forEachRun { o, _, ib, len, _, sb in
                if sb == 1 {
                    for k in 0..<len { po[ib + k] += pg[o + k] }
                } else if sb == 0 {
                    var s: Float = 0
                    for k in 0..<len { s += pg[o + k] }
                    po[ib] += s
                } else {
                    for k in 0..<len { po[ib + k * sb] += pg[o + k] }
                }
            }
        }
    }
    return out
}

/// Applies `op` to every element.
@inline(__always)
func mapScalars(_ a: [Float], _ op: (Float) -> Float) -> [Float] {
    let n = a.count
    return [Float](unsafeUninitializedCapacity: n) { buf, initialized in
        a.withUnsafeBufferPointer { pa in for i in 0..<n { buf[i] = op(pa[i]) } }
        initialized = n
    }
}

/// Applies `op` to pairs of equal-length arrays.
@inline(__always)
func zipScalars(_ a: [Float], _ b: [Float], _ op: (Float, Float) -> Float) -> [Float] {
    let n = a.count
    precondition(b.count == n)
    return [Float](unsafeUninitializedCapacity: n) { buf, initialized in
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in for i in 0..<n { buf[i] = op(pa[i], pb[i]) } }
        }
        initialized = n
    }
}
