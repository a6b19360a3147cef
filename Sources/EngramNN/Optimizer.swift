import EngramTensor
import CEngramKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Updates named parameters from their gradients.
///
/// Every optimizer honours two kinds of restriction: a parameter in `frozen` is never changed,
/// and a parameter with an update mask (1 = may change, 0 = frozen) changes only where the
/// mask is 1 — its gradient is masked before it enters any running statistic, and the update is
/// masked again (so weight decay cannot move frozen entries). PackNet and MIND build on the masks.
public protocol Optimizer: AnyObject {
    /// The parameters, by stable name.
    var parameters: [(String, Tensor)] { get }
    /// The current learning rate (schedules set it each epoch).
    var learningRate: Float { get set }
    /// Parameters that are not updated at all.
    var frozen: Set<String> { get set }
    /// Per-parameter update masks (1 = may change, 0 = frozen), keyed by parameter name.
    var updateMasks: [String: [Float]] { get set }
    /// Applies one update from the parameters' current `grad`.
    func step()
    /// The optimizer's state (moments, step counts) as named tensors, for checkpoints.
    func stateTensors() -> [(String, Tensor)]
    /// Restores state saved by `stateTensors()`.
    func loadState(_ state: [String: Tensor]) throws
}

extension Optimizer {
    /// Clears every parameter's gradient.
    public func zeroGrad() { for (_, p) in parameters { p.grad = nil } }

    /// Runs `update(p, g, mask)` over raw buffers for every parameter that has a gradient and is
    /// not frozen; `mask` is nil where the parameter has no update mask.
    func forEachTrainable(_ update: (String, UnsafeMutableBufferPointer<Float>, UnsafeBufferPointer<Float>,
                                     UnsafeBufferPointer<Float>?) -> Void) {
        for (name, p) in parameters {
            guard !frozen.contains(name), let grad = p.grad else { continue }
            precondition(grad.count == p.count, "gradient of '\(name)' has \(grad.count) elements, parameter \(p.count)")
            let mask = updateMasks[name]
            if let mask { precondition(mask.count == p.count, "update mask of '\(name)' has \(mask.count) elements, parameter \(p.count)") }
            grad.scalars.withUnsafeBufferPointer { g in
                p.scalars.withUnsafeMutableBufferPointer { w in
                    if let mask {
                        mask.withUnsafeBufferPointer { m in update(name, w, g, m) }
                    } else {
                        update(name, w, g, nil)
                    }
                }
            }
        }
    }
}

/// A per-parameter state array, updated in place.
final class StateBuffer {
    var values: [Float]
    init(_ values: [Float]) { self.values = values }
    init(zeros n: Int) { values = [Float](repeating: 0, count: n) }
}

/// Errors when restoring optimizer state.
public enum OptimizerError: Error, CustomStringConvertible {
    case missingState(String)
    case shapeMismatch(String, expected: Int, found: Int)
    public var description: String {
        switch self {
        case .missingState(let name): "optimizer state '\(name)' is missing from the checkpoint"
        case let .shapeMismatch(name, expected, found): "optimizer state '\(name)' has \(found) elements, expected \(expected)"
        }
    }
}

/// Stochastic gradient descent with PyTorch's semantics:
/// g ← ∇ + λp; b ← μb + g (b = g at the first step); g ← g + μb (Nesterov) or b; p ← p − η g.
public final class SGD: Optimizer {
    public let parameters: [(String, Tensor)]
    public var learningRate: Float
    public let momentum: Float
    public let nesterov: Bool
    public let weightDecay: Float
    public var frozen: Set<String> = []
    public var updateMasks: [String: [Float]] = [:]
    private var buffers: [String: StateBuffer] = [:]

    public init(_ parameters: [(String, Tensor)], learningRate: Float, momentum: Float = 0,
                nesterov: Bool = false, weightDecay: Float = 0) {
        precondition(learningRate >= 0 && momentum >= 0 && weightDecay >= 0, "SGD: negative hyper-parameter")
        precondition(!nesterov || momentum > 0, "SGD: Nesterov needs momentum > 0")
        self.parameters = parameters
        self.learningRate = learningRate
        self.momentum = momentum
        self.nesterov = nesterov
        self.weightDecay = weightDecay
    }

