import EngramTensor
import EngramNN
import EngramData
import EngramCL
import Foundation
import Testing

/// Sleep Replay Consolidation: the spiking network, its plasticity rule and scales against hand-computed cases and the
/// ANN it comes from, the sleep input, and the strategy in a run.
@Suite struct SleepReplayConsolidationTests {
    @Test("without plasticity the spiking network classifies as the bias-free ReLU network it was converted from")
    func conversionPreservesPredictions() throws {
        var rng = RandomGenerator(seed: 7, label: "snn conversion")
        let sizes = [20, 30, 5]
        let weights = (0..<2).map { l in (0..<sizes[l] * sizes[l + 1]).map { _ in rng.nextFloat() - 0.4 } }
        let inputs = (0..<60).map { _ in (0..<sizes[0]).map { _ in rng.nextFloat() } }
        func ann(_ x: [Float]) -> [[Float]] {
            var a = x, layers: [[Float]] = []
            for l in 0..<2 {
                a = (0..<sizes[l + 1]).map { j in max(0, (0..<sizes[l]).reduce(0) { $0 + weights[l][j * sizes[l] + $1] * a[$1] }) }
                layers.append(a)
            }
            return layers
        }
        let maxActivations = (0..<2).map { l in inputs.map { ann($0)[l].max()! }.max()! }
        let scales = SleepNetwork.dataScales(maxWeights: weights.map { $0.max()! }, maxActivations: maxActivations)
        var agree = 0, compared = 0
        for x in inputs {
            let out = ann(x).last!, sorted = out.sorted(by: >)
            guard sorted[0] > 1.2 * sorted[1] else { continue }   // a clear winner: rates resolve a 20 % margin
            var network = SleepNetwork(weights: weights, sizes: sizes, scales: scales, thresholds: [0.25, 0.25], decay: 1,
                                       increment: 0, decrement: 0)
            var spikes = RandomGenerator(seed: 11, label: "poisson")
            for _ in 0..<4000 {
                network.step(inputSpikes: (0..<sizes[0]).filter { spikes.nextFloat() < 0.5 * x[$0] })
            }
            #expect(network.weights == weights, "no plasticity: the weights stay the ANN's")
            let counts = network.spikeCounts[2]
            compared += 1
            if counts.firstIndex(of: counts.max()!) == out.firstIndex(of: sorted[0]) { agree += 1 }
        }
        #expect(compared >= 20)
        // The stated tolerance: the most active output neuron is the ANN's class for at least 90 % of the inputs.
        #expect(Double(agree) >= 0.9 * Double(compared), "\(agree) of \(compared)")
    }

    @Test("the plasticity rule changes only the weights into neurons that fired, by the authors' inc·m(W) and dec·m(W)")
    func plasticityOnHandComputedCase() {
        let w: [Float] = [0.6, -0.2, 0.0,
                          0.1, 0.1, 0.1]
        let (inc, dec): (Float, Float) = (0.03, 0.004)
        var network = SleepNetwork(weights: [w], sizes: [3, 2], scales: [1], thresholds: [0.5], decay: 1,
                                   increment: inc, decrement: dec)
        let fired = network.step(inputSpikes: [0])
        #expect(fired == [[0], [0]])   // neuron 0 gets 0.6 ≥ 0.5; neuron 1 gets 0.1
        let m = { (x: Float) -> Float in 2 / (1 + exp(1000 * x)) }
        // Row 0 (fired): input 0 fired with it (potentiation), inputs 1 and 2 did not (depression). Row 1 unchanged.
        #expect(network.weights[0] == [0.6 + inc * m(0.6), -0.2 - dec * m(-0.2), 0 - dec * m(0), 0.1, 0.1, 0.1])
        #expect(abs(network.weights[0][1] - (-0.2 - 2 * dec)) < 1e-6)   // m ≈ 2 for negative weights
        #expect(network.weights[0][2] == -dec)                         // m(0) = 1
        #expect(network.weights[0][0] == 0.6)                          // m vanishes for positive weights
        #expect(network.potentials[0] == [0, 0.1])                     // the neuron that fired is reset
        // A second step with no input: neuron 1 integrates nothing more and stays below threshold.
        #expect(network.step(inputSpikes: []) == [[], []])
    }

