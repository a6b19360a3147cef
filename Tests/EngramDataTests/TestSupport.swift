import EngramTensor
import EngramData
import Foundation

/// The repository root: three levels above this file (Tests/EngramDataTests/TestSupport.swift).
let repositoryRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

/// The shared datasets directory: `$ENGRAM_DATA` or `<repo>/../shared/datasets`.
let datasetsRoot: String = {
    if let env = ProcessInfo.processInfo.environment["ENGRAM_DATA"], !env.isEmpty { return env }
    return URL(fileURLWithPath: repositoryRoot).deletingLastPathComponent()
        .appendingPathComponent("shared/datasets").standardizedFileURL.path
}()

let mnistDirectory = datasetsRoot + "/mnist"
let fashionDirectory = datasetsRoot + "/fashion-mnist"

/// Real datasets, read once and shared by all tests (reading is what the reader tests check).
let sharedMNIST: Result<DatasetPair, any Error> = Result { try MNISTReader.load(directory: mnistDirectory, name: "mnist") }
let sharedFashion: Result<DatasetPair, any Error> = Result {
    try MNISTReader.load(directory: fashionDirectory, name: "fashion-mnist")
}

/// A fresh empty directory under the system temporary directory.
func makeTemporaryDirectory(_ tag: String = "engram-data-test") throws -> String {
    let path = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("\(tag)-\(UUID().uuidString)")
        .standardizedFileURL.path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Runs a program, failing if it exits non-zero.
@discardableResult
func run(_ executable: String, _ arguments: [String], in directory: String? = nil) throws -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw TestFailure("\(executable) \(arguments.joined(separator: " ")) exited \(process.terminationStatus)")
    }
    return process.terminationStatus
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

func write(_ bytes: [UInt8], to path: String) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

func bigEndianBytes(_ v: UInt32) -> [UInt8] {
    [UInt8(v >> 24), UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)]
}

/// gzip-compresses `path` in place (producing `path.gz`) with the system gzip.
func gzipFile(_ path: String) throws {
    try run("/bin/gzip", ["-f", "-n", path])
}

/// A small synthetic dataset (n samples of c×h×w, labels cycling through `classes`).
func syntheticDataset(count: Int, classes: Int, channels: Int = 1, side: Int = 28, name: String = "synthetic") throws -> ImageDataset {
    let size = channels * side * side
    var pixels = [UInt8](repeating: 0, count: count * size)
    for i in 0..<count { for p in 0..<size { pixels[i * size + p] = UInt8(truncatingIfNeeded: i &* 31 &+ p &* 7) } }
    let labels = (0..<count).map { UInt8($0 % classes) }
    return try ImageDataset(name: name, channels: channels, height: side, width: side,
                            pixels: pixels, labels: labels, classCount: classes)
}

/// One gzip member holding 1 MiB of zeros (about 1 KB), made with the system gzip.
func gzippedMebibyteOfZeros() throws -> [UInt8] {
    let dir = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try write([UInt8](repeating: 0, count: 1 << 20), to: dir + "/zeros")
    try gzipFile(dir + "/zeros")
    return try FileIO.readAll(dir + "/zeros.gz")
}

/// `bytes` gzip-compressed by the system gzip.
func gzipped(_ bytes: [UInt8]) throws -> [UInt8] {
    let dir = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try write(bytes, to: dir + "/data")
    try gzipFile(dir + "/data")
    return try FileIO.readAll(dir + "/data.gz")
}

/// An IDX3 header for `count` images of `rows`×`columns`.
func imagesHeader(count: Int, rows: Int = 28, columns: Int = 28) -> [UInt8] {
    bigEndianBytes(0x803) + bigEndianBytes(UInt32(count)) + bigEndianBytes(UInt32(rows)) + bigEndianBytes(UInt32(columns))
}
