import EngramTensor
import EngramData
import Foundation
import Testing

/// A 512-byte tar header for a regular file `name` whose size field holds `sizeField` (12 bytes,
/// octal text or GNU base-256), with a valid checksum.
func tarHeader(name: String, sizeField: [UInt8], type: UInt8 = UInt8(ascii: "0")) -> [UInt8] {
    precondition(sizeField.count == 12)
    var header = [UInt8](repeating: 0, count: 512)
    for (i, byte) in name.utf8.prefix(100).enumerated() { header[i] = byte }
    for (i, byte) in "0000644\0".utf8.enumerated() { header[100 + i] = byte }
    header.replaceSubrange(124 ..< 136, with: sizeField)
    header[156] = type
    for (i, byte) in "ustar\0".utf8.enumerated() { header[257 + i] = byte }
    header[263] = UInt8(ascii: "0"); header[264] = UInt8(ascii: "0")
    let sum = header.enumerated().reduce(0) { $0 + ((148 ..< 156).contains($1.offset) ? 32 : Int($1.element)) }
    let checksum = Array(String(sum, radix: 8).utf8)
    let field = [UInt8](repeating: UInt8(ascii: "0"), count: 6 - checksum.count) + checksum + [0, 32]
    header.replaceSubrange(148 ..< 156, with: field)
    return header
}

/// An octal size field for `size`.
func octalSizeField(_ size: Int) -> [UInt8] {
    let digits = Array(String(size, radix: 8).utf8)
    return [UInt8](repeating: UInt8(ascii: "0"), count: 11 - digits.count) + digits + [0]
}

@Suite("TarArchive")
struct TarArchiveTests {
    @Test("reads a hand-built archive with one member and the end-of-archive blocks")
    func readsHandBuiltArchive() throws {
        let data = Array("hello, tar".utf8)
        let archive = tarHeader(name: "dir/file.txt", sizeField: octalSizeField(data.count))
            + data + [UInt8](repeating: 0, count: 512 - data.count) + [UInt8](repeating: 0, count: 1024)
        let tar = try TarArchive(bytes: archive, path: "a.tar")
        #expect(tar.members.map(\.name) == ["dir/file.txt"])
        #expect(try tar.data(of: "dir/file.txt") == data)
    }

    @Test("rejects a GNU base-256 size of 0x7FFF… (it overflowed the offset sum) as truncated, naming the member")
    func rejectsHugeBase256Size() throws {
        // The case of issue 14: 0x80 marker, then Int.max in the low 8 bytes.
        let field: [UInt8] = [0x80, 0, 0, 0, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]
        let archive = tarHeader(name: "big", sizeField: field) + [UInt8](repeating: 0, count: 1024)
        let error = #expect(throws: DataError.self) { try TarArchive(bytes: archive, path: "bomb.tar") }
        #expect(error?.description == "bomb.tar: corrupt tar archive: member big declares \(Int.max) bytes but the archive ends after 1024 (truncated)")
    }

    @Test("rejects base-256 sizes wider than 63 bits and negative ones")
    func rejectsOversizedAndNegativeBase256Sizes() throws {
        let wide: [UInt8] = [0x80] + [UInt8](repeating: 0xFF, count: 11)
        let wideError = #expect(throws: DataError.self) {
            try TarArchive(bytes: tarHeader(name: "wide", sizeField: wide) + [UInt8](repeating: 0, count: 1024), path: "w.tar")
        }
        #expect(wideError?.description == "w.tar: corrupt tar archive: base-256 size field too large")
        let negative: [UInt8] = [UInt8](repeating: 0xFF, count: 12)
        let negativeError = #expect(throws: DataError.self) {
            try TarArchive(bytes: tarHeader(name: "neg", sizeField: negative) + [UInt8](repeating: 0, count: 1024), path: "n.tar")
        }
        #expect(negativeError?.description == "n.tar: corrupt tar archive: negative base-256 size field")
    }

    @Test("accepts a small base-256 size, as GNU tar writes for large files")
    func acceptsSmallBase256Size() throws {
        let field: [UInt8] = [0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3]
        let archive = tarHeader(name: "x", sizeField: field) + [1, 2, 3] + [UInt8](repeating: 0, count: 509 + 1024)
        #expect(try TarArchive(bytes: archive, path: "b.tar").data(of: "x") == [1, 2, 3])
    }

    @Test("rejects an octal size one byte past the end of the archive")
    func rejectsSizePastEnd() throws {
        let archive = tarHeader(name: "x", sizeField: octalSizeField(513)) + [UInt8](repeating: 7, count: 512)
        #expect(throws: DataError.corruptTar(path: "t.tar", reason: "member x declares 513 bytes but the archive ends after 512 (truncated)")) {
            try TarArchive(bytes: archive, path: "t.tar")
        }
    }

    @Test("keeps the error on one line when a corrupt header's member name holds a newline (found by fuzzing)")
    func escapesControlCharactersInNames() throws {
        let archive = tarHeader(name: "bad\nname", sizeField: octalSizeField(700)) + [UInt8](repeating: 0, count: 399)
        let error = #expect(throws: DataError.self) { try TarArchive(bytes: archive, path: "f.tar") }
        #expect(error?.description == "f.tar: corrupt tar archive: member bad\\nname declares 700 bytes but the archive ends after 399 (truncated)")
    }
}
