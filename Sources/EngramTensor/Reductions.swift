extension Tensor {
    /// Normalizes possibly negative axes and checks them.
    func normalizedAxes(_ axes: [Int]) -> [Int] {
        axes.map { a in
            let ax = a < 0 ? a + rank : a
            precondition(ax >= 0 && ax < rank, "axis \(a) out of range for shape \(shape)")
            return ax
        }
    }

    /// The shape with `axes` reduced to 1.
    func keptShape(_ axes: [Int]) -> [Int] {
        var kept = shape
        for a in axes { kept[a] = 1 }
        return kept
    }

    /// Σ over `axes` (all axes when `nil`); `keepingDims` keeps reduced axes with extent 1.
    public func sum(axes: [Int]? = nil, keepingDims: Bool = false) -> Tensor {
        let ax = axes.map(normalizedAxes) ?? Array(0..<rank)
        let kept = keptShape(ax)
        let values = sumToShape(scalars, from: shape, to: kept)
        let outShape = keepingDims ? kept : shape.enumerated().filter { !ax.contains($0.offset) }.map(\.element)
        let inShape = shape
        return Tensor.differentiable(shape: outShape, scalars: values, inputs: [self]) { g in
            [expand(g, from: kept, to: inShape)]
        }
    }

    /// Σ over one axis.
    public func sum(axis: Int, keepingDims: Bool = false) -> Tensor { sum(axes: [axis], keepingDims: keepingDims) }

    /// Arithmetic mean over `axes` (all when `nil`).
    public func mean(axes: [Int]? = nil, keepingDims: Bool = false) -> Tensor {
        let ax = axes.map(normalizedAxes) ?? Array(0..<rank)
        let n = ax.reduce(1) { $0 * shape[$1] }
        return sum(axes: ax, keepingDims: keepingDims) * (1 / Float(Swift.max(n, 1)))
    }

    /// Mean over one axis.
    public func mean(axis: Int, keepingDims: Bool = false) -> Tensor { mean(axes: [axis], keepingDims: keepingDims) }

    /// Variance over `axes`: mean((x − x̄)²), divided by n − 1 when `unbiased`.
    public func variance(axes: [Int]? = nil, keepingDims: Bool = false, unbiased: Bool = false) -> Tensor {
        let ax = axes.map(normalizedAxes) ?? Array(0..<rank)
        let n = ax.reduce(1) { $0 * shape[$1] }
        let centered = self - mean(axes: ax, keepingDims: true)
        let ss = centered.squared().sum(axes: ax, keepingDims: keepingDims)
        return ss * (1 / Float(Swift.max(unbiased ? n - 1 : n, 1)))
    }

    /// Maximum along `axis`; the gradient goes to the (first) arg-max.
    public func max(axis: Int, keepingDims: Bool = false) -> Tensor {
        let ax = normalizedAxes([axis])[0]
        let (values, indices, kept) = maxAlong(ax)
        let outShape = keepingDims ? kept : shape.enumerated().filter { $0.offset != ax }.map(\.element)
        let count = self.count
        return Tensor.differentiable(shape: outShape, scalars: values, inputs: [self]) { g in
            var gi = [Float](repeating: 0, count: count)
            for (k, i) in indices.enumerated() { gi[i] += g[k] }
            return [gi]
        }
    }

    /// Maximum of all elements.
    public func max() -> Tensor { reshaped([count]).max(axis: 0) }

    /// Index of the maximum along `axis` (first one on ties); not differentiable.
    public func argmax(axis: Int) -> [Int] {
        let ax = normalizedAxes([axis])[0]
        let (_, flat, _) = maxAlong(ax)
        let stride = shape[(ax + 1)...].reduce(1, *)
        return flat.map { ($0 / stride) % shape[ax] }
    }

    /// Max values, flat indices of the maxima, and the kept shape.
    private func maxAlong(_ ax: Int) -> ([Float], [Int], [Int]) {
        let outer = shape[..<ax].reduce(1, *)
        let n = shape[ax]
        let inner = shape[(ax + 1)...].reduce(1, *)
        precondition(n > 0, "max over an empty axis of shape \(shape)")
        var values = [Float](repeating: 0, count: outer * inner)
        var indices = [Int](repeating: 0, count: outer * inner)
        scalars.withUnsafeBufferPointer { p in
            for o in 0..<outer {
                for i in 0..<inner {
                    var best = p[o * n * inner + i]
                    var bestIndex = o * n * inner + i
                    for k in 1..<Swift.max(n, 1) {
                        let idx = (o * n + k) * inner + i
                        if p[idx] > best || (best.isNaN && !p[idx].isNaN) { best = p[idx]; bestIndex = idx }
                    }
                    values[o * inner + i] = best
                    indices[o * inner + i] = bestIndex
                }
            }
        }
        var kept = shape
        kept[ax] = 1
        return (values, indices, kept)
    }
}

/// Repeats `v` (of shape `from`) along the axes where `from` has extent 1 to fill `to`.
func expand(_ v: [Float], from: [Int], to: [Int]) -> [Float] {
    if from == to { return v }
    let n = to.reduce(1, *)
    if v.count == 1 { return [Float](repeating: v[0], count: n) }
    let plan = BroadcastPlan(to, from)
    return [Float](unsafeUninitializedCapacity: n) { buf, initialized in
        v.withUnsafeBufferPointer { pv in
            plan.forEachRun { o, _, ib, len, _, sb in
                if sb == 0 {
                    let x = pv[ib]
                    for k in 0..<len { buf[o + k] = x }
                } else {
                    for k in 0..<len { buf[o + k] = pv[ib + k * sb] }
                }
            }
        }
        initialized = n
    }
}
