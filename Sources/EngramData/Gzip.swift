import EngramTensor
import CZlib

/// gzip decompression through zlib (`inflateInit2_` with windowBits 16 + 15, so zlib parses the gzip
/// header, skips the stored file name, and checks the CRC-32 and length in each member's trailer),
/// streamed in chunks by `ByteStream` and bounded by a maximum output size.
public enum Gzip {
    /// Whether `bytes` starts with the gzip magic number `1f 8b`.
    public static func isGzip(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B
    }

    /// The default bound on decompressed output: 512 MiB, above every archive Engram reads (the
    /// CIFAR tars are about 185 MB) and far below what a gzip bomb would inflate to.
    public static let defaultMaxOutputBytes = 512 << 20

    /// Streams and decompresses the gzip file at `path` (a regular file only), inflating in chunks
    /// and stopping as soon as the output passes `maxOutputBytes`.
    /// - Throws: as `decompress`, plus `DataError.fileNotFound`, `.notRegularFile` or `.readFailed`.
    public static func decompressFile(_ path: String, maxOutputBytes: Int = defaultMaxOutputBytes) throws -> [UInt8] {
        let stream = try ByteStream(path: path)
        try requireGzip(stream, path: path)
        return try stream.readToEnd(limit: maxOutputBytes, expected: min(stream.rawSize * 4, maxOutputBytes))
    }

    /// Decompresses a whole gzip stream (one or more concatenated members, as `gunzip` accepts),
    /// inflating in chunks. The ISIZE trailer is never trusted for an allocation: the output grows as
    /// data arrives and stops at `maxOutputBytes`.
    /// - Parameter path: names the source in errors.
    /// - Throws: `DataError.corruptGzip` (not gzip, bad header or deflate data, CRC or length
    ///   mismatch, trailing garbage), `DataError.truncatedGzip`, or `DataError.exceedsLimit`.
    public static func decompress(_ input: [UInt8], path: String, maxOutputBytes: Int = defaultMaxOutputBytes) throws -> [UInt8] {
        let stream = try ByteStream(bytes: input, path: path)
        try requireGzip(stream, path: path, prefix: input.prefix(2))
        return try stream.readToEnd(limit: maxOutputBytes, expected: min(input.count * 4, maxOutputBytes))
    }

    /// Throws unless `stream` is inflating gzip: `truncatedGzip` for an empty source, `corruptGzip`
    /// naming the first bytes otherwise.
    private static func requireGzip(_ stream: ByteStream, path: String, prefix: ArraySlice<UInt8>? = nil) throws {
        guard !stream.isGzip else { return }
        let first: [UInt8] = try prefix.map { Array($0) } ?? stream.read(2)
        if first.isEmpty { throw DataError.truncatedGzip(path: path) }
        if first.count < 2 {
            throw DataError.corruptGzip(path: path, reason: "file is \(first.count) byte(s), too short for a gzip header")
        }
        throw DataError.corruptGzip(path: path, reason: format2(first[0], first[1]))
    }
}

private func format2(_ a: UInt8, _ b: UInt8) -> String {
    func h(_ x: UInt8) -> String { let s = String(x, radix: 16); return s.count == 1 ? "0" + s : s }
    return "not gzip data (starts with \(h(a)) \(h(b)), expected 1f 8b)"
}
