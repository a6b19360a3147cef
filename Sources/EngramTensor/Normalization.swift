extension Tensor {
    /// Batch normalization over axis 1 of [N, C] or [N, C, H, W] input (Ioffe & Szegedy 2015):
    /// y = γ·(x − μ)/√(σ² + ε) + β, with μ, σ² the batch statistics per channel when `training`,
    /// else the given running statistics.
    ///
    /// - Returns: the output and, in training, the batch mean and *unbiased* variance per channel
    ///   (what PyTorch blends into its running statistics).
    public static func batchNorm(_ x: Tensor, gamma: Tensor?, beta: Tensor?, runningMean: [Float], runningVariance: [Float],
                                 training: Bool, epsilon: Float = 1e-5) -> (output: Tensor, mean: [Float], variance: [Float]) {
        precondition(x.rank == 2 || x.rank == 4, "batchNorm needs [N, C] or [N, C, H, W] input, shape is \(x.shape)")
        let (n, c) = (x.shape[0], x.shape[1])
        let inner = x.rank == 4 ? x.shape[2] * x.shape[3] : 1
        let m = n * inner
        precondition(runningMean.count == c && runningVariance.count == c, "batchNorm: statistics do not have \(c) channels")
        precondition(!training || m > 1, "batchNorm: training needs more than one value per channel, input \(x.shape)")
        var mean = [Float](repeating: 0, count: c)
        var invStd = [Float](repeating: 0, count: c)
        var unbiased = [Float](repeating: 0, count: c)
        let xv = x.scalars
        xv.withUnsafeBufferPointer { px in
            for ch in 0..<c {
                if training {
                    var s: Double = 0
                    for b in 0..<n { s += Double(reduceSum(px.baseAddress! + (b * c + ch) * inner, inner)) }
                    let mu = Float(s / Double(m))
                    var ss: Double = 0
                    for b in 0..<n { ss += Double(reduceSquaredDeviation(px.baseAddress! + (b * c + ch) * inner, mu, inner)) }
                    mean[ch] = mu
                    invStd[ch] = Float(1 / (ss / Double(m) + Double(epsilon)).squareRoot())
                    unbiased[ch] = Float(ss / Double(Swift.max(m - 1, 1)))
                } else {
                    mean[ch] = runningMean[ch]
                    invStd[ch] = 1 / (runningVariance[ch] + epsilon).squareRoot()
                }
            }
        }
        let gv = gamma?.scalars, bv = beta?.scalars
        var xhat = [Float](repeating: 0, count: xv.count)
        var values = [Float](repeating: 0, count: xv.count)
        xv.withUnsafeBufferPointer { px in
            xhat.withUnsafeMutableBufferPointer { ph in
                values.withUnsafeMutableBufferPointer { py in
                    for b in 0..<n {
                        for ch in 0..<c {
                            let base = (b * c + ch) * inner
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
            var dx = [Float](repeating: 0, count: g.count)
            g.withUnsafeBufferPointer { pg in
                xhat.withUnsafeBufferPointer { ph in
                    for ch in 0..<c {
                        var sg: Float = 0, sgh: Float = 0
                        for b in 0..<n {
                            let base = (b * c + ch) * inner
                            sg += reduceSum(pg.baseAddress! + base, inner)
                            sgh += reduceDot(pg.baseAddress! + base, ph.baseAddress! + base, inner)
                        }
                        dbeta[ch] = sg
                        dgamma[ch] = sgh
                    }
                    dx.withUnsafeMutableBufferPointer { pd in
                        for ch in 0..<c {
                            let gm = gv?[ch] ?? 1
                            let scale = gm * invStd[ch]
                            if training {
                                // dx = γ/σ · (g − mean(g) − x̂·mean(g·x̂))
                                let mg = dbeta[ch] / Float(m), mgh = dgamma[ch] / Float(m)
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
                        }
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
