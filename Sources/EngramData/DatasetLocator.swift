import Foundation
import Logging

/// Finds a dataset's files on disk, verifies them against the published MD5s, and downloads them
/// into the cache when they are nowhere to be found.
///
/// Roots are searched in this order (duplicates skipped); under each root the dataset lives in a
/// directory named after it (`mnist/`, `fashion-mnist/`, `cifar-10/`, `cifar-100/`):
/// 1. the explicit directory (`--data-dir`); this one may also hold the files directly;
/// 2. `$ENGRAM_DATA`;
/// 3. `./datasets`;
/// 4. `../shared/datasets`, relative to the current directory, then to the repository root;
/// 5. the cache, `~/.cache/engram/datasets`.
///
/// Files found on disk must match the published MD5s unless `verifyChecksums` is off (or, by default,
/// `ENGRAM_SKIP_CHECKSUMS=1` is set: for locally built or repackaged copies, such as test fixtures).
/// Downloads are always verified.
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

    /// The roots to search, in order, without duplicates.
    public func searchRoots() -> [String] {
        var roots: [String] = []
        if let explicitDirectory { roots.append(absolute(explicitDirectory)) }
        if let env = environment["ENGRAM_DATA"], !env.isEmpty { roots.append(absolute(env)) }
        roots.append(absolute("datasets"))
        roots.append(absolute("../shared/datasets"))
        if let repositoryRoot { roots.append(standardize(joinPath(repositoryRoot, "../shared/datasets"))) }
        roots.append(standardize(cacheDirectory))
        var seen = Set<String>()
        return roots.filter { seen.insert($0).inserted }
    }

    /// The candidate directories for `dataset`, in search order.
    public func candidateDirectories(for dataset: DatasetID) -> [String] {
        var result: [String] = []
        for root in searchRoots() {
            result.append(joinPath(root, dataset.directoryName))
            if let explicitDirectory, root == absolute(explicitDirectory) { result.append(root) }
        }
        return result
    }

    /// The first directory that holds all of `dataset`'s files (with matching MD5s when
    /// `verifyChecksums` is set).
    /// - Throws: `DataError.datasetNotFound`, listing each place searched and why it was rejected.
    public func locate(_ dataset: DatasetID) throws -> String {
        var searched: [String] = []
        for directory in candidateDirectories(for: dataset) {
            if let problem = check(dataset, in: directory) {
                searched.append("\(directory) (\(problem))")
                if !problem.hasPrefix("missing") { logger.warning("skipping \(directory): \(problem)") }
            } else {
                return directory
            }
        }
        throw DataError.datasetNotFound(dataset: dataset.rawValue, searched: searched)
    }

    /// Locates `dataset`, or downloads it into the cache (MD5-verified) if it is found nowhere.
    /// - Parameter progress: reports each file's download; `nil` for silence.
    public func locateOrDownload(_ dataset: DatasetID,
                                 progress: (@Sendable (KnownFile, DownloadProgress) -> Void)? = nil,
                                 downloader: Downloader = Downloader()) async throws -> String {
        if let found = try? locate(dataset) { return found }
        for (file, url, path) in try pendingDownloads(dataset) {
            try await downloader.download(from: url, to: path, md5: file.md5, expectedBytes: file.bytes,
                                          progress: perFile(progress, file))
        }
        return joinPath(standardize(cacheDirectory), dataset.directoryName)
    }

    /// `locateOrDownload` for synchronous callers (the command line): blocks until the files are in place.
    public func locateOrDownloadBlocking(_ dataset: DatasetID,
                                         progress: (@Sendable (KnownFile, DownloadProgress) -> Void)? = nil,
                                         downloader: Downloader = Downloader()) throws -> String {
        if let found = try? locate(dataset) { return found }
        for (file, url, path) in try pendingDownloads(dataset) {
            try downloader.downloadBlocking(from: url, to: path, md5: file.md5, expectedBytes: file.bytes,
                                            progress: perFile(progress, file))
        }
        return joinPath(standardize(cacheDirectory), dataset.directoryName)
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
        for file in dataset.files {
            let path = joinPath(directory, file.name)
            guard FileIO.exists(path) else { return "missing \(file.name)" }
            if verifyChecksums {
                do { try VerifiedFiles.shared.verify(path: path, md5: file.md5) } catch { return "\(error)" }
            }
        }
        return nil
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

/// Remembers files already verified in this process (by path, size and modification time), so
/// repeated lookups do not hash the same file twice.
final class VerifiedFiles: @unchecked Sendable {
    static let shared = VerifiedFiles()
    private let lock = NSLock()
    private var verified: Set<String> = []

    func verify(path: String, md5: String) throws {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        let size = (attributes?[.size] as? NSNumber)?.int64Value ?? -1
        let modified = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? -1
        let key = "\(path)|\(size)|\(modified)|\(md5.lowercased())"
        lock.lock()
        let known = verified.contains(key)
        lock.unlock()
        if known { return }
        try Checksum.verify(path: path, md5: md5)
        lock.lock()
        verified.insert(key)
        lock.unlock()
    }
}
