import EngramTensor
import EngramData
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("MNISTReader")
struct MNISTReaderTests {
    @Test("reads MNIST with the README's per-class counts and first labels")
    func readsMNIST() throws {
        let pair = try sharedMNIST.get()
        #expect(pair.train.count == 60_000)
        #expect(pair.test.count == 10_000)
        #expect(pair.train.pixels.count == 47_040_000)
        #expect(pair.train.classCounts() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
        #expect(pair.test.classCounts() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
        #expect(Array(pair.train.labels.prefix(10)) == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4])
        #expect(Array(pair.test.labels.prefix(10)) == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9])
        // Pixel sums of the first image and one row, cross-checked with Python's gzip module.
        #expect(pair.train.image(at: 0).reduce(0) { $0 + Int($1) } == 27525)
        #expect(pair.test.image(at: 0).reduce(0) { $0 + Int($1) } == 18454)
        #expect(Array(pair.train.image(at: 0)[14 * 28 + 13 ..< 14 * 28 + 19]) == [81, 240, 253, 253, 119, 25])
    }

    @Test("reads Fashion-MNIST with 6,000/1,000 samples per class and the first labels")
    func readsFashionMNIST() throws {
        let pair = try sharedFashion.get()
        #expect(pair.train.classCounts() == Array(repeating: 6000, count: 10))
        #expect(pair.test.classCounts() == Array(repeating: 1000, count: 10))
        #expect(Array(pair.train.labels.prefix(10)) == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5])
        #expect(Array(pair.test.labels.prefix(10)) == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7])
        #expect(pair.train.image(at: 0).reduce(0) { $0 + Int($1) } == 76247)
        #expect(pair.train.classNames?[9] == "Ankle boot")
    }

    @Test("reads the 60,000 training images in well under a few seconds")
    func readsQuickly() throws {
        let clock = ContinuousClock()
        let start = clock.now
        let images = try IDX.readImages(path: mnistDirectory + "/train-images-idx3-ubyte.gz")
        let elapsed = clock.now - start
        #expect(images.count == 60_000 && images.rows == 28 && images.columns == 28)
        print("MNIST train images read in \(elapsed)")
        #expect(elapsed < .seconds(3))
    }

