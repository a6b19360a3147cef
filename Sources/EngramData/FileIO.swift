#if canImport(Glibc)
import EngramTensor
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// File access for the data layer, through POSIX `open`/`read`. Only regular files are ever read:
/// a FIFO, a device such as `/dev/zero`, a socket or a directory — also behind a symbolic link named
/// like a dataset file — is refused with `DataError.notRegularFile` before a single byte is read, so
/// no read can block forever or never end. Every read is bounded by a maximum size.
public enum FileIO {
    /// The default bound of `readAll`: 1 GiB, above every dataset file Engram reads (the largest,
    /// the CIFAR archives, are about 170 MB).
    public static let defaultMaxBytes = 1 << 30

    /// Opens the regular file at `path` for reading and returns its descriptor and size.
    ///
    /// The file is opened with `O_NONBLOCK` (so opening a FIFO cannot wait for a writer), checked
    /// with `fstat` on the opened descriptor (so a symbolic link is judged by what it points to, with
    /// no window between the check and the open), then switched back to blocking reads.
    /// - Throws: `DataError.fileNotFound`, `DataError.notRegularFile` naming the kind of file, or
    ///   `DataError.readFailed`.
    public static func openRegularFile(_ path: String) throws -> (descriptor: Int32, size: Int) {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT { throw DataError.fileNotFound(path: path) }
            throw DataError.readFailed(path: path, reason: String(cString: strerror(code)))
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let code = errno
            close(fd)
            throw DataError.readFailed(path: path, reason: String(cString: strerror(code)))
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw DataError.notRegularFile(path: path, kind: fileKind(mode: info.st_mode))
        }
        let flags = fcntl(fd, F_GETFL)
        if flags >= 0 { _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) }
        return (fd, Int(info.st_size))
    }

    /// Reads the whole regular file at `path`.
    /// - Parameter maxBytes: the largest file accepted; a longer file (or one that grows past the
    ///   limit while it is read) is refused with `DataError.exceedsLimit` before it is read.
    /// - Throws: `DataError.fileNotFound`, `.notRegularFile`, `.exceedsLimit` or `.readFailed`.
    public static func readAll(_ path: String, maxBytes: Int = defaultMaxBytes) throws -> [UInt8] {
        let (fd, size) = try openRegularFile(path)
        defer { close(fd) }
        guard size <= maxBytes else {
            throw DataError.exceedsLimit(path: path, what: "file size \(size) bytes", limit: maxBytes)
        }
        var failure: Int32 = 0
        var bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            var done = 0
            while done < size {
                let n = read(fd, buffer.baseAddress! + done, size - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    break
                }
                if n == 0 { break }  // file shrank while reading
                done += n
            }
            initialized = done
        }
        if failure != 0 {
            throw DataError.readFailed(path: path, reason: String(cString: strerror(failure)))
        }
        // Pick up anything appended after fstat (rare; keeps the read exact), within the limit.
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            guard bytes.count + n <= maxBytes else {
                throw DataError.exceedsLimit(path: path, what: "file (growing while read)", limit: maxBytes)
            }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return bytes
    }

    /// Whether a regular file (or a directory, when `directory` is true) exists at `path`
    /// (following symbolic links).
    public static func exists(_ path: String, directory: Bool = false) -> Bool {
        var info = stat()
        guard stat(path, &info) == 0 else { return false }
        let kind = info.st_mode & S_IFMT
        return directory ? kind == S_IFDIR : kind == S_IFREG
    }

    /// Whether anything at all (a file of any kind, or a dangling symbolic link) is at `path`.
    public static func anythingExists(at path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    /// "FIFO", "character device", "directory" … for the file at `path` (following symbolic
    /// links), or `nil` if nothing is there.
    public static func kind(of path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return fileKind(mode: info.st_mode)
    }

    /// The kind of file a `st_mode` describes.
    static func fileKind(mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFREG: return "regular file"
        case S_IFDIR: return "directory"
        case S_IFIFO: return "FIFO"
        case S_IFCHR: return "character device"
        case S_IFBLK: return "block device"
        case S_IFSOCK: return "socket"
        case S_IFLNK: return "symbolic link"
        default: return "unknown file type"
        }
    }
}
