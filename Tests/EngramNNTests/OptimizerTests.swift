import EngramTensor
import Testing
import EngramNN

/// The 2-parameter problem L(p) = ½p₁² + 2p₂, started at p = (1, −2): ∇L = (p₁, 2).
func quadraticProblem() -> Tensor { Tensor([1, -2], requiresGrad: true) }

/// Sets p.grad to ∇L(p) = (p₁, 2).
func setGradient(_ p: Tensor) { p.grad = Tensor([p.scalars[0], 2]) }

/// Runs `steps` optimizer steps on the quadratic problem and returns p after each.
func trajectory(_ p: Tensor, _ optimizer: any Optimizer, steps: Int) -> [[Float]] {
    (0..<steps).map { _ in
        setGradient(p)
        optimizer.step()
        return p.scalars
    }
}

func expectTrajectory(_ got: [[Float]], _ expected: [[Float]], rtol: Float = 1e-6,
                      sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(got.count == expected.count, sourceLocation: sourceLocation)
    for (g, e) in zip(got, expected) { expectClose(g, e, rtol: rtol, atol: 1e-7, sourceLocation: sourceLocation) }
}

@Suite struct SGDTests {
    @Test("plain SGD: p ← p − η∇ (η = 0.1)")
    func plain() {
        let p = quadraticProblem()
        // (1, −2) − 0.1·(1, 2) = (0.9, −2.2); − 0.1·(0.9, 2) = (0.81, −2.4); − 0.1·(0.81, 2) = (0.729, −2.6)
        expectTrajectory(trajectory(p, SGD([("p", p)], learningRate: 0.1), steps: 3),
                         [[0.9, -2.2], [0.81, -2.4], [0.729, -2.6]])
    }

    @Test("SGD with momentum: b ← μb + g (b = g first), p ← p − ηb (η = 0.1, μ = 0.9)")
    func momentum() {
        let p = quadraticProblem()
        // 1: g = (1, 2), b = (1, 2), p = (0.9, −2.2)
        // 2: g = (0.9, 2), b = 0.9·(1, 2) + (0.9, 2) = (1.8, 3.8), p = (0.9 − 0.18, −2.2 − 0.38) = (0.72, −2.58)
        // 3: g = (0.72, 2), b = 0.9·(1.8, 3.8) + (0.72, 2) = (2.34, 5.42), p = (0.72 − 0.234, −2.58 − 0.542) = (0.486, −3.122)
        expectTrajectory(trajectory(p, SGD([("p", p)], learningRate: 0.1, momentum: 0.9), steps: 3),
                         [[0.9, -2.2], [0.72, -2.58], [0.486, -3.122]])
    }

    @Test("SGD with Nesterov momentum: p ← p − η(g + μb)")
    func nesterov() {
        let p = quadraticProblem()
        // 1: b = (1, 2), g + 0.9b = (1.9, 3.8), p = (1 − 0.19, −2 − 0.38) = (0.81, −2.38)
        // 2: g = (0.81, 2), b = (0.9 + 0.81, 1.8 + 2) = (1.71, 3.8), g + 0.9b = (2.349, 5.42),
        //    p = (0.81 − 0.2349, −2.38 − 0.542) = (0.5751, −2.922)
        expectTrajectory(trajectory(p, SGD([("p", p)], learningRate: 0.1, momentum: 0.9, nesterov: true), steps: 2),
                         [[0.81, -2.38], [0.5751, -2.922]])
    }

    @Test("SGD with weight decay adds λp to the gradient (λ = 0.5)")
    func weightDecay() {
        let p = quadraticProblem()
        // 1: g = (1, 2) + 0.5·(1, −2) = (1.5, 1), p = (0.85, −2.1)
        // 2: g = (0.85, 2) + 0.5·(0.85, −2.1) = (1.275, 0.95), p = (0.7225, −2.195)
        expectTrajectory(trajectory(p, SGD([("p", p)], learningRate: 0.1, weightDecay: 0.5), steps: 2),
                         [[0.85, -2.1], [0.7225, -2.195]])
    }

    @Test("SGD skips parameters without a gradient and the learning rate can change between steps")
    func missingGradientAndRate() {
        let p = quadraticProblem(), q = Tensor([5], requiresGrad: true)
        let sgd = SGD([("p", p), ("q", q)], learningRate: 0.1)
        setGradient(p)
        sgd.step()
        #expect(q.scalars == [5])
        sgd.learningRate = 1
        setGradient(p)
        sgd.step()
        expectClose(p.scalars, [0, -4.2], atol: 1e-6)  // (0.9, −2.2) − 1·(0.9, 2)
        sgd.zeroGrad()
        #expect(p.grad == nil)
    }
}

