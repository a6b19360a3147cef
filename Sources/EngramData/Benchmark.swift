import EngramTensor

/// The three continual-learning scenarios of van de Ven & Tolias (2019).
public enum Scenario: String, Codable, Sendable, CaseIterable {
    /// Task identity is given; labels are local to the task; one output head per task.
    case taskIncremental = "task-il"
    /// Task identity is not given; one shared head; labels are local to the task (the domain shifts).
    case domainIncremental = "domain-il"
    /// Task identity is not given; one head that grows; labels are global over all tasks seen.
    case classIncremental = "class-il"
}

/// Which part of a task's data.
public enum TaskSplit: String, Codable, Sendable, CaseIterable {
    /// The task's training samples (minus any validation hold-out).
    case train
    /// Samples held out of the training data for model selection.
    case validation
    /// The task's test samples.
    case test
}

/// The order in which a split benchmark deals out classes to tasks.
public enum ClassOrder: Sendable, Equatable {
    /// 0, 1, 2, …
    case natural
    /// A permutation drawn from the benchmark's seed (label `"class order"`).
    case seeded
    /// The CIFAR-100 order of iCaRL (Rebuffi et al. 2017) and later class-incremental work.
    case icarl
    /// An explicit order (a permutation of the dataset's classes).
    case custom([Int])

    /// The CIFAR-100 class order used by iCaRL and the class-incremental literature: numpy's
    /// `np.random.seed(1993); np.random.permutation(100)`, computed once with numpy 2.4 and
    /// embedded here.
    public static let icarlCIFAR100: [Int] = [
        68, 56, 78, 8, 23, 84, 90, 65, 74, 76, 40, 89, 3, 92, 55, 9, 26, 80, 43, 38,
        58, 70, 77, 1, 85, 19, 17, 50, 28, 53, 13, 81, 45, 82, 6, 59, 83, 16, 15, 44,
        91, 41, 72, 60, 79, 52, 20, 10, 31, 54, 37, 95, 14, 71, 96, 98, 97, 2, 64, 66,
        42, 22, 35, 86, 24, 34, 87, 21, 99, 0, 88, 27, 18, 94, 11, 12, 47, 25, 30, 46,
        62, 69, 36, 61, 7, 63, 75, 5, 32, 4, 51, 48, 73, 93, 39, 67, 29, 49, 57, 33,
    ]

    /// The concrete order for a dataset with `classCount` classes.
    public func resolve(classCount: Int, seed: UInt64) throws -> [Int] {
        let order: [Int]
        switch self {
        case .natural: order = Array(0..<classCount)
        case .seeded:
            var rng = RandomGenerator(seed: seed, label: "class order")
            order = rng.permutation(classCount)
        case .icarl:
            guard classCount == 100 else {
                throw DataError.invalidConfiguration("the iCaRL class order is for CIFAR-100's 100 classes, not \(classCount)")
            }
            order = Self.icarlCIFAR100
        case .custom(let o): order = o
        }
        guard order.count == classCount, Set(order) == Set(0..<classCount) else {
            throw DataError.invalidConfiguration("class order \(order) is not a permutation of 0..<\(classCount)")
        }
        return order
    }
}

/// How rotated-MNIST tasks get their angles.
public enum RotationSchedule: Sendable, Equatable {
    /// Task t is rotated by t · maxDegrees / T (task 0 upright).
    case evenlySpaced(maxDegrees: Double)
    /// Each task's angle is uniform in [0, maxDegrees), drawn from `"rotation/task t"`.
    case random(maxDegrees: Double)
    /// The given angles, one per task.
    case explicit([Double])
    /// Task t (from 0) is rotated by `degreesPerTask`·t − `jitter`·u, u uniform in [0, 1) drawn from
    /// `"rotation/task t"`: Mirzadeh et al.'s Rotated MNIST (10° per task, jitter 10°; their `get_rotated_mnist`).
    case stepped(degreesPerTask: Double, jitter: Double)
}

