import EngramCL
import EngramData
import EngramNN
import EngramTensor
import Foundation
import Testing

// Seeded mutation fuzzing of every reader of untrusted bytes (issue 14): IDX, gzip(IDX), tar and
// safetensors. Each input must end in success or a clear error — never a crash, a hang or an
// unclear error. CI runs 2,000 inputs per reader; `ENGRAM_FUZZ_ITERATIONS=100000 swift test -c
// release --filter Fuzz` runs a thorough pass (see `FuzzConfiguration`).

/// Where the shared datasets are (`$ENGRAM_DATA` or `<repo>/../shared/datasets`).
private let sharedDatasets: String = {
    if let env = ProcessInfo.processInfo.environment["ENGRAM_DATA"], !env.isEmpty { return env }
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0 ..< 4 { url.deleteLastPathComponent() }
    return url.appendingPathComponent("shared/datasets").standardizedFileURL.path
}()

private func bigEndian(_ v: UInt32) -> [UInt8] {
    [UInt8(v >> 24), UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)]
}

/// Small valid IDX files: images (3 of 5×4, and 2 of 28×28) and labels.
private let idxSeeds: [[UInt8]] = [
    bigEndian(0x803) + bigEndian(3) + bigEndian(5) + bigEndian(4) + (0 ..< 60).map { UInt8($0 * 3) },
    bigEndian(0x803) + bigEndian(2) + bigEndian(28) + bigEndian(28) + (0 ..< 1568).map { UInt8(truncatingIfNeeded: $0) },
    bigEndian(0x801) + bigEndian(5) + [0, 1, 2, 9, 4],
    bigEndian(0x801) + bigEndian(0),
]

/// The IDX header's length fields: the extents (big-endian 32-bit).
private let idxFields = [4, 8, 12].map { Mutator.LengthField(offset: $0, width: 4, bigEndian: true) }

/// Reads `bytes` as IDX images, or as labels if the magic says so; touches the result.
private func readIDX(_ bytes: [UInt8]) throws {
    do {
        let images = try IDX.readImages(bytes: bytes, path: "fuzz.idx")
        precondition(images.pixels.count == images.count * images.rows * images.columns)
    } catch DataError.badMagic(_, _, let found) where found == IDX.labelsMagic {
        _ = try IDX.readLabels(bytes: bytes, path: "fuzz.idx")
    }
}

/// A data-layer error naming the fuzz input.
private func isClearDataError(_ error: any Error) -> Bool {
    guard let error = error as? DataError else { return false }
    return error.description.hasPrefix("fuzz.") && !error.description.contains("\n")
}

/// Runs a system tool and returns nothing; throws if it fails.
private func run(_ executable: String, _ arguments: [String], in directory: String) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.currentDirectoryURL = URL(fileURLWithPath: directory)
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw CocoaError(.fileWriteUnknown) }
}

