import EngramTensor
import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One dataset file a run used: where it was and its MD5 — the provenance recorded as `data_files`.
public struct DataFileRecord: Sendable, Equatable, Codable {
    /// The file's path.
    public var path: String
    /// The file's MD5, lower-case hex (computed from the bytes on disk).
    public var md5: String

    /// Creates a record.
    public init(path: String, md5: String) {
        self.path = path
        self.md5 = md5
    }
}

/// A place the locator searched and did not use, with the reason.
public struct RejectedCandidate: Sendable, Equatable, Codable {
    /// The directory searched.
    public var path: String
    /// Why it was not used, e.g. `missing train-images-idx3-ubyte.gz` or a checksum mismatch.
    public var reason: String

    /// Creates a record.
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
}

/// Where a dataset was found, with the provenance of each file and why each earlier place was passed
/// over — for the caller to log and record in results.
public struct LocatedDataset: Sendable, Equatable {
    /// The dataset.
    public var dataset: DatasetID
    /// The directory holding its files (pass it to `DatasetID.load(from:)`).
    public var directory: String
    /// Each file used, with its MD5, in the catalog's order.
    public var files: [DataFileRecord]
    /// The places searched before `directory`, each with the reason it was rejected.
    public var rejected: [RejectedCandidate]
    /// Whether the files were downloaded (into the cache) by this lookup.
    public var downloaded: Bool
}

/// Finds a dataset's files on disk, verifies them against the published MD5s, and downloads them
/// into the cache when they are nowhere to be found.
///
/// With an explicit directory (`--data-dir`), that directory is the only place searched: the
/// dataset's files must be in `<dir>/<dataset>/` or directly in `<dir>`, and any defect there — a
/// missing file, a wrong MD5, a FIFO or device instead of a file — is an error naming the file and
/// the defect. Nothing else is substituted and nothing is downloaded.
///
/// Without one, roots are searched in this order (duplicates skipped); under each root the dataset
/// lives in a directory named after it (`mnist/`, `fashion-mnist/`, `cifar-10/`, `cifar-100/`):
/// 1. `$ENGRAM_DATA`;
/// 2. `./datasets`;
/// 3. `../shared/datasets`, relative to the current directory, then to the repository root;
/// 4. the cache, `~/.cache/engram/datasets`.
/// The first complete, verified copy wins; `locateDataset` returns the reasons every earlier place
/// was rejected along with the MD5 of each file used. When nothing is found (and the download fails)
/// the error lists every place searched and why each failed.
///
/// MNIST-format files may be gzip-compressed (the published names) or uncompressed (the names
/// without `.gz`). Compressed files found on disk must match the published MD5s unless
/// `verifyChecksums` is off (or, by default, `ENGRAM_SKIP_CHECKSUMS=1` is set: for locally built or
/// repackaged copies, such as test fixtures); uncompressed ones, which have no published MD5, must
/// have the IDX header and exact length of the file they stand for. Downloads are always verified.
public struct DatasetLocator: Sendable {
    /// The directory given on the command line, if any.
    public var explicitDirectory: String?
    /// The environment (for `ENGRAM_DATA`).
    public var environment: [String: String]
    /// The current directory.
    public var currentDirectory: String
    /// The repository root, if known.
    public var repositoryRoot: String?
    /// Where downloads go: `<cacheDirectory>/<dataset>/<file>`.
    public var cacheDirectory: String
    /// Whether found files must match their published MD5 (downloads are verified regardless).
    public var verifyChecksums: Bool
    /// Where to download files from; replaceable (tests serve from loopback).
    public var urlForFile: @Sendable (DatasetID, KnownFile) -> URL?