/// Options shared by every benchmark.
public struct BenchmarkOptions: Sendable, Equatable {
    /// The run's seed; every random choice derives from it with its own label.
    public var seed: UInt64
    /// The scenario that fixes labels, heads and task-identity visibility.
    public var scenario: Scenario
    /// Fraction of the training data to use, stratified by class (1 = all).
    public var fraction: Double
    /// Fraction of the test data to use, stratified by class; `nil` means `fraction`.
    public var testFraction: Double?
    /// Fraction of each task's training data held out for validation, stratified by class.
    public var validationFraction: Double

    /// Creates options.
    public init(seed: UInt64 = 0, scenario: Scenario = .taskIncremental, fraction: Double = 1,
                testFraction: Double? = nil, validationFraction: Double = 0) {
        self.seed = seed
        self.scenario = scenario
        self.fraction = fraction
        self.testFraction = testFraction
        self.validationFraction = validationFraction
    }
}

/// One task of a stream: its classes, its data (indices into the benchmark's source datasets) and
/// the input transform applied to every sample.
public struct ContinualTask: Sendable {
    /// Position in the stream, from 0.
    public let id: Int
    /// The dataset's labels for this task's classes; a class's position here is its local label.
    public let classes: [Int]
    /// The class-incremental label of `classes[0]`; class `classes[j]` is `classOffset + j`.
    public let classOffset: Int
    /// Training samples (indices into the benchmark's `train` dataset).
    public let train: [Int32]
    /// Validation samples, held out of the training data (indices into `train` dataset).
    public let validation: [Int32]
    /// Test samples (indices into the benchmark's `test` dataset).
    public let test: [Int32]
    /// The transform applied to every input of this task.
    public let transform: InputTransform
    /// dataset label → local label, or −1 when the class is not in this task.
    public let localLabel: [Int16]

    /// Creates a task (for custom streams).
    /// - Parameters:
    ///   - classes: distinct dataset labels below `sourceClassCount`; their order fixes local labels.
    ///   - classOffset: the class-incremental label of `classes[0]`.
    ///   - sourceClassCount: the dataset's number of classes.
    /// - Throws: `DataError.invalidConfiguration` for repeated or out-of-range classes.
    public init(id: Int, classes: [Int], classOffset: Int, sourceClassCount: Int,
                train: [Int32], validation: [Int32] = [], test: [Int32], transform: InputTransform = .identity) throws {
        guard !classes.isEmpty, Set(classes).count == classes.count,
              classes.allSatisfy({ $0 >= 0 && $0 < sourceClassCount }), classOffset >= 0 else {
            throw DataError.invalidConfiguration("task \(id): classes \(classes) (offset \(classOffset)) for a dataset of \(sourceClassCount) classes")
        }
        self.id = id
        self.classes = classes
        self.classOffset = classOffset
        self.train = train
        self.validation = validation
        self.test = test
        self.transform = transform
        var local = [Int16](repeating: -1, count: sourceClassCount)
        for (j, c) in classes.enumerated() { local[c] = Int16(j) }
        self.localLabel = local
    }

    /// The sample indices of one split.
    public func indices(_ split: TaskSplit) -> [Int32] {
        switch split {
        case .train: return train
        case .validation: return validation
        case .test: return test
        }
    }

    /// The training target of a sample whose dataset label is `label`: the local label under
    /// task- and domain-incremental learning, `classOffset +` local label under class-incremental.
    @inlinable public func target(forDatasetLabel label: Int, scenario: Scenario) -> Int {
        let local = Int(localLabel[label])
        precondition(local >= 0, "label \(label) is not a class of task \(id)")
        return scenario == .classIncremental ? classOffset + local : local
    }
}

