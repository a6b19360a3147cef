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