@Suite struct AdamTests {
    @Test("Adam follows PyTorch's bias-corrected update (η = 0.1, β = (0.9, 0.999), ε = 1e-8)")
    func adam() {
        let p = quadraticProblem()
        // 1: m = 0.1g, v = 0.001g², m̂ = g, v̂ = g², step η·g/|g| = 0.1 each → (0.9, −2.1)
        // 2: g = (0.9, 2); m₁ = 0.09 + 0.09 = 0.18, v₁ = 0.000999 + 0.00081 = 0.001809;
        //    m̂₁ = 0.18/0.19 = 0.947368, v̂₁ = 0.001809/0.001999 = 0.904952, √v̂₁ = 0.951291,
        //    p₁ = 0.9 − 0.1·0.947368/0.951291 = 0.9 − 0.0995877 = 0.8004123.
        //    p₂ has the constant gradient 2, so m̂₂ = 2, v̂₂ = 4 and it moves by η: −2.2.
        // 3: p₁ = 0.7015863 (same recursion), p₂ = −2.3.
        expectTrajectory(trajectory(p, Adam([("p", p)], learningRate: 0.1), steps: 3),
                         [[0.9, -2.1], [0.8004122, -2.2], [0.7015863, -2.3]])
    }

    @Test("Adam with L2 weight decay adds λp to the gradient before the moments (λ = 1)")
    func adamL2() {
        let p = quadraticProblem()
        // g = (p₁ + p₁, 2 + p₂): p₂ = −2 makes its gradient 0, so p₂ never moves; p₁'s gradient is doubled,
        // which Adam's scale invariance ignores (up to ε): p₁ follows the plain-Adam values 0.9, 0.8004122.
        expectTrajectory(trajectory(p, Adam([("p", p)], learningRate: 0.1, weightDecay: 1), steps: 2),
                         [[0.9, -2], [0.8004122, -2]])
    }

    @Test("AdamW decays p ← p(1 − ηλ) before the Adam step (λ = 0.1)")
    func adamW() {
        let p = quadraticProblem()
        // 1: p ← p·0.99 = (0.99, −1.98), then −0.1 each → (0.89, −2.08)
        // 2: g = (0.89, 2); m₁ = 0.09 + 0.089 = 0.179, v₁ = 0.000999 + 0.0007921 = 0.0017911;
        //    m̂₁ = 0.942105, √v̂₁ = √0.895998 = 0.946572; p₁ = 0.89·0.99 − 0.1·0.995281 = 0.8811 − 0.0995281 = 0.7815719;
        //    p₂ = −2.08·0.99 − 0.1 = −2.1592
        let adamW = Adam.adamW([("p", p)], learningRate: 0.1, weightDecay: 0.1)
        #expect(adamW.decoupled && adamW.weightDecay == Float(0.1))
        expectTrajectory(trajectory(p, adamW, steps: 2), [[0.89, -2.08], [0.7815719, -2.1592]])
    }
}

extension AdamTests {
    @Test("Adam's sixteen-lane path (no update mask) gives the bits of the element-by-element path (mask of ones)",
          arguments: [(Float(0), false), (Float(0.01), false), (Float(0.01), true)])
    func lanesMatchElementByElement(weightDecay: Float, decoupled: Bool) {
        var rng = RandomGenerator(seed: 3)
        let start = Tensor.normal([37], using: &rng).scalars          // two full lanes of 16 and a remainder of 5
        let gradients = (0..<4).map { _ in Tensor.normal([37], using: &rng).scalars }
        func run(masked: Bool) -> [Float] {
            let p = Tensor(shape: [37], scalars: start, requiresGrad: true)
            let adam = Adam([("p", p)], learningRate: 0.01, weightDecay: weightDecay, decoupled: decoupled)
            if masked { adam.updateMasks["p"] = [Float](repeating: 1, count: 37) }
            for g in gradients {
                p.grad = Tensor(shape: [37], scalars: g)
                adam.step()
            }
            return p.scalars
        }
        #expect(run(masked: false) == run(masked: true))
        #expect(run(masked: false) != start)
    }
}

@Suite struct UpdateMaskTests {
    func optimizers(_ params: [(String, Tensor)]) -> [(String, any Optimizer)] {
        [("SGD", SGD(params, learningRate: 0.1)),
         ("SGD+momentum+wd", SGD(params, learningRate: 0.1, momentum: 0.9, weightDecay: 0.3)),
         ("SGD+Nesterov+wd", SGD(params, learningRate: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.3)),
         ("Adam+L2", Adam(params, learningRate: 0.1, weightDecay: 0.3)),
         ("AdamW", Adam.adamW(params, learningRate: 0.1, weightDecay: 0.3))]
    }

