import Testing
import EngramTensor

@Suite struct AutogradTests {
    @Test("grad accumulates across two backward() calls until zeroGrad()")
    func accumulation() {
        let x = Tensor([1, -2, 3], requiresGrad: true)
        (x * x).sum().backward()
        #expect(x.grad?.scalars == [2, -4, 6])
        (x * x).sum().backward()
        #expect(x.grad?.scalars == [4, -8, 12])
        x.zeroGrad()
        #expect(x.grad == nil)
        (x * 3).sum().backward()
        #expect(x.grad?.scalars == [3, 3, 3])
        #expect(x.grad?.shape == x.shape)
    }

    @Test("nothing is recorded inside GradMode.withoutGrad")
    func withoutGrad() {
        let x = Tensor([1, 2], requiresGrad: true)
        let y = GradMode.withoutGrad { (x * x).exp().sum() }
        #expect(!y.requiresGrad && y.isLeaf)
        #expect(GradMode.isEnabled)
        let z = (x * x).sum()
        #expect(z.requiresGrad && !z.isLeaf)
        // A nested call restores recording afterwards.
        GradMode.withoutGrad { GradMode.withoutGrad { #expect(!GradMode.isEnabled) }; #expect(!GradMode.isEnabled) }
        #expect(GradMode.isEnabled)
    }

    @Test("gradients(withRespectTo:) reaches an intermediate activation and leaves grads untouched")
    func intermediateGradients() {
        let x = Tensor([0.5, -1, 2], requiresGrad: true)
        let h = x * 3
        let loss = (h * h).sum()
        let (gh, gx) = { let g = loss.gradients(withRespectTo: [h, x], retainGraph: true); return (g[0], g[1]) }()
        #expect(gh.scalars == h.scalars.map { 2 * $0 })
        #expect(gx.scalars == x.scalars.map { 18 * $0 })
        #expect(x.grad == nil && h.grad == nil)
        // A target the loss does not depend on gets zeros.
        let unrelated = Tensor([1, 1], requiresGrad: true)
        #expect(loss.gradients(withRespectTo: [unrelated])[0].scalars == [0, 0])
    }

    @Test("retainGrad() keeps a non-leaf's gradient after backward()")
    func retainGrad() {
        let x = Tensor([0.5, -1, 2], requiresGrad: true)
        let h = x.exp()
        let other = x * 2
        h.retainGrad()
        (h * h + other).sum().backward()
        #expect(h.grad != nil && other.grad == nil)
        expectClose(h.grad!.scalars, h.scalars.map { 2 * $0 }, rtol: 1e-6)
        expectClose(x.grad!.scalars, h.scalars.map { 2 * $0 * $0 + 2 }, rtol: 1e-6)
    }

    @Test("a tensor used several times receives the sum of its gradients")
    func reuse() {
        let x = Tensor([1, 2, 3], requiresGrad: true)
        let y = (x * x + x).sum()   // d/dx = 2x + 1
        y.backward()
        #expect(x.grad?.scalars == [3, 5, 7])
        // Diamond: a = x·2, b = a + a·a  →  db/dx = 2 + 8x
        let x2 = Tensor([1, -1], requiresGrad: true)
        let a = x2 * 2
        (a + a * a).sum().backward()
        #expect(x2.grad?.scalars == [10, -6])
        checkGradients(wrt: [x2]) { let a = x2.tanh(); return a * a.exp() + a.sigmoid() }
    }

    @Test("backward(seed:) weights a non-scalar result and detached() cuts the graph")
    func seedAndDetach() {
        let x = Tensor([1, 2, 3], requiresGrad: true)
        (x * x).backward(seed: Tensor([1, 0, -1]))
        #expect(x.grad?.scalars == [2, 0, -6])
        let d = (x * 2).detached()
        #expect(!d.requiresGrad && d.isLeaf && d.scalars == [2, 4, 6])
        let y = x * d
        #expect(y.gradients(withRespectTo: [x])[0].scalars == [2, 4, 6])
    }

    @Test("operations on tensors that require no gradient record nothing")
    func noGradInputs() {
        let a = Tensor([1, 2]), b = Tensor([3, 4])
        let y = (a * b + a).exp()
        #expect(!y.requiresGrad && y.isLeaf)
    }

    @Test("Tensor.differentiable makes a custom operation that backward() honours")
    func customOperation() {
        let x = Tensor([1, 2], requiresGrad: true)
        let cube = Tensor.differentiable(shape: [2], scalars: x.scalars.map { $0 * $0 * $0 }, inputs: [x]) { g in
            [zip(g, x.scalars).map { $0 * 3 * $1 * $1 }]
        }
        cube.sum().backward()
        #expect(x.grad?.scalars == [3, 12])
    }
}

@Suite struct GradientCheckerTests {
    @Test("the gradient checker flags a wrong backward function")
    func catchesWrongGradient() {
        let x = randomTensor([3, 4], seed: 120)
        // y = x² with a backward that forgets the factor 2.
        let problems = gradientMismatches(wrt: [x]) {
            Tensor.differentiable(shape: x.shape, scalars: x.scalars.map { $0 * $0 }, inputs: [x]) { g in
                [zip(g, x.scalars).map { $0 * $1 }]
            }
        }
        #expect(!problems.isEmpty)
        // A backward that is wrong for one entry only.
        let single = gradientMismatches(wrt: [x]) {
            Tensor.differentiable(shape: x.shape, scalars: x.scalars.map { $0 * $0 }, inputs: [x]) { g in
                var gi = zip(g, x.scalars).map { 2 * $0 * $1 }
                gi[5] += 0.25
                return [gi]
            }
        }
        #expect(single.count == 1)
    }

    @Test("the kink-tolerant gradient checker still flags a wrong backward function behind ReLUs")
    func kinkModeCatchesWrongGradient() {
        let x = randomTensor([4, 6], seed: 124)
        let w = randomTensor([6, 6], seed: 125)
        let f = { () -> Tensor in
            let h = x.matmul(w).relu()
            // h ↦ h³ with a backward that uses 2h² instead of 3h².
            return Tensor.differentiable(shape: h.shape, scalars: h.scalars.map { $0 * $0 * $0 }, inputs: [h]) { g in
                [zip(g, h.scalars).map { $0 * 2 * $1 * $1 }]
            }
        }
        #expect(!gradientMismatches(wrt: [x, w], kinkSteps: [3e-3, 1e-3, 3e-4], f).isEmpty)
        #expect(gradientMismatches(wrt: [x, w], kinkSteps: [3e-3, 1e-3, 3e-4]) { x.matmul(w).relu().pow(3) }.isEmpty)
    }

    @Test("the gradient checker flags a result that does not depend on the input")
    func catchesZeroGradient() {
        let x = randomTensor([2, 2], seed: 121)
        let other = randomTensor([2, 2], seed: 122)
        #expect(!gradientMismatches(wrt: [x]) { other * 2 }.isEmpty)
    }

    @Test("the gradient checker accepts a correct custom gradient")
    func acceptsCorrectGradient() {
        let x = randomTensor([3, 4], seed: 123)
        let problems = gradientMismatches(wrt: [x]) {
            Tensor.differentiable(shape: x.shape, scalars: x.scalars.map { $0 * $0 }, inputs: [x]) { g in
                [zip(g, x.scalars).map { 2 * $0 * $1 }]
            }
        }
        #expect(problems.isEmpty, "\(problems)")
    }
}
