import EngramTensor
import EngramNN
import EngramData
import EngramCL
import Testing
import CEngramKernels

@Suite(.serialized) struct RWalkTests {
    @Test("the in-place step kernel gives the bits of updateFisher then accumulateScore, on one and two threads, first step or not",
          arguments: [(Int32(1), true), (1, false), (2, true), (2, false)])
    func stepKernelMatchesTheSwiftUpdates(threads: Int32, first: Bool) {
        let n = 100_003   // above the kernels' parallel threshold, not a multiple of their 16-element shares
        var rng = RandomGenerator(seed: 11)
        let g = Tensor.normal([n], using: &rng).scalars, before = Tensor.normal([n], using: &rng).scalars
        // Every fourth parameter did not move (Δθ = 0: a zero gain of either sign), the rest moved either way.
        let after = zip(before, Tensor.normal([n], using: &rng).scalars).enumerated().map { i, p in i % 4 == 0 ? p.0 : p.0 + 0.01 * p.1 }
        let startFisher = Tensor.normal([n], using: &rng).scalars.map(abs), startScore = Tensor.normal([n], using: &rng).scalars.map(abs)
        var expectedFisher: [Float]? = first ? nil : startFisher
        var expectedScore = startScore
        RWalk.updateFisher(&expectedFisher, gradient: g, alpha: 0.9)
        RWalk.accumulateScore(&expectedScore, gradient: g, before: before, after: after, fisher: expectedFisher!, epsilon: 1e-3)
        var fisher = first ? [Float](repeating: 0, count: n) : startFisher, score = startScore
        let previous = engram_kernels_threads()
        engram_kernels_set_threads(threads)
        engram_rwalk_update(n, &fisher, &score, g, before, after, 0.9, 1e-3, first ? 1 : 0)
        engram_kernels_set_threads(previous)
        #expect(fisher.map(\.bitPattern) == expectedFisher!.map(\.bitPattern))
        #expect(score.map(\.bitPattern) == expectedScore.map(\.bitPattern))
        #expect(zip(score, startScore).contains { $0 > $1 } && zip(score, startScore).contains { $0 == $1 })
    }

    @Test("one step adds max(0, −g·Δθ / (½·F·Δθ² + ε)) to the score, computed by hand")
    func scoreOfAHandMadeStep() {
        let g: [Float] = [0.5, -1, 2, 0.3]
        let before: [Float] = [0, 1, 0, 2]
        let after: [Float] = [-0.05, 1.1, 0.01, 2]   // the third step goes uphill (−g·Δθ < 0), the fourth does not move
        let fisher: [Float] = [1, 2, 100, 4]
        var score: [Float] = [1, 0, 0.5, 0]
        RWalk.accumulateScore(&score, gradient: g, before: before, after: after, fisher: fisher, epsilon: 1e-3)
        // 0.025 / (0.5·1·0.0025 + 0.001) = 11.111…, 0.1 / (0.5·2·0.01 + 0.001) = 9.0909…
        let expected: [Float] = [1 + 0.025 / 0.00225, 0.1 / 0.011, 0.5, 0]
        for i in 0..<4 { #expect(abs(score[i] - expected[i]) <= 1e-4 * max(1, expected[i]), "s[\(i)] = \(score[i]), expected \(expected[i])") }
    }

    @Test("the online Fisher starts at g² and then moves by F ← α·g² + (1 − α)·F")
    func onlineFisherIsAMovingAverage() {
        var f: [Float]? = nil
        RWalk.updateFisher(&f, gradient: [2, -1], alpha: 0.9)
        #expect(f == [4, 1])
        RWalk.updateFisher(&f, gradient: [1, 0], alpha: 0.9)
        #expect(abs(f![0] - (0.9 * 1 + 0.1 * 4)) < 1e-6 && abs(f![1] - 0.1) < 1e-6)
    }

    @Test("normalization maps the smallest importance over all parameters to 0 and the largest to 1")
    func normalizationIsGlobalMinMax() {
        let n = RWalk.normalized(["a": [2, 4], "b": [6, 3]])
        #expect(n["a"]![0] == 0 && abs(n["b"]![0] - 1) < 1e-6 && abs(n["a"]![1] - 0.5) < 1e-6)
    }

    @Test("after a task the importance is F̂ + ŝ in [0, 2], θ* is the model, and the state round-trips")
    func stateAfterATask() throws {
        var config = smallPermutedMNIST(strategy: "rwalk", tasks: 2, fraction: 0.01)
        config.training.batchSize = 16
        let rwalk = try RWalk(lambda: 1)
        let trainer = try makeTrainer(config, strategy: rwalk)
        try trainer.train(from: TrainingPosition(task: 0))
        let omega = rwalk.state.importance.values.flatMap { $0 }
        #expect(omega.min()! >= 0 && omega.max()! <= 2 + 1e-5 && omega.max()! >= 1 - 1e-5)
        #expect(rwalk.state.anchor == ParameterMap.values(of: trainer.context.model.namedParameters()))
        let copy = try RWalk(lambda: 1)
        try copy.loadState(try rwalk.saveState(), context: trainer.context)
        #expect(copy.state.importance == rwalk.state.importance && copy.score == rwalk.score && copy.fisher == rwalk.fisher)
    }
}
