import EngramTensor
import EngramData
import EngramCL
import EngramNN
import Foundation
import Testing

/// The defects a review against the papers and the authors' code found, each pinned by a hand-computed case.
@Suite struct EWCFisherTests {
    /// A linear softmax classifier (no hidden layer) with fixed weights, and two inputs.
    func linearFixture() -> (Classifier, Tensor) {
        var rng = RandomGenerator(seed: 2)
        let model = Models.mlp(input: 3, hidden: [], classes: 3, using: &rng)
        let head = model.head as! Linear
        head.weight.scalars = [0.5, -1, 0.2, 1.5, 0.3, -0.4, -0.2, 0.8, 1]
        head.bias!.scalars = [0.1, -0.3, 0.2]
        return (model, Tensor(shape: [2, 3], scalars: [1, 2, -1, 0.5, -0.5, 2]))
    }

    @Test("the exact Fisher of a linear softmax classifier is x_j² · p_k(1 − p_k), computed by hand")
    func exactFisherOfSoftmaxRegression() {
        let (model, x) = linearFixture()
        var rng = RandomGenerator(seed: 0)
        let fisher = Importance.fisher(model: model, batches: [(x, [0, 1])], estimator: .exact, rng: &rng).mean
        let logits = GradMode.withoutGrad { model(x) }.scalars
        var weight = [Float](repeating: 0, count: 9), bias = [Float](repeating: 0, count: 3)
        for r in 0..<2 {
            let z = (0..<3).map { Double(logits[r * 3 + $0]) }
            let e = z.map { Foundation.exp($0) }, s = e.reduce(0, +)
            for k in 0..<3 {
                let p = e[k] / s
                // Σ_c p_c (δ_kc − p_k)² = p_k(1 − p_k)² + (1 − p_k)p_k² = p_k(1 − p_k).
                for j in 0..<3 { weight[k * 3 + j] += Float(p * (1 - p) * Double(x.scalars[r * 3 + j] * x.scalars[r * 3 + j]) / 2) }
                bias[k] += Float(p * (1 - p) / 2)
            }
        }
        for i in 0..<9 { #expect(abs(fisher["head.weight"]![i] - weight[i]) < 1e-5, "weight[\(i)]") }
        for i in 0..<3 { #expect(abs(fisher["head.bias"]![i] - bias[i]) < 1e-5, "bias[\(i)]") }
    }

    /// (1/N) Σₖ Σ_c p(c|xₖ) (∂ log p(c|xₖ)/∂θ)², one backward pass per sample and class.
    /// With `allowedClasses`, the softmax and the sum run over those classes only.
    static func bruteForceFisher(_ model: Classifier, _ x: Tensor, classes: Int, allowedClasses: [Int]? = nil) -> ParameterMap {
        var reference = ParameterMap.zeros(like: model.namedParameters())
        let n = x.shape[0]
        for k in 0..<n {
            let xk = x.indexSelect([k])
            let logits = GradMode.withoutGrad { model(xk) }.scalars
            let allowed = allowedClasses ?? Array(0..<classes)
            let top = allowed.map { logits[$0] }.max()!
            let total = allowed.map { exp(logits[$0] - top) }.reduce(0, +)
            for c in allowed {
                let pc = exp(logits[c] - top) / total
                model.zeroGrad()
                Losses.crossEntropy(model(xk), targets: [c], allowedClasses: allowedClasses).backward()
                for (name, t) in model.namedParameters() {
                    guard let g = t.grad?.scalars else { continue }
                    for i in g.indices { reference[name]![i] += pc * g[i] * g[i] / Float(n) }
                }
            }
        }
        return reference
    }

    @Test("the exact Fisher of a hidden-layer network equals Σ_c p_c (∂ log p_c/∂θ)² summed sample by sample")
    func exactFisherMatchesBruteForce() throws {
        var rng = RandomGenerator(seed: 4)
        let model = Models.mlp(input: 5, hidden: [4], classes: 3, using: &rng)
        let x = Tensor(shape: [3, 5], scalars: (0..<15).map { Float(($0 * 7) % 5) / 4 - 0.4 })
        var fisherRNG = RandomGenerator(seed: 0)
        let fast = Importance.fisher(model: model, batches: [(x, [0, 1, 2])], rng: &fisherRNG).mean
        let reference = Self.bruteForceFisher(model, x, classes: 3)
        for (name, expected) in reference {
            for i in expected.indices { #expect(abs(fast[name]![i] - expected[i]) <= 1e-5 + 1e-4 * abs(expected[i]), "\(name)[\(i)]") }
        }
    }

    @Test("the exact Fisher over a task's classes, from one forward pass and a backward pass per class, equals the brute-force sum (two hidden layers)")
    func exactFisherOverAllowedClassesMatchesBruteForce() throws {
        var rng = RandomGenerator(seed: 9)
        let model = Models.mlp(input: 6, hidden: [5, 4], classes: 5, using: &rng)
        let x = Tensor.normal([7, 6], using: &rng)
        for allowed in [nil, [1, 3, 4]] as [[Int]?] {
            var fisherRNG = RandomGenerator(seed: 0)
            let fast = Importance.fisher(model: model, batches: [(x, Array(repeating: 1, count: 7))],
                                         allowedClasses: allowed, rng: &fisherRNG).mean
            #expect(model.namedParameters().allSatisfy { $0.1.requiresGrad && $0.1.grad == nil }, "parameters thawed, no gradients left")
            let reference = Self.bruteForceFisher(model, x, classes: 5, allowedClasses: allowed)
            for (name, expected) in reference {
                for i in expected.indices {
                    #expect(abs(fast[name]![i] - expected[i]) <= 1e-6 + 1e-4 * abs(expected[i]), "\(String(describing: allowed)) \(name)[\(i)]")
                }
            }
        }
    }

    @Test("the exact Fisher of conv nets with BatchNorm (one batched pass: a GEMM per sample) equals the sample-by-sample sum",
          arguments: ["cnn", "resnet20"])
    func exactFisherOfConvNetsMatchesBruteForce(_ kind: String) throws {
        var rng = RandomGenerator(seed: 6)
        let model = kind == "cnn"
            ? Models.cnn(inputChannels: 1, inputHeight: 12, inputWidth: 12, channels: [3, 4], hidden: [8], classes: 3, using: &rng)
            : Models.cifarResNet(depth: 20, inputChannels: 1, classes: 3, using: &rng)
        for (_, m) in model.namedModules() {
            guard let bn = m as? BatchNorm else { continue }
            bn.runningMean.scalars = (0..<bn.channels).map { Float($0 % 3) / 10 - 0.1 }
            bn.runningVariance.scalars = (0..<bn.channels).map { 0.6 + Float($0 % 4) / 5 }
        }
        #expect(Importance.hasBatchedPerSampleStatistics(model))
        let x = Tensor.normal([3, 1, 12, 12], using: &rng)
        var fisherRNG = RandomGenerator(seed: 0)
        let fast = Importance.fisher(model: model, batches: [(x, [0, 1, 2])], rng: &fisherRNG).mean
        model.eval()
        let reference = Self.bruteForceFisher(model, x, classes: 3)
        for (name, expected) in reference {
            let scale = expected.max() ?? 0
            for i in expected.indices {
                #expect(abs(fast[name]![i] - expected[i]) <= 1e-4 * max(scale, 1e-8), "\(kind) \(name)[\(i)]: \(fast[name]![i]) vs \(expected[i])")
            }
        }
    }

    @Test("EWC, online EWC and mode-IMM default to the exact Fisher; empirical and sampled stay available")
    func defaultsToTheExactFisher() throws {
        #expect((try StrategyRegistry.make("ewc") as! EWC).fisherEstimator == .exact)
        #expect((try StrategyRegistry.make("online-ewc") as! OnlineEWC).fisherEstimator == .exact)
        #expect((try StrategyRegistry.make("imm-mode") as! IMM).fisherEstimator == .exact)
        var h = HyperparameterSettings()
        h["ewc", "fisher"] = "empirical"
        #expect((try StrategyRegistry.make("ewc", h) as! EWC).fisherEstimator == .empirical)
        h[shared: "fisher"] = "sampled"
        #expect((try StrategyRegistry.make("imm-mode", h) as! IMM).fisherEstimator == .sampled)
    }

    @Test("the empirical Fisher uses the true labels: (δ_ky − p_k)² x_j²")
    func empiricalFisherUsesLabels() {
        let (model, x) = linearFixture()
        var rng = RandomGenerator(seed: 0)
        let fisher = Importance.fisher(model: model, batches: [(x, [2, 0])], estimator: .empirical, rng: &rng).mean
        let logits = GradMode.withoutGrad { model(x) }.scalars
        var bias = [Float](repeating: 0, count: 3)
        for (r, y) in [2, 0].enumerated() {
            let e = (0..<3).map { Foundation.exp(Double(logits[r * 3 + $0])) }, s = e.reduce(0, +)
            for k in 0..<3 { let d = (k == y ? 1 : 0) - e[k] / s; bias[k] += Float(d * d / 2) }
        }
        for i in 0..<3 { #expect(abs(fisher["head.bias"]![i] - bias[i]) < 1e-5) }
    }
}

@Suite struct RegularizerDefaultsTests {
    @Test("SI's damping ξ defaults to 0.1 (van de Ven & Tolias's MNIST value), not Zenke's CIFAR 1e-3")
    func synapticIntelligenceDamping() throws {
        let si = try StrategyRegistry.make("si") as! SynapticIntelligence
        #expect(si.xi == 0.1)
    }

    @Test("EBLL's autoencoder weights the reconstruction by α and the task loss by 1: α·½‖r − f‖² + CE, by hand")
    func ebllAutoencoderLossRoles() throws {
        let f = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4]), r = Tensor(shape: [2, 2], scalars: [1.5, 2, 2, 4])
        let logits = Tensor(shape: [2, 2], scalars: [0, 1, 2, 0])
        let ce = (Foundation.log(1 + Foundation.exp(-1.0)) + Foundation.log(1 + Foundation.exp(2.0))) / 2   // labels 1, 1
        let reconstruction = (0.25 + 1.0) / 2                                                               // mean over the batch of ‖r − f‖²
        let got = EBLL.autoencoderLoss(features: f, reconstruction: r, logits: logits, labels: [1, 1], allowedClasses: nil, alpha: 0.1)
        #expect(abs(Double(got.item) - (ce + 0.1 * 0.5 * reconstruction)) < 1e-6)
        let ebll = try StrategyRegistry.make("ebll") as! EBLL
        #expect(ebll.alpha == 1e-6 && ebll.lambdaCode == 0.1 && ebll.lwf.temperatureSquared == false)
    }
}

@Suite struct MINDFidelityTests {
    let a = Tensor(shape: [2, 3], scalars: [0.3, -1.2, 2.0, 0.1, 0.5, -0.7])
    let b = Tensor(shape: [2, 3], scalars: [1.3, 0.2, -2.0, 0.1, 0.9, 0.7])

    func softmax(_ t: Tensor, row: Int) -> [Double] {
        let e = (0..<3).map { Foundation.exp(Double(t.scalars[row * 3 + $0])) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }

    @Test("MIND distils with the reference's ½(KL(p‖q) + KL(q‖p)) by default, equal to the hand-computed value")
    func symmetricKLByDefault() throws {
        var expected = 0.0
        for r in 0..<2 {
            let p = softmax(a, row: r), q = softmax(b, row: r)
            for j in 0..<3 { expected += 0.5 * (p[j] * Foundation.log(p[j] / q[j]) + q[j] * Foundation.log(q[j] / p[j])) / 2 }
        }
        #expect(abs(Double(MIND.distillationLoss(student: a, teacher: b).item) - expected) < 1e-5)
        #expect((try StrategyRegistry.make("mind") as! MIND).distillation == .symmetricKL)
    }

    @Test("the Jensen–Shannon option equals ½KL(p‖m) + ½KL(q‖m) by hand, about a quarter of the symmetric KL")
    func jensenShannonOption() {
        var expected = 0.0
        for r in 0..<2 {
            let p = softmax(a, row: r), q = softmax(b, row: r)
            for j in 0..<3 {
                let m = (p[j] + q[j]) / 2
                expected += 0.5 * (p[j] * Foundation.log(p[j] / m) + q[j] * Foundation.log(q[j] / m)) / 2
            }
        }
        let js = Double(MIND.distillationLoss(student: a, teacher: b, divergence: .jensenShannon).item)
        #expect(abs(js - expected) < 1e-5)
        let near = Tensor(shape: [2, 3], scalars: a.scalars.map { $0 + 0.01 })
        let ratio = MIND.distillationLoss(student: near, teacher: b, divergence: .symmetricKL).item
            / MIND.distillationLoss(student: near, teacher: b, divergence: .jensenShannon).item
        #expect(ratio > 3 && ratio < 8)
        let close = Tensor(shape: [2, 3], scalars: zip(b.scalars, [0.04, -0.03, 0.05, -0.02, 0.01, 0.03]).map { $0 + $1 })
        let nearRatio = MIND.distillationLoss(student: close, teacher: b).item / MIND.distillationLoss(student: close, teacher: b, divergence: .jensenShannon).item
        #expect(abs(nearRatio - 4) < 0.2, "near agreement the symmetric KL is ≈ 4 × JS")
    }

    @Test("in a class-incremental head every row (and bias entry) of task t's classes is owned by t")
    func classIncrementalHeadRowsBelongToTheirTask() throws {
        var config = smallSplitMNIST(strategy: "mind", fraction: 0.01)
        config.scenario = "class"
        config.hidden = [16]
        let mind = try MIND(teacherEpochs: 1)
        let trainer = try makeTrainer(config, strategy: mind)
        for t in 0..<5 { try trainer.train(from: TrainingPosition(task: t)) }
        let masks = try #require(mind.masks)
        let head = try #require(trainer.context.model.head as? Linear)
        let width = head.weight.shape[1]
        for t in 0..<5 {
            for row in (2 * t)..<(2 * t + 2) {
                for i in (row * width)..<((row + 1) * width) { #expect(masks.owner("head.weight", i) == t, "row \(row) entry \(i)") }
                #expect(masks.owner("head.bias", row) == t)
            }
        }
    }
}

@Suite struct ClassIncrementalTrainingTests {
    @Test("in class-incremental training the head grows: classes of later tasks get no gradient while task 0 trains")
    func unseenClassesAreNotTrained() throws {
        var config = smallSplitMNIST(strategy: "finetune", fraction: 0.01)
        config.scenario = "class"
        config.hidden = [16]
        config.training.momentum = 0
        let trainer = try makeTrainer(config, strategy: Finetune())
        let head = try #require(trainer.context.model.head as? Linear)
        let before = head.weight.scalars, width = head.weight.shape[1]
        try trainer.train(from: TrainingPosition(task: 0))
        let after = head.weight.scalars
        #expect(Array(after[(2 * width)...]) == Array(before[(2 * width)...]), "rows of classes 2…9 unchanged")
        #expect(Array(after[..<(2 * width)]) != Array(before[..<(2 * width)]))
    }
}

@Suite struct ProximalPenaltyStepTests {
    @Test("the proximal step moves θ to (θ + 2ηsΣΩθ*)/(1 + 2ηsΣΩ), computed by hand")
    func proximalUpdateByHand() throws {
        var config = smallSplitMNIST(strategy: "finetune", fraction: 0.01)
        config.hidden = [4]
        config.training.learningRate = 0.1
        let trainer = try makeTrainer(config, strategy: Finetune())
        let context = trainer.context
        context.optimizer.learningRate = 0.1
        let (name, p) = context.model.namedParameters().first { $0.0 == "features.1.bias" }!
        p.scalars = [1, -2, 3, 0]
        let omega: ParameterMap = [name: [0, 1, 10, 1e9]], star: ParameterMap = [name: [5, 0, 1, 7]]
        let omega2: ParameterMap = [name: [1, 1, 0, 0]], star2: ParameterMap = [name: [-1, 2, 0, 0]]
        proximalStep(penalties: [(omega, star), (omega2, star2)], strength: 2, context: context)
        // 2ηs = 0.4: entry 0: (1 + 0.4·1·(−1))/(1 + 0.4) ; 1: (−2 + 0.4·0 + 0.4·2)/(1.8) ; 2: (3 + 0.4·10·1)/5 ; 3: → θ* = 7.
        let expected: [Float] = [0.6 / 1.4, -1.2 / 1.8, 7 / 5, 7]
        for i in 0..<4 { #expect(abs(p.scalars[i] - expected[i]) < 1e-5, "entry \(i): \(p.scalars[i]) vs \(expected[i])") }
    }

    @Test("with λ·Ω far beyond the gradient step's stability limit, the proximal step trains without overflow and forgets less than fine-tuning")
    func proximalStepIsStableForAnyStrength() throws {
        var config = smallSplitMNIST(strategy: "mas", fraction: 0.02)
        config.scenario = "domain"
        config.hidden = [32]
        config.training.learningRate = 0.05
        config.hyperparameters["mas", "lambda"] = 1e5
        #expect(throws: (any Error).self, "the gradient step overflows at this strength") { try runExperiment(config) }
        config.hyperparameters["mas", "penalty_step"] = "proximal"
        let proximal = try runExperiment(config)
        let finetune = try runExperiment(config) { $0.strategy = "finetune" }
        print("proximal MAS λ = 1e5: forgetting \(proximal.metrics.forgetting ?? -1), finetune \(finetune.metrics.forgetting ?? -1)")
        #expect(proximal.matrix.values.joined().allSatisfy { $0?.isFinite ?? true })
        #expect(try #require(proximal.metrics.forgetting) < (try #require(finetune.metrics.forgetting)))
    }
}
