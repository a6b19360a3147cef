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

// The safetensors checkpoint format (https://github.com/huggingface/safetensors):
//
//     UInt64 little-endian N | N bytes of UTF-8 JSON header | data buffer
//
// The header maps each tensor name to `{"dtype", "shape", "data_offsets": [begin, end]}` (offsets into
// the data buffer, which the tensors tile exactly) and may hold a `"__metadata__"` string → string map.

/// An element type of the safetensors format; the raw value is the header's spelling.
public enum SafeTensorsDType: String, Sendable, CaseIterable {
    /// IEEE 754 binary64.
    case f64 = "F64"
    /// IEEE 754 binary32, the only type Engram writes.
    case f32 = "F32"
    /// IEEE 754 binary16.
    case f16 = "F16"
    /// bfloat16: the upper half of a binary32.
    case bf16 = "BF16"
    /// 8-bit float, 4 exponent and 3 mantissa bits, finite only (OCP E4M3FN).
    case f8e4m3 = "F8_E4M3"
    /// 8-bit float, 5 exponent and 2 mantissa bits (the upper half of a binary16).
    case f8e5m2 = "F8_E5M2"
    /// Signed 64-bit integer.
    case i64 = "I64"
    /// Signed 32-bit integer.
    case i32 = "I32"
    /// Signed 16-bit integer.
    case i16 = "I16"
    /// Signed 8-bit integer.
    case i8 = "I8"
    /// Unsigned 64-bit integer.
    case u64 = "U64"
    /// Unsigned 32-bit integer.
    case u32 = "U32"
    /// Unsigned 16-bit integer.
    case u16 = "U16"
    /// Unsigned 8-bit integer.
    case u8 = "U8"
    /// One byte per element, zero is false; read as 0 or 1.
    case bool = "BOOL"

    /// Bytes per element.
    public var byteWidth: Int {
        switch self {
        case .f64, .i64, .u64: 8
        case .f32, .i32, .u32: 4
        case .f16, .bf16, .i16, .u16: 2
        case .f8e4m3, .f8e5m2, .i8, .u8, .bool: 1
        }
    }
}

/// One tensor read from a safetensors file.
public struct SafeTensorsEntry {
    /// The tensor's name (its key in the header).
    public var name: String
    /// The element type stored in the file.
    public var dtype: SafeTensorsDType
    /// The shape stored in the file (also `tensor.shape`).
    public var shape: [Int]
    /// The values, converted to Float32 (integers and wider floats round to the nearest Float).
    public var tensor: Tensor
}

/// The contents of a safetensors file.
public struct SafeTensorsFile {
    /// The tensors in the order of their data in the file.
    public var entries: [SafeTensorsEntry]
    /// The header's `__metadata__` map (empty if absent), without the `engram.sha256.*` integrity
    /// entries, which `decode` has already checked.
    public var metadata: [String: String]
    /// The names of the tensors whose bytes matched an `engram.sha256.<name>` metadata entry.
    public var verifiedTensors: [String] = []

    /// The tensor with the given name, if the file has one.
    public subscript(name: String) -> Tensor? {
        entries.first { $0.name.utf8.elementsEqual(name.utf8) }?.tensor
    }
}

/// A safetensors file that cannot be read or written; `description` is `<file>: <defect>`, e.g.
/// `checkpoint.safetensors: header length 9999 exceeds the file size 120 bytes`.
public struct SafeTensorsError: Error, CustomStringConvertible, LocalizedError, Sendable {
    /// The path of the file (or the `source` given to `SafeTensors.decode`).
    public var file: String
    /// What is wrong with it.
    public var defect: String

    /// Creates an error for `file` with the given defect.
    public init(file: String, defect: String) {
        self.file = file
        self.defect = defect
    }

