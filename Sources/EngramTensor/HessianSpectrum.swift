/// The curvature of a loss from its gradient alone: Hessian-vector products by central differences of gradients,
/// the largest eigenvalues by power iteration with deflation, and the trace by Hutchinson's estimator — what
/// PyHessian (Yao et al. 2020) computes with a second backward pass, for an engine without one.
public enum HessianSpectrum {
    /// Hv ≈ (∇L(θ + εv) − ∇L(θ − εv)) / 2ε for a unit `direction` v: exact for a quadratic, O(ε²) otherwise.
    /// The float rounding of the two gradients, divided by 2ε, bounds how small ε may be (10⁻³ suits float32
    /// gradients of order 1 and curvatures above 10⁻²).
    public static func vectorProduct(gradient: ([Float]) -> [Float], at theta: [Float], direction v: [Float], step: Float) -> [Float] {
        precondition(theta.count == v.count && step > 0, "HessianSpectrum: \(theta.count) parameters, direction of \(v.count), step \(step)")
        let plus = gradient(zip(theta, v).map { $0 + step * $1 })
        let minus = gradient(zip(theta, v).map { $0 - step * $1 })
        return zip(plus, minus).map { ($0 - $1) / (2 * step) }
    }

    /// One eigenpair of the Hessian: the Rayleigh quotient vᵀHv of the unit vector v, the residual ‖Hv − λv‖, the
    /// iterations spent, and whether the quotient settled within the tolerance (if not, the first value is still a
    /// lower bound of the largest eigenvalue — a Rayleigh quotient never exceeds it — and the residual says how far v
    /// is from an eigenvector).
    public struct Eigenpair: Sendable {
        public let value: Double
        public let vector: [Float]
        public let residual: Double
        public let iterations: Int
        public let converged: Bool
    }

    /// The `count` eigenvalues of largest magnitude, in the order found, by power iteration: from a seeded random
    /// unit vector, v ← Hv / ‖Hv‖ with every iterate kept orthogonal to the eigenvectors found before (deflation),
    /// until the Rayleigh quotient changes by less than `tolerance` (relative) or after `maxIterations`.
    /// `product` computes Hv.
    public static func topEigenpairs(count: Int, dimension: Int, maxIterations: Int = 100, tolerance: Double = 1e-4,
                                     random: inout RandomGenerator, product: ([Float]) -> [Float]) -> [Eigenpair] {
        var found: [Eigenpair] = []
        for _ in 0..<min(count, dimension) {
            var v = orthogonalized((0..<dimension).map { _ in random.nextNormal() }, against: found.map(\.vector))
            normalize(&v)
            var value = 0.0, hv = product(v), iterations = 1, converged = false
            value = dot(v, hv)
            while iterations < maxIterations {
                var next = orthogonalized(hv, against: found.map(\.vector))
                guard normalize(&next) > 0 else { break }
                v = next
                hv = product(v)
                iterations += 1
                let updated = dot(v, hv)
                converged = abs(updated - value) <= tolerance * max(abs(updated), 1e-12)
                value = updated
                if converged { break }
            }
            let residual = zip(hv, v).reduce(0.0) { $0 + (Double($1.0) - value * Double($1.1)) * (Double($1.0) - value * Double($1.1)) }.squareRoot()
            found.append(Eigenpair(value: value, vector: v, residual: residual, iterations: iterations, converged: converged))
        }
        return found
    }

    /// Hutchinson's estimator of tr(H) = E[vᵀHv] over Rademacher vectors v (entries ±1): the mean of `samples` draws
    /// and its standard error (nil for one draw).
    public static func hutchinsonTrace(samples: Int, dimension: Int, random: inout RandomGenerator,
                                       product: ([Float]) -> [Float]) -> (trace: Double, standardError: Double?) {
        precondition(samples >= 1, "HessianSpectrum: Hutchinson needs at least one sample")
        var draws: [Double] = []
        for _ in 0..<samples {
            let v: [Float] = (0..<dimension).map { _ in random.next() & 1 == 0 ? -1 : 1 }
            draws.append(dot(v, product(v)))
        }
        let mean = draws.reduce(0, +) / Double(samples)
        guard samples > 1 else { return (mean, nil) }
        let variance = draws.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(samples - 1)
        return (mean, (variance / Double(samples)).squareRoot())
    }

    static func dot(_ a: [Float], _ b: [Float]) -> Double { zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } }

    /// v scaled to unit length; returns the norm it had (0: v left as is).
    @discardableResult
    static func normalize(_ v: inout [Float]) -> Double {
        let norm = dot(v, v).squareRoot()
        guard norm > 0 else { return 0 }
        for i in v.indices { v[i] = Float(Double(v[i]) / norm) }
        return norm
    }

    /// v minus its components along the orthonormal `basis` (twice, for rounding).
    static func orthogonalized(_ v: [Float], against basis: [[Float]]) -> [Float] {
        var v = v
        for _ in 0..<2 {
            for b in basis {
                let c = Float(dot(v, b))
                for i in v.indices { v[i] -= c * b[i] }
            }
        }
        return v
    }
}
