import EngramTensor
import EngramData
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("DatasetLocator")
struct DatasetLocatorTests {
    /// Creates `<root>/mnist/` with the four MNIST file names (placeholder contents).
    func plantMNIST(in root: String, contents: [UInt8] = [0]) throws {
        try FileManager.default.createDirectory(atPath: root + "/mnist", withIntermediateDirectories: true)
        for file in DatasetID.mnist.files { try write(contents, to: root + "/mnist/" + file.name) }
    }

    @Test("searches $ENGRAM_DATA, ./datasets, ../shared/datasets, then the cache; --data-dir alone when given")
    func searchOrder() throws {
        let base = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let cwd = base + "/work/project"
        let repo = base + "/repo/engram"
        try FileManager.default.createDirectory(atPath: cwd, withIntermediateDirectories: true)
        let environment = ["ENGRAM_DATA": base + "/env", "HOME": base + "/home"]
        let locator = DatasetLocator(environment: environment, currentDirectory: cwd, repositoryRoot: repo, verifyChecksums: false)
        #expect(locator.searchRoots() == [
            base + "/env", cwd + "/datasets", base + "/work/shared/datasets",
            base + "/repo/shared/datasets", base + "/home/.cache/engram/datasets",
        ])
        // Fill the roots from the lowest priority up; each time the new, higher one wins.
        for root in [base + "/home/.cache/engram/datasets", base + "/repo/shared/datasets", base + "/work/shared/datasets",
                     cwd + "/datasets", base + "/env"] {
            try plantMNIST(in: root)
            #expect(try locator.locate(.mnist) == root + "/mnist")
        }
        let explicit = DatasetLocator(dataDirectory: "given", environment: environment, currentDirectory: cwd,
                                      repositoryRoot: repo, verifyChecksums: false)
        #expect(explicit.searchRoots() == [cwd + "/given"])
        #expect(explicit.candidateDirectories(for: .mnist) == [cwd + "/given/mnist", cwd + "/given"])
        try plantMNIST(in: cwd + "/given")
        #expect(try explicit.locate(.mnist) == cwd + "/given/mnist")
    }

    @Test("accepts the files directly inside --data-dir")
    func explicitDirectoryHoldingFiles() throws {
        let locator = DatasetLocator(dataDirectory: mnistDirectory, environment: [:], currentDirectory: "/nonexistent",
                                     repositoryRoot: "/nonexistent", cacheDirectory: "/nonexistent/cache")
        #expect(try locator.locate(.mnist) == mnistDirectory)
        // MNIST's files are there, but their checksums are not Fashion-MNIST's.
        #expect(throws: DataError.checksumMismatch(path: mnistDirectory + "/train-images-idx3-ubyte.gz",
                                                   expected: "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                                                   actual: "f68b3c2dcbeaaa9fbdd348bbdeb94873")) {
            try locator.locate(.fashionMNIST)
        }
    }

    @Test("a wrong MD5 in --data-dir is an error naming the file, never replaced by another copy")
    func explicitDirectoryWithBadChecksumIsAnError() throws {
        let base = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: base) }
        try plantMNIST(in: base + "/bad", contents: [1, 2, 3])
        // A verified copy sits in $ENGRAM_DATA and in the cache: neither may stand in for --data-dir.
        let locator = DatasetLocator(dataDirectory: base + "/bad", environment: ["ENGRAM_DATA": datasetsRoot],
                                     currentDirectory: base, repositoryRoot: base, cacheDirectory: datasetsRoot)
        #expect(throws: DataError.checksumMismatch(path: base + "/bad/mnist/train-images-idx3-ubyte.gz",
                                                   expected: "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                                                   actual: Checksum.md5([1, 2, 3]))) {
            try locator.locateOrDownloadBlocking(.mnist, progress: nil)
        }
        #expect(locator.check(.mnist, in: base + "/bad/mnist")?.contains("does not match the published") == true)
    }

    @Test("a missing file or a FIFO in --data-dir is an error naming it")
    func explicitDirectoryWithMissingOrSpecialFileIsAnError() throws {
        let base = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: base) }
        try plantMNIST(in: base)
        let locator = DatasetLocator(dataDirectory: base, environment: ["ENGRAM_DATA": datasetsRoot],
                                     currentDirectory: base, repositoryRoot: base, cacheDirectory: datasetsRoot,
                                     verifyChecksums: false)
        let labels = base + "/mnist/t10k-labels-idx1-ubyte.gz"
        try FileManager.default.removeItem(atPath: labels)
        #expect(throws: DataError.fileNotFound(path: labels)) { try locator.locateOrDownloadBlocking(.mnist, progress: nil) }
        #expect(mkfifo(labels, 0o644) == 0)
        #expect(throws: DataError.notRegularFile(path: labels, kind: "FIFO")) { try locator.locateDataset(.mnist) }
    }

    @Test("an empty --data-dir is an error listing where it looked, with no download")
    func emptyExplicitDirectoryIsAnError() throws {
        let base = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let locator = DatasetLocator(dataDirectory: base, environment: [:], currentDirectory: base,
                                     repositoryRoot: base, cacheDirectory: datasetsRoot)
        let error = #expect(throws: DataError.self) { try locator.locateOrDownloadBlocking(.mnist, progress: nil) }
        #expect(error?.description == "dataset mnist not found; searched: \(base)/mnist (missing train-images-idx3-ubyte.gz); "
            + "\(base) (missing train-images-idx3-ubyte.gz); download (not tried: data_dir names the only place to look)")
    }

    @Test("without --data-dir, returns each file's MD5 and why each earlier place was rejected")
    func reportsProvenanceAndRejections() throws {
        let base = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: base) }
        try plantMNIST(in: base + "/bad", contents: [1, 2, 3])
        let locator = DatasetLocator(environment: ["ENGRAM_DATA": base + "/bad"], currentDirectory: base,
                                     repositoryRoot: base, cacheDirectory: datasetsRoot)
        let located = try locator.locateDataset(.mnist)
        #expect(located.directory == datasetsRoot + "/mnist")
        #expect(located.files == DatasetID.mnist.files.map {
            DataFileRecord(path: datasetsRoot + "/mnist/" + $0.name, md5: $0.md5)
        })
        #expect(located.rejected.map(\.path) == [base + "/bad/mnist", base + "/datasets/mnist", base + "/../shared/datasets/mnist"]
            .map { URL(fileURLWithPath: $0).standardizedFileURL.path })
        #expect(located.rejected[0].reason == "\(base)/bad/mnist/train-images-idx3-ubyte.gz: MD5 \(Checksum.md5([1, 2, 3])) "
            + "does not match the published f68b3c2dcbeaaa9fbdd348bbdeb94873")
        #expect(located.rejected[1].reason == "missing train-images-idx3-ubyte.gz")
        #expect(!located.downloaded)
    }

    @Test("finds uncompressed IDX files, checking their headers and lengths instead of the published MD5s")
    func findsUncompressedIDXFiles() throws {
        let base = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: base) }
        try FileManager.default.createDirectory(atPath: base + "/plain/mnist", withIntermediateDirectories: true)
        for file in DatasetID.mnist.files {
            try write(try Gzip.decompressFile(mnistDirectory + "/" + file.name), to: base + "/plain/mnist/" + file.name.dropLast(3))
        }
        let locator = DatasetLocator(environment: ["ENGRAM_DATA": base + "/plain"], currentDirectory: base,
                                     repositoryRoot: base, cacheDirectory: base + "/cache")
        let located = try locator.locateDataset(.mnist)
        #expect(located.directory == base + "/plain/mnist")
        #expect(located.files.map(\.path) == DatasetID.mnist.files.map { base + "/plain/mnist/" + $0.name.dropLast(3) })
        #expect(located.files[1].md5 == Checksum.md5(try FileIO.readAll(base + "/plain/mnist/train-labels-idx1-ubyte")))
        #expect(try DatasetID.mnist.load(from: located.directory).test.count == 10_000)

        // A truncated uncompressed file is rejected with its defect.
        let labels = base + "/plain/mnist/t10k-labels-idx1-ubyte"
        try write(Array(try FileIO.readAll(labels).dropLast()), to: labels)
        let error = #expect(throws: DataError.self) { try locator.locate(.mnist) }
        #expect(error?.description.contains("\(labels): 9999 bytes of data where the header declares 10000 (truncated)") == true)
    }

    @Test("when the download fails too, the error lists every place searched and the download's failure")
    func reportsEveryPlaceAndTheDownloadFailure() throws {
        let server = try LoopbackServer(routes: [:])
        defer { server.stop() }
        let base = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: base) }
        var locator = DatasetLocator(environment: [:], currentDirectory: base, repositoryRoot: base, cacheDirectory: base + "/cache")
        locator.urlForFile = { _, file in server.url("/" + file.name) }
        let error = #expect(throws: DataError.self) { try locator.locateOrDownloadDataset(.cifar10) }
        guard case .datasetNotFound(let name, let searched)? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(name == "cifar-10")
        #expect(searched.count == 4)
        #expect(searched[2] == base + "/cache/cifar-10 (missing cifar-10-binary.tar.gz)")
        #expect(searched[3].hasPrefix("download of \(server.url("/cifar-10-binary.tar.gz").absoluteString) failed: "))
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