    /// `<file>: <defect>`, on one line: control characters (a tensor name from a corrupt header may
    /// hold a newline) are shown escaped.
    public var description: String {
        let text = "\(file): \(defect)"
        guard text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else { return text }
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case _ where scalar.properties.generalCategory == .control: out += "\\u{" + String(scalar.value, radix: 16) + "}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
    /// The same as `description`, so `localizedDescription` shows it.
    public var errorDescription: String? { description }
}

/// Reading and writing safetensors checkpoints.
///
/// Integrity: `write` and `encode` store the SHA-256 of every tensor's bytes in `__metadata__` as
/// `engram.sha256.<tensor name>` (lower-case hex; PyTorch and Python safetensors ignore extra
/// metadata), and `decode` verifies each such entry, naming the tensor whose bytes changed.
/// Files without the entries (from other writers) are read as before.
public enum SafeTensors {
    /// The metadata key prefix of the per-tensor SHA-256 entries.
    public static let sha256MetadataPrefix = "engram.sha256."
    /// The default bound of `read`: 64 GiB.
    public static let defaultMaxFileBytes = 64 << 30

    /// Writes F32 tensors to `url` atomically: the bytes go to `<target>.tmp-<pid>-<random>` in the
    /// same directory, which is fsynced and renamed over the target; then the directory is fsynced.
    /// Temporary files of the same target left by a killed write (their process is gone, or they are
    /// over a day old) are removed first. Each tensor's SHA-256 is stored in the metadata.
    /// Tensors are stored sorted by name, so the same input always gives the same bytes.
    /// On failure the temporary file is removed and the error names the target.
    /// - Throws: `SafeTensorsError` for duplicate names, the reserved name `__metadata__`, or I/O failures.
    public static func write(_ tensors: [(String, Tensor)], metadata: [String: String] = [:], to url: URL) throws {
        let target = url.path
        let layout = try Layout(tensors, metadata: metadata, file: target)
        removeStaleTemporaryFiles(of: target)
        let temp = "\(target).tmp-\(getpid())-\(String(UInt64.random(in: 0 ... .max), radix: 16))"
        func failure(_ what: String) -> SafeTensorsError {
            SafeTensorsError(file: target, defect: "\(what): \(String(cString: strerror(errno)))")
        }
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw failure("cannot create the temporary file \(temp)") }
        var isOpen = true
        do {
            func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
                var done = 0
                while done < bytes.count {
                    let n = posixWrite(fd, bytes.baseAddress! + done, bytes.count - done)
                    if n < 0 && errno == EINTR { continue }
                    guard n > 0 else { throw failure("cannot write the temporary file \(temp)") }
                    done += n
                }
            }
            try layout.prefixAndHeader.withUnsafeBytes(writeAll)
            for (_, tensor) in layout.tensors { try withLittleEndianBytes(tensor, writeAll) }
            guard fsync(fd) == 0 else { throw failure("cannot fsync the temporary file \(temp)") }
            isOpen = false
            guard close(fd) == 0 else { throw failure("cannot close the temporary file \(temp)") }
            guard rename(temp, target) == 0 else { throw failure("cannot rename \(temp) over it") }
        } catch {
            if isOpen { close(fd) }
            unlink(temp)
            throw error
        }
        // Make the rename durable. Best effort: some file systems cannot fsync a directory.
        let dir = open(url.deletingLastPathComponent().path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dir >= 0 {
            _ = fsync(dir)
            close(dir)
        }
    }

