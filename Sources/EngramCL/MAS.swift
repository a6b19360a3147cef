import EngramTensor
import EngramData
import EngramNN

/// Memory Aware Synapses (Aljundi et al., ECCV 2018), global version.
///
/// After each task, Ω_ij = (1/N) Σₖ |∂‖F(xₖ; θ)‖²₂/∂θ_ij| over the task's inputs (labels unused);
/// while learning the next task the loss is L(θ) + λ Σ Ω_ij (θ_ij − θ*_ij)², θ* the parameters after the
/// previous task. Ω can also be updated at any time from any unlabeled data (`updateImportance`), e.g.
/// from test inputs to adapt to the test condition. Memory: Ω and θ* only, 2 × the parameter count,
/// whatever the number of tasks.
public final class MAS: RegisteredStrategy {
    public static let descriptors = [StrategyDescriptor(
        name: "mas", summary: "Memory Aware Synapses: importance from the sensitivity of the output's norm on unlabeled data",
        paper: "Aljundi, Babiloni, Elhoseiny, Rohrbach & Tuytelaars, ECCV 2018",
        hyperparameters: [
            .strength(default: 1),
            .choice("output", MASOutput.self, default: .logits, flag: "mas-output",
                    help: "The output whose squared ℓ2 norm is differentiated: logits or softmax."),
            .choice("mode", MASGradientMode.self, default: .exact, flag: "mas-mode",
                    help: "Exact per-sample gradients or the batch approximation: exact or batch."),
            .accumulation, .importanceData, .importanceChunk, .penaltyStep,
        ],
        make: { o in
            try MAS(lambda: o.float("lambda"), output: o.choice("output"), mode: o.choice("mode"),
                    accumulation: o.choice("accumulation"), data: o.choice("importance_data"),
                    chunk: o.optionalInteger("importance_chunk"), penaltyStep: o.choice("penalty_step"))
        })]

    /// λ, the regularization strength.
    public var lambda: Float
    public var output: MASOutput
    public var mode: MASGradientMode
    /// The unlabeled data Ω is measured on after each task.
    public var data: ImportanceData
    /// Samples per forward/backward pass of the importance measurement (bounds its memory; nil = the training
    /// batch size). A task's chunks form one estimate Ω_t, so the chunk size does not change Ω.
    public var chunk: Int?
    /// Ω, θ* and the sample count behind Ω.
    public private(set) var state: AnchoredImportance

    public init(lambda: Float, output: MASOutput = .logits, mode: MASGradientMode = .exact,
                accumulation: ImportanceAccumulation = .sum, data: ImportanceData = .train, chunk: Int? = nil,
                penaltyStep: PenaltyStep = .gradient) throws {
        self.lambda = try validatedStrength(lambda, flag: "--lambda")
        self.output = output
        self.mode = mode
        self.data = data
        self.chunk = try validatedChunk(chunk)
        state = AnchoredImportance(accumulation: accumulation, step: penaltyStep)
    }

    public var name: String { "mas" }

    public func afterStep(context: TrainingContext) { state.afterStep(strength: lambda, context: context) }

    /// λ Σ Ω (θ − θ*)².
    public func penalty(output: Tensor, batch: Batch, context: TrainingContext) -> Tensor? {
        state.penalty(strength: lambda, context: context)
    }

    /// Ω ← Ω ⊕ Ω_t with Ω_t measured on the task's unlabeled inputs. The inputs are read in chunks of `chunk`
    /// samples (bounded memory), but the chunks of one task form *one* estimate Ω_t = (1/N_t) Σₖ |∂‖F(xₖ)‖²/∂θ|
    /// before it is folded into Ω — with `sum` accumulation Ω = Σ_t Ω_t as in the authors' code, whatever the chunk.
    public func afterTask(_ task: Int, context: TrainingContext) throws {
        context.model.setActiveTask(task)
        updateImportance(model: context.model, inputs: context.unlabeledInputs(task: task, from: data, chunk: chunk))
        state.setAnchor(context.model.namedParameters())
    }