    public func step() {
        let (lr, mu, wd, nesterov) = (learningRate, momentum, weightDecay, nesterov)
        forEachTrainable { name, w, g, mask in
            let n = w.count
            let fresh = buffers[name] == nil
            let buffer = buffers[name] ?? StateBuffer(zeros: mu != 0 ? n : 0)
            buffers[name] = buffer
            buffer.values.withUnsafeMutableBufferPointer { b in
                if let mask {
                    for i in 0..<n {
                        var d = g[i] * mask[i] + wd * w[i]
                        if mu != 0 {
                            b[i] = fresh ? d : mu * b[i] + d
                            d = nesterov ? d + mu * b[i] : b[i]
                        }
                        w[i] -= lr * d * mask[i]
                    }
                } else if mu == 0 {
                    for i in 0..<n { w[i] -= lr * (g[i] + wd * w[i]) }
                } else if fresh {
                    for i in 0..<n {
                        let d = g[i] + wd * w[i]
                        b[i] = d
                        w[i] -= lr * (nesterov ? d + mu * d : d)
                    }
                } else if nesterov {
                    for i in 0..<n {
                        let d = g[i] + wd * w[i]
                        b[i] = mu * b[i] + d
                        w[i] -= lr * (d + mu * b[i])
                    }
                } else {
                    for i in 0..<n {
                        b[i] = mu * b[i] + g[i] + wd * w[i]
                        w[i] -= lr * b[i]
                    }
                }
            }
        }
    }

    public func stateTensors() -> [(String, Tensor)] {
        momentum == 0 ? [] : buffers.keys.sorted().map { ("momentum_buffer.\($0)", Tensor(buffers[$0]!.values)) }
    }

    public func loadState(_ state: [String: Tensor]) throws {
        buffers = [:]
        for (name, p) in parameters {
            guard let t = state["momentum_buffer.\(name)"] else { continue }
            guard t.count == p.count else { throw OptimizerError.shapeMismatch("momentum_buffer.\(name)", expected: p.count, found: t.count) }
            buffers[name] = StateBuffer(t.scalars)
        }
    }
}

/// Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019), PyTorch's semantics:
/// m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²; p ← p − η·m̂/(√v̂ + ε) with m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ).
/// Adam adds λp to g (L2); AdamW instead decays p ← p(1 − ηλ) before the step.
public final class Adam: Optimizer {
    public let parameters: [(String, Tensor)]
    public var learningRate: Float
    public let beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float
    /// Decoupled weight decay (AdamW).
    public let decoupled: Bool
    public var frozen: Set<String> = []
    public var updateMasks: [String: [Float]] = [:]
    private var m: [String: StateBuffer] = [:]
    private var v: [String: StateBuffer] = [:]
    private var steps: [String: Int] = [:]

    public init(_ parameters: [(String, Tensor)], learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
                epsilon: Float = 1e-8, weightDecay: Float = 0, decoupled: Bool = false) {
        precondition(learningRate >= 0 && (0..<1).contains(beta1) && (0..<1).contains(beta2) && epsilon > 0 && weightDecay >= 0,
                     "Adam: invalid hyper-parameters")
        self.parameters = parameters
        self.learningRate = learningRate
        self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.decoupled = decoupled
    }

    /// AdamW with PyTorch's default weight decay 0.01.
    public static func adamW(_ parameters: [(String, Tensor)], learningRate: Float = 1e-3, beta1: Float = 0.9,
                             beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0.01) -> Adam {
        Adam(parameters, learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon,
             weightDecay: weightDecay, decoupled: true)
    }

    public func step() {
        let (lr, b1, b2, eps, wd, decoupled) = (learningRate, beta1, beta2, epsilon, weightDecay, decoupled)
        forEachTrainable { name, w, g, mask in
            let n = w.count
            let t = (steps[name] ?? 0) + 1
            steps[name] = t
            let first = m[name] ?? StateBuffer(zeros: n), second = v[name] ?? StateBuffer(zeros: n)
            m[name] = first
            v[name] = second
            let c1 = 1 - powf(b1, Float(t)), c2 = 1 - powf(b2, Float(t))
            let stepSize = lr / c1, c2Root = c2.squareRoot()
            first.values.withUnsafeMutableBufferPointer { mm in
                second.values.withUnsafeMutableBufferPointer { vv in
                    if mask == nil {
                        Self.unmaskedStep(n: n, w: w.baseAddress!, g: g.baseAddress!, m: mm.baseAddress!, v: vv.baseAddress!,
                                          b1: b1, b2: b2, eps: eps, wd: wd, lr: lr, stepSize: stepSize, c2Root: c2Root,
                                          decoupled: decoupled)
                        return
                    }
                    for i in 0..<n {
                        let keep: Float = mask?[i] ?? 1
                        var gi = g[i] * keep
                        if !decoupled { gi += wd * w[i] }
                        mm[i] = b1 * mm[i] + (1 - b1) * gi
                        vv[i] = b2 * vv[i] + (1 - b2) * gi * gi
                        var d = stepSize * mm[i] / (vv[i].squareRoot() / c2Root + eps)
                        if decoupled { d += lr * wd * w[i] }
                        w[i] -= d * keep
                    }
                }
            }
        }
    }

