import EngramTensor

/// Reads the binary versions of CIFAR-10 and CIFAR-100 (Krizhevsky 2009), either straight from the
/// distributed `.tar.gz` (gunzipped with zlib, then parsed as tar in memory) or from an extracted
/// directory.
///
/// - CIFAR-100 (`cifar-100-binary.tar.gz`): `cifar-100-binary/train.bin` and `test.bin`, 3,074-byte
///   records: coarse label (0–19), fine label (0–99), then 3,072 pixels as 1,024 R, 1,024 G,
///   1,024 B, each a 32×32 row-major plane. Class names in `fine_label_names.txt` and
///   `coarse_label_names.txt`.
/// - CIFAR-10 (`cifar-10-binary.tar.gz`): `cifar-10-batches-bin/data_batch_1.bin` … `data_batch_5.bin`
///   and `test_batch.bin`, 3,073-byte records: label (0–9) then the same 3,072 pixels. Class names
///   in `batches.meta.txt`.
///
/// The datasets' labels are the fine labels; CIFAR-100's coarse labels are kept in `coarseLabels`.
public enum CIFARReader {
    /// Bytes per CIFAR-100 record.
    public static let cifar100RecordSize = 3074
    /// Bytes per CIFAR-10 record.
    public static let cifar10RecordSize = 3073
    /// Pixels per image: 3 channels × 32 × 32.
    public static let imageSize = 3072

    /// The CIFAR-100 archive's top directory.
    public static let cifar100Directory = "cifar-100-binary"
    /// The CIFAR-10 archive's top directory.
    public static let cifar10Directory = "cifar-10-batches-bin"
    /// CIFAR-10's training batch files, in order.
    public static let cifar10TrainBatches = (1...5).map { "data_batch_\($0).bin" }
    /// CIFAR-10's test batch file.
    public static let cifar10TestBatch = "test_batch.bin"

    // MARK: CIFAR-100

    /// Reads CIFAR-100 train and test from `cifar-100-binary.tar.gz` (or an uncompressed `.tar`).
    /// - Throws: `DataError` for corrupt gzip/tar, a missing member, a record size mismatch or an
    ///   out-of-range label.
    public static func loadCIFAR100(archive path: String) throws -> DatasetPair {
        let tar = try openArchive(path)
        let names = labelNames(tar, "\(cifar100Directory)/fine_label_names.txt")
        func split(_ file: String, _ split: DataSplit) throws -> ImageDataset {
            let member = "\(cifar100Directory)/\(file)"
            guard let m = tar.member(member) else { throw DataError.missingMember(archive: path, member: member) }
            return try tar.bytes.withUnsafeBufferPointer {
                try parseCIFAR100(UnsafeBufferPointer(rebasing: $0[m.offset ..< m.offset + m.size]),
                                  path: "\(path):\(member)", name: "cifar-100/\(split.rawValue)", classNames: names)
            }
        }
        var pair = DatasetPair(train: try split("train.bin", .train), test: try split("test.bin", .test))
        let coarseNames = labelNames(tar, "\(cifar100Directory)/coarse_label_names.txt")
        if coarseNames?.count == 20 {
            pair.train.coarseClassNames = coarseNames
            pair.test.coarseClassNames = coarseNames
        }
        return pair
    }

    /// Reads CIFAR-100 from an extracted directory: either the `cifar-100-binary` directory itself or
    /// its parent.
    public static func loadCIFAR100(directory: String) throws -> DatasetPair {
        let dir = FileIO.exists(joinPath(directory, "train.bin")) ? directory : joinPath(directory, cifar100Directory)
        let names = try? FileIO.readAll(joinPath(dir, "fine_label_names.txt"))
        let classNames = names.map { parseNames($0) }
        func split(_ file: String, _ split: DataSplit) throws -> ImageDataset {
            let path = joinPath(dir, file)
            return try FileIO.readAll(path).withUnsafeBufferPointer {
                try parseCIFAR100($0, path: path, name: "cifar-100/\(split.rawValue)", classNames: classNames)
            }
        }
        return DatasetPair(train: try split("train.bin", .train), test: try split("test.bin", .test))
    }

    /// Parses CIFAR-100 records: fine labels become the labels, coarse labels `coarseLabels`.
    public static func parseCIFAR100(_ bytes: UnsafeBufferPointer<UInt8>, path: String, name: String,
                                     classNames: [String]? = nil) throws -> ImageDataset {
        let n = try recordCount(bytes.count, recordSize: cifar100RecordSize, path: path)
        var fine = [UInt8](repeating: 0, count: n)
        var coarse = [UInt8](repeating: 0, count: n)
        let pixels = [UInt8](unsafeUninitializedCapacity: n * imageSize) { out, initialized in
            let src = bytes.baseAddress!, dst = out.baseAddress!
            for i in 0..<n {
                let record = src + i * cifar100RecordSize
                coarse[i] = record[0]
                fine[i] = record[1]
                (dst + i * imageSize).update(from: record + 2, count: imageSize)
            }
            initialized = n * imageSize
        }
        if let bad = coarse.firstIndex(where: { $0 >= 20 }) {
            throw DataError.invalidLabel(path: path, index: bad, value: Int(coarse[bad]), classCount: 20)
        }
        if let bad = fine.firstIndex(where: { $0 >= 100 }) {
            throw DataError.invalidLabel(path: path, index: bad, value: Int(fine[bad]), classCount: 100)
        }
        return try ImageDataset(name: name, channels: 3, height: 32, width: 32, pixels: pixels, labels: fine,
                                classCount: 100, coarseLabels: coarse,
                                classNames: classNames?.count == 100 ? classNames : nil)
    }

