import EngramData
import EngramTensor
import Foundation
import Testing

@Suite("ContinualBenchmark")
struct ContinualBenchmarkTests {
    func labels(_ dataset: ImageDataset, _ indices: [Int32]) -> Set<Int> {
        Set(indices.map { dataset.label(at: Int($0)) })
    }

    @Test("Split MNIST deals out the digits two per task over the real data")
    func splitMNIST() throws {
        let data = try sharedMNIST.get()
        let bench = try ContinualBenchmark.splitMNIST(data)
        #expect(bench.taskCount == 5)
        #expect(bench.tasks.map(\.classes) == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]])
        #expect(bench.tasks[0].train.count == 5923 + 6742)
        #expect(bench.tasks[4].test.count == 974 + 1009)
        for task in bench.tasks {
            #expect(labels(data.train, task.train) == Set(task.classes))
            #expect(labels(data.test, task.test) == Set(task.classes))
        }
        #expect(bench.tasks.reduce(0) { $0 + $1.train.count } == 60_000)
        #expect(bench.headSizes == [2, 2, 2, 2, 2])
    }

    @Test("targets are local for task- and domain-incremental, global for class-incremental")
    func targetsPerScenario() throws {
        let data = try sharedMNIST.get()
        let task = try ContinualBenchmark.splitMNIST(data).tasks[3]  // digits 6, 7
        #expect(task.target(forDatasetLabel: 7, scenario: .taskIncremental) == 1)
        #expect(task.target(forDatasetLabel: 6, scenario: .domainIncremental) == 0)
        #expect(task.target(forDatasetLabel: 7, scenario: .classIncremental) == 7)
        let domain = try ContinualBenchmark.splitMNIST(data, options: BenchmarkOptions(scenario: .domainIncremental))
        #expect(domain.headSizes == [2])
        let classIL = try ContinualBenchmark.splitMNIST(data, options: BenchmarkOptions(scenario: .classIncremental))
        #expect(classIL.headSizes == [10])
        #expect(classIL.classesSeen(afterTask: 1) == 4)
    }

    @Test("a fraction takes a stratified, seeded subset of train and test")
    func stratifiedSubset() throws {
        let data = try sharedMNIST.get()
        let options = BenchmarkOptions(seed: 7, fraction: 0.1)
        let a = try ContinualBenchmark.splitMNIST(data, options: options)
        let b = try ContinualBenchmark.splitMNIST(data, options: options)
        let c = try ContinualBenchmark.splitMNIST(data, options: BenchmarkOptions(seed: 8, fraction: 0.1))
        let trainCounts = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
        for (t, task) in a.tasks.enumerated() {
            for cls in task.classes {
                let n = task.train.filter { data.train.label(at: Int($0)) == cls }.count
                #expect(n == Int((Double(trainCounts[cls]) * 0.1).rounded()))
            }
            #expect(task.train == b.tasks[t].train)
            #expect(task.train != c.tasks[t].train)
            #expect(task.train == task.train.sorted())
        }
        #expect(a.tasks[0].test.count == 98 + 114)  // 980 → 98, 1135 → 113.5 → 114
    }

    @Test("validation is carved per class from training data, disjoint and seeded")
    func validationSplit() throws {
        let data = try sharedMNIST.get()
        let full = try ContinualBenchmark.splitMNIST(data, options: BenchmarkOptions(seed: 3, fraction: 0.2))
        let held = try ContinualBenchmark.splitMNIST(data, options: BenchmarkOptions(seed: 3, fraction: 0.2, validationFraction: 0.25))
        for t in 0..<5 {
            let task = held.tasks[t]
            #expect(Set(task.train).isDisjoint(with: task.validation))
            #expect(Set(task.train).union(task.validation) == Set(full.tasks[t].train))
            for cls in task.classes {
                let total = full.tasks[t].train.filter { data.train.label(at: Int($0)) == cls }.count
                let v = task.validation.filter { data.train.label(at: Int($0)) == cls }.count
                #expect(v == Int((Double(total) * 0.25).rounded()))
            }
            #expect(task.test == full.tasks[t].test)
        }
    }

