import EngramTensor
import EngramNN
import EngramData
import EngramCL
import Foundation
import Testing

/// REMIND: the feature-map augmentation against hand-computed cases, mixup's λ, and the method in a run (quantized
/// memory, capacity in bytes, streaming one sample at a time).
@Suite struct REMINDTests {
    @Test("resizing a crop is PyTorch's bilinear interpolation (align_corners false): a 2×2 box to 4×4 by hand")
    func bilinearResizeOnHandComputedCase() {
        // A 1×4×4 map whose top-left 2×2 box is [[1, 2], [3, 4]].
        var map = [Float](repeating: 0, count: 16)
        map[0] = 1; map[1] = 2; map[4] = 3; map[5] = 4
        let out = FeatureAugmentation.resizeCrop(map, channels: 1, height: 4, width: 4, box: (0, 0, 2, 2))
        let expected: [Float] = [1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4]
        #expect(zip(out, expected).allSatisfy { abs($0 - $1) < 1e-6 }, "\(out)")
        // The whole map as the box gives the map back.
        let whole = (0..<16).map(Float.init)
        #expect(FeatureAugmentation.resizeCrop(whole, channels: 1, height: 4, width: 4, box: (0, 0, 4, 4)) == whole)
    }

    @Test("crops stay inside the map and cover 2/7 to all of its area (within rounding)")
    func cropBoxesAreInside() {
        var random = RandomGenerator(seed: 1, label: "crop")
        for _ in 0..<500 {
            let b = FeatureAugmentation.cropBox(height: 14, width: 14, scale: (2.0 / 7)...1, random: &random)
            #expect(b.top >= 0 && b.left >= 0 && b.top + b.height <= 14 && b.left + b.width <= 14)
            let fraction = Double(b.height * b.width) / 196
            #expect(fraction >= 0.2 && fraction <= 1)
        }
    }

    @Test("mixup's λ is Beta(α, α): mean ½ and variance 1/(4(2α + 1)) for α = 0.1 and α = 2")
    func betaMoments() {
        for alpha in [0.1, 2.0] {
            var random = RandomGenerator(seed: 2, label: "beta")
            let draws = (0..<20_000).map { _ in FeatureAugmentation.beta(alpha, random: &random) }
            let mean = draws.reduce(0, +) / Double(draws.count)
            let variance = draws.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(draws.count - 1)
            #expect(draws.allSatisfy { $0 >= 0 && $0 <= 1 })
            // Standard errors: mean ≤ 0.0035, variance ≤ 0.002 at these sizes.
            #expect(abs(mean - 0.5) < 0.015, "α \(alpha): mean \(mean)")
            #expect(abs(variance - 1 / (4 * (2 * alpha + 1))) < 0.01, "α \(alpha): variance \(variance)")
        }
    }

    static func configuration() -> ExperimentConfiguration {
        var c = smallSplitMNIST(strategy: "remind", fraction: 0.02)
        c.scenario = "class"
        c.model = "cnn"
        c.width = 8
        c.hidden = [32]
        c.training.batchSize = 1
        c.hyperparameters["remind", "base_epochs"] = 2
        c.hyperparameters["remind", "replay_samples"] = 8
        // One SGD step per sample on a batch of 1 + 4 mixed maps: the paper's 0.1 (ImageNet, r = 50) overshoots this
        // small F; 0.01 learns.
        c.hyperparameters["remind", "stream_lr"] = 0.01
        return c
    }

    @Test("a run stores the base task and every streamed sample as codes, one byte per piece and position, and learns every task")
    func storesCodesAndLearns() throws {
        let c = Self.configuration()
        let remind = REMIND(replaySamples: 8, baseEpochs: 2, learningRate: 0.01)
        let trainer = try makeTrainer(c, strategy: remind)
        let results = try trainer.run()
        // cnn width 8: G's maps are 8 × 14 × 14; two pieces of four channels: 392 code bytes (+ label and task).
        #expect(remind.mapShape == [8, 14, 14] && remind.sampleBytes == 14 * 14 * 2 + 8)
        let streamed = (0..<5).reduce(0) { $0 + trainer.context.stream.trainingCount(task: $1) }
        #expect(remind.count == streamed, "unbounded memory: every sample")
        #expect(remind.memoryBytes == streamed * remind.sampleBytes + remind.quantizer!.codebookBytes)
        // Replay keeps old digits: the final row is far above fine-tuning's single task (≈ 20 %).
        let last = results.accuracy.last!
        #expect(last.reduce(0, +) / 5 > 0.5, "\(last)")
    }

    @Test("a memory bounded in bytes holds as many samples as fit, more than ER holds in the same bytes")
    func capacityInBytes() throws {
        var c = Self.configuration()
        c.hyperparameters["remind", "memory_bytes"] = 79_200   // ER's 100 MNIST samples (792 B each)
        let results = try runExperiment(c)
        let held = results.strategyMemoryBytes.last!
        // The codebooks take 2 × 256 centroids × 4 channels × 4 B = 8 192 B; 400 B per sample (392 code bytes + 8) in the
        // rest: 177 samples — ER holds 100.
        #expect(held == 8_192 + 177 * 400)
    }

    @Test("a full memory drops from its largest class: after the stream every class holds the same share, within two")
    func evictionBalancesClasses() throws {
        let remind = REMIND(replaySamples: 8, baseEpochs: 2, learningRate: 0.01, bufferSize: 60)
        _ = try makeTrainer(Self.configuration(), strategy: remind).run()
        let perClass = Dictionary(grouping: remind.labels) { $0 }.mapValues(\.count)
        #expect(remind.count == 60 && perClass.count == 10)
        // Each insert takes a slot from the largest class and gives it to the new sample's: the classes stay within one
        // of each other except the last insert's class, which may end one above the rest while another is one below.
        #expect(perClass.values.max()! - perClass.values.min()! <= 2, "\(perClass)")
        #expect(perClass.values.filter { $0 < 5 || $0 > 7 }.isEmpty, "\(perClass)")
    }

    @Test("REMIND refuses a split with no block left for F, pieces that do not divide the channels and a memory smaller than its codebooks, naming the option")
    func refusals() throws {
        var c = Self.configuration()
        c.hyperparameters["remind", "split_block"] = 2
        #expect { _ = try runExperiment(c) } throws: { ($0 as? StrategyError)?.key == "split_block" }
        c.hyperparameters["remind", "split_block"] = 1
        c.hyperparameters["remind", "subvectors"] = 3
        #expect { _ = try runExperiment(c) } throws: { ($0 as? StrategyError)?.key == "subvectors" }
        c.hyperparameters["remind", "subvectors"] = 2
        c.hyperparameters["remind", "memory_bytes"] = 8_000   // below the codebooks' 8 192 bytes
        #expect { _ = try runExperiment(c) } throws: { ($0 as? StrategyError)?.key == "memory_bytes" }
    }
}
