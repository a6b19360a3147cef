extension Tensor {
    /// Batch normalization over axis 1 of [N, C] or [N, C, H, W] input (Ioffe & Szegedy 2015):
    /// y = γ·(x − μ)/√(σ² + ε) + β, with μ, σ² the batch statistics per channel when `training`,
    /// else the given running statistics.
    ///
    /// - Parameter group: in training, the members of a data-parallel group that each hold a shard of the batch
    ///   (synchronised BatchNorm): μ and σ² are those of the whole batch, M = Σ_r m_r values per channel — the sums
    ///   Σx, then Σ(x − μ)² are summed over the members — and the backward pass sums Σg and Σg·x̂ over them, so
    ///   dx is the whole batch's. γ's and β's gradients stay this member's (the trainer sums parameter gradients).
    /// - Returns: the output and, in training, the batch mean and *unbiased* variance per channel
    ///   (what PyTorch blends into its running statistics).
    public static func batchNorm(_ x: Tensor, gamma: Tensor?, beta: Tensor?, runningMean: [Float], runningVariance: [Float],
                                 training: Bool, epsilon: Float = 1e-5,
                                 group: (any ProcessGroup)? = nil) -> (output: Tensor, mean: [Float], variance: [Float]) {
        precondition(x.rank == 2 || x.rank == 4, "batchNorm needs [N, C] or [N, C, H, W] input, shape is \(x.shape)")
        let (n, c) = (x.shape[0], x.shape[1])
        let inner = x.rank == 4 ? x.shape[2] * x.shape[3] : 1
        let group = training ? group : nil
        let localCount = n * inner
        var m = localCount
        var mean = [Float](repeating: 0, count: c)
        var invStd = [Float](repeating: 0, count: c)
        var unbiased = [Float](repeating: 0, count: c)
        let xv = x.scalars
        if let group {
            // Two sums over the members: Σx with the counts, then Σ(x − μ)² about the whole batch's μ.
            var sums = [Double](repeating: 0, count: c + 1)
            xv.withUnsafeBufferPointer { px in
                for ch in 0..<c {
                    withPlaneSums(px.baseAddress! + ch * inner, stride: c * inner, planes: n, inner: inner) { planes in
                        for b in 0..<n { sums[ch] += Double(planes[b]) }
                    }
                }
            }
            sums[c] = Double(localCount)
            group.sum(&sums)
            m = Int(sums[c])
            for ch in 0..<c { mean[ch] = Float(sums[ch] / sums[c]) }
            var squares = [Double](repeating: 0, count: c)
            xv.withUnsafeBufferPointer { px in
                for ch in 0..<c {
                    withPlaneSquaredDeviations(px.baseAddress! + ch * inner, center: mean[ch], stride: c * inner, planes: n, inner: inner) { planes in
                        for b in 0..<n { squares[ch] += Double(planes[b]) }
                    }
                }
            }
            group.sum(&squares)
            for ch in 0..<c {
                invStd[ch] = Float(1 / (squares[ch] / Double(m) + Double(epsilon)).squareRoot())
                unbiased[ch] = Float(squares[ch] / Double(Swift.max(m - 1, 1)))
            }
        }
        precondition(runningMean.count == c && runningVariance.count == c, "batchNorm: statistics do not have \(c) channels")
        precondition(!training || m > 1, "batchNorm: training needs more than one value per channel, input \(x.shape)")
        if group == nil { xv.withUnsafeBufferPointer { px in
          mean.withUnsafeMutableBufferPointer { pMean in invStd.withUnsafeMutableBufferPointer { pInv in
          unbiased.withUnsafeMutableBufferPointer { pUnbiased in
            // Channels are independent: split over the threads (nonisolated(unsafe): each range writes its own slots).
            nonisolated(unsafe) let (px, mean, invStd, unbiased) = (px, pMean, pInv, pUnbiased)
            let m = m
            forEachRange(c, work: xv.count) { channels in for ch in channels {
                if training {
                    var s: Double = 0
                    withPlaneSums(px.baseAddress! + ch * inner, stride: c * inner, planes: n, inner: inner) { planes in
                        for b in 0..<n { s += Double(planes[b]) }
                    }
                    let mu = Float(s / Double(m))
                    var ss: Double = 0
                    withPlaneSquaredDeviations(px.baseAddress! + ch * inner, center: mu, stride: c * inner, planes: n, inner: inner) { planes in
                        for b in 0..<n { ss += Double(planes[b]) }
                    }
                    mean[ch] = mu
                    invStd[ch] = Float(1 / (ss / Double(m) + Double(epsilon)).squareRoot())
                    unbiased[ch] = Float(ss / Double(Swift.max(m - 1, 1)))
                } else {
                    mean[ch] = runningMean[ch]
                    invStd[ch] = 1 / (runningVariance[ch] + epsilon).squareRoot()
                }
            } }
          } } }
        } }
        let gv = gamma?.scalars, bv = beta?.scalars
        // Every element of x̂ and y is written below (each plane once): no zero fill first.
        var xhat = [Float](unsafeUninitializedCapacity: xv.count) { _, initialized in initialized = xv.count }
        var values = [Float](unsafeUninitializedCapacity: xv.count) { _, initialized in initialized = xv.count }
        xv.withUnsafeBufferPointer { px in
            xhat.withUnsafeMutableBufferPointer { ph in
                values.withUnsafeMutableBufferPointer { py in
                    // Planes (sample, channel) are independent: split over the threads.
                    nonisolated(unsafe) let (px, ph, py) = (px, ph, py)
                    let (mean, invStd) = (mean, invStd)
                    forEachRange(n * c, work: xv.count) { planes in
                        for plane in planes {
                            let ch = plane % c, base = plane * inner
                            let (mu, istd, gm, bt) = (mean[ch], invStd[ch], gv?[ch] ?? 1, bv?[ch] ?? 0)
                            // Pointers advanced once per plane: the inner loop has no index arithmetic to check.
                            let xs = px.baseAddress! + base, hs = ph.baseAddress! + base, ys = py.baseAddress! + base
                            for k in 0..<inner {
                                let h = (xs[k] - mu) * istd
                                hs[k] = h
                                ys[k] = gm * h + bt
                            }
                        }
                    }
                }
            }
        }
        var inputs = [x]
        if let gamma { inputs.append(gamma) }
        if let beta { inputs.append(beta) }
        let hasGamma = gamma != nil, hasBeta = beta != nil
        let out = differentiable(shape: x.shape, scalars: values, inputs: inputs) { g in
            var dgamma = [Float](repeating: 0, count: c)
            var dbeta = [Float](repeating: 0, count: c)
            // Every element of dx is written below (each channel of each sample once).
            var dx = [Float](unsafeUninitializedCapacity: g.count) { _, initialized in initialized = g.count }
            g.withUnsafeBufferPointer { pg in
                xhat.withUnsafeBufferPointer { ph in
                    dbeta.withUnsafeMutableBufferPointer { pBeta in dgamma.withUnsafeMutableBufferPointer { pGamma in
                        nonisolated(unsafe) let (pg, ph, dbeta, dgamma) = (pg, ph, pBeta, pGamma)
                        forEachRange(c, work: g.count) { channels in
                            for ch in channels {
                                var sg: Float = 0, sgh: Float = 0
                                withPlaneSumsAndDots(pg.baseAddress! + ch * inner, ph.baseAddress! + ch * inner,
                                                     stride: c * inner, planes: n, inner: inner) { sums, dots in
                                    for b in 0..<n { sg += sums[b]; sgh += dots[b] }
                                }
                                dbeta[ch] = sg
                                dgamma[ch] = sgh
                            }
                        }
                    } }
                    // The whole batch's Σg and Σg·x̂ for dx (this process's alone: no copy); γ's and β's gradients
                    // stay this member's.
                    var batchG = dbeta, batchGH = dgamma
                    if let group {
                        var sums = (dbeta + dgamma).map(Double.init)
                        group.sum(&sums)
                        batchG = sums[..<c].map(Float.init)
                        batchGH = sums[c...].map(Float.init)
                    }
                    dx.withUnsafeMutableBufferPointer { pd in
                        nonisolated(unsafe) let (pd, pg, ph) = (pd, pg, ph)
                        let (batchG, batchGH, invStd, m) = (batchG, batchGH, invStd, m)
                        forEachRange(c, work: g.count) { channels in for ch in channels {
                            let gm = gv?[ch] ?? 1
                            let scale = gm * invStd[ch]
                            if training {
                                // dx = γ/σ · (g − mean(g) − x̂·mean(g·x̂))
                                let mg = batchG[ch] / Float(m), mgh = batchGH[ch] / Float(m)
                                for b in 0..<n {
                                    let base = (b * c + ch) * inner
                                    let ds = pd.baseAddress! + base, gs = pg.baseAddress! + base, hs = ph.baseAddress! + base
                                    for k in 0..<inner { ds[k] = scale * (gs[k] - mg - hs[k] * mgh) }
                                }
                            } else {
                                for b in 0..<n {
                                    let base = (b * c + ch) * inner
                                    let ds = pd.baseAddress! + base, gs = pg.baseAddress! + base
                                    for k in 0..<inner { ds[k] = scale * gs[k] }
                                }
                            }
                        } }
                    }
                }
            }
            var result: [[Float]?] = [dx]
            if hasGamma { result.append(dgamma) }
            if hasBeta { result.append(dbeta) }
            return result
        }
        return (out, mean, unbiased)
    }
}
