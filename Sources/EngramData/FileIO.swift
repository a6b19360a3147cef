#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Whole-file reads into contiguous byte arrays, through POSIX `open`/`read` (one allocation, no
/// intermediate `Data`).
public enum FileIO {
    /// Reads the whole file at `path`.
    /// - Throws: `DataError.fileNotFound` or `DataError.readFailed`.
    public static func readAll(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT { throw DataError.fileNotFound(path: path) }
            throw DataError.readFailed(path: path, reason: String(cString: strerror(code)))
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw DataError.readFailed(path: path, reason: String(cString: strerror(errno)))
        }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            throw DataError.readFailed(path: path, reason: "is a directory")
        }
        let size = Int(info.st_size)
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
        // Pick up anything appended after fstat (rare; keeps the read exact).
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n <= 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return bytes
    }

    /// Whether a regular file (or a directory, when `directory` is true) exists at `path`.
    public static func exists(_ path: String, directory: Bool = false) -> Bool {
        var info = stat()
        guard stat(path, &info) == 0 else { return false }
        let isDirectory = (info.st_mode & S_IFMT) == S_IFDIR
        return directory ? isDirectory : !isDirectory
    }
}
