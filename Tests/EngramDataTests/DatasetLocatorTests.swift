import EngramData
import Foundation
import Testing

@Suite("DatasetLocator")
struct DatasetLocatorTests {
    /// Creates `<root>/mnist/` with the four MNIST file names (placeholder contents).
    func plantMNIST(in root: String, contents: [UInt8] = [0]) throws {
        try FileManager.default.createDirectory(atPath: root + "/mnist", withIntermediateDirectories: true)
        for file in DatasetID.mnist.files { try write(contents, to: root + "/mnist/" + file.name) }
    }

    @Test("searches --data-dir, $ENGRAM_DATA, ./datasets, ../shared/datasets, then the cache")
    func searchOrder() throws {
        let base = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let cwd = base + "/work/project"
        let repo = base + "/repo/engram"
        try FileManager.default.createDirectory(atPath: cwd, withIntermediateDirectories: true)
        let locator = DatasetLocator(dataDirectory: "given", environment: ["ENGRAM_DATA": base + "/env", "HOME": base + "/home"],
                                     currentDirectory: cwd, repositoryRoot: repo, verifyChecksums: false)
        #expect(locator.searchRoots() == [
            cwd + "/given", base + "/env", cwd + "/datasets", base + "/work/shared/datasets",
            base + "/repo/shared/datasets", base + "/home/.cache/engram/datasets",
        ])
        // Fill the roots from the lowest priority up; each time the new, higher one wins.
        for root in [base + "/home/.cache/engram/datasets", base + "/repo/shared/datasets", base + "/work/shared/datasets",
                     cwd + "/datasets", base + "/env", cwd + "/given"] {
            try plantMNIST(in: root)
            #expect(try locator.locate(.mnist) == root + "/mnist")
        }
    }

    @Test("accepts the files directly inside --data-dir")
    func explicitDirectoryHoldingFiles() throws {
        let locator = DatasetLocator(dataDirectory: mnistDirectory, environment: [:], currentDirectory: "/nonexistent",
                                     repositoryRoot: "/nonexistent", cacheDirectory: "/nonexistent/cache")
        #expect(try locator.locate(.mnist) == mnistDirectory)
        // MNIST's files are there, but their checksums are not Fashion-MNIST's.
        #expect(throws: DataError.self) { try locator.locate(.fashionMNIST) }
    }

    @Test("skips a copy whose MD5 is wrong and uses the next verified one")
    func skipsBadChecksum() throws {
        let base = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: base) }
        try plantMNIST(in: base + "/bad", contents: [1, 2, 3])
        let locator = DatasetLocator(dataDirectory: base + "/bad", environment: ["ENGRAM_DATA": datasetsRoot],
                                     currentDirectory: base, repositoryRoot: base, cacheDirectory: base + "/cache")
        #expect(try locator.locate(.mnist) == datasetsRoot + "/mnist")
        #expect(locator.check(.mnist, in: base + "/bad/mnist")?.contains("does not match the published") == true)
    }

    @Test("lists every searched place when the dataset is nowhere")
    func reportsNotFound() throws {
        let base = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let locator = DatasetLocator(environment: [:], currentDirectory: base, repositoryRoot: base,
                                     cacheDirectory: base + "/cache")
        let error = #expect(throws: DataError.self) { try locator.locate(.cifar100) }
        guard case .datasetNotFound(let name, let searched)? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(name == "cifar-100")
        // ./datasets, ../shared/datasets (cwd and repository root coincide), the cache.
        #expect(searched.count == 3)
        #expect(searched.last == base + "/cache/cifar-100 (missing cifar-100-binary.tar.gz)")
    }

    @Test("the shared files match the catalog's published MD5s")
    func catalogChecksumsMatchSharedFiles() throws {
        for dataset in [DatasetID.mnist, .fashionMNIST] {
            for file in dataset.files {
                let path = datasetsRoot + "/\(dataset.directoryName)/\(file.name)"
                #expect(try Checksum.md5(path: path) == file.md5, "\(path)")
                #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int == file.bytes)
            }
        }
    }

    @Test("downloads a missing dataset into the cache from a loopback mirror, then loads it")
    func downloadsIntoCache() async throws {
        var routes: [String: LoopbackServer.Reply] = [:]
        for file in DatasetID.mnist.files { routes["/mnist/" + file.name] = .body(try FileIO.readAll(mnistDirectory + "/" + file.name)) }
        let server = try LoopbackServer(routes: routes)
        defer { server.stop() }
        let base = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: base) }
        var locator = DatasetLocator(environment: [:], currentDirectory: base, repositoryRoot: base, cacheDirectory: base + "/cache")
        locator.urlForFile = { _, file in server.url("/mnist/" + file.name) }
        let log = ProgressLog()
        let directory = try await locator.locateOrDownload(.mnist, progress: { _, p in log.add(p) })
        #expect(directory == base + "/cache/mnist")
        #expect(server.requests.count == 4)
        #expect(log.all.contains { $0.bytesReceived == 9_912_422 && $0.fraction == 1 })
        #expect(try locator.locate(.mnist) == directory)
        let test = try MNISTReader.load(directory: directory, split: .test)
        #expect(test.classCounts() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
        // Already present: no new requests.
        _ = try await locator.locateOrDownload(.mnist)
        #expect(server.requests.count == 4)
    }

    @Test("a mirror serving wrong bytes leaves nothing in the cache")
    func downloadWithWrongBytesLeavesNothing() async throws {
        var routes: [String: LoopbackServer.Reply] = [:]
        for file in DatasetID.mnist.files { routes["/" + file.name] = .body([1, 2, 3]) }
        let server = try LoopbackServer(routes: routes)
        defer { server.stop() }
        let base = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: base) }
        var locator = DatasetLocator(environment: [:], currentDirectory: base, repositoryRoot: base, cacheDirectory: base + "/cache")
        locator.urlForFile = { _, file in server.url("/" + file.name) }
        await #expect(throws: DataError.self) { _ = try await locator.locateOrDownload(.mnist) }
        let left = (try? FileManager.default.contentsOfDirectory(atPath: base + "/cache/mnist")) ?? []
        #expect(left.isEmpty)
    }
}
