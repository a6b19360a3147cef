import EngramTensor
import EngramData
import EngramNN
import CEngramKernels

/// One array of values per named parameter (importance Ω, anchors θ*, path integrals ω …).
public typealias ParameterMap = [String: [Float]]

extension Dictionary where Key == String, Value == [Float] {
    /// Zeros shaped like each of `parameters`.
    public static func zeros(like parameters: [(String, Tensor)]) -> ParameterMap {
        Dictionary(uniqueKeysWithValues: parameters.map { ($0.0, [Float](repeating: 0, count: $0.1.count)) })
    }

    /// A copy of the parameters' current values.
    public static func values(of parameters: [(String, Tensor)]) -> ParameterMap {
        Dictionary(uniqueKeysWithValues: parameters.map { ($0.0, $0.1.scalars) })
    }

    /// Number of scalars held.
    public var scalarCount: Int { values.reduce(0) { $0 + $1.count } }

    /// Bytes held (Float32).
    public var byteCount: Int { scalarCount * MemoryLayout<Float>.size }

    /// self[k] ← a·self[k] + b·other[k] for every key of `other` (missing keys start at zero).
    public mutating func blend(_ a: Float, _ b: Float, _ other: ParameterMap) {
        for (name, values) in other {
            var current = self[name] ?? [Float](repeating: 0, count: values.count)
            precondition(current.count == values.count, "parameter '\(name)': \(current.count) vs \(values.count) values")
            current.withUnsafeMutableBufferPointer { c in
                values.withUnsafeBufferPointer { v in for i in 0..<c.count { c[i] = a * c[i] + b * v[i] } }
            }
            self[name] = current
        }
    }

    /// Tensors for a checkpoint, named `prefix.parameter`.
    public func tensors(prefix: String) -> [(String, Tensor)] {
        keys.sorted().map { ("\(prefix).\($0)", Tensor(self[$0]!)) }
    }

    /// Reads back what `tensors(prefix:)` wrote.
    public static func from(_ state: [String: Tensor], prefix: String) -> ParameterMap {
        var map = ParameterMap()
        for (name, t) in state where name.hasPrefix(prefix + ".") {
            map[String(name.dropFirst(prefix.count + 1))] = t.scalars
        }
        return map
    }
}

/// The quadratic penalty shared by MAS, EWC, SI and RWalk: λ Σᵢ Ωᵢ (θᵢ − θ*ᵢ)², fused into one
/// differentiable operation per parameter (value and gradient 2λΩ(θ − θ*) in one pass).
public func quadraticPenalty(parameters: [(String, Tensor)], importance: ParameterMap, anchor: ParameterMap,
                             strength lambda: Float) -> Tensor? {
    var terms: [Tensor] = []
    for (name, p) in parameters {
        guard let omega = importance[name], let star = anchor[name] else { continue }
        precondition(omega.count == p.count && star.count == p.count, "penalty: '\(name)' has \(p.count) values, Ω \(omega.count), θ* \(star.count)")
        let w = p.scalars
        // The value only reports the loss; its sum runs in blocks (C kernels, split across threads), the gradient
        // element for element as 2λΩ(θ − θ*).
        let value = engram_quadratic_value(w.count, w, omega, star)
        terms.append(Tensor.differentiable(shape: [], scalars: [lambda * Float(value)], inputs: [p]) { g in
            let scale = 2 * lambda * g[0]
            return [[Float](unsafeUninitializedCapacity: w.count) { pg, initialized in
                engram_quadratic_gradient(w.count, scale, w, omega, star, pg.baseAddress)
                initialized = w.count
            }]
        })
    }
    guard var total = terms.first else { return nil }
    for t in terms.dropFirst() { total = total + t }
    return total
}

/// Σ_t Ω_t (θ − θ*_t)² over several (Ω_t, θ*_t) pairs as one quadratic: A (θ − m)² + r, with A = Σ_t Ω_t, the
/// Ω-weighted mean anchor m = Σ_t Ω_t θ*_t / A (0 where A = 0) and the constant r = Σ_t Ω_t (θ*_t − m)² ≥ 0 — the same
/// value and the same gradient 2A(θ − m) = 2 Σ_t Ω_t (θ − θ*_t) up to rounding, in one pass over the parameters per
/// step instead of one per pair. (EWC keeps a pair per task: at task 19 of a 20-task stream at batch 10 the separate
/// penalties took 15 times the time of the training step itself.) With a single pair A = Ω, m = θ* and r = 0 exactly.
public struct ConsolidatedQuadratic: Sendable {
    /// A = Σ_t Ω_t.
    public private(set) var importance = ParameterMap()
    /// m = Σ_t Ω_t θ*_t / A.
    public private(set) var anchor = ParameterMap()
    /// r summed over each parameter's values.
    public private(set) var residual: [String: Double] = [:]

    public init(_ pairs: [(importance: ParameterMap, anchor: ParameterMap)]) {
        if pairs.count == 1 {
            // The pair itself (its arrays shared, not copied).
            (importance, anchor) = (pairs[0].importance, pairs[0].anchor)
            residual = pairs[0].importance.mapValues { _ in 0 }
            return
        }
        // Every parameter any pair covers (a pair without it contributes nothing to its sums).
        for name in Set(pairs.flatMap(\.importance.keys)) {
            let terms = pairs.compactMap { pair -> ([Float], [Float])? in
                guard let omega = pair.importance[name], let star = pair.anchor[name], omega.count == star.count else { return nil }
                return (omega, star)
            }
            guard let count = terms.first?.0.count, terms.allSatisfy({ $0.0.count == count }) else { continue }
            var a = [Float](repeating: 0, count: count), m = [Float](repeating: 0, count: count)
            var r: Double = 0
            for i in 0..<count {
                var sum: Double = 0, weighted: Double = 0
                for (omega, star) in terms { sum += Double(omega[i]); weighted += Double(omega[i]) * Double(star[i]) }
                let mean = sum > 0 ? Float(weighted / sum) : 0
                a[i] = Float(sum)
                m[i] = mean
                for (omega, star) in terms {
                    let d = Double(star[i]) - Double(mean)
                    r += Double(omega[i]) * d * d
                }
            }
            importance[name] = a
            anchor[name] = m
            residual[name] = r
        }
    }

    /// λ Σ_t Σᵢ Ω_t,ᵢ (θᵢ − θ*_t,ᵢ)² over `parameters` = λ (Σ A (θ − m)² + r): one fused operation per parameter.
    public func penalty(parameters: [(String, Tensor)], strength lambda: Float) -> Tensor? {
        guard let quadratic = quadraticPenalty(parameters: parameters, importance: importance, anchor: anchor, strength: lambda) else {
            return nil
        }
        let constant = parameters.reduce(0.0) { $0 + (residual[$1.0] ?? 0) } * Double(lambda)
        return constant == 0 ? quadratic : quadratic + Tensor(Float(constant))
    }

    /// Bytes of A and m (for a single pair, the pair's own arrays).
    public var byteCount: Int { importance.byteCount + anchor.byteCount }
}