    /// Reads a safetensors file of any supported dtype, converting the values to Float32. Only a
    /// regular file is read (a FIFO, device or directory is refused before reading, so nothing can
    /// block), and at most `maxBytes`.
    /// - Throws: `SafeTensorsError` naming the file and its defect if it cannot be read, is not a
    ///   regular file, is malformed, or fails its SHA-256 check.
    public static func read(contentsOf url: URL, maxBytes: Int = defaultMaxFileBytes) throws -> SafeTensorsFile {
        let path = url.path
        func failure(_ what: String) -> SafeTensorsError {
            SafeTensorsError(file: path, defect: "\(what): \(String(cString: strerror(errno)))")
        }
        // O_NONBLOCK: opening a FIFO must not wait for a writer; the type is checked on the descriptor.
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw failure("cannot open") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw failure("cannot stat") }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw SafeTensorsError(file: path, defect: "not a regular file (\(fileKind(info.st_mode)))")
        }
        let flags = fcntl(fd, F_GETFL)
        if flags >= 0 { _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) }
        let size = Int(info.st_size)
        guard size <= maxBytes else {
            throw SafeTensorsError(file: path, defect: "file size \(size) bytes exceeds the limit of \(maxBytes) bytes")
        }
        let bytes = try [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            count = 0
            while count < size {
                let n = posixRead(fd, buffer.baseAddress! + count, size - count)
                if n < 0 && errno == EINTR { continue }
                guard n >= 0 else { throw failure("cannot read") }
                if n == 0 { break }  // the file shrank while we read; decode reports the truncation
                count += n
            }
        }
        return try decode(bytes, source: path)
    }

    /// Removes `<target>.tmp-<pid>-<hex>` files left by writes whose process no longer exists (or
    /// that are more than a day old). Best effort: failures are ignored.
    static func removeStaleTemporaryFiles(of target: String) {
        let url = URL(fileURLWithPath: target)
        let directory = url.deletingLastPathComponent().path
        let prefix = url.lastPathComponent + ".tmp-"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names where name.hasPrefix(prefix) {
            let parts = name.dropFirst(prefix.count).split(separator: "-", omittingEmptySubsequences: false)
            guard parts.count == 2, let pid = Int32(parts[0]), UInt64(parts[1], radix: 16) != nil else { continue }
            let path = directory + "/" + name
            var info = stat()
            guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { continue }
            let processGone = pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH
            #if canImport(Darwin)
            let modified = info.st_mtimespec.tv_sec
            #else
            let modified = info.st_mtim.tv_sec
            #endif
            let dayOld = time(nil) - modified > 86_400
            if processGone || dayOld { unlink(path) }
        }
    }

    /// "FIFO", "directory", … for a `st_mode`.
    static func fileKind(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFDIR: "directory"
        case S_IFIFO: "FIFO"
        case S_IFCHR: "character device"
        case S_IFBLK: "block device"
        case S_IFSOCK: "socket"
        default: "unknown file type"
        }
    }

    /// The bytes of a safetensors file holding `tensors` as F32, sorted by name (deterministic).
    /// - Throws: `SafeTensorsError` (file `<memory>`) for duplicate names or the name `__metadata__`.
    public static func encode(_ tensors: [(String, Tensor)], metadata: [String: String]) throws -> [UInt8] {
        let layout = try Layout(tensors, metadata: metadata, file: "<memory>")
        var bytes = layout.prefixAndHeader
        bytes.reserveCapacity(bytes.count + layout.dataSize)
        for (_, tensor) in layout.tensors { withLittleEndianBytes(tensor) { bytes.append(contentsOf: $0) } }
        return bytes
    }

    /// Parses the bytes of a safetensors file, validating the whole header and the data layout.
    /// - Parameter source: the file name used in errors.
    /// - Throws: `SafeTensorsError` naming `source` and the first defect found.
    public static func decode(_ bytes: [UInt8], source: String) throws -> SafeTensorsFile {
        func failure(_ defect: String) -> SafeTensorsError { SafeTensorsError(file: source, defect: defect) }
        guard bytes.count >= 8 else {
            throw failure("file is \(bytes.count) bytes, too short for the 8-byte header length")
        }
        let headerLength = bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw failure("header length \(headerLength) exceeds the file size \(bytes.count) bytes")
        }
        let dataStart = 8 + Int(headerLength)
        let header = Array(bytes[8 ..< dataStart])
        guard isValidUTF8(header) else { throw failure("header is not valid UTF-8") }
        let json: JSON
        do {
            var parser = JSONParser(bytes: header)
            json = try parser.document()
        } catch let error as JSONParser.Failure {
            throw failure("header is not valid JSON: \(error.message) at byte \(error.offset) of the header")
        }
        guard case .object(let members) = json else { throw failure("header is \(json.kind), not a JSON object") }

        let dataSize = bytes.count - dataStart
        var metadata: [String: String] = [:]
        var specs: [Spec] = []
        var seen = Set<[UInt8]>()
        for (name, value) in members {
            guard seen.insert(Array(name.utf8)).inserted else { throw failure("header names '\(name)' twice") }
            if name == "__metadata__" {
                guard case .object(let pairs) = value else { throw failure("__metadata__ is \(value.kind), not an object") }
                for (key, value) in pairs {
                    guard case .string(let text) = value else {
                        throw failure("metadata value for '\(key)' is \(value.kind), not a string")
                    }
                    metadata[key] = text
                }
            } else {
                specs.append(try Spec(name: name, json: value, dataSize: dataSize, failure: failure))
            }
        }

        // The tensors must tile the data buffer: sorted by offsets, each begins where the previous ended.
        specs.sort { ($0.begin, $0.end) != ($1.begin, $1.end)
            ? ($0.begin, $0.end) < ($1.begin, $1.end) : $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        var cursor = 0
        for (index, spec) in specs.enumerated() {
            if spec.begin < cursor {
                let previous = specs[index - 1]
                throw failure("tensor '\(spec.name)' data_offsets [\(spec.begin), \(spec.end)] overlap tensor "
                    + "'\(previous.name)' data_offsets [\(previous.begin), \(previous.end)]")
            }
            if spec.begin > cursor {
                throw failure("data buffer bytes \(cursor)..<\(spec.begin) before tensor '\(spec.name)' belong to "
                    + "no tensor (a gap of \(spec.begin - cursor) bytes)")
            }
            cursor = spec.end
        }
        if cursor < dataSize {
            throw failure("data buffer bytes \(cursor)..<\(dataSize) after the last tensor belong to no tensor "
                + "(\(dataSize - cursor) trailing bytes)")
        }

        // Integrity entries: each must name a tensor of the file and match its bytes.
        var digests: [String: String] = [:]
        for (key, value) in metadata where key.hasPrefix(sha256MetadataPrefix) {
            digests[String(key.dropFirst(sha256MetadataPrefix.count))] = value.lowercased()
            metadata[key] = nil
        }
        let specNames = Set(specs.map(\.name))
        if let orphan = digests.keys.sorted().first(where: { !specNames.contains($0) }) {
            throw failure("metadata holds a SHA-256 for tensor '\(orphan)', which the file does not have")
        }
        var verified: [String] = []
        let entries = try bytes.withUnsafeBytes { raw in
            try specs.map { spec in
                let data = UnsafeRawBufferPointer(rebasing: raw[(dataStart + spec.begin) ..< (dataStart + spec.end)])
                if let expected = digests[spec.name] {
                    let actual = sha256(data)
                    guard actual == expected else {
                        throw failure("tensor '\(spec.name)' fails its integrity check: SHA-256 of its bytes is \(actual), "
                            + "the metadata records \(expected)")
                    }
                    verified.append(spec.name)
                }
                let scalars = floats(data, dtype: spec.dtype, count: spec.end - spec.begin == 0 ? 0 : spec.count)
                return SafeTensorsEntry(name: spec.name, dtype: spec.dtype, shape: spec.shape,
                                        tensor: Tensor(shape: spec.shape, scalars: scalars))
            }
        }
        return SafeTensorsFile(entries: entries, metadata: metadata, verifiedTensors: verified)
    }
}