    @Test("rejects a labels file given where images are expected (wrong magic)")
    func rejectsWrongMagic() throws {
        let path = mnistDirectory + "/t10k-labels-idx1-ubyte.gz"
        #expect(throws: DataError.badMagic(path: path, expected: 0x803, found: 0x801)) {
            try IDX.readImages(path: path)
        }
    }

    @Test("rejects truncated image data and trailing bytes by exact length")
    func rejectsWrongLength() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let header = bigEndianBytes(0x803) + bigEndianBytes(3) + bigEndianBytes(28) + bigEndianBytes(28)
        try write(header + [UInt8](repeating: 7, count: 3 * 784 - 1), to: dir + "/short")
        #expect(throws: DataError.lengthMismatch(path: dir + "/short", expected: 3 * 784, actual: 3 * 784 - 1)) {
            try IDX.readImages(path: dir + "/short")
        }
        try write(header + [UInt8](repeating: 7, count: 3 * 784 + 5), to: dir + "/long")
        try gzipFile(dir + "/long")
        #expect(throws: DataError.lengthMismatch(path: dir + "/long.gz", expected: 3 * 784, actual: 3 * 784 + 5)) {
            try IDX.readImages(path: dir + "/long.gz")
        }
        try write(header + [UInt8](repeating: 7, count: 3 * 784), to: dir + "/exact")
        let exact = try IDX.readImages(path: dir + "/exact")
        #expect(exact.count == 3 && exact.pixels.allSatisfy { $0 == 7 })
    }

    @Test("rejects zero image dimensions and mismatched image/label counts")
    func rejectsBadDimensionsAndCounts() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(bigEndianBytes(0x803) + bigEndianBytes(1) + bigEndianBytes(0) + bigEndianBytes(28), to: dir + "/zero")
        #expect(throws: DataError.self) { try IDX.readImages(path: dir + "/zero") }

        let images = bigEndianBytes(0x803) + bigEndianBytes(2) + bigEndianBytes(28) + bigEndianBytes(28)
            + [UInt8](repeating: 0, count: 2 * 784)
        try write(images, to: dir + "/t10k-images-idx3-ubyte")
        try write(bigEndianBytes(0x801) + bigEndianBytes(3) + [1, 2, 3], to: dir + "/t10k-labels-idx1-ubyte")
        try gzipFile(dir + "/t10k-images-idx3-ubyte")
        try gzipFile(dir + "/t10k-labels-idx1-ubyte")
        #expect(throws: DataError.countMismatch(images: dir + "/t10k-images-idx3-ubyte.gz",
                                               labels: dir + "/t10k-labels-idx1-ubyte.gz",
                                               imageCount: 2, labelCount: 3)) {
            try MNISTReader.load(directory: dir, split: .test)
        }
        try write(bigEndianBytes(0x801) + bigEndianBytes(2) + [1, 12], to: dir + "/t10k-labels-idx1-ubyte")
        try gzipFile(dir + "/t10k-labels-idx1-ubyte")
        #expect(throws: DataError.invalidLabel(path: dir + "/t10k-labels-idx1-ubyte.gz", index: 1, value: 12, classCount: 10)) {
            try MNISTReader.load(directory: dir, split: .test)
        }
    }

    @Test("names the missing file when a split is absent")
    func reportsMissingFile() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(throws: DataError.fileNotFound(path: dir + "/train-images-idx3-ubyte.gz")) {
            try MNISTReader.load(directory: dir, split: .train)
        }
    }

    @Test("checks the IDX header before reading on: a gzip bomb after a valid header stops at the declared size")
    func stopsGzipBombAfterValidHeader() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let member = try gzippedMebibyteOfZeros()
        var bomb = try gzipped(imagesHeader(count: 2) + [UInt8](repeating: 3, count: 2 * 784))
        for _ in 0 ..< 6144 { bomb += member }  // then 6 GiB of zeros in concatenated members
        try write(bomb, to: dir + "/bomb.gz")
        let clock = ContinuousClock()
        let start = clock.now
        #expect(throws: DataError.exceedsLimit(path: dir + "/bomb.gz", what: "data after the declared 1568 bytes",
                                               limit: IDX.trailingBytesCounted)) {
            try IDX.readImages(path: dir + "/bomb.gz")
        }
        #expect(clock.now - start < .seconds(10))
    }

    @Test("refuses a header declaring more images than the file type allows, before reading the data")
    func refusesExcessiveDeclaredSize() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write(imagesHeader(count: 60_001) + [1, 2, 3], to: dir + "/train-images-idx3-ubyte")
        #expect(throws: DataError.exceedsLimit(path: dir + "/train-images-idx3-ubyte",
                                               what: "declared image data 60001 × 28 × 28 = 47040784 bytes", limit: 47_040_000)) {
            try MNISTReader.load(directory: dir, split: .train)
        }
        let huge = bigEndianBytes(0x803) + bigEndianBytes(0xFFFF_FFFF) + bigEndianBytes(0xFFFF_FFFF) + bigEndianBytes(0xFFFF_FFFF)
        try write(huge, to: dir + "/huge")
        #expect(throws: DataError.self) { try IDX.readImages(path: dir + "/huge") }
        try write(bigEndianBytes(0x801) + bigEndianBytes(0xFFFF_FFFF), to: dir + "/labels")
        #expect(throws: DataError.exceedsLimit(path: dir + "/labels", what: "declared label count 4294967295", limit: 60_000)) {
            try IDX.readLabels(path: dir + "/labels", maxCount: 60_000)
        }
    }

    @Test("refuses a FIFO or a link to /dev/zero named like a dataset file, naming it")
    func refusesNonRegularDatasetFiles() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(mkfifo(dir + "/t10k-images-idx3-ubyte.gz", 0o644) == 0)
        #expect(throws: DataError.notRegularFile(path: dir + "/t10k-images-idx3-ubyte.gz", kind: "FIFO")) {
            try MNISTReader.load(directory: dir, split: .test)
        }
        try FileManager.default.createSymbolicLink(atPath: dir + "/train-images-idx3-ubyte.gz", withDestinationPath: "/dev/zero")
        #expect(throws: DataError.notRegularFile(path: dir + "/train-images-idx3-ubyte.gz", kind: "character device")) {
            try MNISTReader.load(directory: dir, split: .train)
        }
    }

    @Test("reads images and labels from bytes in memory, compressed or not")
    func readsFromMemory() throws {
        let plain = imagesHeader(count: 1, rows: 2, columns: 3) + [1, 2, 3, 4, 5, 6]
        #expect(try IDX.readImages(bytes: plain, path: "m").pixels == [1, 2, 3, 4, 5, 6])
        #expect(try IDX.readImages(bytes: try gzipped(plain), path: "m").pixels == [1, 2, 3, 4, 5, 6])
        #expect(try IDX.readLabels(bytes: bigEndianBytes(0x801) + bigEndianBytes(2) + [7, 8], path: "l") == [7, 8])
    }
}
