import EngramTensor
import Crypto
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// How far a download has got.
public struct DownloadProgress: Sendable, Equatable {
    /// Bytes received so far.
    public var bytesReceived: Int64
    /// The total size, if the server sent a length (or the catalog knows it).
    public var totalBytes: Int64?
    /// `bytesReceived / totalBytes`, if the total is known.
    public var fraction: Double? {
        guard let total = totalBytes, total > 0 else { return nil }
        return min(1, Double(bytesReceived) / Double(total))
    }

    /// Creates a progress report.
    public init(bytesReceived: Int64, totalBytes: Int64?) {
        self.bytesReceived = bytesReceived
        self.totalBytes = totalBytes
    }
}

/// Downloads a file with MD5 verification. The body is streamed into `<destination>.part` while it
/// is hashed; only a complete body (the declared length, HTTP 200) whose MD5 matches is renamed to
/// `destination`. On any failure the `.part` file is removed, so a partial or corrupt file never sits
/// under the final name.
public struct Downloader: Sendable {
    /// Seconds without data before the request fails.
    public var timeout: TimeInterval

    /// Creates a downloader.
    public init(timeout: TimeInterval = 60) {
        self.timeout = timeout
    }

    /// Downloads `url` to `destination`, checking the body's MD5 against `md5`.
    /// - Parameters:
    ///   - expectedBytes: a size to report progress against if the server sends no length.
    ///   - progress: called (on a background queue) as data arrives.
    /// - Throws: `DataError.downloadFailed` (network error, HTTP status, short body),
    ///   `DataError.checksumMismatch`, or `DataError.writeFailed`.
    public func download(from url: URL, to destination: String, md5: String, expectedBytes: Int? = nil,
                         progress: (@Sendable (DownloadProgress) -> Void)? = nil) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            start(url: url, destination: destination, md5: md5, expectedBytes: expectedBytes, progress: progress) {
                continuation.resume(with: $0)
            }
        }
    }

    /// The blocking form of `download(from:to:md5:expectedBytes:progress:)`, for command-line use
    /// outside async code.
    public func downloadBlocking(from url: URL, to destination: String, md5: String, expectedBytes: Int? = nil,
                                 progress: (@Sendable (DownloadProgress) -> Void)? = nil) throws {
        let done = DispatchSemaphore(value: 0)
        let box = ResultBox()
        start(url: url, destination: destination, md5: md5, expectedBytes: expectedBytes, progress: progress) {
            box.result = $0
            done.signal()
        }
        done.wait()
        try box.result!.get()
    }

    private func start(url: URL, destination: String, md5: String, expectedBytes: Int?,
                       progress: (@Sendable (DownloadProgress) -> Void)?,
                       completion: @escaping @Sendable (Result<Void, any Error>) -> Void) {
        let partPath = destination + ".part"
        let directory = (destination as NSString).deletingLastPathComponent
        do {
            if !directory.isEmpty {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            }
            try? FileManager.default.removeItem(atPath: partPath)
            guard FileManager.default.createFile(atPath: partPath, contents: nil) else {
                throw DataError.writeFailed(path: partPath, reason: "cannot create file")
            }
        } catch {
            completion(.failure(error as? DataError ?? DataError.writeFailed(path: partPath, reason: "\(error)")))
            return
        }
        guard let handle = FileHandle(forWritingAtPath: partPath) else {
            completion(.failure(DataError.writeFailed(path: partPath, reason: "cannot open for writing")))
            return
        }
        let delegate = DownloadDelegate(url: url, partPath: partPath, destination: destination,
                                        md5: md5.lowercased(), expectedBytes: expectedBytes.map(Int64.init),
                                        handle: handle, progress: progress, completion: completion)
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeout
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        let queue = OperationQueue()
        queue.maxConcurrentOperationCount = 1
        let session = URLSession(configuration: configuration, delegate: delegate, delegateQueue: queue)
        delegate.session = session
        session.dataTask(with: URLRequest(url: url, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: timeout)).resume()
    }
}

private final class ResultBox: @unchecked Sendable {
    var result: Result<Void, any Error>?
}

