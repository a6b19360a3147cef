// Finite-difference gradient checking: part of the library so that every new differentiable
// operation (in Engram or in user code) can be checked the way Engram's own are.

/// Compares reverse-mode gradients with central differences.
///
/// The function `f` may return a tensor of any shape; the checker projects it onto a fixed random
/// direction R (seeded), L = Σ f()·R, so every output element matters. The analytic gradient is
/// obtained twice — `gradients(withRespectTo:seed:)` and `backward(seed:)` + `.grad` — and both must
/// agree. The numerical gradient perturbs each checked entry by ±h in place (forward passes run
/// without recording), accumulates L in Double and divides by the actual Float step.
///
/// - Parameters:
///   - wrt: leaves (inputs, parameters) that `f` reads; each must require gradients.
///   - step: h; entries are moved to x ± h.
///   - tolerance: relative tolerance per entry (2e-3 by default: every op passes at 5e-4 but one
///     curved loss, and a gradient off by 1 % fails); an absolute floor of `tolerance` × 10 % of
///     the tensor's largest analytic entry absorbs Float32 noise on near-zero entries.
///   - entriesPerTensor: check only this many (seeded random) entries per tensor; nil = all.
///   - kinkSteps: for networks with ReLUs inside (whose kinks cannot be moved away from the
///     evaluation point, e.g. after a BatchNorm), further smaller steps to try when the central
///     difference at `step` disagrees; an entry then passes if the central or either one-sided
///     difference at some step agrees (a kink crossed on one side leaves the other side exact).
/// - Returns: a description of each mismatch (empty when everything agrees).
public func gradientMismatches(wrt: [Tensor], step h: Float = 1e-2, tolerance: Double = 2e-3,
                        entriesPerTensor: Int? = nil, kinkSteps: [Float] = [], seed: UInt64 = 0xC0FFEE,
                        _ f: () -> Tensor) -> [String] {
    var problems: [String] = []
    for t in wrt where !t.requiresGrad { problems.append("a checked tensor \(t.shape) does not require gradients") }
    if !problems.isEmpty { return problems }
    for t in wrt { t.zeroGrad() }

    let y = f()
    guard y.requiresGrad else { return ["the result does not require gradients"] }
    var rng = RandomGenerator(seed: seed, label: "gradient-check/projection")
    let r = Tensor.normal(y.shape, using: &rng)
    let analytic = y.gradients(withRespectTo: wrt, seed: r)

    // The same through backward() and .grad.
    let y2 = f()
    y2.backward(seed: r)
    for (k, t) in wrt.enumerated() {
        guard let g = t.grad else { problems.append("tensor #\(k) \(t.shape): backward() left no grad"); continue }
        for i in 0..<t.count {
            let (a, b) = (Double(analytic[k].scalars[i]), Double(g.scalars[i]))
            if Swift.abs(a - b) > 1e-5 * Swift.max(Swift.abs(a), Swift.abs(b), 1e-3) {
                problems.append("tensor #\(k) entry \(i): gradients(withRespectTo:) gives \(a), backward() gives \(b)")
                break
            }
        }
        t.zeroGrad()
    }

    let rv = r.scalars.map(Double.init)
    func projected() -> Double {
        let out = GradMode.withoutGrad { f() }
        precondition(out.count == rv.count, "f changed its output shape")
        var s: Double = 0
        for (v, w) in zip(out.scalars, rv) { s += Double(v) * w }
        return s
    }

    var pick = RandomGenerator(seed: seed, label: "gradient-check/entries")
    for (k, t) in wrt.enumerated() {
        let ana = analytic[k].scalars
        let largest = ana.reduce(0) { Swift.max($0, Double(Swift.abs($1))) }
        let floor = tolerance * 0.1 * largest + 1e-6
        var indices = Array(0..<t.count)
        if let limit = entriesPerTensor, limit < t.count {
            pick.shuffle(&indices)
            indices = Array(indices.prefix(limit))
        }
        var failures = 0
        var numericLargest = 0.0
        for i in indices {
            let original = t.scalars[i]
            let a = Double(ana[i])
            func agrees(_ numeric: Double) -> Bool {
                Swift.abs(numeric - a) <= tolerance * Swift.max(Swift.abs(numeric), Swift.abs(a)) + floor
            }
            /// Central, forward and backward differences at step s.
            func differences(_ s: Float) -> (central: Double, forward: Double, backward: Double) {
                let up = original + s, down = original - s
                t.scalars[i] = up
                let lp = projected()
                t.scalars[i] = down
                let lm = projected()
                t.scalars[i] = original
                let central = (lp - lm) / (Double(up) - Double(down))
                if kinkSteps.isEmpty { return (central, central, central) }
                let l0 = projected()
                return (central, (lp - l0) / (Double(up) - Double(original)), (l0 - lm) / (Double(original) - Double(down)))
            }
            let numeric = differences(h).central
            numericLargest = Swift.max(numericLargest, Swift.abs(numeric))
            var ok = agrees(numeric)
            for s in [h] + kinkSteps where !ok {
                let d = differences(s)
                ok = agrees(d.central) || agrees(d.forward) || agrees(d.backward)
            }
            if !ok {
                failures += 1
                if failures <= 4 {
                    problems.append("tensor #\(k) \(t.shape) entry \(i): autodiff \(a), central difference \(numeric)")
                }
            }
        }
        if failures > 4 { problems.append("tensor #\(k): \(failures - 4) more mismatches") }
        if largest == 0 && numericLargest == 0 {
            problems.append("tensor #\(k) \(t.shape): gradient is identically zero (the check would prove nothing)")
        }
    }
    return problems
}
