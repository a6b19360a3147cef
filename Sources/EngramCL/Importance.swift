import EngramNN

/// Which network output the MAS importance differentiates.
public enum MASOutput: String, Sendable, Codable, CaseIterable {
    /// The logits (the paper's default: the learned function F).
    case logits
    /// softmax(logits).
    case softmax
}

/// How MAS turns output sensitivities into importance.
public enum MASGradientMode: String, Sendable, Codable, CaseIterable {
    /// Exact: Ω = (1/N) Σₖ |∂‖F(xₖ)‖²/∂θ| with one gradient per sample (Linear layers through
    /// |Δ|ᵀ|X|, other layers through a per-sample pass).
    case exact
    /// As common reference implementations: the absolute gradient of the *batch-averaged* squared
    /// norm, averaged over batches. Cheaper; under-estimates Ω where per-sample gradients disagree in sign.
    case batch
}

/// Running importance estimate: a sum over samples and the number of samples, so estimates from
/// several data sets (training data, test inputs, a stream) combine into one running average.
public struct ImportanceEstimate: Sendable {
    /// Σ over samples of the per-sample importance, per parameter.
    public var sums: ParameterMap
    /// Number of samples in `sums`.
    public var samples: Int

    public init(sums: ParameterMap = [:], samples: Int = 0) {
        self.sums = sums
        self.samples = samples
    }

    /// The average importance (1/N) Σ.
    public var mean: ParameterMap {
        guard samples > 0 else { return sums }
        let scale = 1 / Float(samples)
        return sums.mapValues { $0.map { $0 * scale } }
    }

    /// Adds another estimate (more samples).
    public mutating func merge(_ other: ImportanceEstimate) {
        sums.blend(1, 1, other.sums)
        samples += other.samples
    }
}

/// Importance measures of the regularization methods, computed from data.
public enum Importance {
    /// MAS global importance (Aljundi et al. 2018, eq. 2–4): Ω_ij = (1/N) Σₖ |∂‖F(xₖ; θ)‖²₂/∂θ_ij|.
    ///
    /// Uses only the inputs (no labels). The model runs in evaluation mode (BatchNorm running
    /// statistics, no dropout), so samples do not interact and the per-sample gradients are exact.
    public static func mas(model: any Module, inputs: some Sequence<Tensor>, output: MASOutput = .logits,
                           mode: MASGradientMode = .exact) -> ImportanceEstimate {
        let parameters = model.namedParameters()
        var estimate = ImportanceEstimate(sums: .zeros(like: parameters))
        let restoreMode = model.enterEvaluationMode()
        defer { restoreMode() }
        let linears = linearLayers(of: model)
        let onlyLinear = linearsCoverAllParameters(model: model, linears: linears)
        func outputNorm(_ x: Tensor) -> Tensor {
            let y = model(x)
            let f = output == .softmax ? y.softmax() : y
            return Losses.squaredL2Norm(f, reduction: mode == .batch ? .mean : .sum)
        }
        for x in inputs {
            let n = x.shape[0]
            switch mode {
            case .batch:
                model.zeroGrad()
                outputNorm(x).backward()
                for (name, p) in parameters {
                    guard let g = p.grad?.scalars else { continue }
                    estimate.sums[name]!.addAbsolute(g, scale: Float(n))
                }
            case .exact where onlyLinear:
                for (_, l) in linears { l.recordsActivations = true }
                model.zeroGrad()
                outputNorm(x).backward()
                for (prefix, l) in linears {
                    guard let stats = l.perSampleAbsoluteGradientSum() else { continue }
                    estimate.sums[name(prefix, "weight")]!.add(stats.weight.scalars)
                    if l.bias != nil { estimate.sums[name(prefix, "bias")]!.add(stats.bias.scalars) }
                    l.recordsActivations = false
                    l.clearRecord()
                }
            case .exact:
                for k in 0..<n {
                    model.zeroGrad()
                    outputNorm(x.indexSelect([k])).backward()
                    for (name, p) in parameters {
                        guard let g = p.grad?.scalars else { continue }
                        estimate.sums[name]!.addAbsolute(g, scale: 1)
                    }
                }
            }
            estimate.samples += n
        }
        model.zeroGrad()
        return estimate
    }

    /// Local (Hebbian) MAS (Aljundi et al. 2018, sec. 4.2): for the parameter θ_ij connecting input
    /// neuron j to output neuron i of a layer, Ω_ij = meanₖ |yᵢ(xₖ)·xⱼ(xₖ)|, from the layer's input x
    /// and (pre-activation) output y; for convolutions averaged over output positions. Bias: mean |yᵢ|.
    /// Uses only inputs, no gradients of the loss.
    public static func masLocal(model: any Module, inputs: some Sequence<Tensor>) -> ImportanceEstimate {
        let parameters = model.namedParameters()
        var estimate = ImportanceEstimate(sums: .zeros(like: parameters))
        let restoreMode = model.enterEvaluationMode()
        defer { restoreMode() }
        let modules = model.namedModules()
        for (_, m) in modules { (m as? Linear)?.recordsActivations = true; (m as? Conv2d)?.recordsActivations = true }
        defer { for (_, m) in modules { (m as? Linear)?.recordsActivations = false; (m as? Conv2d)?.recordsActivations = false } }
        for x in inputs {
            let n = x.shape[0]
            GradMode.withoutGrad { _ = model(x) }
            for (prefix, m) in modules {
                if let l = m as? Linear, let xi = l.lastInput, let y = l.lastOutput {
                    let s = PerSampleGradients.linearAbsoluteSum(input: xi.rank == 2 ? xi : xi.flattened(), outputGradient: y)
                    estimate.sums[name(prefix, "weight")]?.add(s.weight.scalars)
                    if l.bias != nil { estimate.sums[name(prefix, "bias")]?.add(s.bias.scalars) }
                } else if let c = m as? Conv2d, let xi = c.lastInput, let y = c.lastOutput {
                    let positions = Float(y.shape[2] * y.shape[3])
                    let w = PerSampleGradients.conv2dWeightGradient(input: xi, outputGradient: y, kernelSize: c.weight.shape[2],
                                                                     stride: c.stride, padding: c.padding, absolute: true)
                    estimate.sums[name(prefix, "weight")]?.add(w.scalars.map { $0 / positions })
                    if c.bias != nil {
                        let b = y.abs().sum(axes: [0, 2, 3]).scalars.map { $0 / positions }
                        estimate.sums[name(prefix, "bias")]?.add(b)
                    }
                }
            }
            estimate.samples += n
        }
        for (_, m) in modules { (m as? Linear)?.clearRecord() }
        return estimate
    }

