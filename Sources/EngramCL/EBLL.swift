import EngramTensor
import EngramData
import EngramNN

/// One task's under-complete autoencoder on the feature extractor's output f(x) ∈ ℝᵈ:
/// code σ(W_enc f + b_enc) ∈ ℝᶜ (c < d), reconstruction r = W_dec·code + b_dec. Frozen after training.
public struct TaskAutoencoder: Sendable {
    public var encoderWeight: [Float], encoderBias: [Float]
    public var decoderWeight: [Float], decoderBias: [Float]
    /// d, the feature size.
    public let featureSize: Int
    /// c, the code size.
    public let codeSize: Int

    public init(featureSize: Int, codeSize: Int, using rng: inout RandomGenerator) {
        self.featureSize = featureSize
        self.codeSize = codeSize
        let enc = Linear(featureSize, codeSize, using: &rng), dec = Linear(codeSize, featureSize, using: &rng)
        encoderWeight = enc.weight.scalars; encoderBias = enc.bias!.scalars
        decoderWeight = dec.weight.scalars; decoderBias = dec.bias!.scalars
    }

    init(featureSize: Int, codeSize: Int, encoderWeight: [Float], encoderBias: [Float], decoderWeight: [Float], decoderBias: [Float]) {
        self.featureSize = featureSize; self.codeSize = codeSize
        self.encoderWeight = encoderWeight; self.encoderBias = encoderBias
        self.decoderWeight = decoderWeight; self.decoderBias = decoderBias
    }

    /// σ(W_enc f + b_enc), differentiable in f only (the autoencoder is frozen).
    public func code(_ features: Tensor) -> Tensor {
        Tensor.linear(features, weight: Tensor(shape: [codeSize, featureSize], scalars: encoderWeight),
                      bias: Tensor(encoderBias)).sigmoid()
    }

    public var scalarCount: Int { encoderWeight.count + encoderBias.count + decoderWeight.count + decoderBias.count }

    func tensors(prefix: String) -> [(String, Tensor)] {
        [("\(prefix).encoder.weight", Tensor(shape: [codeSize, featureSize], scalars: encoderWeight)),
         ("\(prefix).encoder.bias", Tensor(encoderBias)),
         ("\(prefix).decoder.weight", Tensor(shape: [featureSize, codeSize], scalars: decoderWeight)),
         ("\(prefix).decoder.bias", Tensor(decoderBias))]
    }

    static func from(_ state: [String: Tensor], prefix: String) throws -> TaskAutoencoder {
        guard let ew = state["\(prefix).encoder.weight"], let eb = state["\(prefix).encoder.bias"],
              let dw = state["\(prefix).decoder.weight"], let db = state["\(prefix).decoder.bias"], ew.rank == 2 else {
            throw StrategyError("EBLL state lacks the autoencoder '\(prefix)'")
        }
        let (code, feature) = (ew.shape[0], ew.shape[1])
        guard eb.count == code, dw.count == code * feature, db.count == feature else {
            throw StrategyError("the autoencoder '\(prefix)' has inconsistent sizes (encoder \(ew.shape), biases \(eb.count) and \(db.count), "
                                + "decoder \(dw.count) values)")
        }
        return TaskAutoencoder(featureSize: ew.shape[1], codeSize: ew.shape[0], encoderWeight: ew.scalars, encoderBias: eb.scalars,
                               decoderWeight: dw.scalars, decoderBias: db.scalars)
    }
}