    // MARK: CIFAR-10

    /// Reads CIFAR-10 train (the five data batches, in order) and test from `cifar-10-binary.tar.gz`.
    public static func loadCIFAR10(archive path: String) throws -> DatasetPair {
        let tar = try openArchive(path)
        let names = labelNames(tar, "\(cifar10Directory)/batches.meta.txt")
        func batches(_ files: [String]) throws -> [(String, ArraySlice<UInt8>)] {
            try files.map { file in
                let member = "\(cifar10Directory)/\(file)"
                guard let m = tar.member(member) else { throw DataError.missingMember(archive: path, member: member) }
                return ("\(path):\(member)", tar.bytes[m.offset ..< m.offset + m.size])
            }
        }
        return DatasetPair(
            train: try parseCIFAR10(batches: batches(cifar10TrainBatches), name: "cifar-10/train", classNames: names),
            test: try parseCIFAR10(batches: batches([cifar10TestBatch]), name: "cifar-10/test", classNames: names))
    }

    /// Reads CIFAR-10 from an extracted `cifar-10-batches-bin` directory (or its parent).
    public static func loadCIFAR10(directory: String) throws -> DatasetPair {
        let dir = FileIO.exists(joinPath(directory, cifar10TestBatch)) ? directory : joinPath(directory, cifar10Directory)
        let names = (try? FileIO.readAll(joinPath(dir, "batches.meta.txt"))).map { parseNames($0) }
        func batches(_ files: [String]) throws -> [(String, ArraySlice<UInt8>)] {
            try files.map { let p = joinPath(dir, $0); return (p, try FileIO.readAll(p)[...]) }
        }
        return DatasetPair(
            train: try parseCIFAR10(batches: batches(cifar10TrainBatches), name: "cifar-10/train", classNames: names),
            test: try parseCIFAR10(batches: batches([cifar10TestBatch]), name: "cifar-10/test", classNames: names))
    }

    /// Parses and concatenates CIFAR-10 batches given as (path for errors, bytes).
    public static func parseCIFAR10(batches: [(String, ArraySlice<UInt8>)], name: String,
                                    classNames: [String]? = nil) throws -> ImageDataset {
        var total = 0
        for (path, bytes) in batches { total += try recordCount(bytes.count, recordSize: cifar10RecordSize, path: path) }
        var labels = [UInt8](repeating: 0, count: total)
        var pixels = [UInt8](repeating: 0, count: total * imageSize)
        var next = 0
        for (path, bytes) in batches {
            let n = bytes.count / cifar10RecordSize
            try bytes.withUnsafeBufferPointer { src in
                try pixels.withUnsafeMutableBufferPointer { dst in
                    for i in 0..<n {
                        let record = src.baseAddress! + i * cifar10RecordSize
                        guard record[0] < 10 else {
                            throw DataError.invalidLabel(path: path, index: i, value: Int(record[0]), classCount: 10)
                        }
                        labels[next + i] = record[0]
                        (dst.baseAddress! + (next + i) * imageSize).update(from: record + 1, count: imageSize)
                    }
                }
            }
            next += n
        }
        return try ImageDataset(name: name, channels: 3, height: 32, width: 32, pixels: pixels, labels: labels,
                                classCount: 10, classNames: classNames?.count == 10 ? classNames : nil)
    }

    // MARK: Helpers

    /// The largest (uncompressed) archive accepted: 512 MiB; the CIFAR tars are about 185 MB.
    public static let maxArchiveBytes = 512 << 20

    /// Reads a `.tar.gz` (or plain `.tar`) into a parsed archive, streaming the gzip inflation and
    /// refusing more than `maxBytes` of archive.
    public static func openArchive(_ path: String, maxBytes: Int = maxArchiveBytes) throws -> TarArchive {
        let stream = try ByteStream(path: path)
        // The CIFAR archives inflate by about 1.1×; the buffer grows if a file inflates more.
        let bytes = try stream.readToEnd(limit: maxBytes, expected: stream.isGzip ? stream.rawSize * 2 : stream.rawSize)
        return try TarArchive(bytes: bytes, path: path)
    }

    static func recordCount(_ length: Int, recordSize: Int, path: String) throws -> Int {
        guard length > 0, length % recordSize == 0 else {
            throw DataError.recordSizeMismatch(path: path, recordSize: recordSize, length: length)
        }
        return length / recordSize
    }

    static func labelNames(_ tar: TarArchive, _ member: String) -> [String]? {
        guard let m = tar.member(member) else { return nil }
        return parseNames(Array(tar.bytes[m.offset ..< m.offset + m.size]))
    }

    static func parseNames(_ bytes: [UInt8]) -> [String] {
        String(decoding: bytes, as: UTF8.self)
            .split(whereSeparator: { $0 == "\n" || $0 == "\r" })
            .map { $0.trimmedBlanks() }
            .filter { !$0.isEmpty }
    }
}

extension Substring {
    func trimmedBlanks() -> String {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
