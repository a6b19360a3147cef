import EngramTensor
import EngramData
import EngramCL
import EngramNN
import Foundation
import Testing
import Yams

/// A synthetic `cifar-100-binary.tar.gz` in the documented layout (`cifar-100-binary/{train,test}.bin`,
/// records of 1 coarse label byte, 1 fine label byte and 3072 pixel bytes, R, G, B planes), made
/// learnable: every class has its own mean colour, and each pixel adds uniform noise to it.
/// (The reader's own fixture, `CIFARFixture` in EngramDataTests, is in another test target.)
enum SyntheticCIFAR100 {
    static let trainPerClass = 20
    static let testPerClass = 4
    static let noise = 24

    /// Class `k`'s mean colour: 5 reds × 5 greens × 4 blues, all distinct, at least 50 apart in one channel.
    static func meanColour(_ k: Int) -> [Int] { [(k % 5) * 50 + 20, ((k / 5) % 5) * 50 + 20, (k / 25) * 60 + 20] }

    /// The class whose mean colour is nearest to an image's per-channel mean.
    static func nearestClass(_ image: [UInt8]) -> Int {
        let mean = (0..<3).map { c in Double(image[c * 1024 ..< (c + 1) * 1024].reduce(0) { $0 + Int($1) }) / 1024 }
        return (0..<100).min { a, b in
            func d(_ k: Int) -> Double { zip(meanColour(k), mean).reduce(0) { $0 + (Double($1.0) - $1.1) * (Double($1.0) - $1.1) } }
            return d(a) < d(b)
        }!
    }

    /// `perClass` records of every class, classes interleaved (as in the real files).
    static func records(perClass: Int, state: inout UInt64) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(perClass * 100 * 3074)
        for _ in 0..<perClass {
            for k in 0..<100 {
                bytes += [UInt8(k / 5), UInt8(k)]
                for c in 0..<3 {
                    let mean = meanColour(k)[c]
                    for _ in 0..<1024 {
                        state = state &* 6364136223846793005 &+ 1442695040888963407
                        let r = Int(state >> 33) % (2 * noise + 1) - noise
                        bytes.append(UInt8(max(0, min(255, mean + r))))
                    }
                }
            }
        }
        return bytes
    }

    /// Writes `<dataDir>/cifar-100/cifar-100-binary.tar.gz`, where the locator looks under `--data-dir`.
    static func write(into dataDir: URL) throws {
        let work = dataDir.appendingPathComponent("build")
        let root = work.appendingPathComponent("cifar-100-binary")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        var state: UInt64 = 2024
        try Data(records(perClass: trainPerClass, state: &state)).write(to: root.appendingPathComponent("train.bin"))
        try Data(records(perClass: testPerClass, state: &state)).write(to: root.appendingPathComponent("test.bin"))
        try Data((0..<20).map { "coarse\($0)\n" }.joined().utf8).write(to: root.appendingPathComponent("coarse_label_names.txt"))
        try Data((0..<100).map { "fine\($0)\n" }.joined().utf8).write(to: root.appendingPathComponent("fine_label_names.txt"))
        let target = dataDir.appendingPathComponent("cifar-100")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        let tar = Process()
        tar.executableURL = URL(fileURLWithPath: "/bin/tar")
        tar.currentDirectoryURL = work
        tar.arguments = ["-czf", target.appendingPathComponent("cifar-100-binary.tar.gz").path, "cifar-100-binary"]
        try tar.run()
        tar.waitUntilExit()
        guard tar.terminationStatus == 0 else { throw RunError("tar failed with status \(tar.terminationStatus)") }
        try FileManager.default.removeItem(at: work)
    }
}

/// One data directory holding the synthetic archive, written once for all tests.
let syntheticCIFARDirectory: Result<URL, any Error> = Result {
    let dir = try temporaryDirectory("engram-synthetic-cifar100")
    try SyntheticCIFAR100.write(into: dir)
    return dir
}