/// Encoder-Based Lifelong Learning (Rannen, Aljundi, Blaschko & Tuytelaars, ICCV 2017): LwF plus codes.
///
/// After task t an autoencoder (code size c, sigmoid code) is trained on the features f*(x) of the task's
/// training data: L_ae = α·½‖r(f*(x)) − f*(x)‖² + ℓ(h_t(r(f*(x))), y), with h_t the task's (frozen) head — the
/// task loss has weight 1 and the reconstruction a small α, as the authors' code (`cnn_autoencoder_with_classerror.m`:
/// `intermediate_euclideanloss` with α = 1e-6 on ½·Σ over features, softmax loss with weight 1), so the code keeps
/// what the task needs rather than every detail of f*. Then it is frozen. While learning a later task, for each
/// stored autoencoder k:
/// L = L_new + λ_o·L_LwF + Σ_k λ_c·½‖σ(W_enc,k f(x)) − σ(W_enc,k f*(x))‖², f* the features of the model
/// before the current task (squared norms summed over the code, averaged over the batch; the authors' code
/// uses λ_c = 0.1 on the same ½-sum). Memory: the LwF copy of the model plus one autoencoder per task.
/// Defaults: λ_o = 1, T = 2 (no T², as LwF), c = 100, λ_c = 0.1, α = 1e-6, 5 autoencoder epochs (Adam, lr 1e-3;
/// the authors use Adadelta).
public final class EBLL: RegisteredStrategy {
    public static let descriptors = [StrategyDescriptor(
        name: "ebll", summary: "Encoder-Based Lifelong Learning: LwF plus preserving each old task's autoencoder code of the features",
        paper: "Rannen, Aljundi, Blaschko & Tuytelaars, ICCV 2017",
        hyperparameters: [
            .distillationWeight, .distillationTemperature, .temperatureSquared,
            .real("lambda_code", symbol: "λ_c", default: 0.1, range: .nonNegative, help: "λ_c, the code-preservation weight."),
            .integer("code_size", default: 100, range: .atLeastOne, help: "The autoencoders' code size."),
            .integer("ae_epochs", default: 5, range: .atLeastOne, help: "Epochs of autoencoder training after each task."),
            .real("alpha", symbol: "α", default: 1e-6, range: .nonNegative,
                  help: "α, the weight of the autoencoder's reconstruction loss (the task loss has weight 1)."),
        ],
        make: { o in
            try EBLL(lambda: o.float("lambda"), temperature: o.float("temperature"), temperatureSquared: o.bool("temperature_squared"),
                     lambdaCode: o.float("lambda_code"), codeSize: o.integer("code_size"), autoencoderEpochs: o.integer("ae_epochs"),
                     alpha: o.float("alpha"))
        })]

    /// The LwF part (λ_o, T and the frozen model).
    public let lwf: LwF
    /// λ_c, the weight of the code-preservation loss.
    public var lambdaCode: Float
    /// c, the autoencoders' code size.
    public var codeSize: Int
    /// Epochs of autoencoder training after each task.
    public var autoencoderEpochs: Int
    /// α, the weight of the reconstruction loss in the autoencoder's objective (the task loss has weight 1).
    public var alpha: Float
    /// Learning rate of the autoencoders (Adam).
    public var autoencoderLearningRate: Float
    /// One frozen autoencoder per finished task.
    public private(set) var autoencoders: [TaskAutoencoder] = []

    public init(lambda: Float = 1, temperature: Float = 2, temperatureSquared: Bool = false, lambdaCode: Float = 0.1,
                codeSize: Int = 100, autoencoderEpochs: Int = 5, alpha: Float = 1e-6, autoencoderLearningRate: Float = 1e-3) throws {
        lwf = try LwF(lambda: lambda, temperature: temperature, temperatureSquared: temperatureSquared)
        self.lambdaCode = try validatedStrength(lambdaCode, flag: "ebll.lambda_code")
        guard codeSize >= 1 else { throw StrategyError("ebll.code_size must be at least 1, got \(codeSize)") }
        guard autoencoderEpochs >= 1 else { throw StrategyError("ebll.ae_epochs must be at least 1, got \(autoencoderEpochs)") }
        self.codeSize = codeSize
        self.autoencoderEpochs = autoencoderEpochs
        self.alpha = try validatedStrength(alpha, flag: "ebll.alpha")
        self.autoencoderLearningRate = autoencoderLearningRate
    }

    public var name: String { "ebll" }

    public func beforeTask(_ task: Int, context: TrainingContext) throws { try lwf.beforeTask(task, context: context) }

    /// λ_o·L_LwF + Σ_k λ_c·½‖σ(W_enc,k f(x)) − σ(W_enc,k f*(x))‖².
    public func penalty(output: Tensor, batch: Batch, context: TrainingContext) -> Tensor? {
        let wantCodes = lambdaCode > 0 && !autoencoders.isEmpty
        guard let d = lwf.distillation(output: output, inputs: batch.inputs, context: context, keepFeatures: wantCodes) else {
            return nil
        }
        var total: Tensor? = lwf.lambda > 0 ? d.loss * lwf.lambda : nil
        if wantCodes, let f = d.features, let fStar = d.oldFeatures {
            let code = Self.codeLoss(features: f, oldFeatures: fStar, autoencoders: autoencoders) * (lambdaCode / 2)
            total = total.map { $0 + code } ?? code
        }
        return total
    }

    /// Σ_k meanₙ ‖σ(W_enc,k f(xₙ)) − σ(W_enc,k f*(xₙ))‖²: zero while the features equal the old ones.
    public static func codeLoss(features: Tensor, oldFeatures: Tensor, autoencoders: [TaskAutoencoder]) -> Tensor {
        let flat = features.rank == 2 ? features : features.flattened()
        let oldFlat = oldFeatures.rank == 2 ? oldFeatures : oldFeatures.flattened()
        var total: Tensor? = nil
        for ae in autoencoders {
            let target = GradMode.withoutGrad { ae.code(oldFlat) }
            let term = (ae.code(flat) - target).squared().sum(axis: 1).mean()
            total = total.map { $0 + term } ?? term
        }
        return total ?? Tensor(0)
    }