    @Test("the membrane potential decays by γ each step and integrates α·W·s")
    func membraneIntegratesAndDecays() {
        var network = SleepNetwork(weights: [[0.2]], sizes: [1, 1], scales: [2], thresholds: [1], decay: 0.5,
                                   increment: 0, decrement: 0)
        network.step(inputSpikes: [0])   // v = 0.4
        #expect(network.potentials[0] == [0.4])
        network.step(inputSpikes: [0])   // v = 0.2 + 0.4
        #expect(abs(network.potentials[0][0] - 0.6) < 1e-7)
        network.step(inputSpikes: [])    // v = 0.3
        #expect(abs(network.potentials[0][0] - 0.3) < 1e-7)
    }

    @Test("the layer scales follow normalize_nn_data: the running ratio of each layer's largest weight or activation")
    func dataScalesOnHandComputedCase() {
        // Layer 1: max(0.5, 3) = 3 → applied 3, scale 1/3. Layer 2: max(2, 1.5) = 2 → applied 2/3, scale 3/2.
        let scales = SleepNetwork.dataScales(maxWeights: [0.5, 2], maxActivations: [3, 1.5])
        #expect(abs(scales[0] - 1.0 / 3) < 1e-7 && abs(scales[1] - 1.5) < 1e-6)
        // Negative maxima count as 0.
        #expect(SleepNetwork.dataScales(maxWeights: [-1], maxActivations: [2]) == [0.5])
    }

    @Test("the sleep input fires only inside one (mask + 1)² window of the mean image, each pixel with probability x·p")
    func sleepInputWindowAndRate() {
        let image = [Float](repeating: 1, count: 28 * 28)
        var input = SleepInput(meanImage: image, imageShape: [1, 28, 28], maskSize: 10, spikeProbabilityPerUnit: 0.5,
                               random: RandomGenerator(seed: 3, label: "input"))
        var total = 0
        for _ in 0..<400 {
            let spikes = input.next()
            total += spikes.count
            let rows = spikes.map { $0 / 28 }, columns = spikes.map { $0 % 28 }
            if let r = rows.min(), let c = columns.min() {
                #expect(rows.max()! - r <= 10 && columns.max()! - c <= 10, "one 11 × 11 window")
            }
        }
        // 121 pixels at probability 0.5: 60.5 per step; 400 steps keep the mean within ±1.5 (σ ≈ 0.27).
        #expect(abs(Double(total) / 400 - 60.5) < 1.5)
        var dark = SleepInput(meanImage: [Float](repeating: 0, count: 784), imageShape: [1, 28, 28], maskSize: 10,
                              spikeProbabilityPerUnit: 0.5, random: RandomGenerator(seed: 3, label: "input"))
        #expect((0..<50).allSatisfy { _ in dark.next().isEmpty }, "black pixels never fire")
    }

    static func configuration(seed: UInt64 = 0) -> ExperimentConfiguration {
        var c = smallSplitMNIST(strategy: "src", fraction: 0.02, seed: seed)
        c.scenario = "class"
        c.hidden = [32, 32]
        c.training.epochs = 1
        c.hyperparameters["src", "duration"] = 400
        return c
    }

    @Test("a run sleeps after every task: the network has no biases, accuracy before and after each sleep is recorded, and the phase is seeded")
    func runRecordsSleepAndIsReproducible() throws {
        let config = Self.configuration()
        #expect(config.usesBias == false)
        let first = try runExperiment(config), second = try runExperiment(config)
        let sleep = try #require(first.consolidation)
        #expect(sleep.phase == "sleep")
        #expect(sleep.accuracyBefore.count == 5 && sleep.accuracyAfter.count == 5 && sleep.seconds.count == 5)
        #expect(sleep.accuracyAfter == first.matrix.values.map { $0.map { $0! } })
        #expect(sleep.accuracyBefore != sleep.accuracyAfter, "sleep changes the network")
        #expect(first.matrix == second.matrix && first.consolidation?.accuracyBefore == second.consolidation?.accuracyBefore)
        let other = try runExperiment(Self.configuration(seed: 1))
        #expect(other.consolidation?.accuracyAfter != sleep.accuracyAfter)
        // A method without a phase records none.
        #expect(try runExperiment(config) { $0.strategy = "finetune" }.consolidation == nil)
    }