    /// Diagonal Fisher information of EWC (Kirkpatrick et al. 2017): F_i = (1/N) Σₖ (∂ log p(yₖ|xₖ; θ)/∂θ_i)²,
    /// with yₖ the true label (`empirical`) or sampled from the model's own p(y|xₖ) (the true Fisher).
    /// `allowedClasses` restricts the softmax to a task's classes (task-aware heads).
    public static func fisher(model: any Module, batches: some Sequence<(Tensor, [Int])>, empirical: Bool = true,
                              allowedClasses: [Int]? = nil, rng: inout RandomGenerator) -> ImportanceEstimate {
        let parameters = model.namedParameters()
        var estimate = ImportanceEstimate(sums: .zeros(like: parameters))
        let restoreMode = model.enterEvaluationMode()
        defer { restoreMode() }
        let linears = linearLayers(of: model)
        let onlyLinear = linearsCoverAllParameters(model: model, linears: linears)
        for (x, labels) in batches {
            let n = x.shape[0]
            var targets = labels
            if !empirical {
                let logits = GradMode.withoutGrad { model(x) }
                targets = sampleLabels(logits: logits, allowedClasses: allowedClasses, rng: &rng)
            }
            if onlyLinear {
                for (_, l) in linears { l.recordsActivations = true }
                model.zeroGrad()
                Losses.crossEntropy(model(x), targets: targets, allowedClasses: allowedClasses, reduction: .sum).backward()
                for (prefix, l) in linears {
                    guard let stats = l.perSampleSquaredGradientSum() else { continue }
                    estimate.sums[name(prefix, "weight")]!.add(stats.weight.scalars)
                    if l.bias != nil { estimate.sums[name(prefix, "bias")]!.add(stats.bias.scalars) }
                    l.recordsActivations = false
                    l.clearRecord()
                }
            } else {
                for k in 0..<n {
                    model.zeroGrad()
                    Losses.crossEntropy(model(x.indexSelect([k])), targets: [targets[k]], allowedClasses: allowedClasses,
                                        reduction: .sum).backward()
                    for (name, p) in parameters {
                        guard let g = p.grad?.scalars else { continue }
                        estimate.sums[name]!.add(g.map { $0 * $0 })
                    }
                }
            }
            estimate.samples += n
        }
        model.zeroGrad()
        return estimate
    }

    /// Labels drawn from softmax(logits) (restricted to `allowedClasses` when given).
    static func sampleLabels(logits: Tensor, allowedClasses: [Int]?, rng: inout RandomGenerator) -> [Int] {
        let (n, c) = (logits.shape[0], logits.shape[1])
        let classes = allowedClasses ?? Array(0..<c)
        var out: [Int] = []
        out.reserveCapacity(n)
        let v = logits.scalars
        for r in 0..<n {
            let z = classes.map { v[r * c + $0] }
            let p = softmaxRows(z, columns: z.count).probabilities
            var u = rng.nextFloat(), pick = classes.last!
            for (k, pk) in p.enumerated() {
                if u < pk { pick = classes[k]; break }
                u -= pk
            }
            out.append(pick)
        }
        return out
    }

    /// The Linear layers of a model with their dotted paths.
    static func linearLayers(of model: any Module) -> [(String, Linear)] {
        model.namedModules().compactMap { path, m in (m as? Linear).map { (path, $0) } }
    }

    /// Whether every parameter belongs to one of `linears` (then the |Δ|ᵀ|X| path is exact for all).
    static func linearsCoverAllParameters(model: any Module, linears: [(String, Linear)]) -> Bool {
        let covered = Set(linears.flatMap { path, l in l.localParameters.map { name(path, $0.0) } })
        return model.namedParameters().allSatisfy { covered.contains($0.0) }
    }

    static func name(_ prefix: String, _ leaf: String) -> String { prefix.isEmpty ? leaf : "\(prefix).\(leaf)" }
}

extension Array where Element == Float {
    /// self += other.
    mutating func add(_ other: [Float]) {
        precondition(count == other.count, "add: \(count) vs \(other.count) values")
        withUnsafeMutableBufferPointer { a in other.withUnsafeBufferPointer { b in for i in 0..<a.count { a[i] += b[i] } } }
    }
    /// self += scale·|other|.
    mutating func addAbsolute(_ other: [Float], scale: Float) {
        precondition(count == other.count, "addAbsolute: \(count) vs \(other.count) values")
        withUnsafeMutableBufferPointer { a in other.withUnsafeBufferPointer { b in for i in 0..<a.count { a[i] += scale * Swift.abs(b[i]) } } }
    }
}