/// A stream of tasks built on one dataset (see the `permutedMNIST`, `rotatedMNIST`,
/// `splitMNIST`, `splitFashionMNIST`, `splitCIFAR100` and `split` factories).
public struct ContinualBenchmark: Sendable {
    /// The benchmark's name, e.g. `"split-mnist"`.
    public let name: String
    /// The options it was built with.
    public let options: BenchmarkOptions
    /// The training source (all task indices of `train`/`validation` refer to it).
    public let train: ImageDataset
    /// The test source.
    public let test: ImageDataset
    /// The tasks, in order.
    public let tasks: [ContinualTask]
    /// The class order of a split benchmark (dataset labels in the order they are dealt out).
    public let classOrder: [Int]?

    /// The scenario.
    public var scenario: Scenario { options.scenario }
    /// The seed.
    public var seed: UInt64 { options.seed }
    /// Number of tasks.
    public var taskCount: Int { tasks.count }
    /// All classes of the class-incremental label space (the size of its final head).
    public var totalClassCount: Int { tasks.reduce(0) { $0 + $1.classes.count } }
    /// Classes seen after training task `t` (the class-incremental head's size at that point).
    public func classesSeen(afterTask t: Int) -> Int { tasks[...t].reduce(0) { $0 + $1.classes.count } }

    /// The output heads a model needs: one per task (task-incremental), or one shared head of the
    /// largest task's size (domain-incremental) or of all classes (class-incremental).
    public var headSizes: [Int] {
        switch scenario {
        case .taskIncremental: return tasks.map { $0.classes.count }
        case .domainIncremental: return [tasks.map { $0.classes.count }.max() ?? 0]
        case .classIncremental: return [totalClassCount]
        }
    }

    /// Assembles a benchmark from explicit tasks (for custom streams); checks indices and classes.
    public init(name: String, options: BenchmarkOptions, train: ImageDataset, test: ImageDataset,
                tasks: [ContinualTask], classOrder: [Int]? = nil) throws {
        for (position, task) in tasks.enumerated() {
            guard task.id == position else {
                throw DataError.invalidConfiguration("task at position \(position) of \(name) has id \(task.id)")
            }
            guard task.localLabel.count == train.classCount, test.classCount == train.classCount else {
                throw DataError.invalidConfiguration("task \(task.id) of \(name) was built for \(task.localLabel.count) classes, the data has \(train.classCount)")
            }
            // Every sample must exist and belong to one of the task's classes.
            for (split, indices, data) in [("train", task.train, train), ("validation", task.validation, train), ("test", task.test, test)] {
                if let bad = indices.first(where: { $0 < 0 || Int($0) >= data.count || task.localLabel[data.label(at: Int($0))] < 0 }) {
                    throw DataError.invalidConfiguration("task \(task.id) of \(name): \(split) sample \(bad) is outside \(data.name) or not of classes \(task.classes)")
                }
            }
        }
        self.name = name
        self.options = options
        self.train = train
        self.test = test
        self.tasks = tasks
        self.classOrder = classOrder
    }

    // MARK: Factories

    /// Permuted MNIST: every task has all ten digits, each task under its own fixed pixel
    /// permutation (from `"permutation/task t"`); task 0 is left unpermuted when
    /// `identityFirst` is set.
    public static func permutedMNIST(_ data: DatasetPair, tasks: Int, identityFirst: Bool = true,
                                     options: BenchmarkOptions = BenchmarkOptions()) throws -> ContinualBenchmark {
        let pixels = data.train.height * data.train.width
        let transforms: [InputTransform] = (0..<tasks).map { t in
            if t == 0 && identityFirst { return .identity }
            var rng = RandomGenerator(seed: options.seed, label: "permutation/task \(t)")
            return .permutation(rng.permutation(pixels))
        }
        return try domainStream(name: "permuted-\(data.train.name.split(separator: "/").first ?? "mnist")",
                                data: data, transforms: transforms, options: options)
    }

