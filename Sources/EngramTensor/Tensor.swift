/// A dense Float32 tensor: contiguous row-major storage plus a shape, and a node in the
/// reverse-mode autodiff graph.
///
/// `Tensor` is a class: a parameter is one object that layers, optimizers, strategies and
/// checkpoints all refer to, and the autodiff graph links results to the tensors they came from.
/// Storage is a Swift array (copy-on-write), so reshapes and results that keep their input's
/// values share memory until one of them is written.
public final class Tensor {
    /// The extent of each axis, outermost first. A scalar has shape `[]`.
    public private(set) var shape: [Int]
    /// The values, row-major. Writing them changes the tensor in place (as an optimizer step does).
    public var scalars: [Float] {
        get { storage }
        _modify {
            let n = storage.count
            yield &storage
            precondition(storage.count == n, "scalars must keep the tensor's element count (\(n))")
        }
    }
    @usableFromInline internal var storage: [Float]
    /// Whether gradients flow to this tensor. Set it on leaves (parameters, inputs);
    /// results of operations on such tensors get it automatically.
    public var requiresGrad: Bool
    /// The gradient accumulated by `backward()` (PyTorch semantics: it adds up until `zeroGrad()`).
    /// Filled for leaves that require gradients and for tensors that called `retainGrad()`.
    public var grad: Tensor?
    /// An optional label, used in error messages and graph dumps.
    public var label: String?

    /// The operation that produced this tensor, if it requires gradients and is not a leaf.
    internal var gradNode: GradNode?
    internal var retainsGrad = false
    /// Set when `backward()` released the operation that produced this tensor.
    internal var graphReleased = false

    /// Creates a tensor holding `scalars` in the given `shape` (row-major).
    public init(shape: [Int], scalars: [Float], requiresGrad: Bool = false) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative extent in shape \(shape)")
        precondition(shape.reduce(1, *) == scalars.count,
                     "shape \(shape) holds \(shape.reduce(1, *)) elements, got \(scalars.count)")
        self.shape = shape
        self.storage = scalars
        self.requiresGrad = requiresGrad
    }

    /// A scalar (rank-0) tensor.
    public convenience init(_ value: Float, requiresGrad: Bool = false) {
        self.init(shape: [], scalars: [value], requiresGrad: requiresGrad)
    }

    /// A rank-1 tensor of the given values.
    public convenience init(_ values: [Float], requiresGrad: Bool = false) {
        self.init(shape: [values.count], scalars: values, requiresGrad: requiresGrad)
    }

    /// Number of elements.
    public var count: Int { storage.count }
    /// Number of axes.
    public var rank: Int { shape.count }
    /// Whether this tensor was made by an operation (not a leaf of the graph).
    public var isLeaf: Bool { gradNode == nil }
    /// The value of a one-element tensor.
    public var item: Float {
        precondition(scalars.count == 1, "item needs a one-element tensor, shape is \(shape)")
        return scalars[0]
    }

    /// A new leaf with the same values and shape, cut from the graph.
    public func detached() -> Tensor { Tensor(shape: shape, scalars: scalars) }

    /// Keeps this (non-leaf) tensor's gradient in `grad` after `backward()`, as PyTorch's `retain_grad()`.
    public func retainGrad() { retainsGrad = true }

    /// Clears the accumulated gradient.
    public func zeroGrad() { grad = nil }

    /// Replaces the values with those of `other` (same element count); used to load checkpoints.
    public func assign(_ other: Tensor) {
        precondition(other.shape == shape, "assign: shape \(other.shape) differs from \(shape)")
        scalars = other.scalars
    }

    // MARK: Creation

    /// All zeros.
    public static func zeros(_ shape: [Int], requiresGrad: Bool = false) -> Tensor {
        Tensor(shape: shape, scalars: [Float](repeating: 0, count: shape.reduce(1, *)), requiresGrad: requiresGrad)
    }
    /// All ones.
    public static func ones(_ shape: [Int], requiresGrad: Bool = false) -> Tensor {
        full(shape, 1, requiresGrad: requiresGrad)
    }
    /// Every element equal to `value`.
    public static func full(_ shape: [Int], _ value: Float, requiresGrad: Bool = false) -> Tensor {
        Tensor(shape: shape, scalars: [Float](repeating: value, count: shape.reduce(1, *)), requiresGrad: requiresGrad)
    }
    /// `start, start + step, …` below `end`, as a rank-1 tensor.
    public static func arange(_ start: Float = 0, _ end: Float, step: Float = 1) -> Tensor {
        precondition(step != 0, "arange: step must not be zero")
        var values: [Float] = []
        var v = start
        while step > 0 ? v < end : v > end { values.append(v); v += step }
        return Tensor(values)
    }
    /// Independent N(mean, std²) samples.
    public static func normal(_ shape: [Int], mean: Float = 0, std: Float = 1,
                              using rng: inout RandomGenerator, requiresGrad: Bool = false) -> Tensor {
        let n = shape.reduce(1, *)
        var values = [Float](repeating: 0, count: n)
        for i in 0..<n { values[i] = mean + std * rng.nextNormal() }
        return Tensor(shape: shape, scalars: values, requiresGrad: requiresGrad)
    }
    /// Independent samples uniform in [low, high).
    public static func uniform(_ shape: [Int], low: Float = 0, high: Float = 1,
                               using rng: inout RandomGenerator, requiresGrad: Bool = false) -> Tensor {
        let n = shape.reduce(1, *)
        var values = [Float](repeating: 0, count: n)
        let width = high - low
        for i in 0..<n { values[i] = low + width * rng.nextFloat() }
        return Tensor(shape: shape, scalars: values, requiresGrad: requiresGrad)
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let shown = scalars.prefix(8).map { "\($0)" }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(shown)\(scalars.count > 8 ? ", …" : "")])"
    }
}