/// Receives the body on the session's serial delegate queue: writes, hashes, and finishes once.
private final class DownloadDelegate: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    let url: URL, partPath: String, destination: String, md5: String
    let handle: FileHandle
    let progress: (@Sendable (DownloadProgress) -> Void)?
    let completion: @Sendable (Result<Void, any Error>) -> Void
    var session: URLSession?
    var hasher = Insecure.MD5()
    var received: Int64 = 0
    var total: Int64?
    var status = 0
    var failure: DataError?
    var finished = false

    init(url: URL, partPath: String, destination: String, md5: String, expectedBytes: Int64?, handle: FileHandle,
         progress: (@Sendable (DownloadProgress) -> Void)?,
         completion: @escaping @Sendable (Result<Void, any Error>) -> Void) {
        self.url = url
        self.partPath = partPath
        self.destination = destination
        self.md5 = md5
        self.total = expectedBytes
        self.handle = handle
        self.progress = progress
        self.completion = completion
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        status = (response as? HTTPURLResponse)?.statusCode ?? 200
        guard status == 200 else {
            failure = .downloadFailed(url: url.absoluteString, reason: "HTTP status \(status)")
            completionHandler(.cancel)
            return
        }
        if response.expectedContentLength > 0 { total = response.expectedContentLength }
        progress?(DownloadProgress(bytesReceived: 0, totalBytes: total))
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        guard failure == nil else { return }
        do {
            try handle.write(contentsOf: data)
        } catch {
            failure = .writeFailed(path: partPath, reason: "\(error)")
            dataTask.cancel()
            return
        }
        data.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        received += Int64(data.count)
        progress?(DownloadProgress(bytesReceived: received, totalBytes: total))
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
        guard !finished else { return }
        finished = true
        try? handle.close()
        session.finishTasksAndInvalidate()
        self.session = nil
        let result: Result<Void, any Error>
        if let failure {
            result = .failure(failure)
        } else if let error {
            result = .failure(DataError.downloadFailed(url: url.absoluteString, reason: error.localizedDescription))
        } else if let expected = (task.response?.expectedContentLength).flatMap({ $0 > 0 ? $0 : nil }), expected != received {
            result = .failure(DataError.downloadFailed(
                url: url.absoluteString, reason: "connection closed after \(received) of \(expected) bytes"))
        } else {
            let actual = Checksum.hexString(hasher.finalize())
            if actual != md5 {
                result = .failure(DataError.checksumMismatch(path: url.absoluteString, expected: md5, actual: actual))
            } else {
                do {
                    try? FileManager.default.removeItem(atPath: destination)
                    try FileManager.default.moveItem(atPath: partPath, toPath: destination)
                    result = .success(())
                } catch {
                    result = .failure(DataError.writeFailed(path: destination, reason: "\(error)"))
                }
            }
        }
        if case .failure = result { try? FileManager.default.removeItem(atPath: partPath) }
        completion(result)
    }
}

/// A one-line text progress bar for downloads, redrawn in place on standard error.
public final class ProgressBar: @unchecked Sendable {
    private let label: String
    private let width: Int
    private let lock = NSLock()
    private var lastDrawn = -1

    /// Creates a bar that prefixes each line with `label`.
    public init(label: String, width: Int = 30) {
        self.label = label
        self.width = width
    }

    /// Redraws the bar for `progress` (at most once per percent).
    public func update(_ progress: DownloadProgress) {
        lock.lock(); defer { lock.unlock() }
        if let fraction = progress.fraction {
            let percent = Int(fraction * 100)
            guard percent != lastDrawn else { return }
            lastDrawn = percent
        }
        FileHandle.standardError.write(Data(("\r" + render(progress) + (progress.fraction == 1 ? "\n" : "")).utf8))
    }

    /// The text of the bar for `progress`, e.g. `mnist [###############               ] 50% 4.7/9.5 MiB`.
    public func render(_ progress: DownloadProgress) -> String {
        let mb = Double(progress.bytesReceived) / 1_048_576
        guard let fraction = progress.fraction else { return "\(label) \(format(mb)) MiB" }
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled)
        let total = Double(progress.totalBytes ?? 0) / 1_048_576
        return "\(label) [\(bar)] \(Int(fraction * 100))% \(format(mb))/\(format(total)) MiB"
    }

    /// The bar as a progress callback.
    public var callback: @Sendable (DownloadProgress) -> Void { { [self] in update($0) } }

    private func format(_ x: Double) -> String { String(format: "%.1f", x) }
}
