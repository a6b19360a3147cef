import EngramTensor
import EngramNN
import EngramCL
import Foundation
import Testing

/// MC-SGD: the line gradient by hand, the line search on a known 1-D loss, and the method in a run.
@Suite struct MCSGDTests {
    /// L(x) = (x − c)², ∇L = 2(x − c), elementwise.
    static func quadratic(_ c: [Float]) -> ([Float]) -> [Float] { { x in zip(x, c).map { 2 * ($0 - $1) } } }

    @Test("the line gradient is Σₖ aₖ∇L(s + aₖ(w − s)) by hand, and the reference codes' accumulated sum without aₖ")
    func lineGradientByHand() {
        // s = 1, w = 3, c = 0, n = 2: points 1, 2, 3 with ∇L = 2, 4, 6 at a = 0, ½, 1.
        let objective = MCSGD.lineGradient(from: [1], to: [3], points: 2, gradient: Self.quadratic([0]))
        let byHand: Float = 0 * 2 + 0.5 * 4 + 1 * 6
        #expect(objective == [byHand])
        // Gradients never zeroed between points: the k-th backward leaves 2, 2+4, 2+4+6 and each is summed.
        let reference = MCSGD.lineGradient(from: [1], to: [3], points: 2, referenceAccumulation: true, gradient: Self.quadratic([0]))
        let accumulated: Float = 2 + (2 + 4) + (2 + 4 + 6)
        #expect(reference == [accumulated])
    }

    @Test("descending the line objective finds the minimum of a known 1-D loss")
    func lineSearchFindsTheMinimum() {
        // F(w) = Σₖ (w̄ + aₖ(w − w̄) − a)² + Σₖ (ŵ + aₖ(w − ŵ) − b)², aₖ = k/n: the old minimum's loss has its minimum at
        // a, the new task's at b. F′(w) = 0 at w* = Σₖ aₖ[(a − (1 − aₖ)w̄) + (b − (1 − aₖ)ŵ)] / (2 Σₖ aₖ²).
        let (wBar, wHat, a, b, n) = (Float(0), Float(4), Float(1), Float(3), 5)
        let steps = (0...n).map { Float($0) / Float(n) }
        let numerator = steps.reduce(Float(0)) { $0 + $1 * ((a - (1 - $1) * wBar) + (b - (1 - $1) * wHat)) }
        let expected = numerator / (2 * steps.reduce(0) { $0 + $1 * $1 })
        var w: Float = wBar + 0.25 * (wHat - wBar)
        for _ in 0..<500 {
            let g = MCSGD.lineGradient(from: [wBar], to: [w], points: n, gradient: Self.quadratic([a]))[0]
                + MCSGD.lineGradient(from: [wHat], to: [w], points: n, gradient: Self.quadratic([b]))[0]
            w -= 0.05 * g
        }
        #expect(abs(w - expected) < 1e-4, "w \(w), minimum \(expected)")
        // Between the two minima, nearer the one whose segment is shorter.
        #expect(expected > a && expected < b)
    }

    @Test("in a run MC-SGD forgets less than fine-tuning; its memory is one sample per class per task plus w̄")
    func protectsOldTasks() throws {
        var c = smallPermutedMNIST(strategy: "mc-sgd", tasks: 3, fraction: 0.05)
        c.training.optimizer = .sgd
        c.training.learningRate = 0.01
        c.training.momentum = 0.8
        c.training.batchSize = 10
        c.hyperparameters["mc-sgd", "subset_size"] = 400
        c.hyperparameters["mc-sgd", "line_lr"] = 0.003   // measured: forgetting −0.5 % (finetune 4.1 %); 0.01 overshoots
        let mcsgd = try runExperiment(c)
        c.strategy = "finetune"
        let finetune = try runExperiment(c)
        let forgetting = { (r: RunResults) in r.metrics.forgetting ?? 1 }
        #expect(forgetting(mcsgd) < forgetting(finetune) / 1.5, "mc-sgd \(forgetting(mcsgd)), finetune \(forgetting(finetune))")
        // 784-100-100-10 with biases: 89 610 parameters; 10 samples per task of 784 pixel bytes + target and task (4 B each).
        #expect(mcsgd.strategyMemoryBytes == [10, 20, 30].map { $0 * (784 + 8) + 89_610 * 4 })
    }
}