    /// Creates a locator. Defaults come from the process: environment, current directory, the
    /// repository found above it (a directory holding `Package.swift`), and `$HOME/.cache`.
    /// `verifyChecksums` defaults to on unless the environment sets `ENGRAM_SKIP_CHECKSUMS=1`.
    public init(dataDirectory: String? = nil,
                environment: [String: String] = ProcessInfo.processInfo.environment,
                currentDirectory: String = FileManager.default.currentDirectoryPath,
                repositoryRoot: String? = nil,
                cacheDirectory: String? = nil,
                verifyChecksums: Bool? = nil) {
        self.explicitDirectory = dataDirectory
        self.environment = environment
        self.currentDirectory = currentDirectory
        self.repositoryRoot = repositoryRoot ?? DatasetLocator.findRepositoryRoot(from: currentDirectory)
        let home = environment["HOME"] ?? NSHomeDirectory()
        self.cacheDirectory = cacheDirectory ?? joinPath(home, ".cache/engram/datasets")
        self.verifyChecksums = verifyChecksums ?? (environment["ENGRAM_SKIP_CHECKSUMS"] != "1")
        self.urlForFile = { _, file in URL(string: file.url) }
    }

    /// The roots to search, in order, without duplicates: only the explicit directory if there is one.
    public func searchRoots() -> [String] {
        if let explicitDirectory { return [absolute(explicitDirectory)] }
        var roots: [String] = []
        if let env = environment["ENGRAM_DATA"], !env.isEmpty { roots.append(absolute(env)) }
        roots.append(absolute("datasets"))
        roots.append(absolute("../shared/datasets"))
        if let repositoryRoot { roots.append(standardize(joinPath(repositoryRoot, "../shared/datasets"))) }
        roots.append(standardize(cacheDirectory))
        var seen = Set<String>()
        return roots.filter { seen.insert($0).inserted }
    }

    /// The candidate directories for `dataset`, in search order (for an explicit directory:
    /// `<dir>/<dataset>`, then `<dir>` itself).
    public func candidateDirectories(for dataset: DatasetID) -> [String] {
        var result: [String] = []
        for root in searchRoots() {
            result.append(joinPath(root, dataset.directoryName))
            if explicitDirectory != nil { result.append(root) }
        }
        return result
    }

    /// The first directory that holds all of `dataset`'s files (verified; see the type's notes).
    /// - Throws: a `DataError` naming the defective file in an explicit directory, or
    ///   `DataError.datasetNotFound` listing each place searched and why it was rejected.
    public func locate(_ dataset: DatasetID) throws -> String {
        try locateDataset(dataset).directory
    }

    /// Locates `dataset` on disk, returning the directory, each file's path and MD5, and why each
    /// earlier candidate was rejected.
    /// - Throws: a `DataError` naming the defective file in an explicit directory, or
    ///   `DataError.datasetNotFound` listing each place searched and why it was rejected.
    public func locateDataset(_ dataset: DatasetID) throws -> LocatedDataset {
        switch try searchDisk(dataset) {
        case .found(let located): return located
        case .notFound(let rejected): throw Self.notFound(dataset, rejected)
        }
    }

    /// Locates `dataset`, or — without an explicit directory — downloads it into the cache
    /// (MD5-verified) if it is found nowhere, returning the provenance of the files used.
    /// - Throws: as `locateDataset`; when the download fails too, `DataError.datasetNotFound`
    ///   listing every place searched and the download's failure.
    public func locateOrDownloadDataset(_ dataset: DatasetID,
                                        progress: (@Sendable (KnownFile, DownloadProgress) -> Void)? = nil,
                                        downloader: Downloader = Downloader()) throws -> LocatedDataset {
        let rejected: [RejectedCandidate]
        switch try searchDisk(dataset) {
        case .found(let located): return located
        case .notFound(let places): rejected = places
        }
        do {
            for (file, url, path) in try pendingDownloads(dataset) {
                try downloader.downloadBlocking(from: url, to: path, md5: file.md5, expectedBytes: file.bytes,
                                                progress: perFile(progress, file))
            }
        } catch {
            throw Self.notFound(dataset, rejected, download: error)
        }
        return try downloadedDataset(dataset, rejected: rejected)
    }

