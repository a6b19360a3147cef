import EngramTensor
import CZlib
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A sequential reader of a file's *content*: the bytes of a plain file, or — when the data starts
/// with the gzip magic `1f 8b` — the inflated bytes of its gzip stream, decoded in 64 KiB chunks as
/// they are asked for. Nothing is read or inflated ahead of the caller, so a reader can check a
/// format's header (magic, dimensions) before it commits to the rest, and bound the rest by what
/// the header declares: a gzip bomb or a lying ISIZE trailer costs no more than the caller allows.
///
/// Gzip handling matches `gunzip`: concatenated members are one stream; zero padding after the last
/// member is allowed; anything else after it is trailing garbage. zlib checks each member's CRC-32
/// and length when the member ends, so a caller sees a CRC mismatch only once it reads to the end
/// (`remainingByteCount` does).
final class ByteStream {
    /// Names the source in errors.
    let path: String
    /// Whether the content is being inflated from gzip.
    private(set) var isGzip = false
    /// The raw (on-disk) size when the source is a plain file or array, for early length checks.
    let rawSize: Int

    private enum Source {
        case file(Int32)
        case memory([UInt8])
    }

    private let source: Source
    private var sourcePosition = 0
    private var sourceEnded = false
    private static let chunkSize = 1 << 16
    private let chunk: UnsafeMutablePointer<UInt8>
    /// `chunk[pendingStart ..< pendingEnd]` holds raw bytes not yet consumed.
    private var pendingStart = 0
    private var pendingEnd = 0
    private var zstream: UnsafeMutablePointer<z_stream>?
    private var memberEnded = false
    private var finished = false

    /// A stream over the regular file at `path` (see `FileIO.openRegularFile`).
    convenience init(path: String) throws {
        let (fd, size) = try FileIO.openRegularFile(path)
        self.init(source: .file(fd), rawSize: size, path: path)  // from here on, deinit closes fd
        try start()
    }

    /// A stream over `bytes` held in memory; `path` names them in errors.
    convenience init(bytes: [UInt8], path: String) throws {
        self.init(source: .memory(bytes), rawSize: bytes.count, path: path)
        try start()
    }

    private init(source: Source, rawSize: Int, path: String) {
        self.source = source
        self.rawSize = rawSize
        self.path = path
        chunk = .allocate(capacity: Self.chunkSize)
    }

    /// Decides on gzip from the first two bytes (a shorter source is plain) and sets up zlib.
    private func start() throws {
        guard try ensurePending(2), chunk[pendingStart] == 0x1F, chunk[pendingStart + 1] == 0x8B else { return }
        isGzip = true
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        // 15 + 16: a gzip wrapper, whose header zlib parses and whose CRC-32 and length it checks.
        let status = inflateInit2_(stream, 15 + 16, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            stream.deallocate()
            throw DataError.corruptGzip(path: path, reason: "zlib initialisation failed (\(status))")
        }
        zstream = stream
    }

    deinit {
        if let zstream {
            inflateEnd(zstream)
            zstream.deallocate()
        }
        chunk.deallocate()
        if case .file(let fd) = source { close(fd) }
    }

    // MARK: Raw input

    /// Reads raw bytes until at least `count` (≤ the chunk size) are pending; `false` if the source
    /// ends first (the pending bytes are kept).
    private func ensurePending(_ count: Int) throws -> Bool {
        while pendingEnd - pendingStart < count {
            if sourceEnded { return false }
            if pendingStart > 0 {  // compact, so the chunk has room at its end
                let pending = pendingEnd - pendingStart
                if pending > 0 { memmove(chunk, chunk + pendingStart, pending) }
                pendingStart = 0
                pendingEnd = pending
            }
            let room = Self.chunkSize - pendingEnd
            let n: Int
            switch source {
            case .file(let fd):
                let got = posixRead(fd, chunk + pendingEnd, room)
                if got < 0 {
                    if errno == EINTR { continue }
                    throw DataError.readFailed(path: path, reason: String(cString: strerror(errno)))
                }
                n = got
            case .memory(let bytes):
                n = min(room, bytes.count - sourcePosition)
                if n > 0 {
                    bytes.withUnsafeBufferPointer { (chunk + pendingEnd).update(from: $0.baseAddress! + sourcePosition, count: n) }
                }
            }
            if n == 0 { sourceEnded = true; return pendingEnd - pendingStart >= count }
            sourcePosition += n
            pendingEnd += n
        }
        return true
    }

    // MARK: Content

