#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: Binary operations with broadcasting

extension Tensor {
    /// a + b (broadcasting).
    public static func + (a: Tensor, b: Tensor) -> Tensor {
        let (values, shape) = broadcastBinary(a.scalars, a.shape, b.scalars, b.shape, +)
        let (aShape, bShape) = (a.shape, b.shape)
        return differentiable(shape: shape, scalars: values, inputs: [a, b]) { g in
            [sumToShape(g, from: shape, to: aShape), sumToShape(g, from: shape, to: bShape)]
        }
    }

    /// a − b (broadcasting).
    public static func - (a: Tensor, b: Tensor) -> Tensor {
        let (values, shape) = broadcastBinary(a.scalars, a.shape, b.scalars, b.shape, -)
        let (aShape, bShape) = (a.shape, b.shape)
        return differentiable(shape: shape, scalars: values, inputs: [a, b]) { g in
            [sumToShape(g, from: shape, to: aShape),
             sumToShape(mapScalars(g) { -$0 }, from: shape, to: bShape)]
        }
    }

    /// a ∘ b (element-wise product, broadcasting).
    public static func * (a: Tensor, b: Tensor) -> Tensor {
        let (values, shape) = broadcastBinary(a.scalars, a.shape, b.scalars, b.shape, *)
        let (av, bv, aShape, bShape) = (a.scalars, b.scalars, a.shape, b.shape)
        let (needA, needB) = (a.requiresGrad, b.requiresGrad)
        return differentiable(shape: shape, scalars: values, inputs: [a, b]) { g in
            [needA ? sumToShape(broadcastBinary(g, shape, bv, bShape, *).0, from: shape, to: aShape) : nil,
             needB ? sumToShape(broadcastBinary(g, shape, av, aShape, *).0, from: shape, to: bShape) : nil]
        }
    }

    /// a ÷ b (element-wise, broadcasting).
    public static func / (a: Tensor, b: Tensor) -> Tensor {
        let (values, shape) = broadcastBinary(a.scalars, a.shape, b.scalars, b.shape, /)
        let (bv, aShape, bShape) = (b.scalars, a.shape, b.shape)
        let (needA, needB) = (a.requiresGrad, b.requiresGrad)
        return differentiable(shape: shape, scalars: values, inputs: [a, b]) { g in
            // ∂(a/b)/∂a = 1/b ; ∂(a/b)/∂b = −(a/b)/b
            let ga = needA ? sumToShape(broadcastBinary(g, shape, bv, bShape, /).0, from: shape, to: aShape) : nil
            var gb: [Float]? = nil
            if needB {
                let q = broadcastBinary(values, shape, bv, bShape, /).0
                gb = sumToShape(zipScalars(g, q) { -$0 * $1 }, from: shape, to: bShape)
            }
            return [ga, gb]
        }
    }

    public static prefix func - (a: Tensor) -> Tensor { a.unary({ -$0 }, derivative: { _, _ in -1 }) }

    public static func + (a: Tensor, s: Float) -> Tensor { a.unary({ $0 + s }, derivative: { _, _ in 1 }) }
    public static func + (s: Float, a: Tensor) -> Tensor { a + s }
    public static func - (a: Tensor, s: Float) -> Tensor { a + (-s) }
    public static func - (s: Float, a: Tensor) -> Tensor { a.unary({ s - $0 }, derivative: { _, _ in -1 }) }
    public static func * (a: Tensor, s: Float) -> Tensor { a.unary({ $0 * s }, derivative: { _, _ in s }) }
    public static func * (s: Float, a: Tensor) -> Tensor { a * s }
    public static func / (a: Tensor, s: Float) -> Tensor { a * (1 / s) }
    public static func / (s: Float, a: Tensor) -> Tensor {
        a.unary({ s / $0 }, derivative: { x, y in -y / x })
    }
}

// MARK: Unary operations

extension Tensor {
    /// Applies `f` element-wise; `derivative(x, y)` gives f′ at input x with output y = f(x).
    @inline(__always)
    func unary(_ f: (Float) -> Float, derivative: @escaping (Float, Float) -> Float) -> Tensor {
        let values = mapScalars(scalars, f)
        guard Tensor.needsGrad(self) else { return Tensor(shape: shape, scalars: values) }
        let x = scalars
        return Tensor.differentiable(shape: shape, scalars: values, inputs: [self]) { g in
            let n = g.count
            let out = [Float](unsafeUninitializedCapacity: n) { buf, initialized in
                g.withUnsafeBufferPointer { pg in
                    x.withUnsafeBufferPointer { px in
                        values.withUnsafeBufferPointer { py in
                            for i in 0..<n { buf[i] = pg[i] * derivative(px[i], py[i]) }
                        }
                    }
                }
                initialized = n
            }
            return [out]
        }
    }

    /// eˣ.
    public func exp() -> Tensor { unary({ expf($0) }, derivative: { _, y in y }) }
    /// ln x.
    public func log() -> Tensor { unary({ logf($0) }, derivative: { x, _ in 1 / x }) }
    /// √x.
    public func sqrt() -> Tensor { unary({ sqrtf($0) }, derivative: { _, y in 0.5 / y }) }
    /// |x| (subgradient 0 at 0).
    public func abs() -> Tensor {
        unary({ Swift.abs($0) }, derivative: { x, _ in x > 0 ? 1 : (x < 0 ? -1 : 0) })
    }
    /// xᵖ for a constant exponent p.
    public func pow(_ p: Float) -> Tensor {
        if p == 2 { return unary({ $0 * $0 }, derivative: { x, _ in 2 * x }) }
        return unary({ powf($0, p) }, derivative: { x, _ in p * powf(x, p - 1) })
    }
    /// x² (same as `pow(2)`).
    public func squared() -> Tensor { pow(2) }
    /// min(max(x, low), high); the gradient passes only inside the interval.
    public func clamp(min low: Float = -.infinity, max high: Float = .infinity) -> Tensor {
        unary({ Swift.min(Swift.max($0, low), high) }, derivative: { x, _ in x >= low && x <= high ? 1 : 0 })
    }
    /// max(x, 0) (or the gates of `ActivationGates.current`, when a scope sets one).
    public func relu() -> Tensor {
        if let gates = ActivationGates.current { return gates.relu(self) }
        let values = mapScalars(scalars) { $0 > 0 ? $0 : 0 }
        return Tensor.differentiable(shape: shape, scalars: values, inputs: [self]) { g in
            [zipScalars(g, values) { $1 > 0 ? $0 : 0 }]
        }
    }
    /// 1 / (1 + e⁻ˣ), computed without overflow.
    public func sigmoid() -> Tensor {
        unary({ $0 >= 0 ? 1 / (1 + expf(-$0)) : expf($0) / (1 + expf($0)) }, derivative: { _, y in y * (1 - y) })
    }
    /// tanh x.
    public func tanh() -> Tensor { unary({ tanhf($0) }, derivative: { _, y in 1 - y * y }) }
}
