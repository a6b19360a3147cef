import EngramTensor

/// Which half of a dataset's official split.
public enum DataSplit: String, Codable, Sendable, CaseIterable {
    /// The training half.
    case train
    /// The test half (`t10k` for MNIST, `test.bin` for CIFAR).
    case test
}

/// An image classification dataset held as compact bytes: `count` samples of
/// `channels × height × width` `UInt8` pixels (channel planes, each row-major) in one contiguous
/// array, and one `UInt8` label per sample.
public struct ImageDataset: Sendable, Equatable {
    /// A short name such as `"mnist/train"`, used in messages.
    public var name: String
    /// Number of samples.
    public let count: Int
    /// Colour channels per sample (1 for MNIST, 3 for CIFAR).
    public let channels: Int
    /// Rows per image.
    public let height: Int
    /// Columns per image.
    public let width: Int
    /// All pixels, sample after sample; sample `i` occupies `i * sampleSize ..< (i + 1) * sampleSize`.
    public let pixels: [UInt8]
    /// The class of each sample, `0..<classCount`.
    public let labels: [UInt8]
    /// Number of classes (labels are below this).
    public let classCount: Int
    /// Optional second labelling (CIFAR-100's 20 superclasses), one per sample.
    public let coarseLabels: [UInt8]?
    /// Class names, if the distribution provides them.
    public var classNames: [String]?
    /// Names of the coarse classes (CIFAR-100's superclasses), if provided.
    public var coarseClassNames: [String]?

    /// Creates a dataset, checking that the arrays have consistent lengths and labels are in range.
    public init(name: String, channels: Int, height: Int, width: Int, pixels: [UInt8], labels: [UInt8],
                classCount: Int, coarseLabels: [UInt8]? = nil, classNames: [String]? = nil) throws {
        guard channels > 0, height > 0, width > 0, classCount > 0, classCount <= 256 else {
            throw DataError.invalidConfiguration(
                "\(name): channels \(channels), height \(height), width \(width), classes \(classCount)")
        }
        let sampleSize = channels * height * width
        guard pixels.count == labels.count * sampleSize else {
            throw DataError.lengthMismatch(path: name, expected: labels.count * sampleSize, actual: pixels.count)
        }
        if let coarse = coarseLabels, coarse.count != labels.count {
            throw DataError.countMismatch(images: name, labels: name + " (coarse labels)",
                                          imageCount: labels.count, labelCount: coarse.count)
        }
        if let bad = labels.firstIndex(where: { Int($0) >= classCount }) {
            throw DataError.invalidLabel(path: name, index: bad, value: Int(labels[bad]), classCount: classCount)
        }
        self.name = name
        self.count = labels.count
        self.channels = channels
        self.height = height
        self.width = width
        self.pixels = pixels
        self.labels = labels
        self.classCount = classCount
        self.coarseLabels = coarseLabels
        self.classNames = classNames
    }

    /// Bytes per sample: `channels * height * width`.
    @inlinable public var sampleSize: Int { channels * height * width }

    /// The label of sample `index` as an `Int`.
    @inlinable public func label(at index: Int) -> Int { Int(labels[index]) }

    /// The pixels of sample `index` (a copy; use `pixels` with `sampleSize` offsets in hot loops).
    public func image(at index: Int) -> [UInt8] {
        Array(pixels[index * sampleSize ..< (index + 1) * sampleSize])
    }

    /// How many samples each class has, indexed by class.
    public func classCounts() -> [Int] {
        var counts = [Int](repeating: 0, count: classCount)
        labels.withUnsafeBufferPointer { for l in $0 { counts[Int(l)] += 1 } }
        return counts
    }

    /// The sample indices of each class, in dataset order.
    public func indicesByClass() -> [[Int]] {
        var result = [[Int]](repeating: [], count: classCount)
        let counts = classCounts()
        for c in 0..<classCount { result[c].reserveCapacity(counts[c]) }
        labels.withUnsafeBufferPointer { for (i, l) in $0.enumerated() { result[Int(l)].append(i) } }
        return result
    }
}

/// The official train and test halves of one dataset.
public struct DatasetPair: Sendable {
    /// The training half.
    public var train: ImageDataset
    /// The test half.
    public var test: ImageDataset
    /// Creates a pair.
    public init(train: ImageDataset, test: ImageDataset) {
        self.train = train
        self.test = test
    }
}