    public func afterTask(_ task: Int, context: TrainingContext) throws {
        autoencoders.append(try trainAutoencoder(task: task, context: context))
    }

    /// Trains the task's autoencoder on the current model's features of the task's training data.
    func trainAutoencoder(task: Int, context: TrainingContext) throws -> TaskAutoencoder {
        let model = context.model
        let wasTraining = model.isTraining
        model.eval()
        model.setActiveTask(task)
        defer { if wasTraining { model.train() }; model.zeroGrad() }
        let classes: [Int]? = context.stream.scenario == .classIncremental ? context.stream.outputClasses(task: task) : nil
        var rng = context.generator("ebll/autoencoder \(task)")
        var ae: TaskAutoencoder? = nil
        var encW = Tensor(0), encB = Tensor(0), decW = Tensor(0), decB = Tensor(0)
        var optimizer: Adam? = nil
        for epoch in 0..<autoencoderEpochs {
            for batch in context.stream.trainingBatches(task: task, epoch: epoch, batchSize: context.configuration.batchSize) {
                let f = GradMode.withoutGrad { () -> Tensor in
                    let x = model.features(batch.inputs)
                    return x.rank == 2 ? x : x.flattened()
                }
                if ae == nil {
                    let initial = TaskAutoencoder(featureSize: f.shape[1], codeSize: codeSize, using: &rng)
                    ae = initial
                    encW = Tensor(shape: [codeSize, f.shape[1]], scalars: initial.encoderWeight, requiresGrad: true)
                    encB = Tensor(initial.encoderBias, requiresGrad: true)
                    decW = Tensor(shape: [f.shape[1], codeSize], scalars: initial.decoderWeight, requiresGrad: true)
                    decB = Tensor(initial.decoderBias, requiresGrad: true)
                    optimizer = Adam([("encoder.weight", encW), ("encoder.bias", encB), ("decoder.weight", decW), ("decoder.bias", decB)],
                                     learningRate: autoencoderLearningRate)
                }
                let code = Tensor.linear(f, weight: encW, bias: encB).sigmoid()
                let reconstruction = Tensor.linear(code, weight: decW, bias: decB)
                let loss = Self.autoencoderLoss(features: f, reconstruction: reconstruction,
                                                logits: model.head(reconstruction), labels: batch.labels,
                                                allowedClasses: classes, alpha: alpha)
                try TrainingStep.take(loss, optimizer: optimizer!) { value in
                    "EBLL's autoencoder loss became \(value) on task \(task + 1), epoch \(epoch + 1); lower ebll.alpha"
                }
            }
        }
        return TaskAutoencoder(featureSize: encW.shape.last ?? 0, codeSize: codeSize, encoderWeight: encW.scalars,
                               encoderBias: encB.scalars, decoderWeight: decW.scalars, decoderBias: decB.scalars)
    }

    /// The autoencoder's objective α·½‖r − f‖² + CE(h_t(r), y): reconstruction summed over features and
    /// cross-entropy, each averaged over the batch.
    public static func autoencoderLoss(features f: Tensor, reconstruction r: Tensor, logits: Tensor, labels: [Int],
                                       allowedClasses: [Int]?, alpha: Float) -> Tensor {
        let task = Losses.crossEntropy(logits, targets: labels, allowedClasses: allowedClasses)
        guard alpha > 0 else { return task }
        return task + (r - f).squared().sum(axis: 1).mean() * (alpha / 2)
    }

    public var memoryBytes: Int {
        lwf.memoryBytes + autoencoders.reduce(0) { $0 + $1.scalarCount } * MemoryLayout<Float>.size
    }

    /// LwF's old model, the autoencoders (`ae.<k>.encoder.weight` …) and their number.
    public func saveState() throws -> StrategyState {
        var state = try lwf.saveState()
        state.add(autoencoders.enumerated().flatMap { $1.tensors(prefix: "ae.\($0)") })
        try state.record(autoencoders.count, as: "autoencoders")
        return state
    }

    public func loadState(_ state: StrategyState, context: TrainingContext) throws {
        try lwf.loadState(state, context: context)
        autoencoders = try (0..<state.count("autoencoders")).map { try TaskAutoencoder.from(state.tensors, prefix: "ae.\($0)") }
    }
}