    @Test("src runs in every scenario: a multi-head network sleeps with its heads side by side as one output layer",
          arguments: ["task", "domain", "class"])
    func runsInEveryScenario(scenario: String) throws {
        var c = scenario == "domain" ? smallPermutedMNIST(strategy: "src", tasks: 2, fraction: 0.02) : Self.configuration()
        c.scenario = scenario
        c.hidden = [32, 32]
        c.hyperparameters["src", "duration"] = 300
        let results = try runExperiment(c)
        #expect(results.consolidation?.accuracyBefore.count == c.tasks)
        #expect(results.configuration.bias == false)
    }

    @Test("the sleep records its firing and weight change; the mean image is the strategy's only memory")
    func sleepRecords() throws {
        let config = Self.configuration()
        let src = SleepReplayConsolidation(duration: 300)
        let trainer = try makeTrainer(config, strategy: src)
        try trainer.train(from: TrainingPosition(task: 0))
        try src.consolidate(0, context: trainer.context)
        let record = try #require(src.sleeps.first)
        #expect(record.steps == 300 && src.steps(afterTask: 3) == 600)
        #expect(record.firingRates.count == 4 && record.firingRates[0] > 0)
        #expect(record.relativeWeightChange.contains { $0 > 0 })
        #expect(src.memoryBytes == 784 * 4)
    }

    @Test("a network with biases or the wrong number of thresholds is refused with a line naming the setting")
    func refusals() throws {
        var c = Self.configuration()
        c.bias = true
        #expect { try c.validate() } throws: { "\($0)".hasPrefix("bias must be false with src") }
        c.bias = nil
        c.hyperparameters["src", "thresholds"] = .list([1, 2])
        #expect { _ = try runExperiment(c) } throws: { error in
            (error as? StrategyError)?.key == "thresholds" && "\(error)".contains("the network has 3 layers")
        }
        c.model = "cnn"
        #expect { try c.validate() } throws: { "\($0)".contains("src runs on mlp models") }
    }

    @Test("with the authors' network and settings, sleep lifts class-incremental Split MNIST by at least 25 points over the same network without it")
    func sleepReducesForgetting() throws {
        // The paper's protocol (MLP 1200-1200 without biases, dropout 0.25, SGD 0.1 / momentum 0.5, batch 100, 2 epochs)
        // on 10 % of the data, with the authors' sleep values and a shorter sleep (5 000 + 1 667 t steps).
        var c = smallSplitMNIST(strategy: "src", fraction: 0.1)
        c.scenario = "class"
        c.hidden = [1200, 1200]
        c.bias = false
        c.dropout = 0.25
        c.training.epochs = 2
        c.training.batchSize = 100
        c.training.learningRate = 0.1
        c.training.momentum = 0.5
        c.hyperparameters["src", "duration"] = 5000
        let slept = try runExperiment(c)
        let awake = try runExperiment(c) { $0.strategy = "finetune" }
        let (a, b) = (try #require(slept.metrics.averageAccuracy), try #require(awake.metrics.averageAccuracy))
        #expect(a >= b + 0.25, "src \(a), finetune \(b)")
    }

    @Test("src composes with experience replay and both act: the memory fills and the network sleeps")
    func composesWithReplay() throws {
        var c = Self.configuration()
        c.strategy = "src+er"
        c.hyperparameters["er", "buffer_size"] = 50
        let results = try runExperiment(c)
        #expect(results.consolidation?.phase == "sleep")
        #expect(results.strategyMemoryBytes.last! >= 50 * 784)
    }
}
