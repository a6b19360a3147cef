/// The IDX format of MNIST and Fashion-MNIST: big-endian 32-bit header integers (magic, then one
/// extent per dimension) followed by raw `uint8` data. Reads gzip-compressed or plain files.
public enum IDX {
    /// Magic number of a 3-dimensional unsigned-byte IDX file (images).
    public static let imagesMagic: UInt32 = 0x0000_0803
    /// Magic number of a 1-dimensional unsigned-byte IDX file (labels).
    public static let labelsMagic: UInt32 = 0x0000_0801

    /// The images of an IDX3 file.
    public struct Images: Sendable {
        /// Number of images.
        public var count: Int
        /// Rows per image.
        public var rows: Int
        /// Columns per image.
        public var columns: Int
        /// `count × rows × columns` pixels, image after image, each row-major.
        public var pixels: [UInt8]
    }

    /// Reads an IDX3 images file (gzip-compressed if it starts with the gzip magic).
    /// - Throws: a `DataError` for corrupt gzip, a wrong magic, zero or overflowing extents, or a
    ///   data length other than exactly `count × rows × columns`.
    public static func readImages(path: String) throws -> Images {
        var data = try load(path)
        let (count, rows, columns) = try parseImagesHeader(data, path: path)
        data.removeFirst(16)
        return Images(count: count, rows: rows, columns: columns, pixels: data)
    }

    /// Reads an IDX1 labels file (gzip-compressed if it starts with the gzip magic).
    /// - Throws: a `DataError` for corrupt gzip, a wrong magic, or a data length other than exactly the
    ///   declared count.
    public static func readLabels(path: String) throws -> [UInt8] {
        var data = try load(path)
        guard data.count >= 8 else {
            throw DataError.lengthMismatch(path: path, expected: 8, actual: data.count)
        }
        let magic = bigEndian(data, 0)
        guard magic == labelsMagic else { throw DataError.badMagic(path: path, expected: labelsMagic, found: magic) }
        let count = Int(bigEndian(data, 4))
        guard data.count - 8 == count else {
            throw DataError.lengthMismatch(path: path, expected: count, actual: data.count - 8)
        }
        data.removeFirst(8)
        return data
    }

    /// Checks an images header and the data length; returns (count, rows, columns).
    static func parseImagesHeader(_ data: [UInt8], path: String) throws -> (Int, Int, Int) {
        guard data.count >= 16 else {
            if data.count >= 4, bigEndian(data, 0) != imagesMagic {
                throw DataError.badMagic(path: path, expected: imagesMagic, found: bigEndian(data, 0))
            }
            throw DataError.lengthMismatch(path: path, expected: 16, actual: data.count)
        }
        let magic = bigEndian(data, 0)
        guard magic == imagesMagic else { throw DataError.badMagic(path: path, expected: imagesMagic, found: magic) }
        let count = Int(bigEndian(data, 4)), rows = Int(bigEndian(data, 8)), columns = Int(bigEndian(data, 12))
        guard rows > 0, columns > 0 else {
            throw DataError.badDimensions(path: path, reason: "\(rows)×\(columns) images")
        }
        let (perImage, o1) = rows.multipliedReportingOverflow(by: columns)
        let (total, o2) = perImage.multipliedReportingOverflow(by: count)
        guard !o1, !o2 else {
            throw DataError.badDimensions(path: path, reason: "\(count) × \(rows) × \(columns) overflows")
        }
        guard data.count - 16 == total else {
            throw DataError.lengthMismatch(path: path, expected: total, actual: data.count - 16)
        }
        return (count, rows, columns)
    }

    private static func load(_ path: String) throws -> [UInt8] {
        let raw = try FileIO.readAll(path)
        return Gzip.isGzip(raw) ? try Gzip.decompress(raw, path: path) : raw
    }

    @inline(__always)
    static func bigEndian(_ d: [UInt8], _ o: Int) -> UInt32 {
        UInt32(d[o]) << 24 | UInt32(d[o + 1]) << 16 | UInt32(d[o + 2]) << 8 | UInt32(d[o + 3])
    }
}

/// Reads MNIST-format datasets (MNIST, Fashion-MNIST): a directory holding
/// `train-images-idx3-ubyte.gz`, `train-labels-idx1-ubyte.gz`, `t10k-images-idx3-ubyte.gz` and
/// `t10k-labels-idx1-ubyte.gz` (the uncompressed names without `.gz` are accepted too).
public enum MNISTReader {
    /// The file names of one split: (images, labels), gzip-compressed.
    public static func fileNames(for split: DataSplit) -> (images: String, labels: String) {
        let prefix = split == .train ? "train" : "t10k"
        return ("\(prefix)-images-idx3-ubyte.gz", "\(prefix)-labels-idx1-ubyte.gz")
    }

    /// Reads one split from `directory`, requiring 28×28 images, equal image and label counts, and
    /// labels 0–9.
    /// - Parameter name: the dataset's name, e.g. `"mnist"`; the result is named `"name/split"`.
    public static func load(directory: String, split: DataSplit, name: String = "mnist") throws -> ImageDataset {
        let files = fileNames(for: split)
        let imagesPath = resolve(directory, files.images)
        let labelsPath = resolve(directory, files.labels)
        let images = try IDX.readImages(path: imagesPath)
        guard images.rows == 28, images.columns == 28 else {
            throw DataError.badDimensions(path: imagesPath, reason: "\(images.rows)×\(images.columns) images, expected 28×28")
        }
        let labels = try IDX.readLabels(path: labelsPath)
        guard labels.count == images.count else {
            throw DataError.countMismatch(images: imagesPath, labels: labelsPath,
                                          imageCount: images.count, labelCount: labels.count)
        }
        if let bad = labels.firstIndex(where: { $0 > 9 }) {
            throw DataError.invalidLabel(path: labelsPath, index: bad, value: Int(labels[bad]), classCount: 10)
        }
        return try ImageDataset(name: "\(name)/\(split.rawValue)", channels: 1, height: 28, width: 28,
                                pixels: images.pixels, labels: labels, classCount: 10,
                                classNames: name == "fashion-mnist" ? fashionClassNames : nil)
    }

    /// Reads both splits from `directory`.
    public static func load(directory: String, name: String = "mnist") throws -> DatasetPair {
        DatasetPair(train: try load(directory: directory, split: .train, name: name),
                    test: try load(directory: directory, split: .test, name: name))
    }

    /// Fashion-MNIST's class names, in label order.
    public static let fashionClassNames = [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ]

    private static func resolve(_ directory: String, _ file: String) -> String {
        let gz = joinPath(directory, file)
        if FileIO.exists(gz) { return gz }
        let plain = joinPath(directory, String(file.dropLast(3)))
        return FileIO.exists(plain) ? plain : gz
    }
}

/// `a/b` without doubling the separator.
func joinPath(_ a: String, _ b: String) -> String {
    if a.isEmpty { return b }
    return a.hasSuffix("/") ? a + b : a + "/" + b
}
