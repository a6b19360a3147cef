import EngramTensor

/// The named benchmarks, as a command line refers to them, with their conventional defaults.
public enum BenchmarkKind: String, CaseIterable, Codable, Sendable {
    /// Permuted MNIST (`ContinualBenchmark.permutedMNIST`).
    case permutedMNIST = "permuted-mnist"
    /// Rotated MNIST, evenly spaced angles in [0°, 180°) (`ContinualBenchmark.rotatedMNIST`).
    case rotatedMNIST = "rotated-mnist"
    /// Split MNIST, 5 × 2 digits.
    case splitMNIST = "split-mnist"
    /// Split Fashion-MNIST, 5 × 2 classes (`split-fmnist` on the command line).
    case splitFashionMNIST = "split-fmnist"
    /// Split CIFAR-100, 10 × 10 (or 20 × 5) classes.
    case splitCIFAR100 = "split-cifar100"

    /// The dataset the benchmark is built on.
    public var dataset: DatasetID {
        switch self {
        case .permutedMNIST, .rotatedMNIST, .splitMNIST: return .mnist
        case .splitFashionMNIST: return .fashionMNIST
        case .splitCIFAR100: return .cifar100
        }
    }

    /// The usual number of tasks (10 permutations or rotations, 5 splits of two classes, 10 × 10 CIFAR-100).
    public var defaultTaskCount: Int {
        switch self {
        case .permutedMNIST, .rotatedMNIST, .splitCIFAR100: return 10
        case .splitMNIST, .splitFashionMNIST: return 5
        }
    }

    /// Training-loader options usually paired with the benchmark: MLP-style flat inputs for the
    /// MNIST family, images with crop/flip augmentation for CIFAR; the dataset's normalisation.
    public func trainingLoaderOptions(batchSize: Int = 64) -> LoaderOptions {
        switch self {
        case .splitCIFAR100:
            return LoaderOptions(batchSize: batchSize, layout: .image, normalization: .dataset(dataset), augmentation: .cifar)
        default:
            return LoaderOptions(batchSize: batchSize, layout: .flat, normalization: .dataset(dataset))
        }
    }

    /// Evaluation-loader options: like training, but in stored order and without augmentation.
    public func evaluationLoaderOptions(batchSize: Int = 256) -> LoaderOptions {
        var options = trainingLoaderOptions(batchSize: batchSize)
        options.shuffle = false
        options.augmentation = nil
        return options
    }

    /// Builds the benchmark on `data`.
    /// - Parameters:
    ///   - tasks: number of tasks (default `defaultTaskCount`); fixed at 5 for the MNIST splits and
    ///     10 or 20 for CIFAR-100.
    ///   - order: class order of split benchmarks.
    ///   - identityFirst: Permuted MNIST only: task 1 keeps the original pixel order.
    ///   - rotation: Rotated MNIST only: the tasks' angles.
    public func make(_ data: DatasetPair, tasks: Int? = nil, order: ClassOrder = .natural, identityFirst: Bool = true,
                     rotation: RotationSchedule = .evenlySpaced(maxDegrees: 180),
                     options: BenchmarkOptions = BenchmarkOptions()) throws -> ContinualBenchmark {
        let count = tasks ?? defaultTaskCount
        switch self {
        case .permutedMNIST:
            return try ContinualBenchmark.permutedMNIST(data, tasks: count, identityFirst: identityFirst, options: options)
        case .rotatedMNIST:
            return try ContinualBenchmark.rotatedMNIST(data, tasks: count, schedule: rotation, options: options)
        case .splitMNIST, .splitFashionMNIST:
            guard count == 5 else { throw DataError.invalidConfiguration("\(rawValue) has 5 tasks, not \(count)") }
            return self == .splitMNIST ? try ContinualBenchmark.splitMNIST(data, order: order, options: options)
                : try ContinualBenchmark.splitFashionMNIST(data, order: order, options: options)
        case .splitCIFAR100:
            return try ContinualBenchmark.splitCIFAR100(data, tasks: count, order: order, options: options)
        }
    }

    /// Locates the dataset (no download), reads it and builds the benchmark.
    public func load(locator: DatasetLocator = DatasetLocator(), tasks: Int? = nil, order: ClassOrder = .natural,
                     options: BenchmarkOptions = BenchmarkOptions()) throws -> ContinualBenchmark {
        try make(locator.loadLocal(dataset), tasks: tasks, order: order, options: options)
    }
}

/// Loader speed measurement for `engram bench`.
public enum LoaderBenchmark {
    /// Times `batches` training batches of task `task` (the loader alone: shuffling, transform,
    /// normalisation, augmentation, tensor assembly).
    public static func run(_ benchmark: ContinualBenchmark, task: Int = 0, options: LoaderOptions,
                           batches: Int = 200) throws -> LoaderThroughput {
        try DataLoader(benchmark: benchmark, task: task, split: .train, options: options).measureThroughput(batches: batches)
    }
}
