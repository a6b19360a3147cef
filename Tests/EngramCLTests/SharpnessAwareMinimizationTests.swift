import EngramTensor
import EngramNN
import EngramCL
import Foundation
import Testing

/// SAM (`training.sam_rho`): the step against a hand-computed case, what it leaves alone, and the option in a run.
@Suite struct SharpnessAwareMinimizationTests {
    /// L(θ) = ½(θ₁² + 4θ₂²) at θ = (1, 2).
    static func quadratic(_ theta: Tensor) -> Tensor {
        (theta.squared() * Tensor(shape: [2], scalars: [1, 4])).sum() * 0.5
    }

    @Test("a SAM step on a quadratic is the hand-computed update: the gradient at θ + ρg/‖g‖, then SGD")
    func stepOnQuadratic() throws {
        let theta = Tensor(shape: [2], scalars: [1, 2], requiresGrad: true)
        let optimizer = SGD([("theta", theta)], learningRate: 0.1, momentum: 0, weightDecay: 0)
        let value = try TrainingStep.takeSharpnessAware(rho: 0.5, optimizer: optimizer, loss: { Self.quadratic(theta) }) { "\($0)" }
        // g = (1, 8), ‖g‖ = √65; ε = 0.5·g/√65 = (0.0620174, 0.4961389); g_SAM = A(θ + ε) = (1.0620174, 9.9845558);
        // θ − 0.1·g_SAM = (0.8937983, 1.0015444). The loss reported is L(θ) = 8.5.
        #expect(abs(value - 8.5) < 1e-6)
        #expect(abs(theta.scalars[0] - 0.8937983) < 1e-6 && abs(theta.scalars[1] - 1.0015444) < 1e-6, "\(theta.scalars)")
    }

    @Test("ρ → 0 gives the plain gradient step; the perturbation skips frozen parameters and masked entries")
    func limitsAndRestrictions() throws {
        let a = Tensor(shape: [2], scalars: [1, 2], requiresGrad: true)
        let plain = SGD([("a", a)], learningRate: 0.1, momentum: 0, weightDecay: 0)
        try TrainingStep.takeSharpnessAware(rho: 1e-12, optimizer: plain, loss: { Self.quadratic(a) }) { "\($0)" }
        #expect(abs(a.scalars[0] - 0.9) < 1e-6 && abs(a.scalars[1] - 1.2) < 1e-6, "\(a.scalars)")

        // θ₂ masked: ε lies along θ₁ alone, ‖g‖ counts θ₁ alone: ε = (0.5, 0), g_SAM = (1.5, 8) → θ₁ = 1 − 0.15.
        let b = Tensor(shape: [2], scalars: [1, 2], requiresGrad: true)
        let masked = SGD([("b", b)], learningRate: 0.1, momentum: 0, weightDecay: 0)
        masked.updateMasks["b"] = [1, 0]
        try TrainingStep.takeSharpnessAware(rho: 0.5, optimizer: masked, loss: { Self.quadratic(b) }) { "\($0)" }
        #expect(abs(b.scalars[0] - 0.85) < 1e-6 && b.scalars[1] == 2, "\(b.scalars)")

        // A frozen tensor is neither moved nor perturbed: c's step is the plain one of a lone quadratic.
        let c = Tensor(shape: [1], scalars: [1], requiresGrad: true), d = Tensor(shape: [1], scalars: [3], requiresGrad: true)
        let partly = SGD([("c", c), ("d", d)], learningRate: 0.1, momentum: 0, weightDecay: 0)
        partly.frozen = ["d"]
        try TrainingStep.takeSharpnessAware(rho: 0.5, optimizer: partly, loss: { (c.squared() + d.squared() * 100).sum() * 0.5 }) { "\($0)" }
        // g_c = 1, ε = 0.5, g_SAM = 1.5 → c = 0.85; d untouched.
        #expect(abs(c.scalars[0] - 0.85) < 1e-6 && d.scalars == [3], "\(c.scalars) \(d.scalars)")
    }

    @Test("a run with sam_rho trains differently from one without, still learns, and repeats exactly under its seed")
    func inARun() throws {
        var c = smallSplitMNIST(strategy: "finetune", fraction: 0.02)
        c.scenario = "task"
        let plain = try runExperiment(c)
        c.training.samRho = 0.05
        let sam = try runExperiment(c)
        #expect(sam.matrix.values != plain.matrix.values)
        #expect((sam.matrix.values.last!.last! ?? 0) > 0.9, "\(sam.matrix.values.last!)")
        #expect(try runExperiment(c).matrix.values == sam.matrix.values, "seeded: the same run twice gives the same numbers")
    }

    @Test("sam_rho is refused when negative or with a strategy that trains the model itself, naming the key")
    func refusals() throws {
        var c = smallSplitMNIST(strategy: "finetune", fraction: 0.02)
        c.training.samRho = -0.1
        #expect { try c.validate() } throws: { ($0 as? StrategyError)?.key == "training.sam_rho" }
        c.training.samRho = 0.05
        c.strategy = "gdumb"
        #expect { try c.validate() } throws: { ($0 as? StrategyError)?.key == "training.sam_rho" }
    }
}
