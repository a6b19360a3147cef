import EngramTensor
import EngramData
import Foundation
import Testing

/// Collects progress reports from the download's background queue.
final class ProgressLog: @unchecked Sendable {
    private let lock = NSLock()
    private var reports: [DownloadProgress] = []
    func add(_ p: DownloadProgress) { lock.lock(); reports.append(p); lock.unlock() }
    var all: [DownloadProgress] { lock.lock(); defer { lock.unlock() }; return reports }
}

@Suite("Downloader")
struct DownloaderTests {
    let payload: [UInt8] = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }

    @Test("downloads from a loopback server, verifies the MD5 and reports progress")
    func downloadsAndVerifies() async throws {
        let server = try LoopbackServer(routes: ["/file.bin": .body(payload)])
        defer { server.stop() }
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = ProgressLog()
        let destination = dir + "/sub/file.bin"
        try await Downloader(timeout: 10).download(from: server.url("/file.bin"), to: destination,
                                                   md5: Checksum.md5(payload), progress: { log.add($0) })
        #expect(try FileIO.readAll(destination) == payload)
        #expect(!FileManager.default.fileExists(atPath: destination + ".part"))
        #expect(log.all.last == DownloadProgress(bytesReceived: Int64(payload.count), totalBytes: Int64(payload.count)))
        #expect(log.all.last?.fraction == 1)
    }

    @Test("leaves no file under the final name when the checksum does not match")
    func rejectsWrongChecksum() async throws {
        let server = try LoopbackServer(routes: ["/file.bin": .body(payload)])
        defer { server.stop() }
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let destination = dir + "/file.bin"
        let wrong = String(repeating: "0", count: 32)
        await #expect(throws: DataError.checksumMismatch(path: server.url("/file.bin").absoluteString,
                                                        expected: wrong, actual: Checksum.md5(payload))) {
            try await Downloader(timeout: 10).download(from: server.url("/file.bin"), to: destination, md5: wrong)
        }
        #expect(!FileManager.default.fileExists(atPath: destination))
        #expect(!FileManager.default.fileExists(atPath: destination + ".part"))
    }

    @Test("fails and leaves no file when the server closes the connection mid-body")
    func rejectsInterruptedDownload() async throws {
        let server = try LoopbackServer(routes: [
            "/cut.bin": .truncated(body: Array(payload[0..<100_000]), declaredLength: payload.count),
        ])
        defer { server.stop() }
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let destination = dir + "/file.bin"
        let error = await #expect(throws: DataError.self) {
            try await Downloader(timeout: 10).download(from: server.url("/cut.bin"), to: destination,
                                                       md5: Checksum.md5(payload))
        }
        guard case .downloadFailed(let url, _)? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(url == server.url("/cut.bin").absoluteString)
        #expect(!FileManager.default.fileExists(atPath: destination))
        #expect(!FileManager.default.fileExists(atPath: destination + ".part"))
    }

    @Test("reports an HTTP error status and keeps an existing good file untouched")
    func reportsHTTPStatus() async throws {
        let server = try LoopbackServer(routes: [:])
        defer { server.stop() }
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        await #expect(throws: DataError.downloadFailed(url: server.url("/missing").absoluteString, reason: "HTTP status 404")) {
            try await Downloader(timeout: 10).download(from: server.url("/missing"), to: dir + "/x", md5: Checksum.md5(payload))
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/x"))
    }

    @Test("works from blocking code too")
    func downloadsBlocking() throws {
        let server = try LoopbackServer(routes: ["/f": .body([1, 2, 3])])
        defer { server.stop() }
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Downloader(timeout: 10).downloadBlocking(from: server.url("/f"), to: dir + "/f", md5: Checksum.md5([1, 2, 3]))
        #expect(try FileIO.readAll(dir + "/f") == [1, 2, 3])
    }
}

@Suite("ProgressBar")
struct ProgressBarTests {
    @Test("renders the fraction, the bar and the sizes in MiB")
    func renders() {
        let bar = ProgressBar(label: "mnist", width: 10)
        #expect(bar.render(DownloadProgress(bytesReceived: 1_048_576, totalBytes: 4_194_304)) == "mnist [##        ] 25% 1.0/4.0 MiB")
        #expect(bar.render(DownloadProgress(bytesReceived: 3_145_728, totalBytes: nil)) == "mnist 3.0 MiB")
    }
}
