import EngramTensor
import EngramData
import Foundation
import Testing

/// Builds CIFAR archives in a temporary directory, in the documented layout, with known contents.
struct CIFARFixture {
    let directory: String

    init() throws { directory = try makeTemporaryDirectory("engram-cifar") }
    func remove() { try? FileManager.default.removeItem(atPath: directory) }

    /// The pixel value of sample `i`, channel `c`, row `y`, column `x` in the fixtures.
    static func pixel(_ i: Int, _ c: Int, _ y: Int, _ x: Int) -> UInt8 {
        UInt8(truncatingIfNeeded: i * 17 + c * 101 + y * 5 + x * 3)
    }

    /// One CIFAR-100 record (coarse, fine, pixels).
    static func cifar100Record(_ i: Int, coarse: UInt8, fine: UInt8) -> [UInt8] {
        var r: [UInt8] = [coarse, fine]
        for c in 0..<3 { for y in 0..<32 { for x in 0..<32 { r.append(pixel(i, c, y, x)) } } }
        return r
    }

    /// Writes `cifar-100-binary/{train,test}.bin` and the label-name files, then `tar -czf`.
    /// `trainLabels`/`testLabels` are (coarse, fine) pairs.
    @discardableResult
    func makeCIFAR100(trainLabels: [(UInt8, UInt8)], testLabels: [(UInt8, UInt8)], omit: String? = nil,
                      trainExtraBytes: Int = 0, format: String = "gnu") throws -> String {
        let root = directory + "/cifar-100-binary"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        var train: [UInt8] = []
        for (i, l) in trainLabels.enumerated() { train += Self.cifar100Record(i, coarse: l.0, fine: l.1) }
        train += [UInt8](repeating: 9, count: trainExtraBytes)
        var test: [UInt8] = []
        for (i, l) in testLabels.enumerated() { test += Self.cifar100Record(1000 + i, coarse: l.0, fine: l.1) }
        let files: [(String, [UInt8])] = [
            ("train.bin", train), ("test.bin", test),
            ("coarse_label_names.txt", Array((0..<20).map { "coarse\($0)\n" }.joined().utf8)),
            ("fine_label_names.txt", Array((0..<100).map { "fine\($0)\n" }.joined().utf8)),
        ]
        for (name, bytes) in files where name != omit { try write(bytes, to: root + "/" + name) }
        let archive = directory + "/cifar-100-binary.tar.gz"
        try run("/bin/tar", ["--format=\(format)", "-czf", archive, "cifar-100-binary"], in: directory)
        return archive
    }
}

@Suite("CIFARReader")
struct CIFARReaderTests {
    @Test("reads CIFAR-100 labels, coarse labels, R/G/B planes and names from a tar.gz")
    func readsCIFAR100Archive() throws {
        let fixture = try CIFARFixture()
        defer { fixture.remove() }
        let archive = try fixture.makeCIFAR100(trainLabels: [(3, 42), (19, 99), (0, 0)], testLabels: [(7, 13)])
        let pair = try CIFARReader.loadCIFAR100(archive: archive)
        #expect(pair.train.count == 3 && pair.test.count == 1)
        #expect(pair.train.labels == [42, 99, 0])
        #expect(pair.train.coarseLabels == [3, 19, 0])
        #expect(pair.test.labels == [13] && pair.test.coarseLabels == [7])
        #expect(pair.train.channels == 3 && pair.train.height == 32 && pair.train.width == 32)
        let image = pair.train.image(at: 1)
        for (c, y, x) in [(0, 0, 0), (1, 5, 7), (2, 31, 31), (2, 0, 31)] {
            #expect(image[c * 1024 + y * 32 + x] == CIFARFixture.pixel(1, c, y, x))
        }
        #expect(pair.test.image(at: 0)[1024 + 32 + 1] == CIFARFixture.pixel(1000, 1, 1, 1))
        #expect(pair.train.classNames?[99] == "fine99")
        #expect(pair.train.coarseClassNames?[19] == "coarse19")
    }

