import EngramTensor
import EngramData
import EngramNN
import Foundation

/// A run's checkpoint (`checkpoint.safetensors`, or one kept after a task with `keep_task_checkpoints`) loaded for
/// analysis: the run's configuration read from the checkpoint itself, its model, stream and strategy built and
/// restored exactly as `engram resume` would.
public final class AnalyzedCheckpoint {
    public let url: URL
    /// The configuration the run was written with (resolved).
    public let configuration: ExperimentConfiguration
    public let trainer: Trainer
    /// Tasks fully trained when the checkpoint was written.
    public let tasksTrained: Int
    /// The test (or validation) accuracy of every task the run recorded after each trained task.
    public let recordedAccuracy: [[Float]]

    /// Loads `url`; `dataDirectory` replaces the run's dataset directory (the data must be the same files), and a
    /// prebuilt `benchmark` of the run's configuration skips loading it again.
    public init(contentsOf url: URL, dataDirectory: String? = nil, benchmark prebuilt: ContinualBenchmark? = nil) throws {
        let checkpoint = try Checkpoint.read(from: url)
        guard let text = checkpoint.metadata["engram.configuration"] else {
            throw RunError("\(url.path): not an Engram run checkpoint (no 'engram.configuration' metadata)")
        }
        let saved: ExperimentConfiguration
        do { saved = try JSONDecoder().decode(ExperimentConfiguration.self, from: Data(text.utf8)) } catch {
            throw RunError("\(url.path): metadata 'engram.configuration' is unreadable: \(ConfigurationError.describe(error))")
        }
        let run = try ExperimentRun(configuration: saved, directory: url.deletingLastPathComponent())
        let benchmark: ContinualBenchmark
        if let prebuilt { benchmark = prebuilt } else {
            var data = run.configuration
            if let dataDirectory { data.dataDirectory = dataDirectory }
            benchmark = try data.makeLocatedBenchmark().benchmark
        }
        trainer = try run.makeTrainer(for: benchmark)
        let (position, results) = try run.restore(into: trainer, from: url)
        self.url = url
        configuration = run.configuration
        tasksTrained = position.task
        recordedAccuracy = results.accuracy
    }

    /// Every tensor of the model by name: parameters and buffers (BatchNorm's running statistics).
    var modelTensors: [(String, Tensor)] { trainer.context.model.namedParameters() + trainer.context.model.namedBuffers() }

    /// Mean cross-entropy and accuracy of the model on `task`'s evaluation split (test, or validation for a
    /// selection run), the accuracy computed exactly as the run computed its accuracy matrix.
    public func evaluate(task: Int) -> (loss: Double, accuracy: Double) {
        let accuracy = trainer.evaluate(task: task)
        let context = trainer.context, model = context.model
        let restore = model.enterEvaluationMode()
        defer { restore() }
        model.setActiveTask(task)
        var total = 0.0, count = 0
        GradMode.withoutGrad {
            for batch in context.stream.testBatches(task: task, batchSize: context.configuration.evaluationBatchSize) {
                total += Double(Losses.crossEntropy(model(batch.inputs), targets: batch.labels).item) * Double(batch.count)
                count += batch.count
            }
        }
        return (count == 0 ? .nan : total / Double(count), Double(accuracy))
    }

    /// Refuses a checkpoint whose evaluation depends on more than the model's tensors (per-task masks or columns
    /// chosen by the task id, a strategy's own classification rule): a point between two such checkpoints is no
    /// model its run could evaluate.
    func checkInterpolable() throws {
        let parts = (try? StrategyRegistry.parts(of: configuration.strategy)) ?? []
        for part in parts where StrategyRegistry.descriptor(named: part)?.usesTaskIdentityAtTest == true {
            throw RunError("\(url.path): \(part) selects per-task parts of its network by the task id at test time; "
                           + "only checkpoints evaluated by their model's outputs alone can be interpolated")
        }
        let strategies = (trainer.strategy as? CompositeStrategy)?.parts ?? [trainer.strategy]
        if let scoring = strategies.first(where: { $0 is EvaluationScoring || $0 is TaskAwareClassRestriction }) {
            throw RunError("\(url.path): \(scoring.name) classifies by its own rule at test time; "
                           + "only checkpoints evaluated by their model's outputs alone can be interpolated")
        }
    }

