import Engram
import ArgumentParser
import Foundation

/// `engram bench`: training throughput of the standard workloads (forward, backward, SGD-momentum update).
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure training throughput (samples/s of a full SGD-momentum step) on the standard workloads.",
        discussion: """
        Training steps: mlp400_b10, mlp400_b128 (MLP 784-400-400-10), mlp1000_b256 (MLP 784-1000-1000-10),
        resnet18r_b32 (reduced ResNet-18, nf = 20, 3×32×32 input, 100 classes), resnet20_b32 (CIFAR ResNet-20 with
        option-A shortcuts on 1×28×28 input, 10 classes). Evaluation (forward only, eval mode, no gradients):
        eval_mlp400_b1000, eval_resnet20_b1000. Exact per-sample MAS importance and EWC's exact Fisher against
        training on the same samples: mas_importance_mlp, mas_importance_cnn, ewc_fisher_mlp, ewc_fisher_cnn (cnn:
        ResNet-20). benchmarks/pytorch_peer.py times the training and
        evaluation workloads in PyTorch and prints the same JSON keys; `--peer benchmarks/pytorch_peer.py` runs it
        alternately with Engram (--rounds rounds) and reports both medians and their ratio.
        """
    )

    @Option(help: "Comma-separated workloads to run (default: all).")
    var workloads: String = (BenchWorkload.allCases.map(\.rawValue) + ImportanceWorkload.allCases.map(\.rawValue)).joined(separator: ",")

    @Option(help: "OpenBLAS threads (default: the number of cores).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: "Seconds of timed steps per workload (after warm-up).")
    var seconds: Double = 3

    @Option(help: "Seed for the model and the synthetic batches.")
    var seed: UInt64 = 0

    @Flag(help: "Print one JSON object per workload and line: {\"workload\", \"batch\", \"threads\", \"samples_per_second\"}.")
    var json = false

    @Option(help: "The PyTorch peer script (benchmarks/pytorch_peer.py): time it on the same workloads, alternating with Engram, and report the ratio of the medians.")
    var peer: String?

    @Option(help: "Rounds of Engram and the peer, alternating, when --peer is given (medians are reported).")
    var rounds: Int = 3

    @Flag(help: "Also time the data loaders alone (Permuted MNIST batch 128; CIFAR-shaped 3×32×32 with crop and flip, batch 32) and give their ratio to the matching training step.")
    var loader = false

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
        guard seconds > 0 else { throw ValidationError("--seconds must be positive, got \(seconds)") }
        if let problem = ComputeBackend.environmentProblem() { throw ValidationError(problem) }
        guard rounds >= 1 else { throw ValidationError("--rounds must be at least 1, got \(rounds)") }
        if let peer, !FileManager.default.isReadableFile(atPath: peer) {
            throw ValidationError("--peer: cannot read '\(peer)'")
        }
        for name in workloads.split(separator: ",")
        where BenchWorkload(rawValue: String(name)) == nil && ImportanceWorkload(rawValue: String(name)) == nil {
            let known = BenchWorkload.allCases.map(\.rawValue) + ImportanceWorkload.allCases.map(\.rawValue)
            throw ValidationError("unknown workload '\(name)'; known: \(known.joined(separator: ", "))")
        }
    }

    func run() throws {
        Runtime.configureAllocator()
        BLAS.setThreads(threads)
        let selected = workloads.split(separator: ",").compactMap { BenchWorkload(rawValue: String($0)) }
        if !json && !selected.isEmpty {
            print("workload             batch  threads  samples/s    ms/step" + (peer == nil ? "" : "  PyTorch s/s   ratio"))
        }
        var stepsPerSecond: [BenchWorkload: Double] = [:]
        for workload in selected {
            var engram: [Double] = [], pytorch: [Double] = []
            for _ in 0..<(peer == nil ? 1 : rounds) {
                engram.append(workload.measure(seconds: seconds, seed: seed).samplesPerSecond)
                if let peer { pytorch.append(try Bench.peerSamplesPerSecond(script: peer, workload: workload, threads: threads, seconds: seconds)) }
            }
            let median = Bench.median(engram), peerMedian = pytorch.isEmpty ? nil : Bench.median(pytorch)
            stepsPerSecond[workload] = median / Double(workload.batch)
            if json {
                var line: [String: Any] = ["workload": workload.rawValue, "batch": workload.batch, "threads": threads,
                                           "samples_per_second": (median * 10).rounded() / 10]
                if let peerMedian {
                    line["peer_samples_per_second"] = (peerMedian * 10).rounded() / 10
                    line["ratio"] = (median / peerMedian * 1000).rounded() / 1000
                    line["rounds"] = rounds
                }
                let data = try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            } else {
                print(workload.rawValue.padding(toLength: 21, withPad: " ", startingAt: 0)
                      + String(format: "%5d  %7d  %9.1f  %9.3f", workload.batch, threads, median,
                               1000 * Double(workload.batch) / median)
                      + (peerMedian.map { String(format: "  %11.1f  %5.2f×", $0, median / $0) } ?? ""))
            }
        }
        for workload in workloads.split(separator: ",").compactMap({ ImportanceWorkload(rawValue: String($0)) }) {
            let t = workload.measure(seed: seed)
            if json {
                let line: [String: Any] = ["workload": workload.rawValue, "threads": threads, "samples": t.samples,
                                           "importance_seconds_per_10000": (t.importance * 1000).rounded() / 1000,
                                           "training_seconds_per_10000": (t.training * 1000).rounded() / 1000,
                                           "ratio_to_training": (t.importance / t.training * 1000).rounded() / 1000]
                let data = try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            } else {
                print(workload.rawValue.padding(toLength: 21, withPad: " ", startingAt: 0)
                      + String(format: "%@ %.2f s per 10 000 samples, training %.2f s: %.2f× an epoch",
                               workload.estimate, t.importance, t.training, t.importance / t.training))
            }
        }
        if loader { try benchLoaders(trainingStepsPerSecond: stepsPerSecond) }
    }

    /// Loader throughput alone, and its ratio to the training step it feeds (the loader must not bottleneck).
    func benchLoaders(trainingStepsPerSecond: [BenchWorkload: Double]) throws {
        var rng = RandomGenerator(seed: seed, label: "bench/loader data")
        // Permuted MNIST from the real files when present, else MNIST-shaped random bytes.
        let mnist = try (try? DatasetLocator().loadLocal(.mnist)) ?? (Bench.randomPair(channels: 1, side: 28, classes: 10, count: 60_000, rng: &rng))
        let permuted = try ContinualBenchmark.permutedMNIST(mnist, tasks: 2, identityFirst: false)
        // CIFAR-shaped data (no CIFAR archive is needed to time the pipeline): 50 000 random 3×32×32 images.
        let cifar = try ContinualBenchmark.split(try Bench.randomPair(channels: 3, side: 32, classes: 100, count: 50_000, rng: &rng),
                                                 name: "cifar-shaped", classesPerTask: 10)
        let cases: [(String, ContinualBenchmark, LoaderOptions, BenchWorkload)] = [
            ("loader_pmnist_b128", permuted, LoaderOptions(batchSize: 128, layout: .flat, normalization: .unitRange), .mlp400_b128),
            ("loader_cifar_b32", cifar, LoaderOptions(batchSize: 32, layout: .image, normalization: .dataset(.cifar100),
                                                      augmentation: .cifar), .resnet18r_b32),
        ]
        for (name, benchmark, options, feeds) in cases {
            let t = try LoaderBenchmark.run(benchmark, task: 0, options: options, batches: 400)
            let ratio = trainingStepsPerSecond[feeds].map { t.batchesPerSecond / $0 }
            if json {
                var line: [String: Any] = ["workload": name, "batch": options.batchSize, "threads": 1,
                                           "samples_per_second": (t.samplesPerSecond * 10).rounded() / 10,
                                           "batches_per_second": (t.batchesPerSecond * 10).rounded() / 10]
                if let ratio { line["ratio_to_\(feeds.rawValue)"] = (ratio * 10).rounded() / 10 }
                let data = try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            } else {
                print(name.padding(toLength: 18, withPad: " ", startingAt: 0)
                      + String(format: "%5d  %7d  %9.1f  %9.3f", options.batchSize, 1, t.samplesPerSecond, 1000 / t.batchesPerSecond)
                      + (ratio.map { String(format: "   %.1f× the %@ step rate", $0, feeds.rawValue) } ?? ""))
            }
        }
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    /// One timing of `workload` by the PyTorch peer script (a separate process, so the two never share the cores).
    static func peerSamplesPerSecond(script: String, workload: BenchWorkload, threads: Int, seconds: Double) throws -> Double {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, "--workloads", workload.rawValue, "--threads", String(threads),
                             "--seconds", String(seconds), "--json"]
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let errorText = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0,
              let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last,
              let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let rate = object["samples_per_second"] as? Double else {
            let reason = errorText.split(separator: "\n").last.map(String.init) ?? "exit status \(process.terminationStatus)"
            throw ValidationError("--peer \(script) failed on \(workload.rawValue): \(reason)")
        }
        return rate
    }

    static func randomPair(channels: Int, side: Int, classes: Int, count: Int, rng: inout RandomGenerator) throws -> DatasetPair {
        func make(_ n: Int, _ name: String) throws -> ImageDataset {
            var pixels = [UInt8](repeating: 0, count: n * channels * side * side)
            for i in 0..<pixels.count { pixels[i] = UInt8(truncatingIfNeeded: rng.next()) }
            let labels = (0..<n).map { UInt8($0 % classes) }
            return try ImageDataset(name: name, channels: channels, height: side, width: side, pixels: pixels, labels: labels,
                                    classCount: classes)
        }
        return DatasetPair(train: try make(count, "random/train"), test: try make(count / 5, "random/test"))
    }
}