    @Test("reads archives written in POSIX ustar and pax formats as well")
    func readsOtherTarFormats() throws {
        for format in ["ustar", "pax"] {
            let fixture = try CIFARFixture()
            defer { fixture.remove() }
            let archive = try fixture.makeCIFAR100(trainLabels: [(1, 2), (3, 4)], testLabels: [(5, 6)], format: format)
            let pair = try CIFARReader.loadCIFAR100(archive: archive)
            #expect(pair.train.labels == [2, 4], "format \(format)")
        }
    }

    @Test("reads an extracted cifar-100-binary directory")
    func readsDirectory() throws {
        let fixture = try CIFARFixture()
        defer { fixture.remove() }
        try fixture.makeCIFAR100(trainLabels: [(1, 2)], testLabels: [(5, 6), (7, 8)])
        let pair = try CIFARReader.loadCIFAR100(directory: fixture.directory)
        #expect(pair.train.labels == [2] && pair.test.labels == [6, 8])
    }

    @Test("reports a missing test.bin member by name")
    func reportsMissingMember() throws {
        let fixture = try CIFARFixture()
        defer { fixture.remove() }
        let archive = try fixture.makeCIFAR100(trainLabels: [(1, 2)], testLabels: [(1, 2)], omit: "test.bin")
        #expect(throws: DataError.missingMember(archive: archive, member: "cifar-100-binary/test.bin")) {
            try CIFARReader.loadCIFAR100(archive: archive)
        }
    }

    @Test("reports a train.bin that is not a whole number of 3,074-byte records")
    func reportsRecordSizeMismatch() throws {
        let fixture = try CIFARFixture()
        defer { fixture.remove() }
        let archive = try fixture.makeCIFAR100(trainLabels: [(1, 2), (1, 2)], testLabels: [(1, 2)], trainExtraBytes: 1)
        #expect(throws: DataError.recordSizeMismatch(path: archive + ":cifar-100-binary/train.bin",
                                                    recordSize: 3074, length: 2 * 3074 + 1)) {
            try CIFARReader.loadCIFAR100(archive: archive)
        }
    }

    @Test("rejects out-of-range fine and coarse labels")
    func rejectsBadLabels() throws {
        let fixture = try CIFARFixture()
        defer { fixture.remove() }
        let archive = try fixture.makeCIFAR100(trainLabels: [(1, 2), (1, 100)], testLabels: [(1, 2)])
        #expect(throws: DataError.invalidLabel(path: archive + ":cifar-100-binary/train.bin", index: 1, value: 100, classCount: 100)) {
            try CIFARReader.loadCIFAR100(archive: archive)
        }
        let fixture2 = try CIFARFixture()
        defer { fixture2.remove() }
        let archive2 = try fixture2.makeCIFAR100(trainLabels: [(20, 2)], testLabels: [(1, 2)])
        #expect(throws: DataError.self) { try CIFARReader.loadCIFAR100(archive: archive2) }
    }

    @Test("reports a truncated archive and a non-gzip file as errors naming the archive")
    func reportsTruncatedArchive() throws {
        let fixture = try CIFARFixture()
        defer { fixture.remove() }
        let archive = try fixture.makeCIFAR100(trainLabels: Array(repeating: (1, 2), count: 20), testLabels: [(1, 2)])
        let bytes = try FileIO.readAll(archive)
        try write(Array(bytes[0 ..< bytes.count / 2]), to: fixture.directory + "/cut.tar.gz")
        #expect(throws: DataError.truncatedGzip(path: fixture.directory + "/cut.tar.gz")) {
            try CIFARReader.loadCIFAR100(archive: fixture.directory + "/cut.tar.gz")
        }
        // An uncompressed tar cut inside a member.
        let tarBytes = try Gzip.decompress(bytes, path: archive)
        try write(Array(tarBytes[0 ..< 512 * 3 + 100]), to: fixture.directory + "/cut.tar")
        let error = #expect(throws: DataError.self) { try CIFARReader.loadCIFAR100(archive: fixture.directory + "/cut.tar") }
        guard case .corruptTar(let path, _)? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(path == fixture.directory + "/cut.tar")
    }

    @Test("rejects a tar header whose checksum does not match")
    func rejectsBadHeaderChecksum() throws {
        let fixture = try CIFARFixture()
        defer { fixture.remove() }
        let archive = try fixture.makeCIFAR100(trainLabels: [(1, 2)], testLabels: [(1, 2)])
        var tarBytes = try Gzip.decompressFile(archive)
        tarBytes[3] ^= 0x20  // a name byte of the first header
        #expect(throws: DataError.self) { try TarArchive(bytes: tarBytes, path: "x.tar") }
    }

    @Test("reads CIFAR-10's five data batches in order plus the test batch")
    func readsCIFAR10() throws {
        let fixture = try CIFARFixture()
        defer { fixture.remove() }
        let root = fixture.directory + "/cifar-10-batches-bin"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        for b in 1...5 {
            var bytes: [UInt8] = []
            for r in 0..<2 { bytes += [UInt8((b + r) % 10)] + [UInt8](repeating: UInt8(b * 10 + r), count: 3072) }
            try write(bytes, to: root + "/data_batch_\(b).bin")
        }
        try write([9] + [UInt8](repeating: 200, count: 3072), to: root + "/test_batch.bin")
        try write(Array("airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n".utf8),
                  to: root + "/batches.meta.txt")
        try run("/bin/tar", ["-czf", "cifar-10-binary.tar.gz", "cifar-10-batches-bin"], in: fixture.directory)
        for pair in [try CIFARReader.loadCIFAR10(archive: fixture.directory + "/cifar-10-binary.tar.gz"),
                     try CIFARReader.loadCIFAR10(directory: fixture.directory)] {
            #expect(pair.train.count == 10 && pair.test.count == 1)
            #expect(pair.train.labels == [1, 2, 2, 3, 3, 4, 4, 5, 5, 6])
            #expect(pair.train.image(at: 3)[3071] == 21 && pair.train.image(at: 9)[0] == 51)
            #expect(pair.test.labels == [9] && pair.test.image(at: 0).allSatisfy { $0 == 200 })
            #expect(pair.train.classNames?.last == "truck")
        }
        try write([10] + [UInt8](repeating: 0, count: 3072), to: root + "/test_batch.bin")
        #expect(throws: DataError.invalidLabel(path: root + "/test_batch.bin", index: 0, value: 10, classCount: 10)) {
            try CIFARReader.loadCIFAR10(directory: fixture.directory)
        }
        try write([1] + [UInt8](repeating: 0, count: 3073), to: root + "/test_batch.bin")
        #expect(throws: DataError.recordSizeMismatch(path: root + "/test_batch.bin", recordSize: 3073, length: 3074)) {
            try CIFARReader.loadCIFAR10(directory: fixture.directory)
        }
    }
}

/// The verified real CIFAR-100 archive, if one is found (it is not in the shared datasets today).
let realCIFAR100: String? = try? DatasetLocator(dataDirectory: datasetsRoot).locate(.cifar100)

@Suite("CIFARReader on the real archive", .enabled(if: realCIFAR100 != nil, "no verified cifar-100-binary.tar.gz found"))
struct RealCIFAR100Tests {
    @Test("the real archive holds 50,000 + 10,000 records, 500 + 100 per fine class, 20 superclasses")
    func documentedFigures() throws {
        let pair = try CIFARReader.loadCIFAR100(archive: realCIFAR100! + "/cifar-100-binary.tar.gz")
        #expect(pair.train.count == 50_000 && pair.test.count == 10_000)
        #expect(pair.train.classCounts() == Array(repeating: 500, count: 100))
        #expect(pair.test.classCounts() == Array(repeating: 100, count: 100))
        #expect(Set(pair.train.coarseLabels ?? []).count == 20)
        #expect(pair.train.classNames?.count == 100 && pair.train.coarseClassNames?.count == 20)
    }
}
