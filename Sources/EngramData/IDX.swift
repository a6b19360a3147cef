import EngramTensor

/// The IDX format of MNIST and Fashion-MNIST: big-endian 32-bit header integers (magic, then one
/// extent per dimension) followed by raw `uint8` data. Reads gzip-compressed or plain files.
///
/// Files are streamed: the header is read (and inflated, for gzip) first and checked — magic,
/// non-zero extents, a product that neither overflows nor exceeds `maxDataBytes` — and only then is
/// exactly the declared number of bytes read. Less data than declared, or any data after it, is a
/// `DataError.lengthMismatch`; more than `trailingBytesCounted` extra bytes an `exceedsLimit`. So a
/// gzip bomb, a lying ISIZE trailer or an endless source never costs more than the header declares.
public enum IDX {
    /// Magic number of a 3-dimensional unsigned-byte IDX file (images).
    public static let imagesMagic: UInt32 = 0x0000_0803
    /// Magic number of a 1-dimensional unsigned-byte IDX file (labels).
    public static let labelsMagic: UInt32 = 0x0000_0801
    /// The default bound on the data an IDX header may declare: 256 MiB (MNIST's training images
    /// are 47 MB).
    public static let defaultMaxDataBytes = 256 << 20
    /// How many bytes past the declared data are counted for the error message before giving up.
    public static let trailingBytesCounted = 64 << 20

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
    /// - Parameter maxDataBytes: the most pixel data the header may declare.
    /// - Throws: a `DataError` for a file that is not a regular file, corrupt gzip, a wrong magic,
    ///   zero, overflowing or excessive extents, or a data length other than exactly
    ///   `count × rows × columns`.
    public static func readImages(path: String, maxDataBytes: Int = defaultMaxDataBytes) throws -> Images {
        try readImages(from: ByteStream(path: path), maxDataBytes: maxDataBytes)
    }

    /// Reads IDX3 images from bytes in memory (gzip-compressed or plain); `path` names them in errors.
    public static func readImages(bytes: [UInt8], path: String, maxDataBytes: Int = defaultMaxDataBytes) throws -> Images {
        try readImages(from: ByteStream(bytes: bytes, path: path), maxDataBytes: maxDataBytes)
    }

    /// Reads an IDX1 labels file (gzip-compressed if it starts with the gzip magic).
    /// - Parameter maxCount: the most labels the header may declare.
    /// - Throws: a `DataError` for a file that is not a regular file, corrupt gzip, a wrong magic, an
    ///   excessive count, or a data length other than exactly the declared count.
    public static func readLabels(path: String, maxCount: Int = defaultMaxDataBytes) throws -> [UInt8] {
        try readLabels(from: ByteStream(path: path), maxCount: maxCount)
    }

    /// Reads IDX1 labels from bytes in memory (gzip-compressed or plain); `path` names them in errors.
    public static func readLabels(bytes: [UInt8], path: String, maxCount: Int = defaultMaxDataBytes) throws -> [UInt8] {
        try readLabels(from: ByteStream(bytes: bytes, path: path), maxCount: maxCount)
    }

    static func readImages(from stream: ByteStream, maxDataBytes: Int) throws -> Images {
        let path = stream.path
        let header = try stream.read(16)
        let (count, rows, columns) = try parseImagesHeader(header, path: path)
        let total = count * rows * columns  // checked for overflow by parseImagesHeader
        guard total <= maxDataBytes else {
            throw DataError.exceedsLimit(path: path, what: "declared image data \(count) × \(rows) × \(columns) = \(total) bytes",
                                         limit: maxDataBytes)
        }
        let pixels = try readDeclaredData(stream, headerSize: 16, declared: total)
        return Images(count: count, rows: rows, columns: columns, pixels: pixels)
    }

    static func readLabels(from stream: ByteStream, maxCount: Int) throws -> [UInt8] {
        let path = stream.path
        let header = try stream.read(8)
        if header.count >= 4, bigEndian(header, 0) != labelsMagic {
            throw DataError.badMagic(path: path, expected: labelsMagic, found: bigEndian(header, 0))
        }
        guard header.count == 8 else { throw DataError.lengthMismatch(path: path, expected: 8, actual: header.count) }
        let count = Int(bigEndian(header, 4))
        guard count <= maxCount else {
            throw DataError.exceedsLimit(path: path, what: "declared label count \(count)", limit: maxCount)
        }
        return try readDeclaredData(stream, headerSize: 8, declared: count)
    }

    /// Reads exactly `declared` bytes after a header and checks that nothing follows them.
    private static func readDeclaredData(_ stream: ByteStream, headerSize: Int, declared: Int) throws -> [UInt8] {
        let path = stream.path
        if !stream.isGzip && stream.rawSize - headerSize != declared {  // plain: the size says it all
            throw DataError.lengthMismatch(path: path, expected: declared, actual: stream.rawSize - headerSize)
        }
        let data = try stream.read(declared)
        guard data.count == declared else {
            throw DataError.lengthMismatch(path: path, expected: declared, actual: data.count)
        }
        guard let extra = try stream.remainingByteCount(limit: trailingBytesCounted) else {
            throw DataError.exceedsLimit(path: path, what: "data after the declared \(declared) bytes",
                                         limit: trailingBytesCounted)
        }
        guard extra == 0 else {
            throw DataError.lengthMismatch(path: path, expected: declared, actual: declared + extra)
        }
        return data
    }

    /// Checks a 16-byte images header; returns (count, rows, columns), whose product is known not to
    /// overflow.
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
        let (_, o2) = perImage.multipliedReportingOverflow(by: count)
        guard !o1, !o2 else {
            throw DataError.badDimensions(path: path, reason: "\(count) × \(rows) × \(columns) overflows")
        }
        return (count, rows, columns)
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
    /// The most images (and labels) one MNIST-format file may declare: the 60,000 of a training split.
    public static let maxImages = 60_000

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
        let images = try IDX.readImages(path: imagesPath, maxDataBytes: maxImages * 28 * 28)
        guard images.rows == 28, images.columns == 28 else {
            throw DataError.badDimensions(path: imagesPath, reason: "\(images.rows)×\(images.columns) images, expected 28×28")
        }
        let labels = try IDX.readLabels(path: labelsPath, maxCount: maxImages)
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
        if FileIO.anythingExists(at: gz) { return gz }  // a FIFO or device here is an error, not skipped
        let plain = joinPath(directory, String(file.dropLast(3)))
        return FileIO.anythingExists(at: plain) ? plain : gz
    }
}

/// `a/b` without doubling the separator.
func joinPath(_ a: String, _ b: String) -> String {
    if a.isEmpty { return b }
    return a.hasSuffix("/") ? a + b : a + "/" + b
}