    /// Reads up to `count` content bytes into `destination`; returns how many were read, fewer than
    /// `count` only at the end of the content.
    /// - Throws: `DataError.corruptGzip`, `.truncatedGzip` or `.readFailed`.
    func read(into destination: UnsafeMutablePointer<UInt8>, count: Int) throws -> Int {
        var produced = 0
        while produced < count && !finished {
            guard let zstream else {
                guard try ensurePending(1) else { finished = true; break }
                let n = min(count - produced, pendingEnd - pendingStart)
                (destination + produced).update(from: chunk + pendingStart, count: n)
                pendingStart += n
                produced += n
                continue
            }
            if memberEnded {
                try startNextMemberOrFinish(zstream)
                continue
            }
            if pendingStart == pendingEnd {
                guard try ensurePending(1) else { throw DataError.truncatedGzip(path: path) }
            }
            let outChunk = min(count - produced, Int(UInt32.max >> 1))
            let inChunk = pendingEnd - pendingStart
            zstream.pointee.next_in = chunk + pendingStart
            zstream.pointee.avail_in = uInt(inChunk)
            zstream.pointee.next_out = destination + produced
            zstream.pointee.avail_out = uInt(outChunk)
            let status = inflate(zstream, Z_NO_FLUSH)
            pendingStart += inChunk - Int(zstream.pointee.avail_in)
            produced += outChunk - Int(zstream.pointee.avail_out)
            switch status {
            case Z_STREAM_END:
                memberEnded = true
            case Z_OK, Z_BUF_ERROR:
                continue  // more input or more room next time round
            case Z_MEM_ERROR:
                throw DataError.corruptGzip(path: path, reason: "zlib ran out of memory")
            case Z_NEED_DICT:
                throw DataError.corruptGzip(path: path, reason: "deflate data needs a preset dictionary")
            default:
                let message = zstream.pointee.msg.map { String(cString: $0) } ?? "zlib status \(status)"
                throw DataError.corruptGzip(path: path, reason: message)
            }
        }
        return produced
    }

    /// After a gzip member: starts the next member, or accepts zero padding up to the end, or
    /// throws for trailing garbage.
    private func startNextMemberOrFinish(_ zstream: UnsafeMutablePointer<z_stream>) throws {
        guard try ensurePending(1) else { finished = true; return }
        if chunk[pendingStart] == 0 {
            while try ensurePending(1) {
                for i in pendingStart ..< pendingEnd where chunk[i] != 0 {
                    throw DataError.corruptGzip(path: path, reason: "trailing garbage after the zero padding that follows the gzip stream")
                }
                pendingStart = pendingEnd
            }
            finished = true
            return
        }
        if try ensurePending(2), chunk[pendingStart] == 0x1F, chunk[pendingStart + 1] == 0x8B {
            inflateReset(zstream)
            memberEnded = false
            return
        }
        throw DataError.corruptGzip(path: path, reason: "trailing garbage after the gzip stream")
    }

    /// Reads exactly `count` content bytes, or fewer at the end of the content. The buffer grows as
    /// data arrives (from 1 MiB, doubling), so a header declaring far more than the source holds
    /// costs no large allocation.
    func read(_ count: Int) throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: min(count, 1 << 20))
        var produced = 0
        while produced < count {
            if produced == output.count {
                output.append(contentsOf: repeatElement(0, count: min(output.count, count - output.count)))
            }
            let n = try output.withUnsafeMutableBufferPointer {
                try read(into: $0.baseAddress! + produced, count: $0.count - produced)
            }
            produced += n
            if produced < output.count { break }  // the content ended
        }
        output.removeLast(output.count - produced)
        return output
    }

    /// Reads the rest of the content, refusing more than `limit` bytes.
    /// - Parameter expected: a size hint for the first allocation (clamped to `limit`).
    /// - Throws: `DataError.exceedsLimit` as soon as the content passes `limit`, or a read error.
    func readToEnd(limit: Int, expected: Int = 1 << 20) throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: max(1024, min(expected, limit) + 1))
        var produced = 0
        while true {
            if produced == output.count {
                guard produced <= limit else { break }
                output.append(contentsOf: repeatElement(0, count: min(output.count, limit + 1 - output.count)))
            }
            let n = try output.withUnsafeMutableBufferPointer {
                try read(into: $0.baseAddress! + produced, count: $0.count - produced)
            }
            produced += n
            if n == 0 || produced < output.count { break }
        }
        guard produced <= limit else {
            throw DataError.exceedsLimit(path: path, what: isGzip ? "decompressed data" : "data", limit: limit)
        }
        output.removeLast(output.count - produced)
        return output
    }

    /// Reads and discards the rest of the content (checking the gzip trailers on the way); returns
    /// how many bytes there were, or `nil` if there were more than `limit`.
    func remainingByteCount(limit: Int) throws -> Int? {
        var scratch = [UInt8](repeating: 0, count: Self.chunkSize)
        var total = 0
        while true {
            let n = try scratch.withUnsafeMutableBufferPointer { try read(into: $0.baseAddress!, count: $0.count) }
            if n == 0 { return total }
            total += n
            if total > limit { return nil }
        }
    }
}

/// `read(2)`, named apart from `ByteStream`'s methods of the same name.
private func posixRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    read(fd, buffer, count)
}