    /// Locates `dataset`, or downloads it into the cache (MD5-verified) if it is found nowhere and no
    /// explicit directory was given.
    /// - Parameter progress: reports each file's download; `nil` for silence.
    public func locateOrDownload(_ dataset: DatasetID,
                                 progress: (@Sendable (KnownFile, DownloadProgress) -> Void)? = nil,
                                 downloader: Downloader = Downloader()) async throws -> String {
        let rejected: [RejectedCandidate]
        switch try searchDisk(dataset) {
        case .found(let located): return located.directory
        case .notFound(let places): rejected = places
        }
        do {
            for (file, url, path) in try pendingDownloads(dataset) {
                try await downloader.download(from: url, to: path, md5: file.md5, expectedBytes: file.bytes,
                                              progress: perFile(progress, file))
            }
        } catch {
            throw Self.notFound(dataset, rejected, download: error)
        }
        return try downloadedDataset(dataset, rejected: rejected).directory
    }

    /// `locateOrDownload` for synchronous callers (the command line): blocks until the files are in place.
    public func locateOrDownloadBlocking(_ dataset: DatasetID,
                                         progress: (@Sendable (KnownFile, DownloadProgress) -> Void)? = nil,
                                         downloader: Downloader = Downloader()) throws -> String {
        try locateOrDownloadDataset(dataset, progress: progress, downloader: downloader).directory
    }

    /// The outcome of a search of the disk.
    private enum DiskSearch {
        case found(LocatedDataset)
        /// Nothing usable, and a download may be tried (no explicit directory).
        case notFound([RejectedCandidate])
    }

    /// Searches the candidate directories. With an explicit directory, the first candidate holding
    /// any of the files is the dataset's directory and its defects are thrown; with none present,
    /// `datasetNotFound` is thrown (no download).
    private func searchDisk(_ dataset: DatasetID) throws -> DiskSearch {
        let candidates = candidateDirectories(for: dataset)
        if explicitDirectory != nil {
            for directory in candidates where holdsAnyFile(of: dataset, in: directory) {
                let files = try inspect(dataset, in: directory)
                return .found(LocatedDataset(dataset: dataset, directory: directory, files: files, rejected: [], downloaded: false))
            }
            let rejected = candidates.map { RejectedCandidate(path: $0, reason: "missing \(dataset.files[0].name)") }
            throw Self.notFound(dataset, rejected + [RejectedCandidate(path: "download", reason: "not tried: data_dir names the only place to look")])
        }
        var rejected: [RejectedCandidate] = []
        for directory in candidates {
            do {
                let files = try inspect(dataset, in: directory)
                return .found(LocatedDataset(dataset: dataset, directory: directory, files: files, rejected: rejected, downloaded: false))
            } catch {
                let reason = Self.reason(error)
                rejected.append(RejectedCandidate(path: directory, reason: reason))
                if !reason.hasPrefix("missing") { logger.warning("skipping \(directory): \(reason)") }
            }
        }
        return .notFound(rejected)
    }

    /// `datasetNotFound` listing each rejected place (and the download's failure, if one was tried).
    private static func notFound(_ dataset: DatasetID, _ rejected: [RejectedCandidate], download: (any Error)? = nil) -> DataError {
        DataError.datasetNotFound(dataset: dataset.rawValue,
                                  searched: rejected.map { "\($0.path) (\($0.reason))" } + (download.map { ["\($0)"] } ?? []))
    }

    /// The cache copy just downloaded, inspected (MD5s) as any other.
    private func downloadedDataset(_ dataset: DatasetID, rejected: [RejectedCandidate]) throws -> LocatedDataset {
        let directory = joinPath(standardize(cacheDirectory), dataset.directoryName)
        let files = try inspect(dataset, in: directory)
        return LocatedDataset(dataset: dataset, directory: directory, files: files, rejected: rejected, downloaded: true)
    }