    /// The settings that fix the stream and the network: two checkpoints can be interpolated when they agree on all.
    var streamAndNetwork: [(String, String)] {
        let c = configuration
        func text<T>(_ value: T?) -> String { value.map { "\($0)" } ?? "-" }
        var pairs: [(String, String)] = [("benchmark", c.benchmark), ("scenario", c.scenario), ("tasks", text(c.tasks))]
        pairs += [("model", c.model), ("hidden", text(c.hidden)), ("width", text(c.width)), ("bias", text(c.bias))]
        pairs += [("per_task_batchnorm", text(c.perTaskBatchNorm)), ("fraction", text(c.fraction)), ("test_fraction", text(c.testFraction))]
        pairs += [("validation_fraction", text(c.validationFraction)), ("evaluate_on_validation", text(c.evaluateOnValidation))]
        pairs += [("padding", text(c.padding)), ("identity_first", text(c.identityFirst)), ("rotation_per_task", text(c.rotationPerTask))]
        pairs += [("rotation_jitter", text(c.rotationJitter)), ("class_order", c.classOrder), ("training.seed", text(c.training.seed))]
        return pairs
    }
}

/// `file` as a path relative to `folder` (`../checkpoints/task-1.safetensors`), as an analysis names its checkpoints so
/// that the name stays right wherever the results directory is moved or cloned; absolute when the two share nothing
/// below the root.
public func relativePath(of file: URL, from folder: URL) -> String {
    let target = file.standardizedFileURL.pathComponents, base = folder.standardizedFileURL.pathComponents
    let shared = zip(target, base).prefix { $0 == $1 }.count
    guard shared > 1 else { return file.standardizedFileURL.path }
    return (Array(repeating: "..", count: base.count - shared) + target[shared...]).joined(separator: "/")
}

/// Loss and accuracy of every chosen task along the line θ(α) = (1 − α)θ_A + αθ_B between two checkpoints (the
/// mode-connectivity picture of Mirzadeh et al. 2021, Garipov et al. 2018), `interpolation.json` as written by
/// `engram analyze interpolate`.
public struct Interpolation: Codable, Equatable, Sendable {
    public var from: String
    public var to: String
    /// The tasks evaluated, numbered from 1.
    public var tasks: [Int]
    public var alphas: [Double]
    /// `loss[i][j]`: mean cross-entropy of task `tasks[j]` at `alphas[i]`.
    public var loss: [[Double]]
    /// `accuracy[i][j]`: its accuracy.
    public var accuracy: [[Double]]
    /// The split evaluated: `test`, or `validation` for checkpoints of a selection run.
    public var split: String

    enum CodingKeys: String, CodingKey { case from, to, tasks, alphas, loss, accuracy, split }