    @Test("Permuted MNIST draws each task's permutation from \"permutation/task t\"")
    func permutedMNIST() throws {
        let data = try sharedMNIST.get()
        let options = BenchmarkOptions(seed: 42, fraction: 0.05)
        let bench = try ContinualBenchmark.permutedMNIST(data, tasks: 4, options: options)
        #expect(bench.tasks[0].transform == .identity)
        var rng = RandomGenerator(seed: 42, label: "permutation/task 3")
        #expect(bench.tasks[3].transform == .permutation(rng.permutation(784)))
        guard case .permutation(let p1) = bench.tasks[1].transform, case .permutation(let p2) = bench.tasks[2].transform else {
            Issue.record("tasks 1 and 2 should be permuted"); return
        }
        #expect(Set(p1) == Set(0..<784) && p1 != p2)
        let noIdentity = try ContinualBenchmark.permutedMNIST(data, tasks: 2, identityFirst: false, options: options)
        #expect(noIdentity.tasks[0].transform != .identity)
        #expect(bench.tasks.allSatisfy { $0.classes == Array(0..<10) && $0.train == bench.tasks[0].train })
        #expect(bench.tasks[0].train.count == 3000)
        let classIL = try ContinualBenchmark.permutedMNIST(data, tasks: 4, options: BenchmarkOptions(scenario: .classIncremental, fraction: 0.01))
        #expect(classIL.headSizes == [40])
        #expect(classIL.tasks[2].target(forDatasetLabel: 3, scenario: .classIncremental) == 23)
    }

    @Test("Mirzadeh et al.'s Rotated MNIST: task t turns by 10·t − 10·u degrees, u drawn from the seed per task")
    func steppedRotation() throws {
        let data = try sharedMNIST.get()
        let stepped = try ContinualBenchmark.rotatedMNIST(data, tasks: 20, schedule: .stepped(degreesPerTask: 10, jitter: 10),
                                                          options: BenchmarkOptions(seed: 3, fraction: 0.01))
        for (t, task) in stepped.tasks.enumerated() {
            var rng = RandomGenerator(seed: 3, label: "rotation/task \(t)")
            let angle = 10 * Double(t) - 10 * rng.nextDouble()
            #expect(task.transform == .rotation(degrees: angle))
            #expect(angle > 10 * Double(t) - 10 && angle <= 10 * Double(t))
        }
    }