    /// A per-file progress callback from a per-dataset one.
    private func perFile(_ progress: (@Sendable (KnownFile, DownloadProgress) -> Void)?,
                         _ file: KnownFile) -> (@Sendable (DownloadProgress) -> Void)? {
        guard let progress else { return nil }
        return { (p: DownloadProgress) in progress(file, p) }
    }

    /// The files of `dataset` still missing (or wrong) in the cache, with their URLs and cache paths.
    private func pendingDownloads(_ dataset: DatasetID) throws -> [(KnownFile, URL, String)] {
        let directory = joinPath(standardize(cacheDirectory), dataset.directoryName)
        return try dataset.files.compactMap { file in
            let path = joinPath(directory, file.name)
            if FileIO.exists(path), (try? Checksum.verify(path: path, md5: file.md5)) != nil { return nil }
            guard let url = urlForFile(dataset, file) else {
                throw DataError.downloadFailed(url: file.url, reason: "invalid URL")
            }
            logger.info("downloading \(url.absoluteString) to \(path)")
            return (file, url, path)
        }
    }

    /// Locates (or downloads) `dataset` and reads its train and test splits.
    public func load(_ dataset: DatasetID, download: Bool = false) async throws -> DatasetPair {
        let directory = download ? try await locateOrDownload(dataset) : try locate(dataset)
        return try dataset.load(from: directory)
    }

    /// Locates `dataset` (no download) and reads its train and test splits.
    public func loadLocal(_ dataset: DatasetID) throws -> DatasetPair {
        try dataset.load(from: locate(dataset))
    }

    /// Why `directory` does not hold a usable copy of `dataset`, or `nil` if it does.
    public func check(_ dataset: DatasetID, in directory: String) -> String? {
        do {
            _ = try inspect(dataset, in: directory)
            return nil
        } catch {
            return Self.reason(error)
        }
    }

    /// Checks every file of `dataset` in `directory` and returns their paths and MD5s.
    /// - Throws: `DataError.fileNotFound` (reported as `missing <name>`), `.notRegularFile`,
    ///   `.checksumMismatch`, or a structural error for an uncompressed IDX file.
    public func inspect(_ dataset: DatasetID, in directory: String) throws -> [DataFileRecord] {
        try dataset.files.map { file in
            guard let variant = Self.existingVariant(of: file, in: directory) else {
                throw DataError.fileNotFound(path: joinPath(directory, file.name))
            }
            let path = variant.path
            guard let kind = FileIO.kind(of: path) else {
                throw DataError.readFailed(path: path, reason: "dangling symbolic link")
            }
            guard kind == "regular file" else { throw DataError.notRegularFile(path: path, kind: kind) }
            let md5 = try VerifiedFiles.shared.md5(path: path)
            if verifyChecksums {
                if variant.compressed {
                    guard md5 == file.md5.lowercased() else {
                        throw DataError.checksumMismatch(path: path, expected: file.md5.lowercased(), actual: md5)
                    }
                } else {
                    try Self.checkUncompressedIDX(path: path, standingFor: file)
                }
            }
            return DataFileRecord(path: path, md5: md5)
        }
    }

    /// The file's published (compressed) name in `directory`, else its uncompressed name for a
    /// `.gz` IDX file, whichever exists (as anything: a FIFO is found, then refused).
    static func existingVariant(of file: KnownFile, in directory: String) -> (path: String, compressed: Bool)? {
        let published = joinPath(directory, file.name)
        if FileIO.anythingExists(at: published) { return (published, true) }
        if file.name.hasSuffix("-ubyte.gz") {
            let plain = joinPath(directory, String(file.name.dropLast(3)))
            if FileIO.anythingExists(at: plain) { return (plain, false) }
        }
        return nil
    }

    /// Whether any file of `dataset` (either variant) is present in `directory`.
    private func holdsAnyFile(of dataset: DatasetID, in directory: String) -> Bool {
        dataset.files.contains { Self.existingVariant(of: $0, in: directory) != nil }
    }

