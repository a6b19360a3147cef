import EngramTensor
import EngramNN
import EngramData
import EngramCL
import Testing

/// The sum of the terms (nil for none).
private func sum(_ terms: [Tensor]) -> Tensor? { terms.first.map { terms.dropFirst().reduce($0, +) } }

@Suite struct ConsolidatedQuadraticTests {
    /// Three (Ω, θ*) pairs over two parameters, some Ω zero everywhere or in places.
    static func pairs() -> [(importance: ParameterMap, anchor: ParameterMap)] {
        var rng = RandomGenerator(seed: 7)
        func values(_ n: Int, scale: Float, zeros: Bool = false) -> [Float] {
            (0..<n).map { i in zeros && i % 3 == 0 ? 0 : scale * rng.nextFloat() }
        }
        return (0..<3).map { t in
            (["w": values(12, scale: 2, zeros: t == 1), "b": t == 2 ? [Float](repeating: 0, count: 4) : values(4, scale: 1)],
             ["w": values(12, scale: 1).map { $0 - 0.5 }, "b": values(4, scale: 1).map { $0 - 0.5 }])
        }
    }

    @Test("one consolidated quadratic has the value and gradient of the sum of the separate penalties")
    func consolidatedEqualsSumOfPenalties() throws {
        let pairs = Self.pairs()
        var rng = RandomGenerator(seed: 11)
        let parameters = [("w", Tensor(shape: [3, 4], scalars: (0..<12).map { _ in rng.nextFloat() - 0.5 }, requiresGrad: true)),
                          ("b", Tensor(shape: [4], scalars: (0..<4).map { _ in rng.nextFloat() - 0.5 }, requiresGrad: true))]
        let separate = try #require(sum(pairs.compactMap {
            quadraticPenalty(parameters: parameters, importance: $0.importance, anchor: $0.anchor, strength: 0.7)
        }))
        separate.backward()
        let expectedGradients = parameters.map { $0.1.grad!.scalars }
        parameters.forEach { $0.1.grad = nil }
        let consolidated = try #require(ConsolidatedQuadratic(pairs).penalty(parameters: parameters, strength: 0.7))
        consolidated.backward()
        #expect(abs(consolidated.item - separate.item) <= 1e-5 * separate.item, "\(consolidated.item) vs \(separate.item)")
        for ((name, p), expected) in zip(parameters, expectedGradients) {
            for (got, want) in zip(p.grad!.scalars, expected) {
                #expect(abs(got - want) <= 1e-5 * max(1, abs(want)), "\(name): \(got) vs \(want)")
            }
        }
    }

    @Test("a single pair consolidates to itself exactly, with no constant")
    func singlePairIsExact() {
        let pair = Self.pairs()[0]
        let one = ConsolidatedQuadratic([pair])
        #expect(one.importance == pair.importance)
        #expect(one.anchor == pair.anchor)
        #expect(one.residual.values.allSatisfy { $0 == 0 })
    }

    @Test("EWC's penalty after three tasks equals the sum of its three per-task penalties")
    func ewcPenaltyMatchesPerTaskSum() throws {
        var config = smallSplitMNIST(strategy: "ewc", fraction: 0.01)
        config.training.batchSize = 16
        let ewc = try EWC(lambda: 50)
        var pair: (Float, Float, Int)? = nil
        let probe = FirstBatchProbe(ewc, task: 3) { _, output, batch, context in
            let separate = sum(ewc.penalties.compactMap {
                quadraticPenalty(parameters: context.penalizedParameters, importance: $0.fisher, anchor: $0.anchor, strength: 25)
            })!
            pair = (ewc.penalty(output: output, batch: batch, context: context)!.item, separate.item, ewc.penalties.count)
        }
        let trainer = try makeTrainer(config, strategy: probe)
        for task in 0...3 { try trainer.train(from: TrainingPosition(task: task)) }
        let (got, want, tasks) = try #require(pair)
        #expect(tasks == 3 && want > 0)
        #expect(abs(got - want) <= 1e-4 * want, "\(got) vs \(want)")
    }
}
