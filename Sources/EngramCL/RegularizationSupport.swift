import EngramTensor
import EngramData
import EngramNN
import CEngramKernels

extension TrainingContext {
    /// The parameters a penalty should cover while training the current task: all of them, except the
    /// heads of other tasks in a multi-head model (untouched by this task, so their penalty is constant).
    public var penalizedParameters: [(String, Tensor)] {
        let all = model.namedParameters()
        guard model.head is MultiHead else { return all }
        let own = "head.heads.\(task)."
        return all.filter { !$0.0.hasPrefix("head.heads.") || $0.0.hasPrefix(own) }
    }

    /// The inputs of a task's training or test data (labels are dropped here, never seen by the caller),
    /// in batches of `chunk` samples (default: the training batch size).
    public func unlabeledInputs(task: Int, from data: ImportanceData, chunk: Int? = nil) -> LazyMapSequence<Batches, Tensor> {
        let size = chunk ?? configuration.batchSize
        let batches = data == .train ? stream.trainingBatches(task: task, epoch: 0, batchSize: size)
                                     : stream.testBatches(task: task, batchSize: size)
        return batches.lazy.map(\.inputs)
    }
}

/// Which unlabeled data importance is measured on.
public enum ImportanceData: String, Sendable, Codable, CaseIterable {
    /// The task's training inputs (the paper's default).
    case train
    /// The task's test inputs: importance adapted to the test condition (MAS, sec. 4.3).
    case test
}

/// How importance from successive tasks is combined.
public enum ImportanceAccumulation: String, Sendable, Codable, CaseIterable {
    /// Ω ← Ω + Ω_t (each task's average importance added) — the authors' code (`accumelate_reg_params`).
    case sum
    /// Ω ← running average over every sample of every task seen so far. Not the authors' behaviour (they sum
    /// per-task means): a stream of importance updates (e.g. on test inputs as they arrive) keeps one average.
    case average
}

/// How a quadratic penalty s·Σ Ω (θ − θ*)² enters training.
public enum PenaltyStep: String, Sendable, Codable, CaseIterable {
    /// Its gradient 2sΩ(θ − θ*) is added to the task loss's gradient and the optimizer takes both (the papers').
    /// With plain SGD the penalty alone multiplies θ − θ* by 1 − 2ηsΩ per step, which diverges once 2ηsΩ > 2 —
    /// e.g. MAS's Ω ≈ 2·10³ on conv weights before BatchNorm with λ = 1, η = 0.01.
    case gradient
    /// The optimizer steps on the task loss alone, then the penalty is applied in closed form (its proximal
    /// operator with step η, the learning rate): θ ← (θ + 2ηsΩθ*)/(1 + 2ηsΩ), a contraction toward θ* for any
    /// sΩ ≥ 0 (forward–backward splitting; the same fixed points as `gradient` with SGD, stable for any strength).
    case proximal
}

/// Importance Ω and anchor θ* with the penalty λ Σ Ω (θ − θ*)² — the state shared by MAS (both
/// versions), online EWC and SI. Methods hold one (composition) and decide how Ω is estimated.
public struct AnchoredImportance: Sendable {
    public var accumulation: ImportanceAccumulation
    /// Gradient step (default) or proximal step of the penalty.
    public var step: PenaltyStep = .gradient
    /// Ω, per parameter.
    public var importance: ParameterMap = [:]
    /// θ*, per parameter.
    public var anchor: ParameterMap = [:]
    /// Samples behind Ω (for the running average).
    public var samplesSeen = 0

    public init(accumulation: ImportanceAccumulation = .sum, step: PenaltyStep = .gradient) {
        self.accumulation = accumulation
        self.step = step
    }

    /// Folds a new estimate into Ω: Ω + mean (sum), or the running average over all samples seen.
    public mutating func accumulate(_ estimate: ImportanceEstimate, decay: Float = 1) {
        switch accumulation {
        case .sum:
            importance.blend(decay, 1, estimate.mean)
        case .average:
            let total = samplesSeen + estimate.samples
            guard total > 0 else { return }
            importance.blend(Float(samplesSeen) / Float(total), 1 / Float(total), estimate.sums)
        }
        samplesSeen += estimate.samples
    }

    /// θ* ← the model's current parameters.
    public mutating func setAnchor(_ parameters: [(String, Tensor)]) { anchor = .values(of: parameters) }

    /// strength · Σ Ω (θ − θ*)² over the parameters the current task may change; nil before any task ended and with
    /// the proximal step, which `afterStep` applies instead.
    public func penalty(strength: Float, context: TrainingContext) -> Tensor? {
        guard step == .gradient, strength > 0 else { return nil }
        return quadraticPenalty(parameters: context.penalizedParameters, importance: importance, anchor: anchor, strength: strength)
    }

    public var memoryBytes: Int { importance.byteCount + anchor.byteCount }