    /// Folds the importance measured on `inputs` (unlabeled; any number of batches, which together form one
    /// estimate) into Ω by the accumulation rule: `sum` adds the estimate's mean (one call = one data set, as
    /// one task in the paper), `average` keeps the running average over every sample seen by any call — a
    /// stream of calls, e.g. on test inputs as they arrive (not the authors' behaviour, which sums per-task means).
    /// Call it with any data, at any time: training inputs after a task, test inputs, a stream in chunks.
    public func updateImportance(model: Classifier, inputs: some Sequence<Tensor>) {
        state.accumulate(Importance.mas(model: model, inputs: inputs, output: output, mode: mode))
    }

    public var memoryBytes: Int { state.memoryBytes }
    public func saveState() throws -> StrategyState { var saved = StrategyState(); try state.save(into: &saved); return saved }
    public func loadState(_ saved: StrategyState, context: TrainingContext) throws { try state.load(saved, model: context.model) }
}

/// Memory Aware Synapses, local (Hebbian) version (Aljundi et al. 2018, sec. 4.2): Ω_ij = meanₖ |Fᵢ(xₖ)·Fⱼ(xₖ)|,
/// the product of the activations (after the non-linearity) of the two neurons θ_ij connects, on the task's
/// inputs (see `Importance.masLocal`); the same penalty as global MAS.
public final class MASLocal: RegisteredStrategy {
    public static let descriptors = [StrategyDescriptor(
        name: "mas-local", summary: "Memory Aware Synapses, local (Hebbian) importance: the product of the connected neurons' activations",
        paper: "Aljundi, Babiloni, Elhoseiny, Rohrbach & Tuytelaars, ECCV 2018 (sec. 4.2)",
        hyperparameters: [.strength(default: 1), .accumulation, .importanceData, .importanceChunk, .penaltyStep],
        make: { o in
            try MASLocal(lambda: o.float("lambda"), accumulation: o.choice("accumulation"), data: o.choice("importance_data"),
                         chunk: o.optionalInteger("importance_chunk"), penaltyStep: o.choice("penalty_step"))
        })]

    public var lambda: Float
    public var data: ImportanceData
    public var chunk: Int?
    public private(set) var state: AnchoredImportance

    public init(lambda: Float, accumulation: ImportanceAccumulation = .sum, data: ImportanceData = .train, chunk: Int? = nil,
                penaltyStep: PenaltyStep = .gradient) throws {
        self.lambda = try validatedStrength(lambda, flag: "--lambda")
        self.data = data
        self.chunk = try validatedChunk(chunk)
        state = AnchoredImportance(accumulation: accumulation, step: penaltyStep)
    }

    public func afterStep(context: TrainingContext) { state.afterStep(strength: lambda, context: context) }

    public var name: String { "mas-local" }

    /// λ Σ Ω (θ − θ*)².
    public func penalty(output: Tensor, batch: Batch, context: TrainingContext) -> Tensor? {
        state.penalty(strength: lambda, context: context)
    }

    /// As global MAS: the chunks of one task form one estimate Ω_t, folded into Ω once per task.
    public func afterTask(_ task: Int, context: TrainingContext) throws {
        context.model.setActiveTask(task)
        updateImportance(model: context.model, inputs: context.unlabeledInputs(task: task, from: data, chunk: chunk))
        state.setAnchor(context.model.namedParameters())
    }

    /// Adds the Hebbian importance measured on `inputs` (unlabeled) to Ω.
    public func updateImportance(model: Classifier, inputs: some Sequence<Tensor>) {
        state.accumulate(Importance.masLocal(model: model, inputs: inputs))
    }

    public var memoryBytes: Int { state.memoryBytes }
    public func saveState() throws -> StrategyState { var saved = StrategyState(); try state.save(into: &saved); return saved }
    public func loadState(_ saved: StrategyState, context: TrainingContext) throws { try state.load(saved, model: context.model) }
}