/// The benchmark workloads of the engine issue.
enum BenchWorkload: String, CaseIterable {
    case mlp400_b10, mlp400_b128, mlp1000_b256, resnet18r_b32, resnet20_b32, eval_mlp400_b1000, eval_resnet20_b1000

    var batch: Int {
        switch self {
        case .mlp400_b10: 10
        case .mlp400_b128: 128
        case .mlp1000_b256: 256
        case .resnet18r_b32, .resnet20_b32: 32
        case .eval_mlp400_b1000, .eval_resnet20_b1000: 1000
        }
    }

    /// Forward passes only (eval mode, no autodiff graph), as when a run scores its test sets.
    var isEvaluation: Bool { self == .eval_mlp400_b1000 || self == .eval_resnet20_b1000 }

    /// Times full training steps (or forward passes, for the evaluation workloads) for about `seconds` after a warm-up.
    func measure(seconds: Double, seed: UInt64) -> (samplesPerSecond: Double, steps: Int) {
        var rng = RandomGenerator(seed: seed, label: "bench/\(rawValue)")
        let model: Classifier
        let inputShape: [Int]
        let classes: Int
        switch self {
        case .mlp400_b10, .mlp400_b128, .eval_mlp400_b1000:
            model = Models.mlp(input: 784, hidden: [400, 400], classes: 10, using: &rng)
            inputShape = [784]; classes = 10
        case .mlp1000_b256:
            model = Models.mlp(input: 784, hidden: [1000, 1000], classes: 10, using: &rng)
            inputShape = [784]; classes = 10
        case .resnet18r_b32:
            model = Models.resnet18Reduced(inputChannels: 3, classes: 100, nf: 20, using: &rng)
            inputShape = [3, 32, 32]; classes = 100
        case .resnet20_b32, .eval_resnet20_b1000:
            model = Models.cifarResNet(depth: 20, inputChannels: 1, classes: 10, using: &rng)
            inputShape = [1, 28, 28]; classes = 10
        }
        if isEvaluation { model.eval() } else { model.train() }
        let optimizer = SGD(model.namedParameters(), learningRate: 0.01, momentum: 0.9)
        // A small pool of synthetic batches, so data generation is outside the timed loop.
        let pool = (0..<4).map { _ in
            (Tensor.normal([batch] + inputShape, using: &rng), (0..<batch).map { _ in rng.nextInt(below: classes) })
        }
        let profile = ProcessInfo.processInfo.environment["ENGRAM_BENCH_PROFILE"] != nil
        let clock0 = ContinuousClock()
        var phase = [Duration](repeating: .zero, count: 3)
        func step(_ i: Int) {
            let (x, y) = pool[i % pool.count]
            if isEvaluation {
                _ = GradMode.withoutGrad { model(x) }
                return
            }
            let t0 = clock0.now
            let loss = Losses.crossEntropy(model(x), targets: y)
            let t1 = clock0.now
            optimizer.zeroGrad()
            loss.backward()
            let t2 = clock0.now
            optimizer.step()
            if profile { phase[0] += t1 - t0; phase[1] += t2 - t1; phase[2] += clock0.now - t2 }
        }
        defer { if profile { print("  forward \(phase[0]) backward \(phase[1]) step \(phase[2])") } }
        let warmup = [.resnet18r_b32, .resnet20_b32, .eval_resnet20_b1000].contains(self) ? 2 : 10
        for i in 0..<warmup { step(i) }
        let clock = ContinuousClock()
        let start = clock.now
        var steps = 0
        var elapsed: Double = 0
        repeat {
            step(steps)
            steps += 1
            let d = clock.now - start
            elapsed = Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
        } while elapsed < seconds || steps < 3
        return (Double(steps * batch) / elapsed, steps)
    }
}

