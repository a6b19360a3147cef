import EngramTensor

/// A minimal reader for tar archives held in memory: POSIX ustar, GNU (`ustar  ` magic, `L` long
/// names) and pax (`x` extended headers with `path=`). Each header's checksum is verified and member
/// data must lie inside the archive.
public struct TarArchive: Sendable {
    /// One regular file inside the archive.
    public struct Member: Sendable, Equatable {
        /// The member's path as stored (prefix and name joined).
        public var name: String
        /// Offset of the member's data in the archive bytes.
        public var offset: Int
        /// Length of the member's data.
        public var size: Int
    }

    /// The whole (uncompressed) archive.
    public let bytes: [UInt8]
    /// The regular-file members, in archive order.
    public let members: [Member]
    /// The archive's name, used in errors.
    public let path: String

    /// Parses `bytes` as a tar archive. Every size field (octal or GNU base-256) is checked against
    /// the bytes left in the archive without any sum that could overflow, so no member can point
    /// outside `bytes`.
    /// - Throws: `DataError.corruptTar` for a bad header checksum, a non-numeric, negative or
    ///   oversized size, or a member that runs past the end of the data.
    public init(bytes: [UInt8], path: String) throws {
        self.bytes = bytes
        self.path = path
        var members: [Member] = []
        var offset = 0
        var pendingName: String? = nil
        try bytes.withUnsafeBufferPointer { b in
            while offset + 512 <= b.count {
                let header = UnsafeBufferPointer(rebasing: b[offset ..< offset + 512])
                if header.allSatisfy({ $0 == 0 }) { return }  // end-of-archive block
                let stored = try TarArchive.octal(header, 148, 8, path: path, field: "checksum")
                var sum = 0
                for i in 0..<512 { sum += (148..<156).contains(i) ? 32 : Int(header[i]) }
                guard sum == stored else {
                    throw DataError.corruptTar(path: path, reason: "header checksum mismatch at offset \(offset) (stored \(stored), computed \(sum))")
                }
                let size = try TarArchive.octal(header, 124, 12, path: path, field: "size")
                let type = header[156]
                var name = TarArchive.string(header, 0, 100)
                let magic = TarArchive.string(header, 257, 6)
                if magic.hasPrefix("ustar") {
                    let prefix = TarArchive.string(header, 345, 155)
                    if !prefix.isEmpty && magic == "ustar" { name = prefix + "/" + name }
                }
                let dataStart = offset + 512
                // `size` is non-negative and at most Int.max (octal guarantees it); compare it with
                // what is left rather than adding, so no sum can overflow.
                guard size <= b.count - dataStart else {
                    throw DataError.corruptTar(path: path, reason: "member \(name) declares \(size) bytes but the archive ends after \(b.count - dataStart) (truncated)")
                }
                let data = UnsafeBufferPointer(rebasing: b[dataStart ..< dataStart + size])
                switch type {
                case UInt8(ascii: "L"):  // GNU long name for the next member
                    pendingName = TarArchive.string(data, 0, data.count)
                case UInt8(ascii: "x"):  // pax extended header
                    if let p = TarArchive.paxPath(data) { pendingName = p }
                case UInt8(ascii: "0"), 0:  // regular file
                    members.append(Member(name: pendingName ?? name, offset: dataStart, size: size))
                    pendingName = nil
                default:  // directories, links, global headers: skip
                    pendingName = nil
                }
                // Cannot overflow: size ≤ b.count − dataStart, so the padded end is at most b.count + 511.
                offset = dataStart + size + (512 - size % 512) % 512
            }
            if offset < b.count {
                throw DataError.corruptTar(path: path, reason: "archive ends inside a header at offset \(offset) (truncated)")
            }
        }
        self.members = members
    }

    /// The member whose path is `name` (a leading `./` is ignored).
    public func member(_ name: String) -> Member? {
        members.first { normalize($0.name) == normalize(name) }
    }

    /// The data of the member named `name`.
    /// - Throws: `DataError.missingMember` if there is none.
    public func data(of name: String) throws -> [UInt8] {
        guard let m = member(name) else { throw DataError.missingMember(archive: path, member: name) }
        return Array(bytes[m.offset ..< m.offset + m.size])
    }

    private func normalize(_ name: String) -> Substring {
        name.hasPrefix("./") ? name.dropFirst(2) : Substring(name)
    }

    static func string(_ b: UnsafeBufferPointer<UInt8>, _ start: Int, _ length: Int) -> String {
        var end = start
        while end < start + length && b[end] != 0 { end += 1 }
        return String(decoding: UnsafeBufferPointer(rebasing: b[start..<end]), as: UTF8.self)
    }

    static func octal(_ b: UnsafeBufferPointer<UInt8>, _ start: Int, _ length: Int, path: String, field: String) throws -> Int {
        if b[start] & 0x80 != 0 {  // GNU base-256 encoding: big-endian two's complement
            guard b[start] & 0x40 == 0 else {
                throw DataError.corruptTar(path: path, reason: "negative base-256 \(field) field")
            }
            var value = Int(b[start] & 0x3F)
            for i in start + 1 ..< start + length {
                guard value <= Int.max >> 8 else {
                    throw DataError.corruptTar(path: path, reason: "base-256 \(field) field too large")
                }
                value = value << 8 | Int(b[i])
            }
            return value
        }
        var value = 0
        var seenDigit = false
        for i in start ..< start + length {
            let c = b[i]
            if c == 0 || c == 32 { if seenDigit { break } else { continue } }
            guard c >= 48 && c <= 55 else {
                throw DataError.corruptTar(path: path, reason: "non-octal \(field) field")
            }
            value = value * 8 + Int(c - 48)
            seenDigit = true
        }
        return value
    }

    static func paxPath(_ data: UnsafeBufferPointer<UInt8>) -> String? {
        let text = String(decoding: data, as: UTF8.self)
        for line in text.split(separator: "\n") {
            guard let space = line.firstIndex(of: " ") else { continue }
            let record = line[line.index(after: space)...]
            if record.hasPrefix("path=") { return String(record.dropFirst(5)) }
        }
        return nil
    }
}