    /// The update of `step()` without an update mask, in C (`engram_adam_update`): element for element the same IEEE
    /// operations in the same order, so the same bits, but vectorized, square root included (Swift's goes through
    /// libm one element at a time), and split across the kernel threads. The scalar loop took a quarter of a training
    /// step of a 2-million-parameter MLP.
    private static func unmaskedStep(n: Int, w: UnsafeMutablePointer<Float>, g: UnsafePointer<Float>,
                                     m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>,
                                     b1: Float, b2: Float, eps: Float, wd: Float, lr: Float, stepSize: Float,
                                     c2Root: Float, decoupled: Bool) {
        engram_adam_update_parallel(n, w, g, m, v, b1, b2, eps, wd, lr, stepSize, c2Root, decoupled ? 1 : 0)
    }

    public func stateTensors() -> [(String, Tensor)] {
        steps.keys.sorted().flatMap { name in
            [("exp_avg.\(name)", Tensor(m[name]!.values)), ("exp_avg_sq.\(name)", Tensor(v[name]!.values)),
             ("step.\(name)", Tensor(Float(steps[name]!)))]
        }
    }

    public func loadState(_ state: [String: Tensor]) throws {
        m = [:]; v = [:]; steps = [:]
        for (name, p) in parameters {
            guard let step = state["step.\(name)"] else { continue }
            guard let a = state["exp_avg.\(name)"] else { throw OptimizerError.missingState("exp_avg.\(name)") }
            guard let b = state["exp_avg_sq.\(name)"] else { throw OptimizerError.missingState("exp_avg_sq.\(name)") }
            guard a.count == p.count else { throw OptimizerError.shapeMismatch("exp_avg.\(name)", expected: p.count, found: a.count) }
            guard b.count == p.count else { throw OptimizerError.shapeMismatch("exp_avg_sq.\(name)", expected: p.count, found: b.count) }
            m[name] = StateBuffer(a.scalars); v[name] = StateBuffer(b.scalars); steps[name] = Int(step.item)
        }
    }
}

/// A learning-rate schedule: the rate for an epoch (0-based) given the base rate.
public protocol LearningRateSchedule: Sendable {
    func learningRate(epoch: Int, base: Float) -> Float
}

/// Constant rate.
public struct ConstantSchedule: LearningRateSchedule {
    public init() {}
    public func learningRate(epoch: Int, base: Float) -> Float { base }
}

/// η·γ^⌊epoch/stepSize⌋.
public struct StepSchedule: LearningRateSchedule {
    public let stepSize: Int, gamma: Float
    public init(stepSize: Int, gamma: Float = 0.1) {
        precondition(stepSize > 0, "StepSchedule: stepSize must be positive")
        self.stepSize = stepSize; self.gamma = gamma
    }
    public func learningRate(epoch: Int, base: Float) -> Float { base * powf(gamma, Float(epoch / stepSize)) }
}

/// η·γ^(number of milestones ≤ epoch).
public struct MultiStepSchedule: LearningRateSchedule {
    public let milestones: [Int], gamma: Float
    public init(milestones: [Int], gamma: Float = 0.1) { self.milestones = milestones.sorted(); self.gamma = gamma }
    public func learningRate(epoch: Int, base: Float) -> Float {
        base * powf(gamma, Float(milestones.filter { $0 <= epoch }.count))
    }
}

/// Cosine annealing: η_min + ½(η − η_min)(1 + cos(π·epoch/T)).
public struct CosineSchedule: LearningRateSchedule {
    public let totalEpochs: Int, minimum: Float
    public init(totalEpochs: Int, minimum: Float = 0) {
        precondition(totalEpochs > 0, "CosineSchedule: totalEpochs must be positive")
        self.totalEpochs = totalEpochs; self.minimum = minimum
    }
    public func learningRate(epoch: Int, base: Float) -> Float {
        let t = Float(min(epoch, totalEpochs)) / Float(totalEpochs)
        return minimum + 0.5 * (base - minimum) * (1 + cosf(Float.pi * t))
    }
}