    /// After backward: the gradient of the *task* loss per parameter — the total gradient minus this
    /// penalty's own gradient 2·strength·Ω(θ − θ*) — and the parameters' values before the optimizer step.
    /// SI and RWalk integrate the task loss along the update path with these.
    public func taskGradientsAndValues(strength: Float, context: TrainingContext) -> (gradients: ParameterMap, values: ParameterMap) {
        let penalized = Set(context.penalizedParameters.map(\.0))
        var gradients = ParameterMap(), values = ParameterMap()
        for (name, p) in context.model.namedParameters() {
            guard var g = p.grad?.scalars else { continue }
            let w = p.scalars
            if step == .gradient, strength > 0, penalized.contains(name), let omega = importance[name], let star = anchor[name] {
                engram_subtract_quadratic_gradient(g.count, 2 * strength, w, omega, star, &g)
            }
            gradients[name] = g
            values[name] = w
        }
        return (gradients, values)
    }

    /// The proximal step after the optimizer's (no-op with the gradient step): see `PenaltyStep.proximal`.
    public func afterStep(strength: Float, context: TrainingContext) {
        guard step == .proximal, strength > 0 else { return }
        proximalStep(penalties: [(importance, anchor)], strength: strength, context: context)
    }

    /// Ω (`omega.<parameter>`), θ* (`anchor.<parameter>`) and the sample count (record `samples`).
    public func save(into state: inout StrategyState) throws {
        state.add(importance.tensors(prefix: "omega") + anchor.tensors(prefix: "anchor"))
        try state.record(samplesSeen, as: "samples")
    }

    /// Reads what `save(into:)` wrote, checked against the model: every tensor a parameter's size, Ω and θ* in pairs.
    public mutating func load(_ state: StrategyState, model: Classifier) throws {
        importance = try state.parameterMap("omega", model: model)
        anchor = try state.parameterMap("anchor", model: model)
        try importance.checkPaired(with: anchor, "omega", "anchor")
        samplesSeen = try state.count("samples")
    }
}

/// Checks a regularization strength given on the command line.
func validatedStrength(_ value: Float, flag: String) throws -> Float {
    guard value >= 0, value.isFinite else { throw StrategyError("\(flag) must be a finite value ≥ 0, got \(value)") }
    return value
}

/// Checks an importance chunk size given on the command line.
func validatedChunk(_ chunk: Int?) throws -> Int? {
    if let chunk, chunk < 1 { throw StrategyError(key: "importance_chunk", "must be at least 1, got \(chunk)") }
    return chunk
}

/// The proximal operator of s·Σ_k Σ Ω_k (θ − θ*_k)² with step η (the optimizer's learning rate), applied in place to
/// the parameters the current task may change: θ ← (θ + 2ηs Σ_k Ω_k θ*_k)/(1 + 2ηs Σ_k Ω_k).
public func proximalStep(penalties: [(importance: ParameterMap, anchor: ParameterMap)], strength: Float, context: TrainingContext) {
    let eta = context.optimizer.learningRate
    let scale = 2 * eta * strength
    guard scale > 0 else { return }
    for (name, p) in context.penalizedParameters {
        let terms = penalties.compactMap { pair -> ([Float], [Float])? in
            guard let omega = pair.importance[name], let star = pair.anchor[name], omega.count == p.count, star.count == p.count else { return nil }
            return (omega, star)
        }
        guard !terms.isEmpty else { continue }
        var numerator = p.scalars
        var denominator = [Float](repeating: 1, count: p.count)
        for (omega, star) in terms {
            for i in 0..<numerator.count {
                let w = scale * omega[i]
                numerator[i] += w * star[i]
                denominator[i] += w
            }
        }
        for i in 0..<numerator.count { numerator[i] /= denominator[i] }
        p.scalars = numerator
    }
}

/// Options several regularizers declare the same way.
extension HyperparameterSpec {
    /// λ, the strength of a quadratic penalty.
    static func strength(default value: Double, help: String = "λ, the penalty's strength: L + λ Σ Ω (θ − θ*)².") -> HyperparameterSpec {
        .real("lambda", symbol: "λ", default: value, range: .nonNegative, help: help)
    }

    /// Gradient or proximal step of the quadratic penalty.
    static let penaltyStep = HyperparameterSpec.choice(
        "penalty_step", PenaltyStep.self, default: .gradient,
        help: "How the quadratic penalty steps: gradient (added to the loss, the paper's) or proximal (closed form "
            + "after the optimizer step, stable for any λ·Ω).")

    /// How importance of successive tasks combines.
    static let accumulation = HyperparameterSpec.choice(
        "accumulation", ImportanceAccumulation.self, default: .sum,
        help: "How the importance of successive tasks combines: sum (Ω = Σ per-task means, the authors') or average "
            + "(running average over every sample).")

    /// The unlabeled data importance is measured on.
    static let importanceData = HyperparameterSpec.choice(
        "importance_data", ImportanceData.self, default: .train,
        help: "The unlabeled data the importance is measured on after each task: train or test inputs.")

    /// Samples per pass of the importance measurement.
    static let importanceChunk = HyperparameterSpec.integer(
        "importance_chunk", default: nil, defaultDescription: "the batch size", range: .atLeastOne,
        help: "Measure the importance in chunks of this many samples (bounds memory; a task's chunks form one estimate).")

    /// The Fisher's label.
    static let fisher = HyperparameterSpec.choice(
        "fisher", FisherEstimator.self, default: .exact,
        help: "The Fisher's label: exact (expectation over the model's predictive distribution, the paper's), "
            + "sampled (one label drawn per sample) or empirical (true labels).")
}
