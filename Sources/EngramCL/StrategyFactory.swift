import EngramNN

/// The hyper-parameters of every strategy, named after the papers' symbols. Each strategy reads the
/// ones it uses; unset values take the strategy's default.
public struct StrategyHyperparameters: Sendable, Codable, Equatable {
    /// λ: MAS, MAS-local, EWC, online EWC, RWalk; λ_o (distillation weight): LwF, EBLL.
    public var lambda: Float?
    /// c: SI's surrogate-loss strength.
    public var c: Float?
    /// ξ: SI's damping; ε, the damping of RWalk's score.
    public var xi: Float?
    /// γ: online EWC's decay.
    public var gamma: Float?
    /// MAS: which output's norm is differentiated.
    public var masOutput: MASOutput?
    /// MAS: exact per-sample gradients or the batch approximation.
    public var masMode: MASGradientMode?
    /// MAS: how importance of successive tasks is combined.
    public var accumulation: ImportanceAccumulation?
    /// EWC, online EWC, mode-IMM: how the Fisher treats the label (`exact` expectation, `sampled`, `empirical`).
    public var fisher: FisherEstimator?
    /// MAS: the unlabeled data Ω is measured on after each task (`train` or `test` inputs).
    public var importanceData: ImportanceData?
    /// MAS: feed the importance data in chunks of this many samples (a stream; use with `average`).
    public var importanceChunk: Int?
    /// α: RWalk's Fisher moving-average weight (default 0.9); EBLL's weight of the autoencoder's
    /// reconstruction loss (default 1e-6; the task loss has weight 1).
    public var alpha: Float?
    /// T: LwF's and EBLL's distillation temperature.
    public var temperature: Float?
    /// λ_c: EBLL's code-preservation weight.
    public var lambdaCode: Float?
    /// EBLL: the autoencoders' code size.
    public var codeSize: Int?
    /// EBLL: epochs of autoencoder training after each task.
    public var autoencoderEpochs: Int?
    /// IMM: λ of the L2-transfer penalty λ‖θ − θ_{t−1}‖² (0: pure weight-transfer).
    public var l2Transfer: Float?
    /// p: PackNet's fraction of each task's weights freed by pruning (0.75).
    public var pruneRatio: Double?
    /// PackNet: epochs of re-training the kept weights after pruning (1).
    public var retrainEpochs: Int?
    /// β: MIND's weight of the distillation from the task's teacher (5).
    public var distillBeta: Float?
    /// MIND: the distillation divergence (`symmetric-kl`, the reference's; `js`, the paper's).
    public var distillLoss: MINDDistillation?
    /// MAS, MAS-local, EWC, online EWC, SI, RWalk: the penalty's gradient step (default) or proximal step.
    public var penaltyStep: PenaltyStep?
    /// LwF, EBLL: multiply the distillation term by T² (off, as Li & Hoiem).
    public var temperatureSquared: Bool?
    /// MIND: epochs of teacher training per task (the run's epochs).
    public var teacherEpochs: Int?
    /// MIND: the teacher's AdamW learning rate (0.005, the reference's `lr`).
    public var teacherLearningRate: Float?
    /// MIND: the teacher's AdamW weight decay (0, the reference's `wd`).
    public var teacherWeightDecay: Float?
    /// MIND: teacher epochs at which its learning rate is halved (default round(0.7 · epochs)).
    public var teacherMilestones: [Int]?
    /// MIND: re-estimate each task's BatchNorm statistics exactly after its teacher and its sub-network train (true).
    public var preciseBatchNorm: Bool?

    public init() {}

    /// Keys older versions wrote that are read and ignored (`empirical_fisher`: now `fisher`).
    static let retiredKeys: Set<String> = ["empirical_fisher"]

    enum CodingKeys: String, CodingKey, CaseIterable {
        case lambda, c, xi, gamma, accumulation, alpha, temperature
        case masOutput = "mas_output", masMode = "mas_mode", fisher
        case importanceData = "importance_data", importanceChunk = "importance_chunk"
        case lambdaCode = "lambda_code", codeSize = "code_size", autoencoderEpochs = "ae_epochs", l2Transfer = "l2_transfer"
        case pruneRatio = "prune_ratio", retrainEpochs = "retrain_epochs"
        case distillBeta = "distill_beta", distillLoss = "distill_loss", temperatureSquared = "temperature_squared", penaltyStep = "penalty_step", teacherEpochs = "teacher_epochs", teacherLearningRate = "teacher_lr"
        case teacherWeightDecay = "teacher_weight_decay", teacherMilestones = "teacher_milestones"
        case preciseBatchNorm = "precise_batchnorm"
    }
}

/// Builds strategies from their command-line names.
public enum StrategyFactory {
    /// Names of every strategy the library holds, as used on the command line.
    public static let names = ["finetune", "joint", "mas", "mas-local", "ewc", "online-ewc", "si", "rwalk", "lwf", "ebll",
                                "imm-mean", "imm-mode", "pnn", "packnet", "mind", "mind-self"]

