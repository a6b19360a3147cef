extension Tensor {
    /// The same values in a new shape (one extent may be −1, inferred). Shares storage until written.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var target = newShape
        if let i = target.firstIndex(of: -1) {
            let known = target.enumerated().filter { $0.offset != i }.map(\.element).reduce(1, *)
            precondition(known > 0 && count % known == 0, "cannot reshape \(shape) to \(newShape)")
            target[i] = count / known
        }
        precondition(target.reduce(1, *) == count, "cannot reshape \(shape) (\(count) elements) to \(newShape)")
        return Tensor.differentiable(shape: target, scalars: scalars, inputs: [self]) { g in [g] }
    }

    /// Collapses all axes after the first: [n, …] → [n, ∏…].
    public func flattened() -> Tensor { reshaped([shape.first ?? 1, -1]) }

    /// The axes reordered: result axis i is input axis `axes[i]`.
    public func permuted(_ axes: [Int]) -> Tensor {
        let ax = normalizedAxes(axes)
        precondition(Set(ax).count == rank && ax.count == rank, "permute: \(axes) is not a permutation of \(rank) axes")
        let values = permuteValues(scalars, shape: shape, axes: ax)
        let outShape = ax.map { shape[$0] }
        var inverse = [Int](repeating: 0, count: rank)
        for (i, a) in ax.enumerated() { inverse[a] = i }
        return Tensor.differentiable(shape: outShape, scalars: values, inputs: [self]) { g in
            [permuteValues(g, shape: outShape, axes: inverse)]
        }
    }

    /// Matrix transpose of a rank-2 tensor (or the last two axes swapped).
    public func transposed() -> Tensor {
        precondition(rank >= 2, "transpose needs rank ≥ 2, shape is \(shape)")
        var ax = Array(0..<rank)
        ax.swapAt(rank - 1, rank - 2)
        return permuted(ax)
    }

    /// Rows (entries along axis 0) picked by `indices`, in that order, repeats allowed.
    /// The gradient is scattered back (added) to the picked rows.
    public func indexSelect(_ indices: [Int]) -> Tensor {
        precondition(rank >= 1, "indexSelect needs rank ≥ 1")
        let rowSize = count / Swift.max(shape[0], 1)
        let rows = shape[0]
        var outShape = shape
        outShape[0] = indices.count
        let values = [Float](unsafeUninitializedCapacity: indices.count * rowSize) { buf, initialized in
            scalars.withUnsafeBufferPointer { p in
                for (k, r) in indices.enumerated() {
                    precondition(r >= 0 && r < rows, "indexSelect: row \(r) out of 0..<\(rows)")
                    for j in 0..<rowSize { buf[k * rowSize + j] = p[r * rowSize + j] }
                }
            }
            initialized = indices.count * rowSize
        }
        let n = count
        return Tensor.differentiable(shape: outShape, scalars: values, inputs: [self]) { g in
            var gi = [Float](repeating: 0, count: n)
            gi.withUnsafeMutableBufferPointer { pi in
                g.withUnsafeBufferPointer { pg in
                    for (k, r) in indices.enumerated() {
                        for j in 0..<rowSize { pi[r * rowSize + j] += pg[k * rowSize + j] }
                    }
                }
            }
            return [gi]
        }
    }

    /// The entries `range` along `axis`.
    public func slice(axis: Int, _ range: Range<Int>) -> Tensor {
        let ax = normalizedAxes([axis])[0]
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[ax],
                     "slice \(range) out of 0..<\(shape[ax]) on axis \(axis) of \(shape)")
        let outer = shape[..<ax].reduce(1, *)
        let inner = shape[(ax + 1)...].reduce(1, *)
        let n = shape[ax], m = range.count
        var outShape = shape
        outShape[ax] = m
        var values = [Float](repeating: 0, count: outer * m * inner)
        values.withUnsafeMutableBufferPointer { po in
            scalars.withUnsafeBufferPointer { p in
                for o in 0..<outer {
                    for k in 0..<(m * inner) { po[o * m * inner + k] = p[(o * n + range.lowerBound) * inner + k] }
                }
            }
        }
        let total = count
        return Tensor.differentiable(shape: outShape, scalars: values, inputs: [self]) { g in
            var gi = [Float](repeating: 0, count: total)
            for o in 0..<outer {
                for k in 0..<(m * inner) { gi[(o * n + range.lowerBound) * inner + k] = g[o * m * inner + k] }
            }
            return [gi]
        }
    }

    /// Joins tensors along an existing `axis`; all other extents must agree.
    public static func concatenate(_ tensors: [Tensor], axis: Int = 0) -> Tensor {
        precondition(!tensors.isEmpty, "concatenate needs at least one tensor")
        let first = tensors[0]
        let ax = first.normalizedAxes([axis])[0]
        for t in tensors {
            precondition(t.rank == first.rank && (0..<t.rank).allSatisfy { $0 == ax || t.shape[$0] == first.shape[$0] },
                         "concatenate: shape \(t.shape) does not match \(first.shape) off axis \(axis)")
        }
        let outer = first.shape[..<ax].reduce(1, *)
        let inner = first.shape[(ax + 1)...].reduce(1, *)
        let extents = tensors.map { $0.shape[ax] }
        let total = extents.reduce(0, +)
        var outShape = first.shape
        outShape[ax] = total
        var values = [Float](repeating: 0, count: outer * total * inner)
        var offset = 0
        for (t, e) in zip(tensors, extents) {
            let src = t.scalars
            for o in 0..<outer {
                for k in 0..<(e * inner) { values[(o * total + offset) * inner + k] = src[o * e * inner + k] }
            }
            offset += e
        }
        return differentiable(shape: outShape, scalars: values, inputs: tensors) { g in
            var grads: [[Float]?] = []
            var off = 0
            for e in extents {
                var gi = [Float](repeating: 0, count: outer * e * inner)
                for o in 0..<outer {
                    for k in 0..<(e * inner) { gi[o * e * inner + k] = g[(o * total + off) * inner + k] }
                }
                grads.append(gi)
                off += e
            }
            return grads
        }
    }

    /// Stacks equally shaped tensors along a new `axis`.
    public static func stack(_ tensors: [Tensor], axis: Int = 0) -> Tensor {
        precondition(!tensors.isEmpty, "stack needs at least one tensor")
        let shape = tensors[0].shape
        precondition(axis >= 0 && axis <= shape.count, "stack: axis \(axis) out of range")
        var expanded = shape
        expanded.insert(1, at: axis)
        return concatenate(tensors.map {
            precondition($0.shape == shape, "stack: shape \($0.shape) differs from \(shape)")
            return $0.reshaped(expanded)
        }, axis: axis)
    }
}