    /// As `results.json`: α, losses and accuracies to 6 significant digits (not `0.9562000036239624`).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(from, forKey: .from)
        try c.encode(to, forKey: .to)
        try c.encode(tasks, forKey: .tasks)
        try c.encode(alphas.map(significant), forKey: .alphas)
        try c.encode(loss.map { $0.map(significant) }, forKey: .loss)
        try c.encode(accuracy.map { $0.map(significant) }, forKey: .accuracy)
        try c.encode(split, forKey: .split)
    }

    /// Evaluates `tasks` (from 0) at each of `alphas`; α = 0 is A's model and α = 1 B's, bit for bit. The model is A's
    /// again afterwards.
    public static func measure(from a: AnalyzedCheckpoint, to b: AnalyzedCheckpoint, alphas: [Double], tasks: [Int]) throws -> Interpolation {
        try a.checkInterpolable()
        try b.checkInterpolable()
        for ((key, x), (_, y)) in zip(a.streamAndNetwork, b.streamAndNetwork) where x != y {
            throw RunError("\(a.url.path) and \(b.url.path) were trained on different streams or networks: \(key) is \(x) and \(y)")
        }
        let target = a.modelTensors, source = Dictionary(b.modelTensors, uniquingKeysWith: { x, _ in x })
        for (name, t) in target where source[name]?.shape != t.shape {
            throw RunError("\(b.url.path): tensor '\(name)' is \(source[name].map { "of shape \($0.shape)" } ?? "missing"), \(a.url.lastPathComponent) has \(t.shape)")
        }
        let taskCount = a.trainer.context.stream.taskCount
        if let bad = tasks.first(where: { !(0..<taskCount).contains($0) }) {
            throw RunError("task \(bad + 1) is not one of the stream's tasks 1…\(taskCount)")
        }
        let start = target.map { $0.1.scalars }, end = target.map { source[$0.0]!.scalars }
        defer { for (i, (_, t)) in target.enumerated() { t.scalars = start[i] } }
        var result = Interpolation(from: a.url.path, to: b.url.path, tasks: tasks.map { $0 + 1 }, alphas: alphas, loss: [], accuracy: [],
                                   split: a.configuration.evaluateOnValidation ? "validation" : "test")
        for alpha in alphas {
            for (i, (_, t)) in target.enumerated() {
                switch alpha {
                case 0: t.scalars = start[i]
                case 1: t.scalars = end[i]
                default:
                    let (u, v) = (Float(1 - alpha), Float(alpha))
                    t.scalars = zip(start[i], end[i]).map { u * $0 + v * $1 }
                }
            }
            let points = tasks.map { a.evaluate(task: $0) }
            result.loss.append(points.map(\.loss))
            result.accuracy.append(points.map(\.accuracy))
        }
        return result
    }
}

/// The curvature of one task's training loss at a checkpoint (`engram analyze sharpness`): the largest Hessian
/// eigenvalues and the trace, on a fixed sample of the task's training data, the model in evaluation mode.
public struct Sharpness: Codable, Equatable, Sendable {
    public var checkpoint: String
    /// The task whose loss is measured, numbered from 1.
    public var task: Int
    public var samples: Int
    public var parameters: Int
    /// Mean cross-entropy of the sample at the checkpoint.
    public var loss: Double
    /// λ₁ ≥ … by magnitude, with ‖Hv − λv‖ and the power iterations each took.
    public var eigenvalues: [Double]
    public var residuals: [Double]
    public var iterations: [Int]
    /// Whether each eigenvalue's Rayleigh quotient settled within the tolerance before the iteration limit.
    public var converged: [Bool]
    /// Hutchinson's estimate of tr(H) and its standard error over `hutchinson_samples` Rademacher vectors.
    public var trace: Double
    public var traceStandardError: Double?
    public var hutchinsonSamples: Int
    /// How Hessian-vector products were taken: `central difference of gradients, ReLU gates held at the checkpoint's`
    /// with step ε (`ActivationGates`).
    public var hessianVectorProduct: String
    public var finiteDifferenceStep: Double

    enum CodingKeys: String, CodingKey {
        case checkpoint, task, samples, parameters, loss, eigenvalues, residuals, iterations, converged, trace
        case traceStandardError = "trace_standard_error", hutchinsonSamples = "hutchinson_samples"
        case hessianVectorProduct = "hessian_vector_product", finiteDifferenceStep = "finite_difference_step"
    }