    @Test("Rotated MNIST spaces angles evenly, or draws them from the seed")
    func rotatedMNIST() throws {
        let data = try sharedMNIST.get()
        let even = try ContinualBenchmark.rotatedMNIST(data, tasks: 4, options: BenchmarkOptions(fraction: 0.01))
        #expect(even.tasks.map(\.transform) == [0.0, 45, 90, 135].map { .rotation(degrees: $0) })
        let random = try ContinualBenchmark.rotatedMNIST(data, tasks: 3, schedule: .random(maxDegrees: 180),
                                                         options: BenchmarkOptions(seed: 5, fraction: 0.01))
        var rng = RandomGenerator(seed: 5, label: "rotation/task 2")
        #expect(random.tasks[2].transform == .rotation(degrees: rng.nextDouble() * 180))
        #expect(throws: DataError.self) {
            try ContinualBenchmark.rotatedMNIST(data, tasks: 3, schedule: .explicit([0, 10]))
        }
    }

    @Test("Split CIFAR-100 follows the iCaRL order in 10×10 and 20×5")
    func splitCIFAR100() throws {
        let train = try syntheticDataset(count: 300, classes: 100, channels: 3, side: 32)
        let test = try syntheticDataset(count: 100, classes: 100, channels: 3, side: 32)
        let data = DatasetPair(train: train, test: test)
        #expect(Array(ClassOrder.icarlCIFAR100.prefix(5)) == [68, 56, 78, 8, 23])
        #expect(Set(ClassOrder.icarlCIFAR100) == Set(0..<100))
        let ten = try ContinualBenchmark.splitCIFAR100(data, tasks: 10, order: .icarl,
                                                       options: BenchmarkOptions(scenario: .classIncremental))
        #expect(ten.tasks[0].classes == Array(ClassOrder.icarlCIFAR100[0..<10]))
        #expect(ten.tasks[9].classes == Array(ClassOrder.icarlCIFAR100[90..<100]))
        #expect(ten.tasks[1].target(forDatasetLabel: 89, scenario: .classIncremental) == 11)
        #expect(ten.tasks[0].train.count == 30 && ten.tasks[0].test.count == 10)
        let twenty = try ContinualBenchmark.splitCIFAR100(data, tasks: 20, order: .natural)
        #expect(twenty.taskCount == 20 && twenty.tasks[19].classes == [95, 96, 97, 98, 99])
        #expect(twenty.headSizes == Array(repeating: 5, count: 20))
        #expect(throws: DataError.self) { try ContinualBenchmark.splitCIFAR100(data, tasks: 7) }
    }

    @Test("a seeded class order is a reproducible permutation")
    func seededClassOrder() throws {
        let a = try ClassOrder.seeded.resolve(classCount: 10, seed: 11)
        #expect(a == (try ClassOrder.seeded.resolve(classCount: 10, seed: 11)))
        var rng = RandomGenerator(seed: 11, label: "class order")
        #expect(a == rng.permutation(10))
        #expect(throws: DataError.self) { try ClassOrder.custom([0, 1, 1]).resolve(classCount: 3, seed: 0) }
        #expect(throws: DataError.self) { try ClassOrder.icarl.resolve(classCount: 10, seed: 0) }
    }

    @Test("custom streams are checked: each sample must belong to its task's classes")
    func customStreams() throws {
        let data = try syntheticDataset(count: 40, classes: 4)  // label = index % 4
        let ok = try ContinualTask(id: 0, classes: [3, 1], classOffset: 0, sourceClassCount: 4, train: [1, 3, 5], test: [7])
        let bench = try ContinualBenchmark(name: "custom", options: BenchmarkOptions(scenario: .classIncremental),
                                           train: data, test: data, tasks: [ok])
        #expect(bench.tasks[0].target(forDatasetLabel: 1, scenario: .classIncremental) == 1)
        #expect(bench.tasks[0].target(forDatasetLabel: 3, scenario: .taskIncremental) == 0)
        let wrongClass = try ContinualTask(id: 0, classes: [3, 1], classOffset: 0, sourceClassCount: 4, train: [1, 2], test: [7])
        #expect(throws: DataError.self) {
            try ContinualBenchmark(name: "custom", options: BenchmarkOptions(), train: data, test: data, tasks: [wrongClass])
        }
        let outOfRange = try ContinualTask(id: 0, classes: [1], classOffset: 0, sourceClassCount: 4, train: [41], test: [])
        #expect(throws: DataError.self) {
            try ContinualBenchmark(name: "custom", options: BenchmarkOptions(), train: data, test: data, tasks: [outOfRange])
        }
        #expect(throws: DataError.self) { try ContinualTask(id: 0, classes: [1, 1], classOffset: 0, sourceClassCount: 4, train: [], test: []) }
        #expect(throws: DataError.self) { try ContinualTask(id: 0, classes: [4], classOffset: 0, sourceClassCount: 4, train: [], test: []) }
    }

    @Test("rejects impossible fractions")
    func rejectsBadOptions() throws {
        let data = try sharedMNIST.get()
        #expect(throws: DataError.self) { try ContinualBenchmark.splitMNIST(data, options: BenchmarkOptions(fraction: 0)) }
        #expect(throws: DataError.self) { try ContinualBenchmark.splitMNIST(data, options: BenchmarkOptions(validationFraction: 1)) }
    }
}

@Suite("RotationMap")
struct RotationMapTests {
    let plane: [UInt8] = (0..<784).map { UInt8(truncatingIfNeeded: $0 * 37 + $0 / 28) }

    @Test("0° and 360° leave the image unchanged")
    func identityAngles() {
        for angle in [0.0, 360] {
            #expect(RotationMap(height: 28, width: 28, degrees: angle).apply(plane) == plane.map(Float.init))
        }
    }

    @Test("90° turns the picture counter-clockwise, like numpy's rot90")
    func quarterTurn() {
        let out = RotationMap(height: 28, width: 28, degrees: 90).apply(plane)
        for y in 0..<28 { for x in 0..<28 { #expect(out[y * 28 + x] == Float(plane[x * 28 + (27 - y)])) } }
        let half = RotationMap(height: 28, width: 28, degrees: 180).apply(plane)
        #expect(half == plane.reversed().map(Float.init))
    }

    @Test("interpolates bilinearly and fills outside the image with zero")
    func bilinear() {
        // A 2×2 image rotated by 45°: every output pixel samples at distance 0.5 from the centre.
        let map = RotationMap(height: 2, width: 2, degrees: 45)
        let out = map.apply([0, 100, 200, 40])
        // Output (0,0) samples source (0.5, 0.5 − √0.5); only the row-0 neighbours are inside.
        let fy = Float(0.5 - 0.5.squareRoot()) + 1  // fraction relative to row −1
        let expected = (1 - fy) * 0 + fy * (0.5 * 0 + 0.5 * 100)
        #expect(abs(out[0] - expected) < 1e-4)
        #expect(map.weights.allSatisfy { $0 >= 0 && $0 <= 1 })
    }
}
