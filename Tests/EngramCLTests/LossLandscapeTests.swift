import EngramTensor
import EngramNN
import EngramCL
import Foundation
import Testing

/// The loss-landscape analyses: Hessian spectrum on quadratics whose Hessian is known, the linear interpolation
/// between kept task checkpoints, and sharpness at a real checkpoint.
@Suite(.serialized) struct LossLandscapeTests {
    /// A = Q diag(eigenvalues) Qᵀ with Q a seeded random orthogonal matrix, and the gradient θ ↦ Aθ of ½θᵀAθ.
    static func quadratic(_ eigenvalues: [Float], seed: UInt64 = 3) -> (matrix: [[Float]], gradient: ([Float]) -> [Float]) {
        let n = eigenvalues.count
        var random = RandomGenerator(seed: seed)
        var rows: [Float] = []
        GramSchmidt.extend(&rows, dimension: n, with: (0..<n).map { _ in (0..<n).map { _ in random.nextNormal() } })
        let q = (0..<n).map { i in Array(rows[i * n ..< (i + 1) * n]) }   // orthonormal rows
        let a = (0..<n).map { i in (0..<n).map { j in (0..<n).reduce(Float(0)) { $0 + q[$1][i] * eigenvalues[$1] * q[$1][j] } } }
        return (a, { theta in a.map { row in zip(row, theta).reduce(0) { $0 + $1.0 * $1.1 } } })
    }

    @Test("power iteration with deflation finds the largest eigenvalues of a quadratic's known Hessian")
    func eigenvaluesOfAQuadratic() {
        let (_, gradient) = Self.quadratic([6, 3, 1, 0.5, -0.2, 0.1])
        let theta: [Float] = [0.3, -1, 2, 0.5, 0, 1]
        var random = RandomGenerator(seed: 1)
        let pairs = HessianSpectrum.topEigenpairs(count: 2, dimension: 6, maxIterations: 500, tolerance: 1e-9, random: &random) { v in
            HessianSpectrum.vectorProduct(gradient: gradient, at: theta, direction: v, step: 1e-2)
        }
        #expect(abs(pairs[0].value - 6) < 1e-3, "λ1 \(pairs[0].value)")
        #expect(abs(pairs[1].value - 3) < 1e-3, "λ2 \(pairs[1].value)")
        #expect(pairs.allSatisfy { $0.residual < 1e-2 && $0.converged })
    }

    @Test("the central difference of gradients is the Hessian-vector product of a quadratic")
    func vectorProductOfAQuadratic() {
        let (a, gradient) = Self.quadratic([4, -2, 1])
        let v: [Float] = [0.6, 0, 0.8]
        let hv = HessianSpectrum.vectorProduct(gradient: gradient, at: [1, 2, 3], direction: v, step: 1e-2)
        let exact = a.map { row in zip(row, v).reduce(Float(0)) { $0 + $1.0 * $1.1 } }
        #expect(zip(hv, exact).allSatisfy { abs($0 - $1) < 1e-4 }, "\(hv) vs \(exact)")
    }

    /// L(w₁, w₂) = ½(w₂·ReLU(w₁))² at w₁ = 10⁻⁴ (just active), w₂ = 2: H = [[w₂², 2w₁w₂], [2w₁w₂, w₁²]], so
    /// H·(−1, 0) = (−4, −4·10⁻⁴). A step ε = 10⁻³ along (−1, 0) switches the unit off at θ + εv: the plain central
    /// difference gives (0 − 4.4·10⁻³)/2ε = −2.2 for the first entry, the held gates the exact −4.
    @Test("with the ReLU gates held at θ, the central difference across a kink is the Hessian-vector product; without, it is not",
          arguments: [true, false])
    func vectorProductAcrossAReLUKink(holdGates: Bool) {
        let gates = ActivationGates()
        func gradient(_ point: [Float]) -> [Float] {
            let w = Tensor(shape: [2], scalars: point, requiresGrad: true)
            let scope = holdGates ? gates : nil
            ActivationGates.$current.withValue(scope) {
                gates.rewind()
                let z = w.slice(axis: 0, 1..<2) * w.slice(axis: 0, 0..<1).relu()
                ((z * z).sum() * 0.5).backward()
            }
            return w.grad!.scalars
        }
        let theta: [Float] = [1e-4, 2]
        _ = gradient(theta)
        gates.freeze()
        #expect(gates.recordedCount == (holdGates ? 1 : 0))
        let hv = HessianSpectrum.vectorProduct(gradient: gradient, at: theta, direction: [-1, 0], step: 1e-3)
        if holdGates {
            #expect(abs(hv[0] + 4) < 1e-3 && abs(hv[1] + 4e-4) < 1e-4, "\(hv)")
        } else {
            #expect(abs(hv[0] + 2.2) < 1e-3, "\(hv)")
        }
    }

