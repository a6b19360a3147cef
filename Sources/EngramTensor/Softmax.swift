#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Tensor {
    /// softmax(x)ᵢ = exp(xᵢ − max x) / Σⱼ exp(xⱼ − max x) along the last axis (`temperature` T divides x first).
    public func softmax(temperature: Float = 1) -> Tensor {
        let (probs, _) = softmaxRows(scalars, columns: shape.last ?? 1, temperature: temperature)
        let c = shape.last ?? 1
        return Tensor.differentiable(shape: shape, scalars: probs, inputs: [self]) { g in
            // ∂L/∂xᵢ = pᵢ (gᵢ − Σⱼ gⱼ pⱼ) / T
            var gi = [Float](repeating: 0, count: g.count)
            let rows = g.count / Swift.max(c, 1)
            for r in 0..<rows {
                var dot: Float = 0
                for j in 0..<c { dot += g[r * c + j] * probs[r * c + j] }
                for j in 0..<c { gi[r * c + j] = probs[r * c + j] * (g[r * c + j] - dot) / temperature }
            }
            return [gi]
        }
    }

    /// log softmax(x/T) along the last axis, computed as (x/T − max) − log Σ exp(x/T − max).
    public func logSoftmax(temperature: Float = 1) -> Tensor {
        let c = shape.last ?? 1
        let (probs, logProbs) = softmaxRows(scalars, columns: c, temperature: temperature)
        return Tensor.differentiable(shape: shape, scalars: logProbs, inputs: [self]) { g in
            // ∂L/∂xᵢ = (gᵢ − pᵢ Σⱼ gⱼ) / T
            var gi = [Float](repeating: 0, count: g.count)
            let rows = g.count / Swift.max(c, 1)
            for r in 0..<rows {
                var s: Float = 0
                for j in 0..<c { s += g[r * c + j] }
                for j in 0..<c { gi[r * c + j] = (g[r * c + j] - probs[r * c + j] * s) / temperature }
            }
            return [gi]
        }
    }
}

/// Row-wise softmax and log-softmax of x/T (rows of `columns` values), numerically stable.
public func softmaxRows(_ x: [Float], columns c: Int, temperature: Float = 1) -> (probabilities: [Float], logProbabilities: [Float]) {
    let n = x.count
    var probs = [Float](repeating: 0, count: n)
    var logs = [Float](repeating: 0, count: n)
    let rows = n / Swift.max(c, 1)
    let invT = 1 / temperature
    x.withUnsafeBufferPointer { px in
        probs.withUnsafeMutableBufferPointer { pp in
            logs.withUnsafeMutableBufferPointer { pl in
                for r in 0..<rows {
                    let base = r * c
                    var m = -Float.infinity
                    for j in 0..<c { m = Swift.max(m, px[base + j] * invT) }
                    var s: Float = 0
                    for j in 0..<c {
                        let z = px[base + j] * invT - m
                        pl[base + j] = z
                        let e = expf(z)
                        pp[base + j] = e
                        s += e
                    }
                    let logS = logf(s), invS = 1 / s
                    for j in 0..<c { pp[base + j] *= invS; pl[base + j] -= logS }
                }
            }
        }
    }
    return (probs, logs)
}