    /// Rotated MNIST: every task has all ten digits, each task rotated by its own angle.
    public static func rotatedMNIST(_ data: DatasetPair, tasks: Int, schedule: RotationSchedule = .evenlySpaced(maxDegrees: 180),
                                    options: BenchmarkOptions = BenchmarkOptions()) throws -> ContinualBenchmark {
        let angles: [Double]
        switch schedule {
        case .evenlySpaced(let maxDegrees):
            angles = (0..<tasks).map { Double($0) * maxDegrees / Double(tasks) }
        case .random(let maxDegrees):
            angles = (0..<tasks).map {
                var rng = RandomGenerator(seed: options.seed, label: "rotation/task \($0)")
                return rng.nextDouble() * maxDegrees
            }
        case .stepped(let step, let jitter):
            angles = (0..<tasks).map {
                var rng = RandomGenerator(seed: options.seed, label: "rotation/task \($0)")
                return step * Double($0) - jitter * rng.nextDouble()
            }
        case .explicit(let list):
            guard list.count == tasks else {
                throw DataError.invalidConfiguration("\(list.count) rotation angles for \(tasks) tasks")
            }
            angles = list
        }
        return try domainStream(name: "rotated-\(data.train.name.split(separator: "/").first ?? "mnist")",
                                data: data, transforms: angles.map { .rotation(degrees: $0) }, options: options)
    }

    /// Split MNIST: five tasks of two digits each.
    public static func splitMNIST(_ data: DatasetPair, order: ClassOrder = .natural,
                                  options: BenchmarkOptions = BenchmarkOptions()) throws -> ContinualBenchmark {
        try split(data, name: "split-mnist", classesPerTask: 2, order: order, options: options)
    }

    /// Split Fashion-MNIST: five tasks of two classes each.
    public static func splitFashionMNIST(_ data: DatasetPair, order: ClassOrder = .natural,
                                         options: BenchmarkOptions = BenchmarkOptions()) throws -> ContinualBenchmark {
        try split(data, name: "split-fashion-mnist", classesPerTask: 2, order: order, options: options)
    }

    /// Split CIFAR-100: `tasks` tasks (10 × 10 or 20 × 5) of 100 / `tasks` classes each.
    public static func splitCIFAR100(_ data: DatasetPair, tasks: Int = 10, order: ClassOrder = .natural,
                                     options: BenchmarkOptions = BenchmarkOptions()) throws -> ContinualBenchmark {
        guard tasks > 0, 100 % tasks == 0 else {
            throw DataError.invalidConfiguration("split CIFAR-100 needs a task count dividing 100, got \(tasks)")
        }
        return try split(data, name: "split-cifar100-\(tasks)x\(100 / tasks)", classesPerTask: 100 / tasks,
                         order: order, options: options)
    }

    /// A class-split stream: the classes, in `order`, dealt out `classesPerTask` at a time.
    public static func split(_ data: DatasetPair, name: String, classesPerTask: Int, order: ClassOrder = .natural,
                             options: BenchmarkOptions = BenchmarkOptions()) throws -> ContinualBenchmark {
        let classCount = data.train.classCount
        guard classesPerTask > 0, classCount % classesPerTask == 0, data.test.classCount == classCount else {
            throw DataError.invalidConfiguration("\(classCount) classes cannot be split into tasks of \(classesPerTask)")
        }
        try validate(options)
        let classOrder = try order.resolve(classCount: classCount, seed: options.seed)
        let trainByClass = subsetByClass(data.train, fraction: options.fraction, seed: options.seed, label: "subset/train")
        let testByClass = subsetByClass(data.test, fraction: options.testFraction ?? options.fraction,
                                        seed: options.seed, label: "subset/test")
        var tasks: [ContinualTask] = []
        for t in 0 ..< classCount / classesPerTask {
            let classes = Array(classOrder[t * classesPerTask ..< (t + 1) * classesPerTask])
            let (train, validation) = carveValidation(classes.map { ($0, trainByClass[$0]) },
                                                      fraction: options.validationFraction, seed: options.seed, task: t)
            tasks.append(try ContinualTask(id: t, classes: classes, classOffset: t * classesPerTask, sourceClassCount: classCount,
                                       train: train, validation: validation,
                                       test: merge(classes.map { testByClass[$0] }), transform: .identity))
        }
        return try ContinualBenchmark(name: name, options: options, train: data.train, test: data.test,
                                      tasks: tasks, classOrder: classOrder)
    }