    /// As `results.json`: every real to 6 significant digits (ε as typed, 0.001, not its `Float` 0.0010000000474974513).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(checkpoint, forKey: .checkpoint)
        try c.encode(task, forKey: .task)
        try c.encode(samples, forKey: .samples)
        try c.encode(parameters, forKey: .parameters)
        try c.encode(significant(loss), forKey: .loss)
        try c.encode(eigenvalues.map(significant), forKey: .eigenvalues)
        try c.encode(residuals.map(significant), forKey: .residuals)
        try c.encode(iterations, forKey: .iterations)
        try c.encode(converged, forKey: .converged)
        try c.encode(significant(trace), forKey: .trace)
        try c.encodeIfPresent(traceStandardError.map(significant), forKey: .traceStandardError)
        try c.encode(hutchinsonSamples, forKey: .hutchinsonSamples)
        try c.encode(hessianVectorProduct, forKey: .hessianVectorProduct)
        try c.encode(significant(finiteDifferenceStep), forKey: .finiteDifferenceStep)
    }

    /// Measures `task` (from 0) of `checkpoint` on `samples` of its training data (a seeded draw: the first of a
    /// shuffle no training pass uses). Hessian-vector products are central differences of gradients with step
    /// `step` along unit vectors (Engram's autodiff has no second backward pass), every ReLU's gates held at the
    /// checkpoint's (`ActivationGates`: without that, units crossing zero between θ ± εv made the products noise —
    /// on the Permuted MNIST MLP no eigenvalue converged in 100 iterations, residuals as large as the eigenvalues,
    /// and the trace came out −15 ± 49); `seed` fixes the starting vectors.
    public static func measure(_ checkpoint: AnalyzedCheckpoint, task: Int, samples: Int = 1000, top: Int = 3,
                               maxIterations: Int = 100, tolerance: Double = 1e-4, hutchinsonSamples: Int = 50,
                               step: Float = 1e-3, seed: UInt64 = 0) throws -> Sharpness {
        let context = checkpoint.trainer.context, model = context.model
        guard (0..<context.stream.taskCount).contains(task) else {
            throw RunError("task \(task + 1) is not one of the stream's tasks 1…\(context.stream.taskCount)")
        }
        guard let sample = context.stream.trainingBatches(task: task, epoch: 5_000_000, batchSize: samples).first(where: { _ in true }) else {
            throw RunError("task \(task + 1) has no training data")
        }
        let parameters = model.namedParameters()
        let theta = parameters.flatMap { $0.1.scalars }
        let restore = model.enterEvaluationMode()
        defer {
            ReplayMemory.setValues(theta, of: parameters)
            model.zeroGrad()
            restore()
        }
        model.setActiveTask(task)
        let chunks = stride(from: 0, to: sample.count, by: 256).map { sample.rows(Array($0 ..< min($0 + 256, sample.count))) }
        var loss = 0.0
        // The ReLU gates of the first pass (at θ) are held for every later one: see `ActivationGates`.
        let gates = ActivationGates()
        /// ∇ of the sample's mean cross-entropy at `point` (chunk means weighted by their sizes).
        func gradient(_ point: [Float]) -> [Float] {
            ReplayMemory.setValues(point, of: parameters)
            var total = [Float](repeating: 0, count: point.count)
            loss = 0
            gates.rewind()
            ActivationGates.$current.withValue(gates) {
                for chunk in chunks {
                    model.zeroGrad()
                    let value = Losses.crossEntropy(model(chunk.inputs), targets: chunk.labels)
                    loss += Double(value.item) * Double(chunk.count) / Double(sample.count)
                    value.backward()
                    let weight = Float(chunk.count) / Float(sample.count)
                    var offset = 0
                    for (_, p) in parameters {
                        if let g = p.grad?.scalars { for i in g.indices { total[offset + i] += weight * g[i] } }
                        offset += p.count
                    }
                }
            }
            return total
        }
        _ = gradient(theta)
        gates.freeze()
        let lossAtTheta = loss
        let product = { (v: [Float]) in HessianSpectrum.vectorProduct(gradient: gradient, at: theta, direction: v, step: step) }
        var random = RandomGenerator(seed: seed, label: "sharpness/task \(task)")
        let pairs = HessianSpectrum.topEigenpairs(count: top, dimension: theta.count, maxIterations: maxIterations,
                                                  tolerance: tolerance, random: &random, product: product)
        // Rademacher vectors have norm √P: the product is linear in v, so scale to a unit step and back.
        let scale = Float(Double(theta.count).squareRoot())
        let (trace, error) = HessianSpectrum.hutchinsonTrace(samples: hutchinsonSamples, dimension: theta.count, random: &random) { v in
            product(v.map { $0 / scale }).map { $0 * scale }
        }
        return Sharpness(checkpoint: checkpoint.url.path, task: task + 1, samples: sample.count, parameters: theta.count,
                         loss: lossAtTheta, eigenvalues: pairs.map(\.value), residuals: pairs.map(\.residual),
                         iterations: pairs.map(\.iterations), converged: pairs.map(\.converged), trace: trace, traceStandardError: error,
                         hutchinsonSamples: hutchinsonSamples, hessianVectorProduct: "central difference of gradients, ReLU gates held at the checkpoint's",
                         finiteDifferenceStep: Double(step))
    }
}