// MARK: - Writing

private extension SafeTensors {
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
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int { write(fd, buffer, count) }
private func posixRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int { read(fd, buffer, count) }

// MARK: - Reading

private extension SafeTensors {
    /// A validated header entry.
    struct Spec {
        var name: String
        var dtype: SafeTensorsDType
        var shape: [Int]
        var count: Int
        var begin: Int
        var end: Int

        init(name: String, json: JSON, dataSize: Int, failure: (String) -> SafeTensorsError) throws {
            func fail(_ defect: String) -> SafeTensorsError { failure("tensor '\(name)' \(defect)") }
            guard case .object(let fields) = json else { throw fail("has an entry that is \(json.kind), not an object") }
            func field(_ key: String) throws -> JSON {
                guard let value = fields.last(where: { $0.key == key })?.value else { throw fail("has no \(key)") }
                return value
            }
            func integer(_ value: JSON, _ what: String) throws -> Int {
                guard case .number(let text) = value else { throw fail("has \(what) that is \(value.kind), not an integer") }
                guard !text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) else {
                    throw fail("has \(what) \(text) that is not an integer")
                }
                guard let number = Int(text) else { throw fail("has \(what) \(text) that is too large") }
                guard number >= 0 else { throw fail("has \(what) \(text) that is negative") }
                return number
            }
            self.name = name

