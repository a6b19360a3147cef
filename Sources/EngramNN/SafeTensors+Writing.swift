import Crypto
import EngramTensor
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Writing

extension SafeTensors {
    /// What `encode` and `write` emit: the length prefix and padded header, then the tensors' data in order.
    struct Layout {
        var prefixAndHeader: [UInt8]
        var tensors: [(String, Tensor)]
        var dataSize: Int

        init(_ tensors: [(String, Tensor)], metadata: [String: String], file: String) throws {
            self.tensors = tensors.sorted { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }
            for (a, b) in zip(self.tensors, self.tensors.dropFirst()) where a.0.utf8.elementsEqual(b.0.utf8) {
                throw SafeTensorsError(file: file, defect: "duplicate tensor name '\(a.0)'")
            }
            if self.tensors.contains(where: { $0.0 == "__metadata__" }) {
                throw SafeTensorsError(file: file, defect: "'__metadata__' is reserved and cannot name a tensor")
            }
            if let key = metadata.keys.sorted().first(where: { $0.hasPrefix(SafeTensors.sha256MetadataPrefix) }) {
                throw SafeTensorsError(file: file, defect: "metadata key '\(key)' is reserved for the tensors' SHA-256")
            }
            var metadata = metadata
            for (name, tensor) in self.tensors {
                metadata[SafeTensors.sha256MetadataPrefix + name] =
                    SafeTensors.withLittleEndianBytes(tensor) { SafeTensors.sha256($0) }
            }
            var fields: [String] = []
            if !metadata.isEmpty {
                let pairs = metadata.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
                fields.append("\"__metadata__\":{"
                    + pairs.map { quoted($0.key) + ":" + quoted($0.value) }.joined(separator: ",") + "}")
            }
            var offset = 0
            for (name, tensor) in self.tensors {
                let end = offset + tensor.count * MemoryLayout<Float>.size
                let shape = tensor.shape.map(String.init).joined(separator: ",")
                fields.append("\(quoted(name)):{\"dtype\":\"F32\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}")
                offset = end
            }
            var header = Array(("{" + fields.joined(separator: ",") + "}").utf8)
            header += repeatElement(UInt8(ascii: " "), count: (8 - header.count % 8) % 8)
            prefixAndHeader = withUnsafeBytes(of: UInt64(header.count).littleEndian, Array.init) + header
            dataSize = offset
        }
    }

    /// `text` as a JSON string literal: quotes, backslashes and control characters escaped, the rest raw UTF-8.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                out += "\\u00" + (scalar.value < 0x10 ? "0" : "") + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// The SHA-256 of `bytes`, lower-case hex.
    static func sha256(_ bytes: UnsafeRawBufferPointer) -> String {
        var hasher = SHA256()
        hasher.update(bufferPointer: bytes)
        return hexDigest(hasher.finalize())
    }

    /// A digest as lower-case hex.
    static func hexDigest<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in digest { out.append(digits[Int(byte >> 4)]); out.append(digits[Int(byte & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// Calls `body` with the tensor's values as little-endian Float32 bytes (no copy on little-endian hosts).
    static func withLittleEndianBytes<R>(_ tensor: Tensor, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        #if _endian(little)
        return try tensor.scalars.withUnsafeBytes(body)
        #else
        return try tensor.scalars.map { $0.bitPattern.littleEndian }.withUnsafeBytes(body)
        #endif
    }
}

/// `write(2)` and `read(2)`, named apart from the `SafeTensors` methods of the same names.
func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int { write(fd, buffer, count) }
func posixRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int { read(fd, buffer, count) }
