import EngramTensor
import EngramData
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("Gzip")
struct GzipTests {
    @Test("decompresses a real MNIST label file to the documented 60,008 bytes")
    func decompressesRealFile() throws {
        let bytes = try Gzip.decompressFile(mnistDirectory + "/train-labels-idx1-ubyte.gz")
        #expect(bytes.count == 60_008)
        #expect(Array(bytes[0..<4]) == [0, 0, 8, 1])
    }

    @Test("round-trips data compressed by the system gzip, including concatenated members")
    func roundTripsSystemGzip() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 / 13) }
        let second = Array("tail member".utf8)
        try write(first, to: dir + "/a")
        try write(second, to: dir + "/b")
        try gzipFile(dir + "/a")
        try gzipFile(dir + "/b")
        #expect(try Gzip.decompressFile(dir + "/a.gz") == first)
        let concatenated = try FileIO.readAll(dir + "/a.gz") + FileIO.readAll(dir + "/b.gz")
        #expect(try Gzip.decompress(concatenated, path: "cat") == first + second)
    }

    @Test("rejects data without the gzip magic, naming the file")
    func rejectsNonGzip() throws {
        #expect(throws: DataError.corruptGzip(path: "x.gz", reason: "not gzip data (starts with 00 00, expected 1f 8b)")) {
            try Gzip.decompress([0, 0, 8, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], path: "x.gz")
        }
    }

    @Test("reports a truncated stream as truncated")
    func reportsTruncation() throws {
        let full = try FileIO.readAll(mnistDirectory + "/t10k-labels-idx1-ubyte.gz")
        #expect(throws: DataError.truncatedGzip(path: "cut.gz")) {
            try Gzip.decompress(Array(full[0 ..< full.count / 2]), path: "cut.gz")
        }
    }

    @Test("reports damaged deflate data or a CRC mismatch as corrupt")
    func reportsCorruption() throws {
        var bytes = try FileIO.readAll(mnistDirectory + "/t10k-labels-idx1-ubyte.gz")
        bytes[bytes.count - 6] ^= 0xFF  // inside the CRC-32 trailer
        let error = #expect(throws: DataError.self) { try Gzip.decompress(bytes, path: "bad.gz") }
        guard case .corruptGzip(let path, _)? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(path == "bad.gz")
        #expect(error?.description.hasPrefix("bad.gz: corrupt gzip data") == true)
    }

    @Test("rejects trailing garbage after the stream")
    func rejectsTrailingGarbage() throws {
        let bytes = try FileIO.readAll(mnistDirectory + "/t10k-labels-idx1-ubyte.gz") + [1, 2, 3]
        #expect(throws: DataError.self) { try Gzip.decompress(bytes, path: "tail.gz") }
    }

    @Test("stops a 6 GiB gzip bomb at the output limit instead of inflating it all")
    func stopsGzipBomb() throws {
        let member = try gzippedMebibyteOfZeros()
        var bomb: [UInt8] = []
        bomb.reserveCapacity(member.count * 6144)
        for _ in 0 ..< 6144 { bomb += member }  // 6,144 members of 1 MiB: 6 GiB inflated
        let clock = ContinuousClock()
        let start = clock.now
        #expect(throws: DataError.exceedsLimit(path: "bomb.gz", what: "decompressed data", limit: 8 << 20)) {
            try Gzip.decompress(bomb, path: "bomb.gz", maxOutputBytes: 8 << 20)
        }
        #expect(clock.now - start < .seconds(5))
    }

    @Test("does not trust an ISIZE trailer of 0xFFFFFFFF: no 4 GiB allocation, a length-check error")
    func distrustsHugeISIZE() throws {
        var bytes = try gzipped(Array("a short payload".utf8))
        for i in bytes.count - 4 ..< bytes.count { bytes[i] = 0xFF }
        let error = #expect(throws: DataError.self) { try Gzip.decompress(bytes, path: "isize.gz") }
        guard case .corruptGzip(let path, let reason)? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(path == "isize.gz")
        #expect(reason == "incorrect length check")
    }

    @Test("refuses a FIFO named like a gzip file at once")
    func refusesFIFO() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(mkfifo(dir + "/x.gz", 0o644) == 0)
        #expect(throws: DataError.notRegularFile(path: dir + "/x.gz", kind: "FIFO")) { try Gzip.decompressFile(dir + "/x.gz") }
    }
}
