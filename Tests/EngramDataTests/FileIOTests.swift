import EngramTensor
import EngramData
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("FileIO")
struct FileIOTests {
    @Test("refuses a FIFO at once, naming it, instead of blocking for a writer")
    func refusesFIFO() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/train-images-idx3-ubyte.gz"
        #expect(mkfifo(path, 0o644) == 0)
        #expect(throws: DataError.notRegularFile(path: path, kind: "FIFO")) { try FileIO.readAll(path) }
        #expect(DataError.notRegularFile(path: path, kind: "FIFO").description == "\(path): not a regular file (FIFO)")
    }

    @Test("refuses a symbolic link named like a dataset file that points to /dev/zero")
    func refusesLinkToDevice() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/t10k-labels-idx1-ubyte.gz"
        try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: "/dev/zero")
        #expect(throws: DataError.notRegularFile(path: path, kind: "character device")) { try FileIO.readAll(path) }
    }

    @Test("refuses a directory and a file larger than the given bound")
    func refusesDirectoryAndOversizedFile() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(throws: DataError.notRegularFile(path: dir, kind: "directory")) { try FileIO.readAll(dir) }
        try write([UInt8](repeating: 1, count: 100), to: dir + "/f")
        #expect(throws: DataError.exceedsLimit(path: dir + "/f", what: "file size 100 bytes", limit: 99)) {
            try FileIO.readAll(dir + "/f", maxBytes: 99)
        }
        #expect(try FileIO.readAll(dir + "/f", maxBytes: 100).count == 100)
    }
}

@Suite("Checksum")
struct ChecksumTests {
    @Test("refuses to hash /dev/zero (it would never end) and a FIFO (it would block)")
    func refusesEndlessSources() throws {
        #expect(throws: DataError.notRegularFile(path: "/dev/zero", kind: "character device")) {
            try Checksum.md5(path: "/dev/zero")
        }
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(mkfifo(dir + "/fifo", 0o644) == 0)
        #expect(throws: DataError.notRegularFile(path: dir + "/fifo", kind: "FIFO")) { try Checksum.md5(path: dir + "/fifo") }
    }

    @Test("hashes a regular file to the known MD5")
    func hashesRegularFile() throws {
        #expect(try Checksum.md5(path: mnistDirectory + "/t10k-labels-idx1-ubyte.gz") == "ec29112dd5afa0611ce80d1b7f02629c")
    }
}