    /// Checks an uncompressed MNIST-format file, which has no published MD5, by its header and
    /// length: the magic, 60,000 (train) or 10,000 (t10k) items, 28×28 images, and nothing more.
    static func checkUncompressedIDX(path: String, standingFor file: KnownFile) throws {
        let isImages = file.name.contains("-images-")
        let count = file.name.hasPrefix("train") ? 60_000 : 10_000
        let headerSize = isImages ? 16 : 8
        let (fd, size) = try FileIO.openRegularFile(path)
        defer { close(fd) }
        var header = [UInt8](repeating: 0, count: headerSize)
        let n = header.withUnsafeMutableBytes { read(fd, $0.baseAddress!, headerSize) }
        guard n == headerSize else { throw DataError.lengthMismatch(path: path, expected: headerSize, actual: max(0, n)) }
        let magic = IDX.bigEndian(header, 0)
        let expectedMagic = isImages ? IDX.imagesMagic : IDX.labelsMagic
        guard magic == expectedMagic else { throw DataError.badMagic(path: path, expected: expectedMagic, found: magic) }
        let dims = (isImages ? [count, 28, 28] : [count])
        let found = (0 ..< dims.count).map { Int(IDX.bigEndian(header, 4 + 4 * $0)) }
        guard found == dims else {
            throw DataError.badDimensions(path: path, reason: "\(found.map(String.init).joined(separator: "×")), expected "
                + dims.map(String.init).joined(separator: "×"))
        }
        let dataBytes = dims.reduce(1, *)
        guard size - headerSize == dataBytes else {
            throw DataError.lengthMismatch(path: path, expected: dataBytes, actual: size - headerSize)
        }
    }

    /// A rejection reason: `missing <name>` for an absent file, else the error's one-line description.
    static func reason(_ error: any Error) -> String {
        if case DataError.fileNotFound(let path)? = error as? DataError {
            return "missing " + (path.split(separator: "/").last.map(String.init) ?? path)
        }
        return "\(error)"
    }

    /// The nearest directory at or above `start` that holds a `Package.swift`.
    public static func findRepositoryRoot(from start: String) -> String? {
        var url = URL(fileURLWithPath: start).standardizedFileURL
        while true {
            if FileIO.exists(url.appendingPathComponent("Package.swift").path) { return url.path }
            let parent = url.deletingLastPathComponent()
            if parent.path == url.path { return nil }
            url = parent
        }
    }

    private func absolute(_ path: String) -> String {
        standardize(path.hasPrefix("/") ? path : joinPath(currentDirectory, path))
    }

    private func standardize(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.path
    }
}

private let logger = Logger(label: "engram.data")

/// Remembers the MD5s of files already hashed in this process (by path, size and modification
/// time), so repeated lookups do not hash the same file twice.
final class VerifiedFiles: @unchecked Sendable {
    static let shared = VerifiedFiles()
    private let lock = NSLock()
    private var digests: [String: String] = [:]

    /// The MD5 of the regular file at `path`, from memory when it has not changed since.
    func md5(path: String) throws -> String {
        var info = stat()
        let key: String
        if stat(path, &info) == 0 {
            #if canImport(Darwin)
            let modified = info.st_mtimespec
            #else
            let modified = info.st_mtim
            #endif
            key = "\(path)|\(info.st_size)|\(modified.tv_sec).\(modified.tv_nsec)|\(info.st_ino)"
        } else {
            key = ""
        }
        lock.lock()
        let known = key.isEmpty ? nil : digests[key]
        lock.unlock()
        if let known { return known }
        let digest = try Checksum.md5(path: path)
        if !key.isEmpty {
            lock.lock()
            digests[key] = digest
            lock.unlock()
        }
        return digest
    }

    /// Checks the file at `path` against `md5`.
    func verify(path: String, md5 expected: String) throws {
        let actual = try md5(path: path)
        guard actual == expected.lowercased() else {
            throw DataError.checksumMismatch(path: path, expected: expected.lowercased(), actual: actual)
        }
    }
}
