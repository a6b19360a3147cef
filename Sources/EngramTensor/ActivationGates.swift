/// ReLU gates recorded at one point and replayed at others: `relu()` inside `ActivationGates.$current.withValue(g)`
/// records which inputs were positive while `g` is recording, and once `freeze()` is called applies those gates
/// (y = x where the recorded input was positive, else 0; the gradient passes on the same units) to the same calls in
/// the same order, whatever the new inputs' signs.
///
/// What it is for: a ReLU network's loss is smooth in the parameters only inside one activation pattern. A central
/// difference of gradients, (∇L(θ + εv) − ∇L(θ − εv)) / 2ε, taken across a kink adds the jump of a unit's gradient
/// divided by 2ε — noise that does not shrink with ε (fewer units cross, each costs more). With the pattern held at
/// θ's, both gradients are of the same smooth piece, whose Hessian at θ is the network's Hessian there (almost
/// everywhere), so the difference approximates Hv to O(ε²). Max-pooling's choices are not held.
public final class ActivationGates: @unchecked Sendable {
    /// The gates of the scope's `relu()` calls, when one is set.
    @TaskLocal public static var current: ActivationGates?

    private var masks: [[Bool]] = []
    private var cursor = 0
    public private(set) var isFrozen = false

    public init() {}

    /// Stops recording: later calls replay the recorded gates, from the first.
    public func freeze() {
        isFrozen = true
        cursor = 0
    }

    /// Starts the next replay from the first recorded gate (a forward pass over the same inputs in the same order).
    public func rewind() { cursor = 0 }

    /// Number of `relu()` calls recorded.
    public var recordedCount: Int { masks.count }

    func relu(_ x: Tensor) -> Tensor {
        let input = x.scalars
        let mask: [Bool]
        if isFrozen {
            precondition(cursor < masks.count, "ActivationGates: more relu() calls than were recorded (\(masks.count))")
            mask = masks[cursor]
            precondition(mask.count == input.count, "ActivationGates: relu() call \(cursor) has \(input.count) inputs, recorded \(mask.count)")
            cursor += 1
        } else {
            mask = input.map { $0 > 0 }
            masks.append(mask)
        }
        var values = [Float](repeating: 0, count: input.count)
        for i in input.indices where mask[i] { values[i] = input[i] }
        return Tensor.differentiable(shape: x.shape, scalars: values, inputs: [x]) { g in
            var through = [Float](repeating: 0, count: g.count)
            for i in g.indices where mask[i] { through[i] = g[i] }
            return [through]
        }
    }
}
