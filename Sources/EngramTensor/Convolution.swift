import COpenBLAS

/// Geometry of a 2-D convolution or pooling window over NCHW input.
public struct Conv2dGeometry: Sendable, Equatable {
    public var batch, channels, height, width: Int
    public var kernelHeight, kernelWidth: Int
    public var stride, padding: Int
    public var outHeight: Int { (height + 2 * padding - kernelHeight) / stride + 1 }
    public var outWidth: Int { (width + 2 * padding - kernelWidth) / stride + 1 }
    /// Rows of the im2col matrix: C·kh·kw.
    public var patchSize: Int { channels * kernelHeight * kernelWidth }
    /// Columns of the im2col matrix: N·H_out·W_out.
    public var columns: Int { batch * outHeight * outWidth }
}

/// Unfolds NCHW input into the im2col matrix [C·kh·kw, N·H_out·W_out] (zero padding).
func im2col(_ x: UnsafePointer<Float>, _ g: Conv2dGeometry, _ cols: UnsafeMutablePointer<Float>) {
    let (oh, ow) = (g.outHeight, g.outWidth)
    let plane = g.height * g.width
    let ohw = oh * ow
    let ncols = g.columns
    for c in 0..<g.channels {
        for ki in 0..<g.kernelHeight {
            for kj in 0..<g.kernelWidth {
                let row = cols + ((c * g.kernelHeight + ki) * g.kernelWidth + kj) * ncols
                for n in 0..<g.batch {
                    let src = x + (n * g.channels + c) * plane
                    let dst = row + n * ohw
                    for i in 0..<oh {
                        let ih = i * g.stride - g.padding + ki
                        let d = dst + i * ow
                        if ih < 0 || ih >= g.height {
                            d.update(repeating: 0, count: ow)
                            continue
                        }
                        let s = src + ih * g.width
                        if g.stride == 1 {
                            // valid ow range: 0 <= j - p + kj < W
                            let lo = Swift.min(Swift.max(0, g.padding - kj), ow)
                            let hi = Swift.max(Swift.min(ow, g.width + g.padding - kj), lo)
                            if lo > 0 { d.update(repeating: 0, count: lo) }
                            if hi > lo { (d + lo).update(from: s + (lo - g.padding + kj), count: hi - lo) }
                            if hi < ow { (d + hi).update(repeating: 0, count: ow - hi) }
                        } else {
                            for j in 0..<ow {
                                let iw = j &* g.stride &- g.padding &+ kj
                                d[j] = iw >= 0 && iw < g.width ? s[iw] : 0
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Folds an im2col-shaped gradient back onto NCHW input (adds overlapping contributions).
func col2im(_ cols: UnsafePointer<Float>, _ g: Conv2dGeometry, _ x: UnsafeMutablePointer<Float>) {
    let (oh, ow) = (g.outHeight, g.outWidth)
    let plane = g.height * g.width
    let ohw = oh * ow
    let ncols = g.columns
    for c in 0..<g.channels {
        for ki in 0..<g.kernelHeight {
            for kj in 0..<g.kernelWidth {
                let row = cols + ((c * g.kernelHeight + ki) * g.kernelWidth + kj) * ncols
                for n in 0..<g.batch {
                    let dst = x + (n * g.channels + c) * plane
                    let src = row + n * ohw
                    for i in 0..<oh {
                        let ih = i * g.stride - g.padding + ki
                        if ih < 0 || ih >= g.height { continue }
                        let d = dst + ih * g.width
                        let s = src + i * ow
                        if g.stride == 1 {
                            let lo = Swift.max(0, g.padding - kj), hi = Swift.min(ow, g.width + g.padding - kj)
                            if hi > lo {
                                // base[0..<n] += s[lo..<hi]: pointers advanced once, so the loop has no index
                                // arithmetic to check and vectorizes as under -Ounchecked.
                                let base = d + (lo - g.padding + kj), from = s + lo
                                for j in 0..<(hi - lo) { base[j] += from[j] }
                            }
                        } else {
                            // Indices are bounded by the validated geometry: wrapping arithmetic skips overflow checks.
                            for j in 0..<ow {
                                let iw = j &* g.stride &- g.padding &+ kj
                                if iw >= 0 && iw < g.width { d[iw] += s[j] }
                            }
                        }
                    }
                }
            }
        }
    }
}

extension Tensor {
    /// 2-D convolution (cross-correlation, as in PyTorch) of NCHW input with weight [O, C, kh, kw]
    /// and optional bias [O]: im2col over the whole batch, then one GEMM W·cols.
    public static func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0) -> Tensor {
        precondition(x.rank == 4 && weight.rank == 4 && x.shape[1] == weight.shape[1],
                     "conv2d: input \(x.shape) does not fit weight \(weight.shape)")
        precondition(stride >= 1 && padding >= 0, "conv2d: stride must be ≥ 1 and padding ≥ 0")
        let geo = Conv2dGeometry(batch: x.shape[0], channels: x.shape[1], height: x.shape[2], width: x.shape[3],
                                 kernelHeight: weight.shape[2], kernelWidth: weight.shape[3], stride: stride, padding: padding)
        precondition(geo.outHeight > 0 && geo.outWidth > 0, "conv2d: kernel larger than padded input \(x.shape)")
        let outC = weight.shape[0]
        let (k, cols, ohw) = (geo.patchSize, geo.columns, geo.outHeight * geo.outWidth)
        let colsBuf = [Float](unsafeUninitializedCapacity: k * cols) { pc, initialized in
            x.scalars.withUnsafeBufferPointer { px in im2col(px.baseAddress!, geo, pc.baseAddress!) }
            initialized = k * cols
        }
        // [O, N·HWo] = W[O, K] · cols[K, N·HWo]
        let wv = weight.scalars
        let y2 = gemm(wv, transA: false, colsBuf, transB: false, m: outC, n: cols, k: k)
        // to NCHW, adding the bias
        let bv = bias?.scalars
        let values = [Float](unsafeUninitializedCapacity: geo.batch * outC * ohw) { po, initialized in
            initialized = geo.batch * outC * ohw
            y2.withUnsafeBufferPointer { py in
                for o in 0..<outC {
                    let b = bv?[o] ?? 0
                    for n in 0..<geo.batch {
                        let src = py.baseAddress! + o * cols + n * ohw
                        let dst = po.baseAddress! + (n * outC + o) * ohw
                        for i in 0..<ohw { dst[i] = src[i] + b }
                    }
                }
            }
        }
        let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
        guard needsGrad(x, weight) || (bias?.requiresGrad ?? false) else {
            return Tensor(shape: [geo.batch, outC, geo.outHeight, geo.outWidth], scalars: values)
        }
        let (needX, needW, needB) = (x.requiresGrad, weight.requiresGrad, bias?.requiresGrad ?? false)
        let inCount = x.count
        return differentiable(shape: [geo.batch, outC, geo.outHeight, geo.outWidth], scalars: values, inputs: inputs) { g in
            // gradient in [O, N·HWo] layout
            var gb = needB ? [Float](repeating: 0, count: outC) : []
            let g2 = [Float](unsafeUninitializedCapacity: outC * cols) { pg2, initialized in
                initialized = outC * cols
                g.withUnsafeBufferPointer { pg in
                    for o in 0..<outC {
                        var s: Float = 0
                        for n in 0..<geo.batch {
                            let src = pg.baseAddress! + (n * outC + o) * ohw
                            let dst = pg2.baseAddress! + o * cols + n * ohw
                            for i in 0..<ohw { dst[i] = src[i]; s += src[i] }
                        }
                        if needB { gb[o] = s }
                    }
                }
            }
            let gw = needW ? gemm(g2, transA: false, colsBuf, transB: true, m: outC, n: k, k: cols) : nil
            var gx: [Float]? = nil
            if needX {
                let gcols = gemm(wv, transA: true, g2, transB: false, m: k, n: cols, k: outC)
                var dx = [Float](repeating: 0, count: inCount)
                gcols.withUnsafeBufferPointer { pc in
                    dx.withUnsafeMutableBufferPointer { pd in col2im(pc.baseAddress!, geo, pd.baseAddress!) }
                }
                gx = dx
            }
            var result: [[Float]?] = [gx, gw]
            if bias != nil { result.append(needB ? gb : nil) }
            return result
        }
    }

    /// Max pooling over kh×kw windows of NCHW input (padding with −∞); the gradient goes to each window's arg-max.
    public func maxPool2d(kernel: Int, stride: Int? = nil, padding: Int = 0) -> Tensor {
        precondition(rank == 4, "maxPool2d needs NCHW input, shape is \(shape)")
        let s = stride ?? kernel
        let geo = Conv2dGeometry(batch: shape[0], channels: shape[1], height: shape[2], width: shape[3],
                                 kernelHeight: kernel, kernelWidth: kernel, stride: s, padding: padding)
        let (oh, ow, h, w) = (geo.outHeight, geo.outWidth, geo.height, geo.width)
        let planes = geo.batch * geo.channels
        var values = [Float](repeating: 0, count: planes * oh * ow)
        var argmax = [Int32](repeating: 0, count: planes * oh * ow)
        scalars.withUnsafeBufferPointer { px in
            if kernel == 2 && s == 2 && padding == 0 {
                // The common 2×2 pooling: four loads per output, no bounds checks (every window lies inside).
                for p in 0..<planes {
                    let src = px.baseAddress! + p * h * w
                    for i in 0..<oh {
                        for j in 0..<ow {
                            let top = 2 * i * w + 2 * j, bottom = top + w
                            var best = src[top], bestIndex = top
                            if src[top + 1] > best { best = src[top + 1]; bestIndex = top + 1 }
                            if src[bottom] > best { best = src[bottom]; bestIndex = bottom }
                            if src[bottom + 1] > best { best = src[bottom + 1]; bestIndex = bottom + 1 }
                            values[(p * oh + i) * ow + j] = best
                            argmax[(p * oh + i) * ow + j] = Int32(bestIndex)
                        }
                    }
                }
                return
            }
            for p in 0..<planes {
                let src = px.baseAddress! + p * h * w
                for i in 0..<oh {
                    for j in 0..<ow {
                        var best = -Float.infinity, bestIndex = -1
                        for ki in 0..<kernel {
                            let ih = i * s - padding + ki
                            if ih < 0 || ih >= h { continue }
                            for kj in 0..<kernel {
                                let iw = j * s - padding + kj
                                if iw < 0 || iw >= w { continue }
                                let v = src[ih * w + iw]
                                if v > best || bestIndex < 0 { best = v; bestIndex = ih * w + iw }
                            }
                        }
                        values[(p * oh + i) * ow + j] = best
                        argmax[(p * oh + i) * ow + j] = Int32(bestIndex)
                    }
                }
            }
        }
        let n = count
        return Tensor.differentiable(shape: [geo.batch, geo.channels, oh, ow], scalars: values, inputs: [self]) { g in
            var gi = [Float](repeating: 0, count: n)
            for p in 0..<planes {
                for k in 0..<(oh * ow) {
                    let idx = argmax[p * oh * ow + k]
                    if idx >= 0 { gi[p * h * w + Int(idx)] += g[p * oh * ow + k] }
                }
            }
            return [gi]
        }
    }

    /// Average pooling over kh×kw windows (zero padding counted, as PyTorch's default `count_include_pad`).
    public func avgPool2d(kernel: Int, stride: Int? = nil, padding: Int = 0) -> Tensor {
        precondition(rank == 4, "avgPool2d needs NCHW input, shape is \(shape)")
        let s = stride ?? kernel
        let geo = Conv2dGeometry(batch: shape[0], channels: shape[1], height: shape[2], width: shape[3],
                                 kernelHeight: kernel, kernelWidth: kernel, stride: s, padding: padding)
        let (oh, ow, h, w) = (geo.outHeight, geo.outWidth, geo.height, geo.width)
        let planes = geo.batch * geo.channels
        let scale = 1 / Float(kernel * kernel)
        var values = [Float](repeating: 0, count: planes * oh * ow)
        scalars.withUnsafeBufferPointer { px in
            for p in 0..<planes {
                let src = px.baseAddress! + p * h * w
                for i in 0..<oh {
                    for j in 0..<ow {
                        var sum: Float = 0
                        for ki in 0..<kernel {
                            let ih = i * s - padding + ki
                            if ih < 0 || ih >= h { continue }
                            for kj in 0..<kernel {
                                let iw = j * s - padding + kj
                                if iw >= 0 && iw < w { sum += src[ih * w + iw] }
                            }
                        }
                        values[(p * oh + i) * ow + j] = sum * scale
                    }
                }
            }
        }
        let n = count
        return Tensor.differentiable(shape: [geo.batch, geo.channels, oh, ow], scalars: values, inputs: [self]) { g in
            var gi = [Float](repeating: 0, count: n)
            for p in 0..<planes {
                for i in 0..<oh {
                    for j in 0..<ow {
                        let v = g[(p * oh + i) * ow + j] * scale
                        for ki in 0..<kernel {
                            let ih = i * s - padding + ki
                            if ih < 0 || ih >= h { continue }
                            for kj in 0..<kernel {
                                let iw = j * s - padding + kj
                                if iw >= 0 && iw < w { gi[p * h * w + ih * w + iw] += v }
                            }
                        }
                    }
                }
            }
            return [gi]
        }
    }

    /// Mean over the spatial axes of NCHW input: [N, C, H, W] → [N, C].
    public func globalAveragePool() -> Tensor {
        precondition(rank == 4, "globalAveragePool needs NCHW input, shape is \(shape)")
        let (planes, hw) = (shape[0] * shape[1], shape[2] * shape[3])
        var values = [Float](repeating: 0, count: planes)
        let scale = 1 / Float(hw)
        scalars.withUnsafeBufferPointer { px in
            for p in 0..<planes {
                var sum: Float = 0
                for k in 0..<hw { sum += px[p * hw + k] }
                values[p] = sum * scale
            }
        }
        return Tensor.differentiable(shape: [shape[0], shape[1]], scalars: values, inputs: [self]) { g in
            var gi = [Float](repeating: 0, count: planes * hw)
            for p in 0..<planes {
                let v = g[p] * scale
                for k in 0..<hw { gi[p * hw + k] = v }
            }
            return [gi]
        }
    }
}

extension PerSampleGradients {
    /// Σ over the batch and output positions of the conv weight gradient for the given output
    /// gradient Δ: ∂L/∂W = Σₙ Δ₂ₙ · colsₙᵀ (im2col). With `absolute`, |Δ| and |x| are used instead,
    /// which is the Hebbian co-activation Σ|yᵢ|·|xⱼ| of local MAS.
    public static func conv2dWeightGradient(input x: Tensor, outputGradient g: Tensor, kernelSize: Int,
                                            stride: Int, padding: Int, absolute: Bool = false) -> Tensor {
        precondition(x.rank == 4 && g.rank == 4 && x.shape[0] == g.shape[0], "conv2dWeightGradient: shapes \(x.shape), \(g.shape)")
        let geo = Conv2dGeometry(batch: x.shape[0], channels: x.shape[1], height: x.shape[2], width: x.shape[3],
                                 kernelHeight: kernelSize, kernelWidth: kernelSize, stride: stride, padding: padding)
        precondition(g.shape[2] == geo.outHeight && g.shape[3] == geo.outWidth, "conv2dWeightGradient: output \(g.shape) does not fit")
        let outC = g.shape[1]
        let (k, cols, ohw) = (geo.patchSize, geo.columns, geo.outHeight * geo.outWidth)
        let xv = absolute ? x.scalars.map { Swift.abs($0) } : x.scalars
        let colsBuf = [Float](unsafeUninitializedCapacity: k * cols) { pc, initialized in
            xv.withUnsafeBufferPointer { px in im2col(px.baseAddress!, geo, pc.baseAddress!) }
            initialized = k * cols
        }
        var g2 = [Float](repeating: 0, count: outC * cols)
        let gv = g.scalars
        for o in 0..<outC {
            for n in 0..<geo.batch {
                for i in 0..<ohw {
                    let v = gv[(n * outC + o) * ohw + i]
                    g2[o * cols + n * ohw + i] = absolute ? Swift.abs(v) : v
                }
            }
        }
        let w = gemm(g2, transA: false, colsBuf, transB: true, m: outC, n: k, k: cols)
        return Tensor(shape: [outC, x.shape[1], kernelSize, kernelSize], scalars: w)
    }
}
