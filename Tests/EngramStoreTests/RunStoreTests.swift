import EngramCL
import EngramStore
import Foundation
import Testing

/// The run store: recording, filtering and grouping on a fixture of runs, concurrent writers, rebuilding from the
/// directories, and a damaged store refused in one message with the directories untouched.
@Suite struct RunStoreTests {
    /// A fresh folder holding one run directory per entry of `runs`: a results.json as Engram writes it, for a
    /// two-task task-incremental Split MNIST run whose final accuracies average `accuracy`.
    static func fixture(_ runs: [(strategy: String, lambda: Double, seed: Int, accuracy: Double)]) throws -> URL {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("engram-store-\(UUID().uuidString)")
        for (i, run) in runs.enumerated() {
            let directory = root.appendingPathComponent("run-\(i)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            var c = ExperimentConfiguration()
            c.benchmark = "split-mnist"; c.scenario = "task"; c.strategy = run.strategy; c.tasks = 2
            c.training.seed = UInt64(run.seed)
            c.hyperparameters[run.strategy, "lambda"] = .double(run.lambda)
            let matrix = try AccuracyMatrix(rows: [[1, 0.5], [run.accuracy, run.accuracy]], randomBaseline: [0.5, 0.5])
            let results = RunResults(benchmark: "split-mnist", scenario: .taskIncremental, strategy: run.strategy, seed: UInt64(run.seed),
                                     taskAwareMatrix: matrix, taskAgnostic: nil, secondsPerTask: [1, 1], strategyMemoryBytes: [0, 0],
                                     parameterCount: 10, configuration: c.resolved(), wallSeconds: 2)
            try results.jsonData().write(to: directory.appendingPathComponent("results.json"))
        }
        return root
    }

    static let runs: [(strategy: String, lambda: Double, seed: Int, accuracy: Double)] = [
        ("mas", 1, 0, 0.90), ("mas", 1, 1, 0.92), ("mas", 10, 0, 0.80), ("ewc", 1, 0, 0.70), ("ewc", 1, 1, 0.74),
    ]

    @Test("recorded runs keep every configuration key and results.json number, and answer filters")
    func recordsAndFilters() throws {
        let root = try Self.fixture(Self.runs)
        let store = try RunStore(path: root.appendingPathComponent("store.sqlite").path)
        let imported = try store.importRuns([root])
        #expect(imported.recorded == 5 && imported.failed.isEmpty)
        let all = try store.runs()
        #expect(all.count == 5)
        let first = try #require(all.first)
        #expect(first.settings["hyperparameters.mas.lambda"] == "1" && first.settings["training.lr"] == "0.01")
        #expect(first.settings["hidden"] == "[400, 400]" && first.settings["seed"] == "0" && first.settings["scenario"] == "task")
        #expect(first.metrics["average_accuracy"] == 0.9 && first.metrics["wall_seconds"] == 2 && first.metrics["schema_version"] == 2)
        #expect(try store.runs(where: [RunFilter("strategy=mas")]).count == 3)
        #expect(try store.runs(where: [RunFilter("strategy=mas"), RunFilter("hyperparameters.mas.lambda=1.0")]).count == 2)
        #expect(try store.runs(where: [RunFilter("strategy=mas,ewc"), RunFilter("average_accuracy>=0.8")]).count == 3)
        #expect(try store.runs(where: [RunFilter("strategy!=mas")]).count == 2)
        #expect { try store.runs(where: [RunFilter("stratgy=mas")]) } throws: { "\($0)".contains("nearest: strategy") }
        #expect(throws: StoreError.self) { try RunFilter("strategy") }
        // Recording a directory again replaces its row.
        try store.record(directory: root.appendingPathComponent("run-0"))
        #expect(try store.runs().count == 5)
    }

    @Test("groups give mean and standard deviation over their runs")
    func groups() throws {
        let root = try Self.fixture(Self.runs)
        let store = try RunStore(path: root.appendingPathComponent("store.sqlite").path)
        try store.importRuns([root])
        let groups = StoredRunGroup.group(try store.runs(), by: ["strategy", "hyperparameters.mas.lambda"], metrics: ["average_accuracy"])
        #expect(groups.map(\.values) == [["ewc", "–"], ["mas", "1"], ["mas", "10"]])
        #expect(groups.map(\.runs) == [2, 2, 1])
        let mas = try #require(groups[1].statistics["average_accuracy"])
        #expect(abs(mas.mean - 0.91) < 1e-12 && abs(mas.std! - (0.0002).squareRoot()) < 1e-12)
        #expect(groups[2].statistics["average_accuracy"]!.std == nil)
    }

    @Test("two processes' worth of writers at once lose no run, and the store rebuilds from the directories")
    func concurrentWritersAndRebuild() throws {
        let runs = (0..<40).map { (strategy: "mas", lambda: Double($0), seed: 0, accuracy: 0.5) }
        let root = try Self.fixture(runs)
        let path = root.appendingPathComponent("store.sqlite").path
        _ = try RunStore(path: path)
        // Two connections on two threads (not the test runner's cooperative pool), as two processes of a sweep would
        // have, each recording half of the runs at the same time.
        let errors = Errors()
        DispatchQueue.concurrentPerform(iterations: 2) { half in
            do {
                let store = try RunStore(path: path)
                for i in stride(from: half, to: 40, by: 2) { try store.record(directory: root.appendingPathComponent("run-\(i)")) }
            } catch { errors.add("\(error)") }
        }
        #expect(errors.all.isEmpty, "\(errors.all)")
        let store = try RunStore(path: path)
        #expect(try store.runs().count == 40)
        try FileManager.default.removeItem(at: root.appendingPathComponent("run-3"))
        let rebuilt = try store.rebuild(from: [root])
        let count = try store.runs().count
        #expect(rebuilt.recorded == 39 && count == 39)
    }

    @Test("a damaged store is refused in one message naming it, and the run directories stay as they were")
    func damagedStore() throws {
        let root = try Self.fixture(Array(Self.runs.prefix(1)))
        let path = root.appendingPathComponent("store.sqlite").path
        try Data(repeating: 0x5A, count: 4096).write(to: URL(fileURLWithPath: path))
        #expect { try RunStore(path: path) } throws: { error in
            let text = "\(error)"
            return text.contains(path) && text.contains("engram runs rebuild") && !text.contains("\n")
        }
        #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent("run-0/results.json").path))
        // A results.json that is not JSON is refused naming it; the store keeps the others.
        let bad = root.appendingPathComponent("bad")
        try FileManager.default.createDirectory(at: bad, withIntermediateDirectories: true)
        try Data("{\"benchmark\": 1}".utf8).write(to: bad.appendingPathComponent("results.json"))
        let store = try RunStore(path: root.appendingPathComponent("fresh.sqlite").path)
        let imported = try store.importRuns([root])
        #expect(imported.recorded == 1 && imported.failed.count == 1 && imported.failed[0].contains("bad/results.json"))
    }
}

/// Errors gathered from several threads.
final class Errors: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func add(_ item: String) { lock.lock(); items.append(item); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return items }
}