/// A locator confined to `dir`: the synthetic archive is accepted without its (real) MD5, and nothing
/// can be downloaded.
func syntheticLocator(_ dir: URL, verifyChecksums: Bool = false) -> DatasetLocator {
    var locator = DatasetLocator(dataDirectory: dir.path, environment: ["HOME": dir.path], currentDirectory: dir.path,
                                 repositoryRoot: dir.path, cacheDirectory: dir.appendingPathComponent("cache").path,
                                 verifyChecksums: verifyChecksums)
    locator.urlForFile = { _, _ in nil }
    return locator
}

/// 10-task task-incremental Split CIFAR-100 on the synthetic data, ResNet-18 (reduced) of width 4, one epoch.
func syntheticSplitCIFAR100(strategy: String, dataDirectory: URL) -> ExperimentConfiguration {
    var c = ExperimentConfiguration()
    c.benchmark = "split-cifar100"
    c.scenario = "task"
    c.tasks = 10
    c.strategy = strategy
    // MAS with the gradient step diverges on this data (the penalty's curvature λΩ outgrows the step size: at
    // λ = 1 by task 1, at λ = 0.01 depending on the summation order of the kernels); the proximal step is stable
    // for any λΩ. The test is about the data path, not tuning.
    if strategy == "mas" {
        c.hyperparameters["mas", "lambda"] = 0.01
        c.hyperparameters["mas", "penalty_step"] = "proximal"
    }
    c.model = "resnet18r"
    c.width = 4
    c.training.epochs = 1
    c.training.batchSize = 4     // 200 samples per task: 50 steps in the one epoch
    c.training.learningRate = 0.01
    c.training.seed = 1
    c.dataDirectory = dataDirectory.path
    return c
}

/// Chance accuracy of a 10-way head, and the margin above it required of the learning accuracy (each task's
/// accuracy right after training it, averaged over the 10 tasks: 100 test images, where task 0 alone has 10 and
/// moves by 0.1 with the kernels' summation order). Seeded runs reach 0.27–0.37 with either compute backend.
let chance = 0.1
let requiredLearningAccuracy = 0.2   // 2 × chance

@Suite(.serialized) struct SplitCIFAR100EndToEndTests {
    /// Checks a T×T matrix: complete, finite, every entry in [0, 1].
    func checkMatrix(_ m: AccuracyMatrix, tasks: Int) {
        #expect(m.taskCount == tasks)
        #expect(m.values.count == tasks && m.values.allSatisfy { $0.count == tasks })
        #expect(m.isComplete)
        for row in m.values { for v in row { #expect(v.map { $0.isFinite && $0 >= 0 && $0 <= 1 } == true) } }
        #expect(m.metrics.averageAccuracy?.isFinite == true)
    }

    @Test("the synthetic archive fails the published MD5, nothing is downloaded, and ENGRAM_SKIP_CHECKSUMS=1 opts out")
    func checksumIsEnforcedUnlessSkipped() throws {
        let dir = try syntheticCIFARDirectory.get()
        let strict = syntheticLocator(dir, verifyChecksums: true)
        let problem = strict.check(.cifar100, in: dir.appendingPathComponent("cifar-100").path)
        #expect(problem != nil, "a synthetic archive must not pass the real MD5")
        #expect(throws: (any Error).self) { try strict.locateOrDownloadBlocking(.cifar100) }
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("cache/cifar-100").path))
        #expect(try syntheticLocator(dir).locate(.cifar100) == dir.appendingPathComponent("cifar-100").path)
        #expect(DatasetLocator(environment: [:]).verifyChecksums)
        #expect(DatasetLocator(environment: ["ENGRAM_SKIP_CHECKSUMS": "0"]).verifyChecksums)
        #expect(!DatasetLocator(environment: ["ENGRAM_SKIP_CHECKSUMS": "1"]).verifyChecksums)
        #expect(DatasetLocator(environment: ["ENGRAM_SKIP_CHECKSUMS": "1"], verifyChecksums: true).verifyChecksums)
    }