            guard case .string(let dtypeName) = try field("dtype") else { throw fail("has a dtype that is not a string") }
            guard let dtype = SafeTensorsDType(rawValue: dtypeName) else { throw fail("has unknown dtype '\(dtypeName)'") }
            self.dtype = dtype

            let shapeJSON = try field("shape")
            guard case .array(let extents) = shapeJSON else { throw fail("has a shape that is \(shapeJSON.kind), not an array") }
            shape = try extents.map { try integer($0, "a shape extent") }
            // The product of the non-zero extents must fit too: code that computes strides from the
            // shape of an empty tensor (e.g. [0, 2^40, 2^40]) must not overflow either.
            var nonZeroProduct = 1
            for extent in shape where extent != 0 {
                let (product, overflow) = nonZeroProduct.multipliedReportingOverflow(by: extent)
                guard !overflow else { throw fail("has shape \(shape) with too many elements") }
                nonZeroProduct = product
            }
            self.count = shape.contains(0) ? 0 : nonZeroProduct

            let offsetsJSON = try field("data_offsets")
            guard case .array(let offsets) = offsetsJSON, offsets.count == 2 else {
                throw fail("has data_offsets that are not an array of two integers")
            }
            begin = try integer(offsets[0], "a data_offsets begin")
            end = try integer(offsets[1], "a data_offsets end")
            guard begin <= end else { throw fail("has data_offsets [\(begin), \(end)] out of order (end before begin)") }
            guard end <= dataSize else {
                throw fail("has data_offsets [\(begin), \(end)] beyond the data buffer of \(dataSize) bytes")
            }
            let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.byteWidth)
            guard !overflow, bytes == end - begin else {
                throw fail("of dtype \(dtype.rawValue) and shape \(shape) needs \(count) × \(dtype.byteWidth) bytes, "
                    + "but data_offsets [\(begin), \(end)] span \(end - begin)")
            }
        }
    }

    static func isValidUTF8(_ bytes: [UInt8]) -> Bool {
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue: continue
            case .emptyInput: return true
            case .error: return false
            }
        }
    }

    /// `count` values of `dtype` stored little-endian in `data`, as Float32.
    static func floats(_ data: UnsafeRawBufferPointer, dtype: SafeTensorsDType, count: Int) -> [Float] {
        guard count > 0 else { return [] }
        return [Float](unsafeUninitializedCapacity: count) { out, initialized in
            switch dtype {
            case .f32:
                UnsafeMutableRawBufferPointer(out).copyMemory(from: data)
                #if _endian(big)
                for i in 0 ..< count { out[i] = Float(bitPattern: out[i].bitPattern.byteSwapped) }
                #endif
            case .f64: convert(data, out, UInt64.self) { Float(Double(bitPattern: $0)) }
            case .f16: convert(data, out, UInt16.self, halfToFloat)
            case .bf16: convert(data, out, UInt16.self) { Float(bitPattern: UInt32($0) << 16) }
            case .f8e5m2: convert(data, out, UInt8.self) { halfToFloat(UInt16($0) << 8) }
            case .f8e4m3: convert(data, out, UInt8.self, e4m3ToFloat)
            case .i64: convert(data, out, UInt64.self) { Float(Int64(bitPattern: $0)) }
            case .i32: convert(data, out, UInt32.self) { Float(Int32(bitPattern: $0)) }
            case .i16: convert(data, out, UInt16.self) { Float(Int16(bitPattern: $0)) }
            case .i8: convert(data, out, UInt8.self) { Float(Int8(bitPattern: $0)) }
            case .u64: convert(data, out, UInt64.self) { Float($0) }
            case .u32: convert(data, out, UInt32.self) { Float($0) }
            case .u16: convert(data, out, UInt16.self) { Float($0) }
            case .u8: convert(data, out, UInt8.self) { Float($0) }
            case .bool: convert(data, out, UInt8.self) { $0 == 0 ? 0 : 1 }
            }
            initialized = count
        }
    }

    /// Fills `out` with `transform` of each little-endian `T` in `data` (which may be unaligned).
    @inline(__always)
    static func convert<T: FixedWidthInteger>(_ data: UnsafeRawBufferPointer, _ out: UnsafeMutableBufferPointer<Float>,
                                              _: T.Type, _ transform: (T) -> Float) {
        for i in 0 ..< out.count {
            out[i] = transform(T(littleEndian: data.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self)))
        }
    }

    /// IEEE binary16 bits → Float (exact).
    static func halfToFloat(_ bits: UInt16) -> Float {
        let sign: UInt32 = UInt32(bits & 0x8000) << 16
        let exponent = UInt32(bits >> 10) & 0x1F, mantissa = UInt32(bits & 0x3FF)
        switch exponent {
        case 0x1F: return Float(bitPattern: sign | 0x7F80_0000 | mantissa << 13)          // inf, NaN
        case 0: return sign == 0 ? Float(mantissa) * 0x1p-24 : -Float(mantissa) * 0x1p-24      // ±0, subnormal
        default: return Float(bitPattern: sign | (exponent + 112) << 23 | mantissa << 13)
        }
    }

    /// OCP FP8 E4M3FN bits → Float (exact): bias 7, no infinities, S.1111.111 is NaN.
    static func e4m3ToFloat(_ bits: UInt8) -> Float {
        let exponent = Int(bits >> 3) & 0xF, mantissa = Float(bits & 7)
        let magnitude: Float = exponent == 0xF && mantissa == 7 ? .nan
            : exponent == 0 ? mantissa * 0x1p-9 : (8 + mantissa) * Float(sign: .plus, exponent: exponent - 10, significand: 1)
        return bits & 0x80 == 0 ? magnitude : -magnitude
    }
}