    /// The strategies that read λ (``StrategyHyperparameters/lambda``).
    public static let strategiesUsingLambda: Set<String> = ["mas", "mas-local", "ewc", "online-ewc", "rwalk", "lwf", "ebll"]

    /// Default λ per strategy (from the papers' Permuted-MNIST settings, rounded).
    public static func defaultLambda(_ name: String) -> Float {
        switch name {
        case "mas", "mas-local", "lwf", "ebll", "rwalk": 1
        case "ewc", "online-ewc": 100
        default: 0
        }
    }

    /// The strategy called `name` with the given hyper-parameters.
    public static func make(_ name: String, _ h: StrategyHyperparameters = StrategyHyperparameters()) throws -> any Strategy {
        let parts = name.split(separator: "+", omittingEmptySubsequences: false).map(String.init)
        if let empty = parts.firstIndex(of: "") , parts.count > 1 {
            throw StrategyError("--strategy '\(name)' has an empty part (position \(empty + 1)); combine names as mas+lwf")
        }
        if let repeated = parts.first(where: { p in parts.filter { $0 == p }.count > 1 }) {
            throw StrategyError("--strategy '\(name)' names '\(repeated)' twice; each method can appear once")
        }
        if parts.count > 1 { return CompositeStrategy(try parts.map { try make($0, h) }) }
        switch name {
        case "finetune": return Finetune()
        case "joint": return Joint()
        case "mas":
            return try MAS(lambda: h.lambda ?? defaultLambda(name), output: h.masOutput ?? .logits,
                           mode: h.masMode ?? .exact, accumulation: h.accumulation ?? .sum,
                           data: h.importanceData ?? .train, chunk: h.importanceChunk, penaltyStep: h.penaltyStep ?? .gradient)
        case "mas-local":
            return try MASLocal(lambda: h.lambda ?? defaultLambda(name), accumulation: h.accumulation ?? .sum,
                                data: h.importanceData ?? .train, chunk: h.importanceChunk, penaltyStep: h.penaltyStep ?? .gradient)
        case "ewc":
            return try EWC(lambda: h.lambda ?? defaultLambda(name), fisher: h.fisher ?? .exact, penaltyStep: h.penaltyStep ?? .gradient)
        case "online-ewc":
            return try OnlineEWC(lambda: h.lambda ?? defaultLambda(name), gamma: h.gamma ?? 1,
                                 fisher: h.fisher ?? .exact, penaltyStep: h.penaltyStep ?? .gradient)
        case "si":
            return try SynapticIntelligence(c: h.c ?? 0.1, xi: h.xi ?? 0.1, penaltyStep: h.penaltyStep ?? .gradient)
        case "rwalk":
            return try RWalk(lambda: h.lambda ?? defaultLambda(name), alpha: h.alpha ?? 0.9, epsilon: h.xi ?? 1e-3,
                             penaltyStep: h.penaltyStep ?? .gradient)
        case "lwf":
            return try LwF(lambda: h.lambda ?? defaultLambda(name), temperature: h.temperature ?? 2,
                           temperatureSquared: h.temperatureSquared ?? false)
        case "ebll":
            let lambda: Float = h.lambda ?? defaultLambda(name), temperature: Float = h.temperature ?? 2
            let lambdaCode: Float = h.lambdaCode ?? 0.1, alpha: Float = h.alpha ?? 1e-6
            let codeSize: Int = h.codeSize ?? 100, epochs: Int = h.autoencoderEpochs ?? 5
            return try EBLL(lambda: lambda, temperature: temperature, temperatureSquared: h.temperatureSquared ?? false,
                            lambdaCode: lambdaCode, codeSize: codeSize, autoencoderEpochs: epochs, alpha: alpha)
        case "imm-mean", "imm-mode":
            let mode: IMMMode = name == "imm-mean" ? .mean : .mode
            return try IMM(mode: mode, l2Transfer: h.l2Transfer ?? 0, fisher: h.fisher ?? .exact)
        case "pnn": return ProgressiveNets()
        case "packnet":
            return try PackNet(pruneRatio: h.pruneRatio ?? 0.75, retrainEpochs: h.retrainEpochs ?? 1)
        case "mind", "mind-self":
            return try MIND(variant: name == "mind" ? .freshTeacher : .selfDistillation,
                            distillBeta: h.distillBeta ?? 5, distillation: h.distillLoss ?? .symmetricKL, temperature: h.temperature ?? 6.5,
                            teacherEpochs: h.teacherEpochs, teacherLearningRate: h.teacherLearningRate ?? 0.005,
                            teacherWeightDecay: h.teacherWeightDecay ?? 0, teacherMilestones: h.teacherMilestones,
                            preciseBatchNorm: h.preciseBatchNorm ?? true)
        default:
            throw StrategyError("unknown strategy '\(name)'; available: \(names.joined(separator: ", "))")
        }
    }
}
