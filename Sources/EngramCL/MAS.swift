import EngramNN

/// Memory Aware Synapses (Aljundi et al., ECCV 2018), global version.
///
/// After each task, Ω_ij = (1/N) Σₖ |∂‖F(xₖ; θ)‖²₂/∂θ_ij| over the task's inputs (labels unused);
/// while learning the next task the loss is L(θ) + λ Σ Ω_ij (θ_ij − θ*_ij)², θ* the parameters after the
/// previous task. Ω can also be updated at any time from any unlabeled data (`updateImportance`), e.g.
/// from test inputs to adapt to the test condition. Memory: Ω and θ* only, 2 × the parameter count,
/// whatever the number of tasks.
public final class MAS: Strategy {
    /// λ, the regularization strength.
    public var lambda: Float
    public var output: MASOutput
    public var mode: MASGradientMode
    /// The unlabeled data Ω is measured on after each task.
    public var data: ImportanceData
    /// Samples per importance update (a stream of chunks; nil = the training batch size).
    public var chunk: Int?
    /// Ω, θ* and the sample count behind Ω.
    public private(set) var state: AnchoredImportance

    public init(lambda: Float, output: MASOutput = .logits, mode: MASGradientMode = .exact,
                accumulation: ImportanceAccumulation = .sum, data: ImportanceData = .train, chunk: Int? = nil) throws {
        self.lambda = try validatedStrength(lambda, flag: "--lambda")
        self.output = output
        self.mode = mode
        self.data = data
        self.chunk = try validatedChunk(chunk)
        state = AnchoredImportance(accumulation: accumulation)
    }

    public var name: String { "mas" }

    public func loss(taskLoss: Tensor, output: Tensor, batch: Batch, context: TrainingContext) -> Tensor {
        state.regularized(taskLoss, strength: lambda, context: context)
    }

    public func afterTask(_ task: Int, context: TrainingContext) throws {
        context.model.setActiveTask(task)
        updateImportance(model: context.model, inputs: context.unlabeledInputs(task: task, from: data, chunk: chunk),
                         chunked: chunk != nil)
        state.setAnchor(context.model.namedParameters())
    }

    /// Adds the importance measured on `inputs` (unlabeled) to Ω: as one estimate, or (`chunked`) as one
    /// update per input batch — a stream, which with `average` accumulation keeps a running average.
    public func updateImportance(model: Classifier, inputs: some Sequence<Tensor>, chunked: Bool) {
        guard chunked else { return updateImportance(model: model, inputs: inputs) }
        for x in inputs { updateImportance(model: model, inputs: [x]) }
    }

    /// Adds the importance measured on `inputs` (unlabeled) to Ω, by the accumulation rule.
    /// Call it with any data, at any time: training inputs after a task, test inputs, a stream in chunks.
    public func updateImportance(model: Classifier, inputs: some Sequence<Tensor>) {
        state.accumulate(Importance.mas(model: model, inputs: inputs, output: output, mode: mode))
    }

    public var memoryBytes: Int { state.memoryBytes }
    public func stateTensors() -> [(String, Tensor)] { state.stateTensors() }
    public func loadState(_ saved: [String: Tensor]) throws { state.loadState(saved) }
}

/// Memory Aware Synapses, local (Hebbian) version (Aljundi et al. 2018, sec. 4.2): Ω_ij = meanₖ |yᵢ(xₖ)·xⱼ(xₖ)|
/// from each layer's input and output activations on the task's inputs; the same penalty as global MAS.
public final class MASLocal: Strategy {
    public var lambda: Float
    public var data: ImportanceData
    public var chunk: Int?
    public private(set) var state: AnchoredImportance

    public init(lambda: Float, accumulation: ImportanceAccumulation = .sum, data: ImportanceData = .train, chunk: Int? = nil) throws {
        self.lambda = try validatedStrength(lambda, flag: "--lambda")
        self.data = data
        self.chunk = try validatedChunk(chunk)
        state = AnchoredImportance(accumulation: accumulation)
    }

    public var name: String { "mas-local" }

    public func loss(taskLoss: Tensor, output: Tensor, batch: Batch, context: TrainingContext) -> Tensor {
        state.regularized(taskLoss, strength: lambda, context: context)
    }

    public func afterTask(_ task: Int, context: TrainingContext) throws {
        context.model.setActiveTask(task)
        let inputs = context.unlabeledInputs(task: task, from: data, chunk: chunk)
        if chunk != nil { for x in inputs { updateImportance(model: context.model, inputs: [x]) } }
        else { updateImportance(model: context.model, inputs: inputs) }
        state.setAnchor(context.model.namedParameters())
    }

    /// Adds the Hebbian importance measured on `inputs` (unlabeled) to Ω.
    public func updateImportance(model: Classifier, inputs: some Sequence<Tensor>) {
        state.accumulate(Importance.masLocal(model: model, inputs: inputs))
    }

    public var memoryBytes: Int { state.memoryBytes }
    public func stateTensors() -> [(String, Tensor)] { state.stateTensors() }
    public func loadState(_ saved: [String: Tensor]) throws { state.loadState(saved) }
}
