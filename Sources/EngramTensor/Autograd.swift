/// The record of one differentiable operation: its inputs and how to turn the gradient of its
/// output into gradients of its inputs (vector–Jacobian product).
final class GradNode {
    let inputs: [Tensor]
    let backward: ([Float]) -> [[Float]?]
    init(inputs: [Tensor], backward: @escaping ([Float]) -> [[Float]?]) {
        self.inputs = inputs
        self.backward = backward
    }
}

/// Whether operations record the autodiff graph on the current task/thread.
public enum GradMode {
    @TaskLocal public static var isEnabled: Bool = true

    /// Runs `body` without recording gradients (evaluation, importance bookkeeping, optimizer steps).
    public static func withoutGrad<R>(_ body: () throws -> R) rethrows -> R {
        try $isEnabled.withValue(false, operation: body)
    }
}

extension Tensor {
    /// Builds the result of a differentiable operation.
    ///
    /// This is the extension point for new operations anywhere in Engram: compute the values,
    /// then give the vector–Jacobian product as `backward`, which receives the gradient of the
    /// result (same element count as `scalars`) and returns one gradient per input, each with its
    /// input's element count, or `nil` where an input gets no gradient. `backward` is only kept when
    /// gradient recording is on and some input requires gradients.
    public static func differentiable(
        shape: [Int], scalars: [Float], inputs: [Tensor],
        backward: @escaping ([Float]) -> [[Float]?]
    ) -> Tensor {
        let out = Tensor(shape: shape, scalars: scalars)
        if GradMode.isEnabled, inputs.contains(where: { $0.requiresGrad }) {
            out.requiresGrad = true
            out.gradNode = GradNode(inputs: inputs, backward: backward)
        }
        return out
    }

    /// Whether an operation on `inputs` must record its backward function.
    @inline(__always)
    static func needsGrad(_ inputs: Tensor...) -> Bool {
        GradMode.isEnabled && inputs.contains(where: { $0.requiresGrad })
    }

    /// Back-propagates from this tensor, accumulating into `grad` of every leaf that requires
    /// gradients (and of tensors that called `retainGrad()`).
    ///
    /// As in PyTorch, the graph is released afterwards (so the values it saved are freed and
    /// parameters can be updated in place without copies) unless `retainGraph` is true.
    ///
    /// - Parameter seed: ∂L/∂self; defaults to ones, so a scalar loss needs none.
    public func backward(seed: Tensor? = nil, retainGraph: Bool = false) {
        if let seed { precondition(seed.count == count, "backward: seed has \(seed.count) elements, tensor \(count)") }
        let grads = Tensor.propagate(from: self, seed: seed?.scalars, keep: [], release: !retainGraph)
        for (tensor, g) in grads.accumulate {
            if let existing = tensor.grad {
                var sum = existing.scalars
                addInPlace(&sum, g)
                tensor.grad = Tensor(shape: tensor.shape, scalars: sum)
            } else {
                tensor.grad = Tensor(shape: tensor.shape, scalars: g)
            }
        }
    }

    /// Gradients of this tensor (a scalar, or weighted by `seed`) with respect to `targets`,
    /// which may be leaves or intermediate activations. Leaves' `grad` are left untouched.
    /// A target the result does not depend on gets zeros.
    public func gradients(withRespectTo targets: [Tensor], seed: Tensor? = nil, retainGraph: Bool = false) -> [Tensor] {
        let keep = Set(targets.map { ObjectIdentifier($0) })
        let result = Tensor.propagate(from: self, seed: seed?.scalars, keep: keep, accumulateLeaves: false,
                                      release: !retainGraph)
        return targets.map { t in
            Tensor(shape: t.shape, scalars: result.kept[ObjectIdentifier(t)] ?? [Float](repeating: 0, count: t.count))
        }
    }

    private struct Propagation {
        var accumulate: [(Tensor, [Float])] = []
        var kept: [ObjectIdentifier: [Float]] = [:]
    }

    private static func propagate(from root: Tensor, seed: [Float]?, keep: Set<ObjectIdentifier>,
                                  accumulateLeaves: Bool = true, release: Bool) -> Propagation {
        precondition(root.requiresGrad, "backward: the tensor does not require gradients (no input requires them, or it was made without grad)")

        // Topological order by iterative depth-first search.
        var order: [Tensor] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Tensor, Bool)] = [(root, false)]
        while let (t, expanded) = stack.popLast() {
            if expanded { order.append(t); continue }
            let id = ObjectIdentifier(t)
            if visited.contains(id) { continue }
            visited.insert(id)
            precondition(!t.graphReleased,
                         "backward through a graph that an earlier backward already released (pass retainGraph: true to the first one)")
            stack.append((t, true))
            if let node = t.gradNode {
                for input in node.inputs where input.requiresGrad && !visited.contains(ObjectIdentifier(input)) {
                    stack.append((input, false))
                }
            }
        }
        var result = Propagation()
        var pending: [ObjectIdentifier: [Float]] = [:]
        pending[ObjectIdentifier(root)] = seed ?? [Float](repeating: 1, count: root.count)
        for t in order.reversed() {
            let id = ObjectIdentifier(t)
            guard let g = pending.removeValue(forKey: id) else { continue }
            if keep.contains(id) { result.kept[id] = g }
            if accumulateLeaves && (t.gradNode == nil || t.retainsGrad) { result.accumulate.append((t, g)) }
            guard let node = t.gradNode else { continue }
            if release { t.gradNode = nil; t.graphReleased = true }
            let inputGrads = node.backward(g)
            for (input, ig) in zip(node.inputs, inputGrads) where input.requiresGrad {
                guard let ig else { continue }
                precondition(ig.count == input.count, "internal: gradient size \(ig.count) for input of \(input.count) elements")
                let iid = ObjectIdentifier(input)
                if pending[iid] == nil {
                    pending[iid] = ig
                } else {
                    addInPlace(&pending[iid]!, ig)
                }
            }
        }
        return result
    }
}

/// a += b, element-wise.
@inline(__always)
func addInPlace(_ a: inout [Float], _ b: [Float]) {
    let n = a.count
    a.withUnsafeMutableBufferPointer { pa in
        b.withUnsafeBufferPointer { pb in
            for i in 0..<n { pa[i] += pb[i] }
        }
    }
}