    @Test("Hutchinson's estimate is the trace exactly for a diagonal Hessian and within four standard errors otherwise")
    func traceOfAQuadratic() {
        let diagonal: [Float] = [5, 2, -1, 0.5]
        var random = RandomGenerator(seed: 2)
        let exact = HessianSpectrum.hutchinsonTrace(samples: 3, dimension: 4, random: &random) { v in zip(diagonal, v).map { $0 * $1 } }
        #expect(abs(exact.trace - 6.5) < 1e-6 && (exact.standardError ?? 1) < 1e-6)
        let (a, _) = Self.quadratic([6, 3, 1, 0.5, -0.2, 0.1])
        let estimate = HessianSpectrum.hutchinsonTrace(samples: 400, dimension: 6, random: &random) { v in
            a.map { row in zip(row, v).reduce(Float(0)) { $0 + $1.0 * $1.1 } }
        }
        let error = try! #require(estimate.standardError)
        #expect(abs(estimate.trace - 10.4) < 4 * error && error < 1, "\(estimate)")
    }

    /// A 3-task Permuted MNIST run keeping its task checkpoints.
    static func keptRun(seed: UInt64 = 0) throws -> (URL, RunResults) {
        var c = smallPermutedMNIST(strategy: "finetune", tasks: 3, fraction: 0.02, seed: seed)
        c.keepTaskCheckpoints = true
        let directory = try temporaryDirectory("engram-landscape")
        return (directory, try ExperimentRun(configuration: c, directory: directory).run())
    }

    @Test("a run keeps one checkpoint per task; interpolating two reproduces their accuracies exactly at α = 0 and 1")
    func interpolationReproducesTheEnds() throws {
        let (directory, results) = try Self.keptRun()
        let kept = (1...3).map { directory.appendingPathComponent("checkpoints/task-\($0).safetensors") }
        #expect(kept.allSatisfy { FileManager.default.fileExists(atPath: $0.path) })
        #expect(try Data(contentsOf: kept[0]) != Data(contentsOf: kept[1]))
        let a = try AnalyzedCheckpoint(contentsOf: kept[0]), b = try AnalyzedCheckpoint(contentsOf: kept[1])
        #expect(a.tasksTrained == 1 && b.tasksTrained == 2)
        let before = a.trainer.context.model.namedParameters().map { $0.1.scalars }
        let line = try Interpolation.measure(from: a, to: b, alphas: [0, 0.5, 1], tasks: [0, 1, 2])
        #expect(line.tasks == [1, 2, 3] && line.split == "test")
        #expect(line.accuracy[0] == a.recordedAccuracy[0].map(Double.init))
        #expect(line.accuracy[2] == b.recordedAccuracy[1].map(Double.init))
        // The run's results.json rounds; the checkpoints hold the exact figures.
        #expect(zip(line.accuracy[2], results.matrix.values[1]).allSatisfy { abs($0 - ($1 ?? -1)) < 1e-5 })
        #expect(line.loss.allSatisfy { $0.allSatisfy { $0.isFinite && $0 > 0 } })
        // Task 2 is learned along the way: its loss falls from A to B.
        #expect(line.loss[2][1] < line.loss[0][1])
        #expect(a.trainer.context.model.namedParameters().map { $0.1.scalars } == before, "A's model is restored")
    }

