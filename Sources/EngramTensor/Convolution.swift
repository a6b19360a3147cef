import COpenBLAS
import Dispatch
#if ENGRAM_DNNL
import CEngramDNNL
#endif

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

/// The im2col matrix [C·kh·kw, N·H_out·W_out] of NCHW input `x` (zero padding), as a new array.
func unfolded(_ x: [Float], _ g: Conv2dGeometry) -> [Float] {
    [Float](unsafeUninitializedCapacity: g.patchSize * g.columns) { pc, initialized in
        x.withUnsafeBufferPointer { px in im2col(px.baseAddress!, g, pc.baseAddress!) }
        initialized = g.patchSize * g.columns
    }
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

#if ENGRAM_DNNL
extension Conv2dGeometry {
    func oneDNNShape(outChannels: Int) -> EngramConvShape {
        EngramConvShape(batch: Int32(batch), channels: Int32(channels), height: Int32(height), width: Int32(width),
                        outChannels: Int32(outChannels), kernelHeight: Int32(kernelHeight),
                        kernelWidth: Int32(kernelWidth), stride: Int32(stride), padding: Int32(padding))
    }
}
#endif

/// The three gradients of a convolution through im2col and GEMM, from the output gradient g [N, O, Ho, Wo]:
/// ∂L/∂W = g₂ · colsᵀ, ∂L/∂x = col2im(Wᵀ · g₂), ∂L/∂b = Σ g₂ over columns, with g₂ = g as [O, N·Ho·Wo].
/// `cols` gives the unfolded input (the forward pass's, or unfolded anew); it is called only for ∂L/∂W.
private func conv2dBackwardIm2col(_ g: [Float], weight wv: [Float], geometry geo: Conv2dGeometry, outChannels outC: Int,
                                  cols: () -> [Float], needX: Bool, needW: Bool, needB: Bool)
    -> (gx: [Float]?, gw: [Float]?, gb: [Float]?) {
    let (k, columns, ohw) = (geo.patchSize, geo.columns, geo.outHeight * geo.outWidth)
    // gradient in [O, N·HWo] layout
    var gb = needB ? [Float](repeating: 0, count: outC) : nil
    let g2 = [Float](unsafeUninitializedCapacity: outC * columns) { pg2, initialized in
        initialized = outC * columns
        g.withUnsafeBufferPointer { pg in
            for o in 0..<outC {
                var s: Float = 0
                for n in 0..<geo.batch {
                    let src = pg.baseAddress! + (n * outC + o) * ohw
                    let dst = pg2.baseAddress! + o * columns + n * ohw
                    for i in 0..<ohw { dst[i] = src[i]; s += src[i] }
                }
                gb?[o] = s
            }
        }
    }
    var gw: [Float]? = nil
    if needW {
        gw = gemm(g2, transA: false, cols(), transB: true, m: outC, n: k, k: columns)
    }
    var gx: [Float]? = nil
    if needX {
        let gcols = gemm(wv, transA: true, g2, transB: false, m: k, n: columns, k: outC)
        var dx = [Float](repeating: 0, count: geo.batch * geo.channels * geo.height * geo.width)
        gcols.withUnsafeBufferPointer { pc in
            dx.withUnsafeMutableBufferPointer { pd in col2im(pc.baseAddress!, geo, pd.baseAddress!) }
        }
        gx = dx
    }
    return (gx, gw, gb)
}

extension Tensor {
    /// 2-D convolution (cross-correlation, as in PyTorch) of NCHW input with weight [O, C, kh, kw]
    /// and optional bias [O]: y[n, o, i, j] = b[o] + Σ_{c, u, v} W[o, c, u, v] · x[n, c, i·s − p + u, j·s − p + v].
    /// Computed by `ComputeBackend.current` (oneDNN, or im2col over the whole batch and one GEMM W·cols).
    public static func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0) -> Tensor {
        precondition(x.rank == 4 && weight.rank == 4 && x.shape[1] == weight.shape[1],
                     "conv2d: input \(x.shape) does not fit weight \(weight.shape)")
        precondition(stride >= 1 && padding >= 0, "conv2d: stride must be ≥ 1 and padding ≥ 0")
        let geo = Conv2dGeometry(batch: x.shape[0], channels: x.shape[1], height: x.shape[2], width: x.shape[3],
                                 kernelHeight: weight.shape[2], kernelWidth: weight.shape[3], stride: stride, padding: padding)
        precondition(geo.outHeight > 0 && geo.outWidth > 0, "conv2d: kernel larger than padded input \(x.shape)")
        #if ENGRAM_DNNL
        if ComputeBackend.current == .oneDNN, let y = conv2dOneDNN(x, weight: weight, bias: bias, geometry: geo) {
            return y
        }
        #endif
        let outC = weight.shape[0]
        let (k, cols, ohw) = (geo.patchSize, geo.columns, geo.outHeight * geo.outWidth)
        let colsBuf = unfolded(x.scalars, geo)
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
        return differentiable(shape: [geo.batch, outC, geo.outHeight, geo.outWidth], scalars: values, inputs: inputs) { g in
            let grads = conv2dBackwardIm2col(g, weight: wv, geometry: geo, outChannels: outC, cols: { colsBuf },
                                             needX: needX, needW: needW, needB: needB)
            var result: [[Float]?] = [grads.gx, grads.gw]
            if bias != nil { result.append(grads.gb) }
            return result
        }
    }

    #if ENGRAM_DNNL
    /// The convolution through oneDNN, or nil when oneDNN declines this shape (the caller then uses im2col).
    /// Backward runs oneDNN's backward-data and backward-weights primitives; should one of them decline, that
    /// gradient comes from the im2col path instead.
    private static func conv2dOneDNN(_ x: Tensor, weight: Tensor, bias: Tensor?, geometry geo: Conv2dGeometry) -> Tensor? {
        let outC = weight.shape[0]
        let shape = geo.oneDNNShape(outChannels: outC)
        let outShape = [geo.batch, outC, geo.outHeight, geo.outWidth]
        let xv = x.scalars, wv = weight.scalars, bv = bias?.scalars
        var status: Int32 = 0
        let values = [Float](unsafeUninitializedCapacity: outShape.reduce(1, *)) { po, initialized in
            status = xv.withUnsafeBufferPointer { px in
                wv.withUnsafeBufferPointer { pw in
                    if let bv {
                        return bv.withUnsafeBufferPointer { pb in
                            engram_dnnl_conv_forward(shape, px.baseAddress!, pw.baseAddress!, pb.baseAddress!, po.baseAddress!)
                        }
                    }
                    return engram_dnnl_conv_forward(shape, px.baseAddress!, pw.baseAddress!, nil, po.baseAddress!)
                }
            }
            initialized = status == 0 ? po.count : 0
        }
        guard status == 0 else { return nil }
        guard needsGrad(x, weight) || (bias?.requiresGrad ?? false) else { return Tensor(shape: outShape, scalars: values) }
        let (needX, needW, needB) = (x.requiresGrad, weight.requiresGrad, bias?.requiresGrad ?? false)
        let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
        return differentiable(shape: outShape, scalars: values, inputs: inputs) { g in
            var gx: [Float]? = nil, gw: [Float]? = nil, gb: [Float]? = nil
            var declined = false
            g.withUnsafeBufferPointer { pg in
                if needX {
                    var dataStatus: Int32 = 0
                    let dx = [Float](unsafeUninitializedCapacity: xv.count) { pd, initialized in
                        dataStatus = wv.withUnsafeBufferPointer { pw in
                            engram_dnnl_conv_backward_data(shape, pw.baseAddress!, pg.baseAddress!, pd.baseAddress!)
                        }
                        initialized = dataStatus == 0 ? pd.count : 0
                    }
                    if dataStatus == 0 { gx = dx } else { declined = true }
                }
                if needW || needB {
                    var weightStatus: Int32 = 0
                    var db = [Float](repeating: 0, count: bv == nil ? 0 : outC)
                    let dw = [Float](unsafeUninitializedCapacity: wv.count) { pw, initialized in
                        weightStatus = xv.withUnsafeBufferPointer { px in
                            db.withUnsafeMutableBufferPointer { pb in
                                engram_dnnl_conv_backward_weights(shape, px.baseAddress!, pg.baseAddress!, pw.baseAddress!,
                                                                  bv == nil ? nil : pb.baseAddress!)
                            }
                        }
                        initialized = weightStatus == 0 ? pw.count : 0
                    }
                    if weightStatus == 0 { gw = needW ? dw : nil; gb = needB ? db : nil } else { declined = true }
                }
            }
            if declined {
                let unfold = { unfolded(xv, geo) }
                let fallback = conv2dBackwardIm2col(g, weight: wv, geometry: geo, outChannels: outC, cols: unfold,
                                                    needX: needX && gx == nil, needW: needW && gw == nil,
                                                    needB: needB && gb == nil)
                gx = gx ?? fallback.gx; gw = gw ?? fallback.gw; gb = gb ?? fallback.gb
            }
            var result: [[Float]?] = [gx, gw]
            if bias != nil { result.append(gb) }
            return result
        }
    }
    #endif

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
        let colsBuf = unfolded(xv, geo)
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

extension PerSampleGradients {
    /// Σₙ f(∂ℓₙ/∂W) and Σₙ f(∂ℓₙ/∂b) for a convolution, f = |·| (MAS) or (·)² (Fisher), from its input X and the
    /// gradient Δ of its output over a batch, exactly: sample n's weight gradient is Gₙ = Δₙ · unfold(Xₙ)ᵀ
    /// ([O, P] · [P, C·kh·kw], P output positions) and its bias gradient Σ_p Δₙ[o, p]. One GEMM per sample over
    /// its unfolded input, so the batch's statistics cost about one weight-gradient pass, not a backward pass
    /// per sample.
    public static func conv2dPerSampleSum(input x: Tensor, outputGradient g: Tensor, kernelSize: Int, stride: Int,
                                          padding: Int, squared: Bool) -> (weight: Tensor, bias: Tensor) {
        precondition(x.rank == 4 && g.rank == 4 && x.shape[0] == g.shape[0], "conv2dPerSampleSum: shapes \(x.shape), \(g.shape)")
        let one = Conv2dGeometry(batch: 1, channels: x.shape[1], height: x.shape[2], width: x.shape[3],
                                 kernelHeight: kernelSize, kernelWidth: kernelSize, stride: stride, padding: padding)
        precondition(g.shape[2] == one.outHeight && g.shape[3] == one.outWidth, "conv2dPerSampleSum: output \(g.shape) does not fit")
        let (n, outC, k, positions) = (x.shape[0], g.shape[1], one.patchSize, one.outHeight * one.outWidth)
        let plane = one.channels * one.height * one.width
        // The samples are split into one contiguous range per BLAS thread (each GEMM is too small to share); each
        // range sums into its own buffer and the buffers are added in range order, so the result depends only on the
        // thread count.
        let parts = Swift.max(1, Swift.min(BLAS.configuredThreads, n))
        let partials = UnsafeMutableBufferPointer<Float>.allocate(capacity: parts * (outC * k + outC))
        partials.initialize(repeating: 0)
        defer { partials.deallocate() }
        let xv = x.scalars, gv = g.scalars
        nonisolated(unsafe) let shared = partials   // each part writes only its own slice
        let accumulate: @Sendable (Int) -> Void = { part in
            let weight = shared.baseAddress! + part * (outC * k + outC), bias = weight + outC * k
            var cols = [Float](repeating: 0, count: k * positions)
            var sample = [Float](repeating: 0, count: outC * k)
            xv.withUnsafeBufferPointer { px in
                gv.withUnsafeBufferPointer { pg in
                    cols.withUnsafeMutableBufferPointer { pc in
                        sample.withUnsafeMutableBufferPointer { ps in
                            for s in (part * n / parts)..<((part + 1) * n / parts) {
                                im2col(px.baseAddress! + s * plane, one, pc.baseAddress!)
                                let delta = pg.baseAddress! + s * outC * positions
                                gemm(delta, transA: false, UnsafePointer(pc.baseAddress!), transB: true, ps.baseAddress!,
                                     m: outC, n: k, k: positions, singleThreaded: true)
                                if squared {
                                    for i in 0..<(outC * k) { weight[i] += ps[i] * ps[i] }
                                } else {
                                    for i in 0..<(outC * k) { weight[i] += Swift.abs(ps[i]) }
                                }
                                for o in 0..<outC {
                                    var b: Float = 0
                                    for p in 0..<positions { b += delta[o * positions + p] }
                                    bias[o] += squared ? b * b : Swift.abs(b)
                                }
                            }
                        }
                    }
                }
            }
        }
        if parts == 1 { accumulate(0) } else { DispatchQueue.concurrentPerform(iterations: parts, execute: accumulate) }
        var weight = [Float](repeating: 0, count: outC * k), bias = [Float](repeating: 0, count: outC)
        for part in 0..<parts {
            let base = partials.baseAddress! + part * (outC * k + outC)
            for i in 0..<(outC * k) { weight[i] += base[i] }
            for o in 0..<outC { bias[o] += base[outC * k + o] }
        }
        return (Tensor(shape: [outC, one.channels, kernelSize, kernelSize], scalars: weight), Tensor(shape: [outC], scalars: bias))
    }

    /// Σₙ f(∂ℓₙ/∂γ) and Σₙ f(∂ℓₙ/∂β) for BatchNorm *in evaluation mode* (an affine map per channel, so samples do
    /// not interact): ∂ℓₙ/∂γ_c = Σ_p Δₙ[c, p]·x̂ₙ[c, p], ∂ℓₙ/∂β_c = Σ_p Δₙ[c, p], x̂ = (x − μ_running)/√(σ²_running + ε).
    public static func batchNormPerSampleSum(input x: Tensor, outputGradient g: Tensor, runningMean: [Float],
                                             runningVariance: [Float], epsilon: Float, squared: Bool) -> (gamma: Tensor, beta: Tensor) {
        precondition(x.shape == g.shape && x.rank >= 2 && x.shape[1] == runningMean.count, "batchNormPerSampleSum: shapes \(x.shape), \(g.shape)")
        let (n, c) = (x.shape[0], x.shape[1])
        let positions = x.count / Swift.max(n * c, 1)
        var gamma = [Float](repeating: 0, count: c), beta = [Float](repeating: 0, count: c)
        let xv = x.scalars, gv = g.scalars
        for s in 0..<n {
            for ch in 0..<c {
                let inverse = 1 / (runningVariance[ch] + epsilon).squareRoot()
                var dg: Float = 0, db: Float = 0
                let base = (s * c + ch) * positions
                for p in 0..<positions {
                    dg += gv[base + p] * (xv[base + p] - runningMean[ch]) * inverse
                    db += gv[base + p]
                }
                gamma[ch] += squared ? dg * dg : Swift.abs(dg)
                beta[ch] += squared ? db * db : Swift.abs(db)
            }
        }
        return (Tensor(shape: [c], scalars: gamma), Tensor(shape: [c], scalars: beta))
    }
}
