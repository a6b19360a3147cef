import EngramNN

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
    /// Ω ← Ω + Ω_t (each task's average importance added).
    case sum
    /// Ω ← running average over every sample seen so far.
    case average
}

/// Importance Ω and anchor θ* with the penalty λ Σ Ω (θ − θ*)² — the state shared by MAS (both
/// versions), online EWC and SI. Methods hold one (composition) and decide how Ω is estimated.
public struct AnchoredImportance: Sendable {
    public var accumulation: ImportanceAccumulation
    /// Ω, per parameter.
    public var importance: ParameterMap = [:]
    /// θ*, per parameter.
    public var anchor: ParameterMap = [:]
    /// Samples behind Ω (for the running average).
    public var samplesSeen = 0

    public init(accumulation: ImportanceAccumulation = .sum) { self.accumulation = accumulation }

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

    /// taskLoss + strength · Σ Ω (θ − θ*)² over the parameters the current task may change.
    public func regularized(_ taskLoss: Tensor, strength: Float, context: TrainingContext) -> Tensor {
        guard strength > 0, let penalty = quadraticPenalty(parameters: context.penalizedParameters, importance: importance,
                                                           anchor: anchor, strength: strength) else { return taskLoss }
        return taskLoss + penalty
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
            if strength > 0, penalized.contains(name), let omega = importance[name], let star = anchor[name] {
                for i in 0..<g.count { g[i] -= 2 * strength * omega[i] * (w[i] - star[i]) }
            }
            gradients[name] = g
            values[name] = w
        }
        return (gradients, values)
    }

    public func stateTensors() -> [(String, Tensor)] {
        importance.tensors(prefix: "omega") + anchor.tensors(prefix: "anchor") + [("samples", Tensor(Float(samplesSeen)))]
    }

    public mutating func loadState(_ state: [String: Tensor]) {
        importance = .from(state, prefix: "omega")
        anchor = .from(state, prefix: "anchor")
        samplesSeen = Int(state["samples"]?.item ?? 0)
    }
}

/// Checks a regularization strength given on the command line.
func validatedStrength(_ value: Float, flag: String) throws -> Float {
    guard value >= 0, value.isFinite else { throw StrategyError("\(flag) must be a finite value ≥ 0, got \(value)") }
    return value
}

/// Checks an importance chunk size given on the command line.
func validatedChunk(_ chunk: Int?) throws -> Int? {
    if let chunk, chunk < 1 { throw StrategyError("--importance-chunk must be at least 1, got \(chunk)") }
    return chunk
}