    /// Tasks that share all classes and differ by input transform (permuted / rotated streams).
    static func domainStream(name: String, data: DatasetPair, transforms: [InputTransform],
                             options: BenchmarkOptions) throws -> ContinualBenchmark {
        guard !transforms.isEmpty else { throw DataError.invalidConfiguration("\(name) needs at least one task") }
        try validate(options)
        let classCount = data.train.classCount
        let classes = Array(0..<classCount)
        let trainByClass = subsetByClass(data.train, fraction: options.fraction, seed: options.seed, label: "subset/train")
        let test = merge(subsetByClass(data.test, fraction: options.testFraction ?? options.fraction,
                                       seed: options.seed, label: "subset/test"))
        var tasks: [ContinualTask] = []
        for (t, transform) in transforms.enumerated() {
            let (train, validation) = carveValidation(Array(trainByClass.enumerated()),
                                                      fraction: options.validationFraction, seed: options.seed, task: t)
            tasks.append(try ContinualTask(id: t, classes: classes, classOffset: t * classCount, sourceClassCount: classCount,
                                       train: train, validation: validation, test: test, transform: transform))
        }
        return try ContinualBenchmark(name: name, options: options, train: data.train, test: data.test, tasks: tasks)
    }

    // MARK: Sampling helpers

    static func validate(_ options: BenchmarkOptions) throws {
        guard options.fraction > 0, options.fraction <= 1 else {
            throw DataError.invalidConfiguration("fraction must be in (0, 1], got \(options.fraction)")
        }
        if let f = options.testFraction, !(f > 0 && f <= 1) {
            throw DataError.invalidConfiguration("test fraction must be in (0, 1], got \(f)")
        }
        guard options.validationFraction >= 0, options.validationFraction < 1 else {
            throw DataError.invalidConfiguration("validation fraction must be in [0, 1), got \(options.validationFraction)")
        }
    }

    /// Per class, a seeded random `fraction` of its samples (at least one when the class has any),
    /// returned in dataset order.
    static func subsetByClass(_ dataset: ImageDataset, fraction: Double, seed: UInt64, label: String) -> [[Int32]] {
        dataset.indicesByClass().enumerated().map { c, members in
            if fraction >= 1 { return members.map(Int32.init) }
            let keep = max(members.isEmpty ? 0 : 1, Int((Double(members.count) * fraction).rounded()))
            var rng = RandomGenerator(seed: seed, label: "\(label)/class \(c)")
            var chosen = members
            rng.shuffle(&chosen)
            return chosen[..<keep].sorted().map(Int32.init)
        }
    }

    /// Splits each class's samples into (train, validation), holding out a seeded `fraction` of
    /// each class (label `"validation/task t/class c"`); both results in dataset order.
    static func carveValidation(_ byClass: [(Int, [Int32])], fraction: Double, seed: UInt64, task: Int) -> ([Int32], [Int32]) {
        if fraction <= 0 { return (merge(byClass.map { $0.1 }), []) }
        var train: [Int32] = [], validation: [Int32] = []
        for (c, members) in byClass {
            let held = Int((Double(members.count) * fraction).rounded())
            var rng = RandomGenerator(seed: seed, label: "validation/task \(task)/class \(c)")
            var shuffled = members
            rng.shuffle(&shuffled)
            validation += shuffled[..<held]
            train += shuffled[held...]
        }
        return (train.sorted(), validation.sorted())
    }

    static func merge(_ lists: [[Int32]]) -> [Int32] {
        lists.count == 1 ? lists[0] : lists.joined().sorted()
    }
}