    @Test("an analysis's JSON gives its reals to 6 significant digits, as results.json does")
    func analysisJSONIsRounded() throws {
        let (directory, _) = try Self.keptRun()
        let kept = (1...2).map { directory.appendingPathComponent("checkpoints/task-\($0).safetensors") }
        let a = try AnalyzedCheckpoint(contentsOf: kept[0]), b = try AnalyzedCheckpoint(contentsOf: kept[1])
        let line = try Interpolation.measure(from: a, to: b, alphas: [0, 1.0 / 3, 1], tasks: [0, 1])
        let sharpness = try Sharpness.measure(a, task: 0, samples: 100, top: 1, maxIterations: 5, hutchinsonSamples: 2)
        func reals(_ value: some Encodable) throws -> [Double] {
            func collect(_ x: Any) -> [Double] {
                switch x {
                case let n as NSNumber: [n.doubleValue]   // booleans too: 0 and 1 pass
                case let a as [Any]: a.flatMap(collect)
                case let d as [String: Any]: d.values.flatMap(collect)
                default: []
                }
            }
            return collect(try JSONSerialization.jsonObject(with: JSONEncoder().encode(value)))
        }
        let numbers = try reals(line) + reals(sharpness)
        #expect(numbers.count > 20)
        #expect(numbers.allSatisfy { Double(String(format: "%.6g", $0)) == $0 }, "\(numbers)")
        #expect(try reals(line).contains(0.333333) && reals(sharpness).contains(0.001))
        // Unrounded in memory: the ends still equal the checkpoints' own accuracies exactly.
        #expect(line.accuracy[0] == a.recordedAccuracy[0].prefix(2).map(Double.init))
    }

    @Test("an analysis names its checkpoints relative to its own folder, absolute only when they share nothing")
    func checkpointPathsAreRelative() {
        let run = URL(fileURLWithPath: "/results/sweep/run")
        let kept = run.appendingPathComponent("checkpoints/task-1.safetensors")
        #expect(relativePath(of: kept, from: run.appendingPathComponent("analysis")) == "../checkpoints/task-1.safetensors")
        #expect(relativePath(of: kept, from: run) == "checkpoints/task-1.safetensors")
        #expect(relativePath(of: kept, from: URL(fileURLWithPath: "/results/other/run/analysis")) == "../../../sweep/run/checkpoints/task-1.safetensors")
        #expect(relativePath(of: kept, from: URL(fileURLWithPath: "/tmp/out")) == kept.path)
    }

    @Test("checkpoints of different streams are refused, naming the setting")
    func differentStreamsAreRefused() throws {
        let (first, _) = try Self.keptRun(seed: 0), (second, _) = try Self.keptRun(seed: 1)
        let a = try AnalyzedCheckpoint(contentsOf: first.appendingPathComponent("checkpoints/task-1.safetensors"))
        let b = try AnalyzedCheckpoint(contentsOf: second.appendingPathComponent("checkpoints/task-1.safetensors"))
        #expect {
            try Interpolation.measure(from: a, to: b, alphas: [0, 1], tasks: [0])
        } throws: { "\($0)".contains("training.seed is 0 and 1") }
    }

    @Test("sharpness at a checkpoint: finite positive curvature, the residual stated, the model left as it was")
    func sharpnessAtACheckpoint() throws {
        let (directory, _) = try Self.keptRun()
        let c = try AnalyzedCheckpoint(contentsOf: directory.appendingPathComponent("checkpoints/task-1.safetensors"))
        let before = c.trainer.context.model.namedParameters().map { $0.1.scalars }
        let s = try Sharpness.measure(c, task: 0, samples: 200, top: 1, maxIterations: 30, hutchinsonSamples: 3)
        #expect(s.task == 1 && s.samples == 200 && s.parameters == 89_610)
        #expect(s.eigenvalues.count == 1 && s.eigenvalues[0] > 0 && s.residuals[0].isFinite && s.trace.isFinite && s.converged.count == 1)
        #expect(s.hessianVectorProduct.hasPrefix("central difference of gradients, ReLU gates held") && s.finiteDifferenceStep > 0)
        #expect(c.trainer.context.model.namedParameters().map { $0.1.scalars } == before)
        #expect(throws: RunError.self) { try Sharpness.measure(c, task: 3) }
    }
}