    @Test("masked entries stay bit-identical under every optimizer, also with weight decay")
    func masks() {
        for k in 0..<5 {
            let w = Tensor([0.7, -1.3, 2.1, 0.4], requiresGrad: true)
            let (name, optimizer) = optimizers([("w", w)])[k]
            optimizer.updateMasks["w"] = [1, 0, 0, 1]
            let start = w.scalars
            for _ in 0..<3 {
                w.grad = Tensor([0.5, -0.25, 1.5, -2])
                optimizer.step()
            }
            #expect(w.scalars[1].bitPattern == start[1].bitPattern && w.scalars[2].bitPattern == start[2].bitPattern, "\(name)")
            #expect(w.scalars[0] != start[0] && w.scalars[3] != start[3], "\(name)")
        }
    }

    @Test("frozen parameters are never changed while the others are")
    func frozen() {
        for k in 0..<5 {
            let a = Tensor([0.7, -1.3], requiresGrad: true), b = Tensor([2.1, 0.4], requiresGrad: true)
            let (name, optimizer) = optimizers([("a", a), ("b", b)])[k]
            optimizer.frozen = ["b"]
            let (a0, b0) = (a.scalars, b.scalars)
            for _ in 0..<3 {
                a.grad = Tensor([0.5, -0.25]); b.grad = Tensor([1.5, -2])
                optimizer.step()
            }
            #expect(b.scalars == b0, "\(name)")
            #expect(a.scalars != a0, "\(name)")
        }
    }

    @Test("stateTensors and loadState continue bit-identically; without the state the run differs")
    func stateRoundTrip() throws {
        for k in 1..<5 {
            let p = Tensor([0.7, -1.3, 2.1], requiresGrad: true)
            let (name, original) = optimizers([("p", p)])[k]
            func gradient(_ t: Tensor) { t.grad = GradMode.withoutGrad { t * Tensor([1, 2, -1]) + Tensor([0.5, -1, 0.25]) } }
            for _ in 0..<3 { gradient(p); original.step() }
            let state = Dictionary(uniqueKeysWithValues: original.stateTensors().map { ($0.0, $0.1.detached()) })
            #expect(!state.isEmpty, "\(name)")
            let copy = Tensor(shape: p.shape, scalars: p.scalars, requiresGrad: true)
            let fresh = Tensor(shape: p.shape, scalars: p.scalars, requiresGrad: true)
            let (_, restored) = optimizers([("p", copy)])[k]
            try restored.loadState(state)
            let (_, unrestored) = optimizers([("p", fresh)])[k]
            for _ in 0..<3 {
                gradient(p); original.step()
                gradient(copy); restored.step()
                gradient(fresh); unrestored.step()
            }
            #expect(p.scalars.map(\.bitPattern) == copy.scalars.map(\.bitPattern), "\(name)")
            #expect(p.scalars != fresh.scalars, "\(name)")
        }
    }

    @Test("loadState rejects state of the wrong size")
    func loadStateShape() {
        let p = Tensor([1, 2], requiresGrad: true)
        #expect(throws: OptimizerError.self) { try SGD([("p", p)], learningRate: 0.1, momentum: 0.9).loadState(["momentum_buffer.p": Tensor([1])]) }
        #expect(throws: OptimizerError.self) {
            try Adam([("p", p)]).loadState(["step.p": Tensor(1), "exp_avg.p": Tensor([0, 0])])
        }
    }
}

@Suite struct LearningRateScheduleTests {
    @Test("StepSchedule multiplies by γ every stepSize epochs")
    func step() {
        let s = StepSchedule(stepSize: 3, gamma: 0.1)
        let rates = (0..<8).map { s.learningRate(epoch: $0, base: 1) }
        expectClose(rates, [1, 1, 1, 0.1, 0.1, 0.1, 0.01, 0.01], rtol: 1e-6)
    }

    @Test("MultiStepSchedule multiplies by γ at each milestone, in any order")
    func multiStep() {
        let s = MultiStepSchedule(milestones: [5, 2], gamma: 0.5)
        let rates = (0..<7).map { s.learningRate(epoch: $0, base: 0.8) }
        expectClose(rates, [0.8, 0.8, 0.4, 0.4, 0.4, 0.2, 0.2], rtol: 1e-6)
    }

    @Test("CosineSchedule anneals from η to η_min over T epochs and stays there")
    func cosine() {
        let s = CosineSchedule(totalEpochs: 10, minimum: 0.1)
        // η_min + ½(η − η_min)(1 + cos(πt/T)): t = 2 → 0.1 + 0.45·(1 + 0.809017) = 0.9140576
        let rates = [0, 2, 5, 10, 15].map { s.learningRate(epoch: $0, base: 1) }
        expectClose(rates, [1, 0.9140576, 0.55, 0.1, 0.1], rtol: 1e-6)
        #expect(ConstantSchedule().learningRate(epoch: 99, base: 0.3) == 0.3)
    }
}
