import EngramData
import Foundation
import Testing

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
}
