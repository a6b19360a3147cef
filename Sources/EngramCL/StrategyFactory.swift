import EngramNN

/// The hyper-parameters of every strategy, named after the papers' symbols. Each strategy reads the
/// ones it uses; unset values take the strategy's default.
public struct StrategyHyperparameters: Sendable, Codable, Equatable {
    /// λ: MAS, MAS-local, EWC, online EWC.
    public var lambda: Float?
    /// c: SI's surrogate-loss strength.
    public var c: Float?
    /// ξ: SI's damping.
    public var xi: Float?
    /// γ: online EWC's decay.
    public var gamma: Float?
    /// MAS: which output's norm is differentiated.
    public var masOutput: MASOutput?
    /// MAS: exact per-sample gradients or the batch approximation.
    public var masMode: MASGradientMode?
    /// MAS: how importance of successive tasks is combined.
    public var accumulation: ImportanceAccumulation?
    /// EWC: empirical Fisher (true labels) or labels sampled from the model.
    public var empiricalFisher: Bool?
    /// MAS: the unlabeled data Ω is measured on after each task (`train` or `test` inputs).
    public var importanceData: ImportanceData?
    /// MAS: feed the importance data in chunks of this many samples (a stream; use with `average`).
    public var importanceChunk: Int?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case lambda, c, xi, gamma, accumulation
        case masOutput = "mas_output", masMode = "mas_mode", empiricalFisher = "empirical_fisher"
        case importanceData = "importance_data", importanceChunk = "importance_chunk"
    }
}

/// Builds strategies from their command-line names.
public enum StrategyFactory {
    /// Names of every strategy the library holds, as used on the command line.
    public static let names = ["finetune", "joint", "mas", "mas-local", "ewc", "online-ewc", "si"]

    /// Default λ per strategy (from the papers' Permuted-MNIST settings, rounded).
    public static func defaultLambda(_ name: String) -> Float {
        switch name {
        case "mas", "mas-local": 1
        case "ewc", "online-ewc": 100
        default: 0
        }
    }

    /// The strategy called `name` with the given hyper-parameters.
    public static func make(_ name: String, _ h: StrategyHyperparameters = StrategyHyperparameters()) throws -> any Strategy {
        let parts = name.split(separator: "+").map(String.init)
        if parts.count > 1 { return CompositeStrategy(try parts.map { try make($0, h) }) }
        switch name {
        case "finetune": return Finetune()
        case "joint": return Joint()
        case "mas":
            return try MAS(lambda: h.lambda ?? defaultLambda(name), output: h.masOutput ?? .logits,
                           mode: h.masMode ?? .exact, accumulation: h.accumulation ?? .sum,
                           data: h.importanceData ?? .train, chunk: h.importanceChunk)
        case "mas-local":
            return try MASLocal(lambda: h.lambda ?? defaultLambda(name), accumulation: h.accumulation ?? .sum,
                                data: h.importanceData ?? .train, chunk: h.importanceChunk)
        case "ewc":
            return try EWC(lambda: h.lambda ?? defaultLambda(name), empiricalFisher: h.empiricalFisher ?? true)
        case "online-ewc":
            return try OnlineEWC(lambda: h.lambda ?? defaultLambda(name), gamma: h.gamma ?? 1,
                                 empiricalFisher: h.empiricalFisher ?? true)
        case "si":
            return try SynapticIntelligence(c: h.c ?? 0.1, xi: h.xi ?? 1e-3)
        default:
            throw StrategyError("unknown strategy '\(name)'; available: \(names.joined(separator: ", "))")
        }
    }
}
