import CZlib

/// gzip decompression through zlib (`inflateInit2_` with windowBits 16 + 15, so zlib parses the gzip
/// header, skips the stored file name, and checks the CRC-32 and length in each member's trailer).
public enum Gzip {
    /// Whether `bytes` starts with the gzip magic number `1f 8b`.
    public static func isGzip(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B
    }

    /// Reads and decompresses the gzip file at `path`.
    public static func decompressFile(_ path: String) throws -> [UInt8] {
        try decompress(FileIO.readAll(path), path: path)
    }

    /// Decompresses a whole gzip stream (one or more concatenated members, as `gunzip` accepts).
    ///
    /// The output is allocated once, sized from the last member's ISIZE trailer (exact for
    /// single-member files under 4 GiB; capped at deflate's maximum expansion of the input), and
    /// grown only if that hint is too small.
    /// - Parameter path: names the source in errors.
    /// - Throws: `DataError.corruptGzip` (not gzip, bad header or deflate data, CRC or length
    ///   mismatch, trailing garbage) or `DataError.truncatedGzip`.
    public static func decompress(_ input: [UInt8], path: String) throws -> [UInt8] {
        guard input.count >= 2 else {
            throw input.isEmpty ? DataError.truncatedGzip(path: path)
                : DataError.corruptGzip(path: path, reason: "file is \(input.count) byte(s), too short for a gzip header")
        }
        guard isGzip(input) else {
            throw DataError.corruptGzip(path: path, reason: String(format2(input[0], input[1])))
        }
        guard input.count >= 18 else { throw DataError.truncatedGzip(path: path) }
        let hint = input.withUnsafeBufferPointer { b -> Int in
            let n = b.count
            return Int(b[n - 4]) | Int(b[n - 3]) << 8 | Int(b[n - 2]) << 16 | Int(b[n - 1]) << 24
        }
        // deflate cannot expand more than ~1032:1, so a larger "hint" comes from a damaged or
        // truncated trailer; the buffer is left uninitialised so untouched pages cost nothing.
        // A little slack past the hint lets zlib read the trailer without a full output buffer.
        let capacity = max(1024, min(hint, input.count * 1032) + 64)
        var output = [UInt8](unsafeUninitializedCapacity: capacity) { _, initialized in initialized = capacity }
        var produced = 0

        var stream = z_stream()
        var status = inflateInit2_(&stream, 15 + 16, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            throw DataError.corruptGzip(path: path, reason: "zlib initialisation failed (\(status))")
        }
        defer { inflateEnd(&stream) }

        try input.withUnsafeBufferPointer { inBuffer in
            let base = UnsafeMutablePointer(mutating: inBuffer.baseAddress!)
            var consumed = 0
            while true {
                if output.count - produced == 0 {
                    output.append(contentsOf: repeatElement(0, count: max(output.count, 1 << 16)))
                }
                var streamEnded = false
                output.withUnsafeMutableBufferPointer { outBuffer in
                    while true {
                        let inChunk = min(inBuffer.count - consumed, Int(UInt32.max >> 1))
                        let outChunk = min(outBuffer.count - produced, Int(UInt32.max >> 1))
                        stream.next_in = base + consumed
                        stream.avail_in = uInt(inChunk)
                        stream.next_out = outBuffer.baseAddress! + produced
                        stream.avail_out = uInt(outChunk)
                        status = inflate(&stream, Z_NO_FLUSH)
                        consumed += inChunk - Int(stream.avail_in)
                        produced += outChunk - Int(stream.avail_out)
                        if status == Z_STREAM_END { streamEnded = true; return }
                        if status != Z_OK { return }
                        if produced == outBuffer.count { return }  // grow, then continue
                        if consumed == inBuffer.count { return }   // input exhausted mid-stream
                    }
                }
                if streamEnded {
                    // Another member follows (concatenated gzip)? Otherwise allow zero padding only.
                    let rest = inBuffer.count - consumed
                    if rest == 0 { break }
                    if rest >= 2 && inBuffer[consumed] == 0x1F && inBuffer[consumed + 1] == 0x8B {
                        inflateReset(&stream)
                        continue
                    }
                    if inBuffer[consumed...].allSatisfy({ $0 == 0 }) { break }
                    throw DataError.corruptGzip(path: path, reason: "\(rest) bytes of trailing garbage after the gzip stream")
                }
                switch status {
                case Z_OK, Z_BUF_ERROR:
                    if consumed == inBuffer.count { throw DataError.truncatedGzip(path: path) }
                    continue  // output buffer full: grow and go on
                case Z_DATA_ERROR:
                    let message = stream.msg.map { String(cString: $0) } ?? "invalid deflate data"
                    throw DataError.corruptGzip(path: path, reason: message)
                case Z_MEM_ERROR:
                    throw DataError.corruptGzip(path: path, reason: "zlib ran out of memory")
                default:
                    let message = stream.msg.map { String(cString: $0) } ?? "zlib status \(status)"
                    throw DataError.corruptGzip(path: path, reason: message)
                }
            }
        }
        if produced < output.count { output.removeLast(output.count - produced) }
        return output
    }
}

private func format2(_ a: UInt8, _ b: UInt8) -> String {
    func h(_ x: UInt8) -> String { let s = String(x, radix: 16); return s.count == 1 ? "0" + s : s }
    return "not gzip data (starts with \(h(a)) \(h(b)), expected 1f 8b)"
}