/// Exact per-sample importance against training on the same samples: MAS (Ω = mean over samples of |∂‖F(x)‖²/∂θ|,
/// `mas_importance_*`) and EWC's exact Fisher (Σ_c p_c (∂ log p_c/∂θ)² over the 10 classes, `ewc_fisher_*`), on the
/// MLP 784-400-400-10 (chunks and batches of 128) and ResNet-20 on 1×28×28 (chunks and batches of 32). All are
/// normalised to 10 000 samples.
enum ImportanceWorkload: String, CaseIterable {
    case mas_importance_mlp, mas_importance_cnn, ewc_fisher_mlp, ewc_fisher_cnn

    /// What the workload estimates, for the text output.
    var estimate: String { isFisher ? "exact EWC Fisher" : "exact MAS importance" }
    var isFisher: Bool { self == .ewc_fisher_mlp || self == .ewc_fisher_cnn }

    func measure(seed: UInt64) -> (importance: Double, training: Double, samples: Int) {
        var rng = RandomGenerator(seed: seed, label: "bench/\(rawValue)")
        let model: Classifier, inputShape: [Int], batch: Int, samples: Int
        switch self {
        case .mas_importance_mlp, .ewc_fisher_mlp:
            model = Models.mlp(input: 784, hidden: [400, 400], classes: 10, using: &rng)
            inputShape = [784]; batch = 128; samples = 10_240
        case .mas_importance_cnn, .ewc_fisher_cnn:
            model = Models.cifarResNet(depth: 20, inputChannels: 1, classes: 10, using: &rng)
            inputShape = [1, 28, 28]; batch = 32; samples = 1_024
        }
        let batches = (0..<(samples / batch)).map { _ in Tensor.normal([batch] + inputShape, using: &rng) }
        let labels = (0..<batch).map { $0 % 10 }
        func seconds(_ body: () -> Void) -> Double {
            let clock = ContinuousClock(), start = clock.now
            body()
            let d = clock.now - start
            return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
        }
        func estimate(_ inputs: ArraySlice<Tensor>) {
            if isFisher {
                var fisherRNG = RandomGenerator(seed: seed, label: "bench/fisher")
                _ = Importance.fisher(model: model, batches: inputs.map { ($0, labels) }, estimator: .exact, rng: &fisherRNG)
            } else {
                _ = Importance.mas(model: model, inputs: inputs, mode: .exact)
            }
        }
        estimate(batches.prefix(1))   // warm-up (primitives, buffers)
        let importance = seconds { estimate(batches[...]) }
        model.train()
        let optimizer = SGD(model.namedParameters(), learningRate: 0.01, momentum: 0.9)
        let training = seconds {
            for x in batches {
                let loss = Losses.crossEntropy(model(x), targets: labels)
                optimizer.zeroGrad()
                loss.backward()
                optimizer.step()
            }
        }
        let scale = 10_000 / Double(samples)
        return (importance * scale, training * scale, samples)
    }
}