private func temporaryDirectory() throws -> String {
    let path = NSTemporaryDirectory() + "engram-fuzz-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

@Suite("IDX fuzzing")
struct IDXFuzzTests {
    @Test("mutated IDX files end in success or a clear error, never a crash or a hang")
    func mutatedIDXFilesAreHandled() {
        let report = Fuzzer.run(reader: "idx", seeds: idxSeeds, mutate: { rng, seed in
            Mutator.mutate(seed, rng: &rng, fields: idxFields)
        }, read: readIDX, isClear: isClearDataError)
        Fuzzer.expectRobust(report)
    }
}

@Suite("Gzip fuzzing")
struct GzipFuzzTests {
    /// Real deflate streams (MNIST's test labels, system-gzipped seeds) and stored-block ones.
    static let seeds: [[UInt8]] = {
        var seeds = idxSeeds.map(storedGzip)
        if let real = try? FileIO.readAll(sharedDatasets + "/mnist/t10k-labels-idx1-ubyte.gz") { seeds.append(real) }
        if let dir = try? temporaryDirectory() {
            defer { try? FileManager.default.removeItem(atPath: dir) }
            for (i, seed) in idxSeeds.enumerated() {
                let path = dir + "/seed\(i)"
                try? Data(seed).write(to: URL(fileURLWithPath: path))
                try? run("/bin/gzip", ["-n", "-9", path], in: dir)
                if let bytes = try? FileIO.readAll(path + ".gz") { seeds.append(bytes) }
            }
        }
        return seeds
    }()

    @Test("mutated gzip(IDX) inputs end in success or a clear error, never a crash or a hang")
    func mutatedGzipIDXIsHandled() {
        let report = Fuzzer.run(reader: "gzip-idx", seeds: Self.seeds, mutate: { rng, seed in
            switch rng.next() % 3 {
            case 0:  // mutate the IDX inside, then wrap it in valid gzip: reaches the IDX checks
                let plain = idxSeeds[Int(rng.next() % UInt64(idxSeeds.count))]
                let mutated = storedGzip(Mutator.mutate(plain, rng: &rng, fields: idxFields))
                return rng.next() % 4 == 0 ? mutated + storedGzip(Mutator.mutate(plain, rng: &rng)) : mutated
            default:  // mutate the compressed bytes, trailer (CRC, ISIZE) included
                let trailer = [Mutator.LengthField(offset: max(0, seed.count - 4), width: 4, bigEndian: false),
                               Mutator.LengthField(offset: max(0, seed.count - 8), width: 4, bigEndian: false)]
                return Mutator.mutate(seed, rng: &rng, fields: trailer)
            }
        }, read: { bytes in
            try readIDX(bytes)
            _ = try Gzip.decompress(bytes, path: "fuzz.gz", maxOutputBytes: 1 << 20)
        }, isClear: isClearDataError)
        Fuzzer.expectRobust(report)
    }
}

@Suite("TarArchive fuzzing")
struct TarFuzzTests {
    /// Archives written by the system tar in GNU, ustar and pax formats (a long name, so GNU `L`
    /// and pax `path=` records appear), holding a few small files.
    static let seeds: [[UInt8]] = {
        guard let dir = try? temporaryDirectory() else { return [] }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let longName = String(repeating: "long-directory-name/", count: 6) + "file.bin"
        try? FileManager.default.createDirectory(atPath: dir + "/data/" + (longName as NSString).deletingLastPathComponent,
                                                 withIntermediateDirectories: true)
        try? Data((0 ..< 700).map { UInt8(truncatingIfNeeded: $0) }).write(to: URL(fileURLWithPath: dir + "/data/a.bin"))
        try? Data("names\n".utf8).write(to: URL(fileURLWithPath: dir + "/data/names.txt"))
        try? Data([1, 2, 3]).write(to: URL(fileURLWithPath: dir + "/data/" + longName))
        var seeds: [[UInt8]] = []
        for format in ["gnu", "ustar", "pax"] {
            let archive = dir + "/\(format).tar"
            try? run("/bin/tar", ["--format=\(format)", "-cf", archive, "data"], in: dir)
            if let bytes = try? FileIO.readAll(archive) { seeds.append(bytes) }
        }
        return seeds
    }()

    /// Rewrites the checksum of every 512-byte block that has a ustar magic, so mutations reach past
    /// the checksum check.
    static func fixChecksums(_ bytes: inout [UInt8]) {
        var offset = 0
        while offset + 512 <= bytes.count {
            if bytes[offset + 257] == UInt8(ascii: "u") && bytes[offset + 258] == UInt8(ascii: "s") {
                var sum = 0
                for i in 0 ..< 512 { sum += (148 ..< 156).contains(i) ? 32 : Int(bytes[offset + i]) }
                let digits = Array(String(sum, radix: 8).utf8)
                if digits.count <= 6 {
                    let field = [UInt8](repeating: UInt8(ascii: "0"), count: 6 - digits.count) + digits + [0, 32]
                    bytes.replaceSubrange(offset + 148 ..< offset + 156, with: field)
                }
            }
            offset += 512
        }
    }

    @Test("mutated tar archives end in success or a clear error, never a crash or a hang")
    func mutatedTarArchivesAreHandled() {
        #expect(Self.seeds.count == 3)
        let sizeFields = (0 ..< 8).map { Mutator.LengthField(offset: $0 * 512 + 124 + 4, width: 8, bigEndian: true) }
        let report = Fuzzer.run(reader: "tar", seeds: Self.seeds, mutate: { rng, seed in
            var bytes = Mutator.mutate(seed, rng: &rng, fields: sizeFields)
            if rng.next() % 4 == 0 {  // a GNU base-256 size field with an extreme value
                let header = Int(rng.next() % 4) * 512
                if header + 136 <= bytes.count {
                    bytes[header + 124] = rng.next() % 2 == 0 ? 0x80 : 0xFF
                    Mutator.write(Mutator.extremes(width: 8).randomElement(using: &rng)!, into: &bytes, at: header + 128,
                                  width: 8, bigEndian: true)
                }
            }
            if rng.next() % 2 == 0 { Self.fixChecksums(&bytes) }
            return bytes
        }, read: { bytes in
            let tar = try TarArchive(bytes: bytes, path: "fuzz.tar")
            for member in tar.members {
                let data = try tar.data(of: member.name)
                precondition(data.count == member.size)
            }
        }, isClear: isClearDataError)
        Fuzzer.expectRobust(report)
    }
}

@Suite("SafeTensors fuzzing")
struct SafeTensorsFuzzTests {
    /// Files written by Engram (with SHA-256 metadata) and hand-built ones of other dtypes (without).
    static let seeds: [[UInt8]] = {
        func assemble(_ header: String, _ data: [UInt8]) -> [UInt8] {
            var h = Array(header.utf8)
            h += repeatElement(0x20, count: (8 - h.count % 8) % 8)
            return withUnsafeBytes(of: UInt64(h.count).littleEndian, Array.init) + h + data
        }
        var seeds: [[UInt8]] = []
        if let engram = try? SafeTensors.encode([
            ("w", Tensor(shape: [2, 3], scalars: [1, -2, 3, .infinity, .nan, 0])), ("b", Tensor([0.5])),
            ("step", Tensor(7)), ("empty", Tensor.zeros([0, 4])),
        ], metadata: ["format": "pt", "epoch": "3"]) { seeds.append(engram) }
        seeds.append(assemble(#"{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"I64","shape":[1,1],"data_offsets":[4,12]},"c":{"dtype":"BOOL","shape":[3],"data_offsets":[12,15]},"d":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[15,16]}}"#,
                              (0 ..< 16).map { UInt8($0 * 17) }))
        seeds.append(assemble(#"{"__metadata__":{"k":"v\u00e9\n"},"x":{"dtype":"BF16","shape":[2,1],"data_offsets":[0,4]},"y":{"dtype":"F64","shape":[],"data_offsets":[4,12]}}"#,
                              (0 ..< 12).map { UInt8(truncatingIfNeeded: $0 * 29) }))
        return seeds
    }()

    /// Replaces one number in the JSON header with an extreme one.
    static func mutateHeaderNumber(_ bytes: [UInt8], rng: inout SplitMix64) -> [UInt8] {
        guard bytes.count >= 8 else { return bytes }
        let length = Int(min(UInt64(bytes.count - 8), bytes[0 ..< 8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }))
        var runs: [Range<Int>] = []
        var i = 8
        while i < 8 + length {
            if (0x30 ... 0x39).contains(bytes[i]) {
                let start = i
                while i < 8 + length, (0x30 ... 0x39).contains(bytes[i]) { i += 1 }
                runs.append(start ..< i)
            } else { i += 1 }
        }
        guard let run = runs.randomElement(using: &rng) else { return bytes }
        let replacements = ["0", "1", "-1", "9223372036854775807", "9223372036854775808", "18446744073709551615",
                            "4294967296", "1e3", "1.5", "99999999999999999999999", "65536", "3"]
        var out = bytes
        out.replaceSubrange(run, with: Array(replacements.randomElement(using: &rng)!.utf8))
        // Keep the length prefix consistent half of the time, so the JSON itself is exercised.
        if rng.next() % 2 == 0 {
            let newLength = UInt64(length + out.count - bytes.count)
            out.replaceSubrange(0 ..< 8, with: withUnsafeBytes(of: newLength.littleEndian, Array.init))
        }
        return out
    }

    @Test("mutated safetensors files end in success or a clear error, never a crash or a hang")
    func mutatedSafeTensorsAreHandled() {
        #expect(Self.seeds.count == 3)
        let prefix = [Mutator.LengthField(offset: 0, width: 8, bigEndian: false)]
        let report = Fuzzer.run(reader: "safetensors", seeds: Self.seeds, mutate: { rng, seed in
            rng.next() % 3 == 0 ? Self.mutateHeaderNumber(seed, rng: &rng) : Mutator.mutate(seed, rng: &rng, fields: prefix)
        }, read: { bytes in
            let file = try SafeTensors.decode(bytes, source: "fuzz.safetensors")
            for entry in file.entries {
                precondition(entry.tensor.scalars.count == entry.shape.reduce(1, *))
                _ = entry.tensor.scalars.reduce(0, +)
            }
        }, isClear: { error in
            guard let error = error as? SafeTensorsError else { return false }
            return error.file == "fuzz.safetensors" && !error.defect.isEmpty && !error.description.contains("\n")
        })
        Fuzzer.expectRobust(report)
    }
}
