import EngramTensor
import EngramNN
import EngramCL
import Foundation
import Testing

/// OGD: the stored directions on a hand-computed linear model, the projection, and the method in a run.
@Suite struct OGDTests {
    /// f(x) = Wx + b with W [2, 3], x = (1, 2, 3): ∇_W f_c = e_c xᵀ, ∇_b f_c = e_c.
    static func linear() -> (Linear, Tensor) {
        var random = RandomGenerator(seed: 1)
        return (Linear(3, 2, using: &random), Tensor(shape: [1, 3], scalars: [1, 2, 3]))
    }

    @Test("the stored directions are the output gradients by hand: the true logit's (gtl), every logit's (all), their mean's (average)")
    func tangentsOfLinearModel() {
        let (layer, x) = Self.linear()
        let parameters = layer.namedParameters()   // weight [2, 3] then bias [2]
        #expect(OGD.tangents(of: layer, inputs: x, labels: [1], output: .gtl, parameters: parameters) == [[0, 0, 0, 1, 2, 3, 0, 1]])
        #expect(OGD.tangents(of: layer, inputs: x, labels: [1], output: .all, parameters: parameters)
                == [[1, 2, 3, 0, 0, 0, 1, 0], [0, 0, 0, 1, 2, 3, 0, 1]])
        #expect(OGD.tangents(of: layer, inputs: x, labels: [1], output: .average, parameters: parameters)
                == [[0.5, 1, 1.5, 0.5, 1, 1.5, 0.5, 0.5]])
    }

    @Test("the projected gradient is orthogonal to every stored direction (to 1e-5) and a gradient already orthogonal is unchanged")
    func projection() {
        var random = RandomGenerator(seed: 7)
        let vectors = (0..<6).map { _ in (0..<40).map { _ in random.nextNormal() } }
        let basis = OGD.orthonormalize(vectors, against: nil)!
        #expect(basis.shape == [6, 40])
        let g = Tensor(shape: [1, 40], scalars: (0..<40).map { _ in random.nextNormal() * 10 })
        let projected = OGD.project(g, off: basis)
        #expect(projected.matmul(basis, transposeOther: true).scalars.allSatisfy { abs($0) < 1e-5 })
        let again = OGD.project(projected, off: basis)
        #expect(zip(again.scalars, projected.scalars).allSatisfy { abs($0 - $1) < 1e-5 })
    }

    @Test("in a run OGD forgets less than fine-tuning and holds one float per parameter per stored direction")
    func protectsOldTasks() throws {
        var c = smallPermutedMNIST(strategy: "ogd", tasks: 3, fraction: 0.05)
        c.training.learningRate = 0.01   // OGD's guarantee is first-order: small steps (the reference: 0.001 over 5 epochs)
        c.training.momentum = 0
        c.training.batchSize = 10
        c.hyperparameters["ogd", "memory_size"] = 100
        let ogd = try runExperiment(c)
        c.strategy = "finetune"
        let finetune = try runExperiment(c)
        let forgetting = { (r: RunResults) in r.metrics.forgetting ?? 1 }
        // Measured: ogd 6.6 %, finetune 13.3 %.
        #expect(forgetting(ogd) < forgetting(finetune) / 1.5, "ogd \(forgetting(ogd)), finetune \(forgetting(finetune))")
        // 784-100-100-10 with biases: 89 610 parameters; 100 directions per task, all independent.
        #expect(ogd.strategyMemoryBytes == [100, 200, 300].map { $0 * 89_610 * 4 })
    }
}