// MARK: - Header JSON

/// A parsed JSON value; objects keep their members in order, numbers their source text.
private indirect enum JSON {
    case object([(key: String, value: JSON)])
    case array([JSON])
    case string(String)
    case number(String)
    case bool(Bool)
    case null

    /// "an object", "a string", … for error messages.
    var kind: String {
        switch self {
        case .object: "an object"
        case .array: "an array"
        case .string: "a string"
        case .number(let text): "the number \(text)"
        case .bool(let value): "\(value)"
        case .null: "null"
        }
    }
}

/// A strict RFC 8259 parser for the header (which is valid UTF-8, checked before).
private struct JSONParser {
    struct Failure: Error {
        var message: String
        var offset: Int
    }

    let bytes: [UInt8]
    var index = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    /// One value, surrounded only by whitespace.
    mutating func document() throws -> JSON {
        let result = try value(depth: 0)
        skipWhitespace()
        guard index == bytes.count else { throw fail("unexpected \(current) after the top-level value") }
        return result
    }

    private func fail(_ message: String) -> Failure { Failure(message: message, offset: index) }

    private var current: String {
        guard index < bytes.count else { return "end of header" }
        let byte = bytes[index]
        return (0x21 ..< 0x7F).contains(byte) ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x\(String(byte, radix: 16))"
    }

    private mutating func skipWhitespace() {
        while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
    }

    /// Consumes `byte` (after whitespace) if it is next.
    private mutating func take(_ byte: Unicode.Scalar) -> Bool {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(byte.value) else { return false }
        index += 1
        return true
    }

