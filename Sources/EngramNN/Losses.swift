import EngramTensor

/// How a per-sample loss is reduced over the batch.
public enum Reduction: Sendable { case mean, sum, none }

/// Loss functions. Each returns a scalar (or [n] with `.none`) that can be back-propagated.
public enum Losses {
    /// Cross-entropy on logits, −log softmax(z)_y, fused and numerically stable.
    ///
    /// - Parameter allowedClasses: if given, the softmax runs over these classes only (the other
    ///   logits are masked out and get no gradient): task-aware training/evaluation in a shared head.
    public static func crossEntropy(_ logits: Tensor, targets: [Int], allowedClasses: [Int]? = nil,
                                    reduction: Reduction = .mean) -> Tensor {
        precondition(logits.rank == 2 && logits.shape[0] == targets.count,
                     "crossEntropy: logits \(logits.shape) do not match \(targets.count) targets")
        let (n, c) = (logits.shape[0], logits.shape[1])
        var mask: [Bool]? = nil
        if let allowedClasses {
            var m = [Bool](repeating: false, count: c)
            for k in allowedClasses {
                precondition(k >= 0 && k < c, "crossEntropy: allowed class \(k) out of 0..<\(c)")
                m[k] = true
            }
            mask = m
        }
        var z = logits.scalars
        if let mask {
            for r in 0..<n { for j in 0..<c where !mask[j] { z[r * c + j] = -.infinity } }
        }
        let (probs, logProbs) = softmaxRows(z, columns: c)
        var losses = [Float](repeating: 0, count: n)
        for r in 0..<n {
            let t = targets[r]
            precondition(t >= 0 && t < c && (mask?[t] ?? true), "crossEntropy: target \(t) is not an allowed class of \(c)")
            losses[r] = -logProbs[r * c + t]
        }
        let scale: Float = reduction == .mean ? 1 / Float(max(n, 1)) : 1
        let outShape = reduction == .none ? [n] : []
        let value = reduction == .none ? losses : [losses.reduce(0, +) * scale]
        return Tensor.differentiable(shape: outShape, scalars: value, inputs: [logits]) { g in
            var gi = [Float](repeating: 0, count: n * c)
            for r in 0..<n {
                let w = reduction == .none ? g[r] : g[0] * scale
                for j in 0..<c { gi[r * c + j] = w * probs[r * c + j] }
                gi[r * c + targets[r]] -= w
            }
            return [gi]
        }
    }

    /// Negative log-likelihood of log-probabilities: −logp[y].
    public static func nll(_ logProbabilities: Tensor, targets: [Int], reduction: Reduction = .mean) -> Tensor {
        precondition(logProbabilities.rank == 2 && logProbabilities.shape[0] == targets.count,
                     "nll: input \(logProbabilities.shape) does not match \(targets.count) targets")
        let (n, c) = (logProbabilities.shape[0], logProbabilities.shape[1])
        var onehot = [Float](repeating: 0, count: n * c)
        for (r, t) in targets.enumerated() {
            precondition(t >= 0 && t < c, "nll: target \(t) out of 0..<\(c)")
            onehot[r * c + t] = -1
        }
        let picked = (logProbabilities * Tensor(shape: [n, c], scalars: onehot)).sum(axis: 1)
        return reduce(picked, reduction)
    }

    /// Mean squared error (1/N)Σ(a − b)².
    public static func mse(_ prediction: Tensor, _ target: Tensor, reduction: Reduction = .mean) -> Tensor {
        let d = (prediction - target).squared()
        switch reduction {
        case .mean: return d.mean()
        case .sum: return d.sum()
        case .none: return d
        }
    }

    /// KL(p_T ‖ q_T) = Σ p (log p − log q) between the temperature-softened distributions
    /// p = softmax(target/T), q = softmax(input/T), per sample; `.mean` averages over the batch.
    /// Multiply by T² to keep gradient magnitudes comparable across temperatures (Hinton et al. 2015).
    public static func klDivergence(input: Tensor, target: Tensor, temperature: Float = 1,
                                    reduction: Reduction = .mean) -> Tensor {
        precondition(input.shape == target.shape && input.rank == 2, "klDivergence: shapes \(input.shape) and \(target.shape) differ")
        let logP = target.logSoftmax(temperature: temperature)
        let logQ = input.logSoftmax(temperature: temperature)
        let perSample = (logP.exp() * (logP - logQ)).sum(axis: 1)
        return reduce(perSample, reduction)
    }

    /// Jensen–Shannon divergence ½KL(P‖M) + ½KL(Q‖M), M = ½(P + Q), between softmax(a/T) and
    /// softmax(b/T), per sample (MIND distils with it).
    public static func jensenShannon(_ a: Tensor, _ b: Tensor, temperature: Float = 1, reduction: Reduction = .mean) -> Tensor {
        precondition(a.shape == b.shape && a.rank == 2, "jensenShannon: shapes \(a.shape) and \(b.shape) differ")
        let logP = a.logSoftmax(temperature: temperature), logQ = b.logSoftmax(temperature: temperature)
        let p = logP.exp(), q = logQ.exp()
        let logM = ((p + q) * 0.5).clamp(min: 1e-30).log()
        let perSample = ((p * (logP - logM)).sum(axis: 1) + (q * (logQ - logM)).sum(axis: 1)) * 0.5
        return reduce(perSample, reduction)
    }

    /// Symmetrised Kullback–Leibler divergence ½(KL(P‖Q) + KL(Q‖P)), P = softmax(a/T), Q = softmax(b/T), per
    /// sample — what MIND's reference code computes and calls "JS" (≈ 4× the Jensen–Shannon divergence near P = Q).
    public static func symmetricKL(_ a: Tensor, _ b: Tensor, temperature: Float = 1, reduction: Reduction = .mean) -> Tensor {
        precondition(a.shape == b.shape && a.rank == 2, "symmetricKL: shapes \(a.shape) and \(b.shape) differ")
        let logP = a.logSoftmax(temperature: temperature), logQ = b.logSoftmax(temperature: temperature)
        let perSample = ((logP.exp() - logQ.exp()) * (logP - logQ)).sum(axis: 1) * 0.5
        return reduce(perSample, reduction)
    }

    /// Squared L2 norm of each sample's output, ‖F(x)‖²₂ (MAS importance).
    public static func squaredL2Norm(_ output: Tensor, reduction: Reduction = .mean) -> Tensor {
        let perSample = output.flattened().squared().sum(axis: 1)
        return reduce(perSample, reduction)
    }

    private static func reduce(_ perSample: Tensor, _ reduction: Reduction) -> Tensor {
        switch reduction {
        case .mean: return perSample.mean()
        case .sum: return perSample.sum()
        case .none: return perSample
        }
    }
}