    @Test("finetune and MAS run 10-task Split CIFAR-100 (task-IL, resnet18r) end to end and learn (mean accuracy on each task right after it ≥ 2 × chance)",
          arguments: ["finetune", "mas"])
    func libraryRun(strategy: String) throws {
        let dir = try syntheticCIFARDirectory.get()
        let c = syntheticSplitCIFAR100(strategy: strategy, dataDirectory: dir)
        let benchmark = try c.makeBenchmark(locator: syntheticLocator(dir))
        #expect(benchmark.tasks.count == 10)
        #expect(benchmark.headSizes == Array(repeating: 10, count: 10))
        #expect(benchmark.train.count == 100 * SyntheticCIFAR100.trainPerClass)
        #expect(benchmark.tasks.allSatisfy { $0.train.count == 10 * SyntheticCIFAR100.trainPerClass
            && $0.test.count == 10 * SyntheticCIFAR100.testPerClass })
        let heads = (c.makeModel(for: benchmark).head as? MultiHead)?.heads.map(\.outFeatures)
        #expect(heads == Array(repeating: 10, count: 10))

        let out = try temporaryDirectory("engram-cifar-e2e-\(strategy)")
        defer { try? FileManager.default.removeItem(at: out) }
        let results = try ExperimentRun(configuration: c, directory: out).run(benchmark: benchmark)
        checkMatrix(results.matrix, tasks: 10)
        let learned = try #require(results.metrics.learningAccuracy)
        #expect(learned >= requiredLearningAccuracy, "\(strategy): learning accuracy \(learned), chance is \(chance)")
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent(ExperimentRun.resultsName).path))
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent(ExperimentRun.matrixName).path))
    }

    @Test("MIND's CIFAR-100 protocol (examples/mind-split-cifar100.yaml), shortened, runs all 10 tasks with TAw and TAg results")
    func mindProtocolRunsEndToEnd() throws {
        let dir = try syntheticCIFARDirectory.get()
        let text = try String(contentsOfFile: repositoryRoot + "/examples/mind-split-cifar100.yaml", encoding: .utf8)
        var c = try YAMLDecoder().decode(ExperimentConfiguration.self, from: text)
        let benchmark = try c.makeBenchmark(locator: syntheticLocator(dir))
        // The protocol's ResNet-32 maps a batch of CIFAR images to each task's 10 classes…
        let resnet32 = c.makeModel(for: benchmark)
        resnet32.setActiveTask(3)
        #expect(resnet32(Tensor.zeros([2, 3, 32, 32])).shape == [2, 10])
        // …and the protocol trains end to end; shortened to one epoch each and a small network for the test.
        c.model = "resnet18r"
        c.width = 4
        c.training.epochs = 1
        c.training.milestones = []
        c.training.batchSize = 20
        c.hyperparameters["mind", "teacher_epochs"] = 1
        c.hyperparameters["mind", "teacher_milestones"] = .list([])
        c.training.seed = 1
        c.dataDirectory = dir.path
        let out = try temporaryDirectory("engram-cifar-e2e-mind")
        defer { try? FileManager.default.removeItem(at: out) }
        let results = try ExperimentRun(configuration: c, directory: out).run(benchmark: benchmark)
        checkMatrix(results.matrix, tasks: 10)
        #expect(results.metrics.forgetting == 0, "task-aware inference with per-task BatchNorm forgets nothing")
        let tag = try #require(results.taskAgnostic?.first)
        #expect(tag.rule == "top-two-lowest-entropy" && tag.accuracy.count == 10 && tag.accuracy.last!.count == 10)
        #expect(tag.averageAccuracy.isFinite && tag.averageAccuracy <= tag.averageTaskPrediction + 1e-9)
        print("MIND protocol on synthetic split-cifar100: TAw ACC \(results.metrics.averageAccuracy ?? .nan), TAg \(tag.averageAccuracy)")
    }

    @Test("class_order natural deals classes 0–9 first; icarl and seeded give other, different first tasks")
    func classOrders() throws {
        let dir = try syntheticCIFARDirectory.get()
        var firstTasks: [String: [Int]] = [:]
        for order in ["natural", "icarl", "seeded"] {
            // Decoded like a config file's `class_order:` key.
            let json = #"{"benchmark": "split-cifar100", "scenario": "task", "tasks": 10, "model": "resnet18r", "width": 4, "class_order": "\#(order)"}"#
            let c = try JSONDecoder().decode(ExperimentConfiguration.self, from: Data(json.utf8))
            #expect(c.classOrder == order)
            try c.validate()
            let benchmark = try c.makeBenchmark(locator: syntheticLocator(dir))
            // The tasks partition the 100 classes, ten each.
            #expect(benchmark.tasks.flatMap(\.classes).sorted() == Array(0..<100))
            #expect(benchmark.tasks.allSatisfy { $0.classes.count == 10 })
            // Task 0's samples are its classes' images (their colours say so), for train and test alike.
            let task = benchmark.tasks[0]
            for i in task.train.prefix(20) {
                let label = Int(benchmark.train.labels[Int(i)])
                #expect(task.classes.contains(label))
                #expect(SyntheticCIFAR100.nearestClass(benchmark.train.image(at: Int(i))) == label)
            }
            for i in task.test.prefix(20) {
                #expect(task.classes.contains(Int(benchmark.test.labels[Int(i)])))
            }
            firstTasks[order] = task.classes
        }
        #expect(firstTasks["natural"] == Array(0..<10))
        #expect(firstTasks["icarl"] == Array(ClassOrder.icarlCIFAR100.prefix(10)))
        #expect(firstTasks["icarl"] == [68, 56, 78, 8, 23, 84, 90, 65, 74, 76])
        let seeded = try #require(firstTasks["seeded"])
        #expect(seeded != firstTasks["icarl"] && seeded != firstTasks["natural"])
        #expect(Set(seeded) != Set(firstTasks["icarl"]!))
    }

    @Test("engram run --benchmark split-cifar100 --data-dir DIR writes results.json with a 10×10 accuracy matrix")
    func commandLine() throws {
        let dir = try syntheticCIFARDirectory.get()
        let out = try temporaryDirectory("engram-cifar-e2e-cli")
        defer { try? FileManager.default.removeItem(at: out) }
        let log = out.appendingPathComponent("out.txt")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: engramExecutable)
        process.arguments = ["run", "--benchmark", "split-cifar100", "--tasks", "10", "--scenario", "task",
                             "--model", "resnet18r", "--width", "4", "--strategy", "finetune", "--data-dir", dir.path,
                             "--epochs", "1", "--batch-size", "4", "--lr", "0.01", "--seed", "1",
                             "--class-order", "icarl", "--out", out.appendingPathComponent("run").path, "--quiet"]
        var environment = ProcessInfo.processInfo.environment
        environment["ENGRAM_SKIP_CHECKSUMS"] = "1"
        environment["HOME"] = dir.path          // an empty cache: a rejected archive could not come from elsewhere
        environment["ENGRAM_DATA"] = nil
        process.environment = environment
        process.currentDirectoryURL = out
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        process.waitUntilExit()
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        #expect(process.terminationStatus == 0, "\(text)")

        let url = out.appendingPathComponent("run/results.json")
        let results = try JSONDecoder().decode(RunResults.self, from: Data(contentsOf: url))
        #expect(results.benchmark == "split-cifar100")
        #expect(results.configuration.classOrder == "icarl")
        #expect(results.configuration.width == 4 && results.configuration.model == "resnet18r")
        checkMatrix(results.matrix, tasks: 10)
        let learned = try #require(results.matrix.metrics.learningAccuracy)
        #expect(learned >= requiredLearningAccuracy, "CLI: learning accuracy \(learned), chance is \(chance)")
        #expect(text.contains("split-cifar100"), "the summary names the benchmark: \(text)")
    }
}