    private mutating func value(depth: Int) throws -> JSON {
        guard depth < 64 else { throw fail("nesting deeper than 64 levels") }
        skipWhitespace()
        guard index < bytes.count else { throw fail("unexpected end of header") }
        switch bytes[index] {
        case UInt8(ascii: "{"):
            index += 1
            var members: [(key: String, value: JSON)] = []
            if take("}") { return .object([]) }
            repeat {
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                    throw fail("expected a string key, found \(current)")
                }
                let key = try string()
                guard take(":") else { throw fail("expected ':' after key, found \(current)") }
                members.append((key, try value(depth: depth + 1)))
            } while try separator(closing: "}")
            return .object(members)
        case UInt8(ascii: "["):
            index += 1
            var elements: [JSON] = []
            if take("]") { return .array([]) }
            repeat { elements.append(try value(depth: depth + 1)) } while try separator(closing: "]")
            return .array(elements)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0") ... UInt8(ascii: "9"): return .number(try number())
        default: throw fail("unexpected \(current)")
        }
    }

    /// After an element: `true` on ',', `false` on the closing bracket.
    private mutating func separator(closing: Unicode.Scalar) throws -> Bool {
        if take(",") { return true }
        if take(closing) { return false }
        throw fail("expected ',' or '\(closing)', found \(current)")
    }

    private mutating func literal(_ word: String) throws {
        let end = index + word.utf8.count
        guard end <= bytes.count, bytes[index ..< end].elementsEqual(word.utf8) else { throw fail("unexpected \(current)") }
        index = end
    }

    private func isDigit(_ at: Int) -> Bool { at < bytes.count && (0x30 ... 0x39).contains(bytes[at]) }

    private mutating func number() throws -> String {
        let start = index
        func digits(_ parser: inout JSONParser) throws {
            guard parser.isDigit(parser.index) else { throw parser.fail("malformed number") }
            while parser.isDigit(parser.index) { parser.index += 1 }
        }
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        if index < bytes.count, bytes[index] == UInt8(ascii: "0") { index += 1 } else { try digits(&self) }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") { index += 1; try digits(&self) }
        if index < bytes.count, bytes[index] | 0x20 == UInt8(ascii: "e") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            try digits(&self)
        }
        return String(decoding: bytes[start ..< index], as: UTF8.self)
    }

    private mutating func string() throws -> String {
        index += 1  // opening quote
        var out: [UInt8] = []
        while true {
            guard index < bytes.count else { throw fail("unterminated string") }
            let byte = bytes[index]
            index += 1
            switch byte {
            case UInt8(ascii: "\""): return String(decoding: out, as: UTF8.self)
            case 0 ..< 0x20: index -= 1; throw fail("unescaped control character in a string")
            case UInt8(ascii: "\\"):
                guard index < bytes.count else { throw fail("unterminated string") }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escape)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var code = try hex4()
                    if (0xD800 ..< 0xDC00).contains(code) {
                        guard index + 2 <= bytes.count, bytes[index] == UInt8(ascii: "\\"),
                              bytes[index + 1] == UInt8(ascii: "u") else { throw fail("unpaired surrogate in a string") }
                        index += 2
                        let low = try hex4()
                        guard (0xDC00 ..< 0xE000).contains(low) else { throw fail("unpaired surrogate in a string") }
                        code = 0x10000 + (code - 0xD800) << 10 + (low - 0xDC00)
                    }
                    guard let scalar = Unicode.Scalar(code) else { throw fail("unpaired surrogate in a string") }
                    UTF8.encode(scalar) { out.append($0) }
                default: index -= 1; throw fail("invalid escape \(current) in a string")
                }
            default: out.append(byte)
            }
        }
    }

    private mutating func hex4() throws -> UInt32 {
        guard index + 4 <= bytes.count,
              let code = UInt32(String(decoding: bytes[index ..< index + 4], as: UTF8.self), radix: 16),
              bytes[index ..< index + 4].allSatisfy({ $0 != UInt8(ascii: "+") && $0 != UInt8(ascii: "-") })
        else { throw fail("malformed \\u escape") }
        index += 4
        return code
    }
}