/// Reorders row-major `values` of `shape` so that result axis i is input axis `axes[i]`.
func permuteValues(_ values: [Float], shape: [Int], axes: [Int]) -> [Float] {
    let rank = shape.count
    if axes == Array(0..<rank) { return values }
    var inStrides = [Int](repeating: 1, count: rank)
    for i in stride(from: rank - 2, through: 0, by: -1) { inStrides[i] = inStrides[i + 1] * shape[i + 1] }
    let outShape = axes.map { shape[$0] }
    let strides = axes.map { inStrides[$0] }
    let n = values.count
    if rank == 2 {
        let (r, c) = (outShape[0], outShape[1])
        return [Float](unsafeUninitializedCapacity: n) { buf, initialized in
            values.withUnsafeBufferPointer { p in
                // blocked transpose for cache friendliness
                let block = 32
                for i0 in stride(from: 0, to: r, by: block) {
                    for j0 in stride(from: 0, to: c, by: block) {
                        for i in i0..<Swift.min(i0 + block, r) {
                            for j in j0..<Swift.min(j0 + block, c) { buf[i * c + j] = p[j * r + i] }
                        }
                    }
                }
            }
            initialized = n
        }
    }
    // General case: iterate over output in order, tracking the input offset.
    return [Float](unsafeUninitializedCapacity: n) { buf, initialized in
        values.withUnsafeBufferPointer { p in
            let inner = outShape[rank - 1], innerStride = strides[rank - 1]
            var index = [Int](repeating: 0, count: rank)
            var src = 0
            var o = 0
            while o < n {
                for k in 0..<inner { buf[o + k] = p[src + k * innerStride] }
                o += inner
                var axis = rank - 2
                while axis >= 0 {
                    index[axis] += 1
                    src += strides[axis]
                    if index[axis] < outShape[axis] { break }
                    src -= strides[axis] * outShape[axis]
                    index[axis] = 0
                    axis -= 1
                }
            }
        }
        initialized = n
    }
}

extension Tensor {
    /// Every `stride`-th pixel of NCHW input, starting at the first: y[n, c, i, j] = x[n, c, s·i, s·j]
    /// (PyTorch's `x[:, :, ::s, ::s]`), so an H×W map becomes ⌈H/s⌉×⌈W/s⌉. The gradient is scattered
    /// back to the picked pixels; the others get zero.
    public func subsampled2d(stride s: Int) -> Tensor {
        precondition(rank == 4, "subsampled2d needs NCHW input, shape is \(shape)")
        precondition(s >= 1, "subsampled2d: stride must be positive, got \(s)")
        if s == 1 { return self }
        let (planes, h, w) = (shape[0] * shape[1], shape[2], shape[3])
        let (oh, ow) = ((h + s - 1) / s, (w + s - 1) / s)
        let outShape = [shape[0], shape[1], oh, ow]
        let values = [Float](unsafeUninitializedCapacity: planes * oh * ow) { buf, initialized in
            scalars.withUnsafeBufferPointer { p in
                for q in 0..<planes {
                    for i in 0..<oh {
                        for j in 0..<ow { buf[(q * oh + i) * ow + j] = p[(q * h + s * i) * w + s * j] }
                    }
                }
            }
            initialized = planes * oh * ow
        }
        let total = count
        return Tensor.differentiable(shape: outShape, scalars: values, inputs: [self]) { g in
            var gi = [Float](repeating: 0, count: total)
            gi.withUnsafeMutableBufferPointer { pi in
                g.withUnsafeBufferPointer { pg in
                    for q in 0..<planes {
                        for i in 0..<oh {
                            for j in 0..<ow { pi[(q * h + s * i) * w + s * j] = pg[(q * oh + i) * ow + j] }
                        }
                    }
                }
            }
            return [gi]
        }
    }
}
