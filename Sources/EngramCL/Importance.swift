import EngramTensor
import EngramData
import EngramNN

/// How EWC's diagonal Fisher treats the label y in (∂ log p(y|x)/∂θ)².
public enum FisherEstimator: String, Sendable, Codable, CaseIterable {
    /// The expectation over the model's predictive distribution, exact (one backward pass per class): the Fisher.
    case exact
    /// One label per sample drawn from the model's predictive distribution (a one-sample estimate of `exact`).
    case sampled
    /// The true labels (the "empirical Fisher").
    case empirical
}

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
        let recorders = perSampleRecorders(of: model)
        let batchedExact = recordersCoverAllParameters(model: model, recorders: recorders)
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
            case .exact where batchedExact:
                addBatchedPerSampleStatistics(recorders: recorders, parameters: parameters, squared: false,
                                              into: &estimate.sums) { outputNorm(x) }
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

    /// Local (Hebbian) MAS (Aljundi et al. 2018, sec. 4.2): for the parameter θ_ij connecting neuron j to
    /// neuron i, Ω_ij = meanₖ |Fᵢ(xₖ)·Fⱼ(xₖ)|, the product of the two neurons' *activations*: Fⱼ is the layer's
    /// input (already post-activation) and Fᵢ the output neuron's value after its non-linearity — ReLU(z) for a
    /// hidden Linear layer, ReLU(BN(z)) for a convolution followed by BatchNorm and ReLU (for a residual block's
    /// second convolution before the shortcut is added), z itself for the logits. A connection into a unit that
    /// is inactive (ReLU = 0) on a sample gets no importance from it. Convolutions: averaged over output
    /// positions. Bias (a connection from a constant 1): mean |Fᵢ|. Uses only inputs, no gradients.
    public static func masLocal(model: any Module, inputs: some Sequence<Tensor>) -> ImportanceEstimate {
        let parameters = model.namedParameters()
        var estimate = ImportanceEstimate(sums: .zeros(like: parameters))
        let restoreMode = model.enterEvaluationMode()
        defer { restoreMode() }
        let modules = model.namedModules()
        let activation = neuronActivations(of: model)
        for (_, m) in modules { (m as? Linear)?.recordsActivations = true; (m as? Conv2d)?.recordsActivations = true }
        defer { for (_, m) in modules { (m as? Linear)?.recordsActivations = false; (m as? Conv2d)?.recordsActivations = false } }
        for x in inputs {
            let n = x.shape[0]
            GradMode.withoutGrad {
                _ = model(x)
                for (prefix, m) in modules {
                    if let l = m as? Linear, let xi = l.lastInput, let z = l.lastOutput {
                        let y = activation[ObjectIdentifier(l)]?(z) ?? z
                        let s = PerSampleGradients.linearAbsoluteSum(input: xi.rank == 2 ? xi : xi.flattened(), outputGradient: y)
                        estimate.sums[name(prefix, "weight")]?.add(s.weight.scalars)
                        if l.bias != nil { estimate.sums[name(prefix, "bias")]?.add(s.bias.scalars) }
                    } else if let c = m as? Conv2d, let xi = c.lastInput, let z = c.lastOutput {
                        let y = activation[ObjectIdentifier(c)]?(z) ?? z
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
            }
            estimate.samples += n
        }
        for (_, m) in modules { (m as? Linear)?.clearRecord() }
        return estimate
    }

    /// For every Linear/Conv2d layer followed by a non-linearity, the map from its output z to its neurons'
    /// activations: in a `Sequential`, the BatchNorm/Dropout modules after the layer up to the first ReLU
    /// (evaluation mode), then the ReLU; in a `ConvBlock` ReLU(BN(z)); in a `BasicBlock` ReLU(BN₁(z)) for the
    /// first convolution and ReLU(BN₂(z)) for the second. Layers without a following ReLU (logits, projection
    /// shortcuts) are absent: their activation is z.
    static func neuronActivations(of model: any Module) -> [ObjectIdentifier: (Tensor) -> Tensor] {
        var map: [ObjectIdentifier: (Tensor) -> Tensor] = [:]
        for (_, m) in model.namedModules() {
            if let s = m as? Sequential {
                for (i, layer) in s.layers.enumerated() where layer is Linear || layer is Conv2d {
                    var between: [any Module] = []
                    var j = i + 1
                    while j < s.layers.count, s.layers[j] is BatchNorm || s.layers[j] is TaskBatchNorm || s.layers[j] is Dropout {
                        between.append(s.layers[j]); j += 1
                    }
                    guard j < s.layers.count, s.layers[j] is ReLU else { continue }
                    map[ObjectIdentifier(layer)] = { z in between.reduce(z) { $1.forward($0) }.relu() }
                }
            } else if let block = m as? ConvBlock {
                map[ObjectIdentifier(block.conv)] = { z in block.bn.forward(z).relu() }
            } else if let block = m as? BasicBlock {
                map[ObjectIdentifier(block.conv1)] = { z in block.bn1.forward(z).relu() }
                map[ObjectIdentifier(block.conv2)] = { z in block.bn2.forward(z).relu() }
            }
        }
        return map
    }

    /// Diagonal Fisher information of EWC (Kirkpatrick et al. 2017) from per-sample gradients of log p(y|xₖ; θ):
    /// - `exact` (the paper's Fisher): F_i = (1/N) Σₖ Σ_c p(c|xₖ) (∂ log p(c|xₖ)/∂θ_i)², the expectation over the
    ///   model's own predictive distribution, computed exactly with one backward pass per class (the squared
    ///   per-sample gradient of √p(c|xₖ)·log p(c|xₖ), √p held constant, is p·(∂ log p)²);
    /// - `sampled`: one label per sample drawn from p(·|xₖ) (an unbiased one-sample estimate of `exact`);
    /// - `empirical`: yₖ the true label (the "empirical Fisher", a different quantity).
    /// `allowedClasses` restricts the softmax to a task's classes (task-aware heads).
    public static func fisher(model: any Module, batches: some Sequence<(Tensor, [Int])>, estimator: FisherEstimator = .exact,
                              allowedClasses: [Int]? = nil, rng: inout RandomGenerator) -> ImportanceEstimate {
        let parameters = model.namedParameters()
        var estimate = ImportanceEstimate(sums: .zeros(like: parameters))
        let restoreMode = model.enterEvaluationMode()
        defer { restoreMode() }
        let recorders = perSampleRecorders(of: model)
        let batchedExact = recordersCoverAllParameters(model: model, recorders: recorders)
        /// Adds Σₖ wₖ² (∂ log p(tₖ|xₖ)/∂θ)² for the samples of `x` with targets `t` and weights `w` (nil = 1).
        func addSquaredGradients(_ x: Tensor, targets: [Int], weights: [Float]?) {
            let n = x.shape[0]
            func loss(_ logits: Tensor, _ rows: Range<Int>) -> Tensor {
                let ce = Losses.crossEntropy(logits, targets: Array(targets[rows]), allowedClasses: allowedClasses, reduction: .none)
                guard let weights else { return ce.sum() }
                return (ce * Tensor(shape: [rows.count], scalars: Array(weights[rows]))).sum()
            }
            if batchedExact {
                addBatchedPerSampleStatistics(recorders: recorders, parameters: parameters, squared: true,
                                              into: &estimate.sums) { loss(model(x), 0..<n) }
            } else {
                for k in 0..<n {
                    model.zeroGrad()
                    loss(model(x.indexSelect([k])), k..<(k + 1)).backward()
                    for (name, p) in parameters {
                        guard let g = p.grad?.scalars else { continue }
                        estimate.sums[name]!.add(g.map { $0 * $0 })
                    }
                }
            }
        }
        for (x, labels) in batches {
            let n = x.shape[0]
            switch estimator {
            case .empirical:
                addSquaredGradients(x, targets: labels, weights: nil)
            case .sampled:
                let logits = GradMode.withoutGrad { model(x) }
                addSquaredGradients(x, targets: sampleLabels(logits: logits, allowedClasses: allowedClasses, rng: &rng), weights: nil)
            case .exact where batchedExact:
                addExactSquaredGradientsFromOneForwardPass(model: model, x, recorders: recorders, parameters: parameters,
                                                           allowedClasses: allowedClasses, into: &estimate.sums)
            case .exact:
                let probabilities = GradMode.withoutGrad { predictiveProbabilities(model(x), allowedClasses: allowedClasses) }
                let c = probabilities.count / max(n, 1)
                for cls in allowedClasses ?? Array(0..<c) {
                    let root = (0..<n).map { probabilities[$0 * c + cls].squareRoot() }
                    guard root.contains(where: { $0 > 0 }) else { continue }
                    addSquaredGradients(x, targets: [Int](repeating: cls, count: n), weights: root)
                }
            }
            estimate.samples += n
        }
        model.zeroGrad()
        return estimate
    }

    /// Adds the exact Fisher's Σₖ Σ_c p(c|xₖ)(∂ log p(c|xₖ)/∂θ)² for the batch `x` from one forward pass: one backward
    /// pass per class through the kept graph, seeded with ∂(√p_c·ℓ_c)/∂z = √p_c·(p − e_c) row by row (p over
    /// `allowedClasses`), gives every recorded layer's Δ_c with the parameters frozen. A Linear layer's per-sample
    /// gradient Δₖ⊗xₖ squares to Δₖ²⊗xₖ², so its classes share xₖ²: Σ_c Δ_c² is summed first and multiplied by X∘X
    /// once. Conv2d and BatchNorm (a per-sample gradient summed over positions does not factor so) add their
    /// statistics class by class. The same sum as a forward and backward pass per class, up to rounding.
    static func addExactSquaredGradientsFromOneForwardPass(model: any Module, _ x: Tensor,
                                                           recorders: [(String, any PerSampleRecording)],
                                                           parameters: [(String, Tensor)], allowedClasses: [Int]?,
                                                           into sums: inout ParameterMap) {
        recordingWithFrozenParameters(recorders: recorders, parameters: parameters) {
            addExactSquaredGradients(of: model(x), recorders: recorders, allowedClasses: allowedClasses, into: &sums)
        }
        for (_, l) in recorders { l.clearRecord() }
    }

    /// The body of `addExactSquaredGradientsFromOneForwardPass` once the layers record and the parameters are frozen.
    private static func addExactSquaredGradients(of logits: Tensor, recorders: [(String, any PerSampleRecording)],
                                                 allowedClasses: [Int]?, into sums: inout ParameterMap) {
        let (n, c) = (logits.shape[0], logits.shape[1])
        let probabilities = predictiveProbabilities(logits, allowedClasses: allowedClasses)
        let classes = allowedClasses ?? Array(0..<c)
        let passes = classes.filter { cls in (0..<n).contains { probabilities[$0 * c + cls] > 0 } }
        var squaredDeltas: [[Float]?] = Array(repeating: nil, count: recorders.count)
        for (pass, cls) in passes.enumerated() {
            var seed = [Float](repeating: 0, count: n * c)
            for k in 0..<n {
                let root = probabilities[k * c + cls].squareRoot()
                guard root > 0 else { continue }
                for j in classes { seed[k * c + j] = root * (probabilities[k * c + j] - (j == cls ? 1 : 0)) }
            }
            logits.backward(seed: Tensor(shape: logits.shape, scalars: seed), retainGraph: pass < passes.count - 1)
            for (index, (prefix, layer)) in recorders.enumerated() {
                guard let delta = layer.lastOutput?.grad else { continue }
                if layer is Linear {
                    let square = delta.scalars.map { $0 * $0 }
                    if squaredDeltas[index] == nil { squaredDeltas[index] = square } else { squaredDeltas[index]!.add(square) }
                } else if let stats = layer.perSampleSquaredGradientSum() {
                    addLayerStatistics(stats, of: prefix, layer, into: &sums)
                }
                layer.lastOutput?.grad = nil
            }
        }
        for (index, (prefix, layer)) in recorders.enumerated() {
            guard let squares = squaredDeltas[index],
                  let stats = (layer as? Linear)?.perSampleSquaredGradientSum(summedSquaredOutputGradient: squares) else { continue }
            addLayerStatistics(stats, of: prefix, layer, into: &sums)
        }
    }

    /// softmax(logits) row by row, over `allowedClasses` only (the others get probability 0).
    static func predictiveProbabilities(_ logits: Tensor, allowedClasses: [Int]?) -> [Float] {
        let (n, c) = (logits.shape[0], logits.shape[1])
        var z = logits.scalars
        if let allowedClasses {
            let allowed = Set(allowedClasses)
            for r in 0..<n { for j in 0..<c where !allowed.contains(j) { z[r * c + j] = -.infinity } }
        }
        return softmaxRows(z, columns: c).probabilities
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

    /// One batched pass for per-sample statistics: runs `loss()` backward with the parameters frozen — backward
    /// then computes the Δ of every recorded layer (the first one's output is the graph's leaf), not the batch's
    /// parameter gradients, which would be thrown away — and adds each layer's Σₖ|∂ℓₖ/∂θ| (or Σₖ(∂ℓₖ/∂θ)² with
    /// `squared`) into `sums`: |Δ|ᵀ|X| for Linear, a GEMM per sample for Conv2d, per channel for BatchNorm.
    static func addBatchedPerSampleStatistics(recorders: [(String, any PerSampleRecording)], parameters: [(String, Tensor)],
                                              squared: Bool, into sums: inout ParameterMap, loss: () -> Tensor) {
        recordingWithFrozenParameters(recorders: recorders, parameters: parameters) { loss().backward() }
        for (prefix, l) in recorders {
            guard let stats = squared ? l.perSampleSquaredGradientSum() : l.perSampleAbsoluteGradientSum() else { continue }
            addLayerStatistics(stats, of: prefix, l, into: &sums)
        }
        for (_, l) in recorders { l.clearRecord() }
    }

    /// Runs `body` with every recorder recording its activations and the parameters frozen (so backward computes
    /// only the recorded layers' Δ); restores both afterwards. The recorders keep what `body` recorded (for the
    /// caller's statistics) until the caller clears them.
    static func recordingWithFrozenParameters(recorders: [(String, any PerSampleRecording)], parameters: [(String, Tensor)],
                                              _ body: () -> Void) {
        for (_, l) in recorders { l.recordsActivations = true }
        let frozen = parameters.filter { $0.1.requiresGrad }
        for (_, p) in frozen { p.requiresGrad = false }
        defer {
            for (_, p) in frozen { p.requiresGrad = true }
            for (_, l) in recorders { l.recordsActivations = false }
        }
        body()
    }

    /// sums[prefix.weight] += stats.weight, sums[prefix.bias] += stats.bias, for the parameters `layer` has.
    static func addLayerStatistics(_ stats: (weight: Tensor, bias: Tensor), of prefix: String, _ layer: any PerSampleRecording,
                                   into sums: inout ParameterMap) {
        let names = Set(layer.localParameters.map(\.0))
        if names.contains("weight") { sums[name(prefix, "weight")]!.add(stats.weight.scalars) }
        if names.contains("bias") { sums[name(prefix, "bias")]!.add(stats.bias.scalars) }
    }

    /// Whether exact per-sample importance of `model` (in evaluation mode) comes from one batched backward pass per
    /// chunk — every parameter in a Linear, Conv2d or BatchNorm — rather than a backward pass per sample.
    public static func hasBatchedPerSampleStatistics(_ model: any Module) -> Bool {
        let restoreMode = model.enterEvaluationMode()
        defer { restoreMode() }
        return recordersCoverAllParameters(model: model, recorders: perSampleRecorders(of: model))
    }

    /// The layers that give per-sample gradient statistics from one batched pass (Linear, Conv2d, BatchNorm).
    static func perSampleRecorders(of model: any Module) -> [(String, any PerSampleRecording)] {
        model.namedModules().compactMap { path, m in (m as? any PerSampleRecording).map { (path, $0) } }
    }

    /// Whether every parameter belongs to one of `recorders` — BatchNorm only in evaluation mode, where samples do
    /// not interact — so the batched per-sample path is exact for all.
    static func recordersCoverAllParameters(model: any Module, recorders: [(String, any PerSampleRecording)]) -> Bool {
        let covered = Set(recorders.filter { !(($0.1 as? BatchNorm)?.isTraining ?? false) }
            .flatMap { path, l in l.localParameters.map { name(path, $0.0) } })
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
