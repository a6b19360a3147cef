import EngramTensor
import Crypto
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// MD5 checksums (swift-crypto's `Insecure.MD5`), computed in 1 MiB chunks.
public enum Checksum {
    /// The MD5 of the regular file at `path`, lower-case hex. A FIFO, device (`/dev/zero`) or other
    /// non-regular file is refused before reading, and at most `maxBytes` are hashed.
    /// - Throws: `DataError.fileNotFound`, `.notRegularFile`, `.exceedsLimit` or `.readFailed`.
    public static func md5(path: String, maxBytes: Int = FileIO.defaultMaxBytes) throws -> String {
        let (fd, size) = try FileIO.openRegularFile(path)
        defer { close(fd) }
        guard size <= maxBytes else {
            throw DataError.exceedsLimit(path: path, what: "file size \(size) bytes", limit: maxBytes)
        }
        var hasher = Insecure.MD5()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var total = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw DataError.readFailed(path: path, reason: String(cString: strerror(errno)))
            }
            if n == 0 { break }
            total += n
            guard total <= maxBytes else {
                throw DataError.exceedsLimit(path: path, what: "file (growing while hashed)", limit: maxBytes)
            }
            buffer.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
        return hexString(hasher.finalize())
    }

    /// The MD5 of `bytes`, lower-case hex.
    public static func md5(_ bytes: [UInt8]) -> String {
        hexString(Insecure.MD5.hash(data: bytes))
    }

    /// Checks the file at `path` against `expected` (case-insensitive hex).
    /// - Throws: `DataError.checksumMismatch` naming both values, or a read error.
    public static func verify(path: String, md5 expected: String) throws {
        let actual = try md5(path: path)
        guard actual == expected.lowercased() else {
            throw DataError.checksumMismatch(path: path, expected: expected.lowercased(), actual: actual)
        }
    }

    static func hexString<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in digest { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }
}
