import EngramNN
import EngramTensor
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct SafeTensorsTests {
    // MARK: Round trips

    /// Tensors covering the awkward cases: a scalar, an empty tensor, non-finite values, a non-ASCII name.
    static func sampleTensors() -> [(String, Tensor)] {
        [
            ("layer.0.weight", Tensor(shape: [2, 3], scalars: [1, -2.5, .pi, -0.0, .infinity, .nan])),
            ("layer.0.bias", Tensor([0.25, -.infinity, .leastNonzeroMagnitude])),
            ("step", Tensor(42)),
            ("empty", Tensor.zeros([0, 3])),
            ("naïve.é", Tensor(shape: [1, 1, 2], scalars: [.greatestFiniteMagnitude, -1e-30])),
        ]
    }

    static let sampleMetadata = [
        "format": "pt", "epoch": "3", "note": "quote \" backslash \\ newline \n tab \t control \u{01} é ✓",
    ]

    @Test("Several tensors round-trip bit-exactly with their metadata")
    func severalTensorsRoundTrip() throws {
        let dir = try TemporaryDirectory()
        let url = dir.url.appendingPathComponent("model.safetensors")
        let tensors = Self.sampleTensors()
        try SafeTensors.write(tensors, metadata: Self.sampleMetadata, to: url)
        let file = try SafeTensors.read(contentsOf: url)

        #expect(file.metadata == Self.sampleMetadata)
        #expect(Set(file.entries.map(\.name)) == Set(tensors.map(\.0)))
        for (name, tensor) in tensors {
            let entry = try #require(file.entries.first { $0.name == name })
            #expect(entry.dtype == .f32)
            #expect(entry.shape == tensor.shape)
            #expect(entry.tensor.shape == tensor.shape)
            #expect(entry.tensor.scalars.map(\.bitPattern) == tensor.scalars.map(\.bitPattern), "\(name)")
            #expect(file[name] === entry.tensor)
        }
        #expect(file["missing"] == nil)
        // Entries come in the order of their data, which the writer sorts by name.
        #expect(file.entries.map(\.name) == tensors.map(\.0).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
    }

    @Test("The same input always gives identical bytes, and write stores exactly what encode returns")
    func encodingIsDeterministic() throws {
        let first = try SafeTensors.encode(Self.sampleTensors(), metadata: Self.sampleMetadata)
        let second = try SafeTensors.encode(Self.sampleTensors().reversed(), metadata: Self.sampleMetadata)
        #expect(first == second)

        let dir = try TemporaryDirectory()
        let url = dir.url.appendingPathComponent("model.safetensors")
        try SafeTensors.write(Self.sampleTensors(), metadata: Self.sampleMetadata, to: url)
        #expect(try [UInt8](Data(contentsOf: url)) == first)
    }

    @Test("The header is padded with spaces so the data starts 8-byte aligned")
    func headerIsPadded() throws {
        for count in 0 ..< 9 {
            let name = String(repeating: "x", count: count + 1)
            let bytes = try SafeTensors.encode([(name, Tensor([1]))], metadata: [:])
            let length = bytes[0 ..< 8].reversed().reduce(0) { $0 << 8 | Int($1) }
            #expect(length % 8 == 0)
            let header = String(decoding: bytes[8 ..< 8 + length], as: UTF8.self)
            // The integrity metadata comes first, then the tensor, then only spaces.
            let digest = "e00e5eb9444182f352323374ef4e08ebcb784725fdd4fd612d7730540b3e0c8c"  // SHA-256 of 1.0 as F32
            let json = "{\"__metadata__\":{\"engram.sha256.\(name)\":\"\(digest)\"},"
                + "\"\(name)\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}"
            #expect(header.hasPrefix(json))
            #expect(header.dropFirst(json.count).allSatisfy { $0 == " " })
        }
    }

    @Test("Every dtype of the format is read and converted to Float32")
    func everyDTypeIsConverted() throws {
        func le<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
            values.flatMap { value in withUnsafeBytes(of: value.littleEndian, Array.init) }
        }
        let columns: [(String, SafeTensorsDType, [Int], [UInt8], [Float])] = [
            ("a_f16", .f16, [4], le([0x3C00, 0x0001, 0xFC00, 0x7BFF] as [UInt16]), [1, 0x1p-24, -.infinity, 65504]),
            ("b_f64", .f64, [3], le([0.1, -1e300, 2.5].map(\.bitPattern)), [Float(0.1 as Double), -.infinity, 2.5]),
            ("c_bf16", .bf16, [2], le([0x3F80, 0xC040] as [UInt16]), [1, -3]),
            ("d_f8e4m3", .f8e4m3, [4], [0x38, 0x7E, 0x01, 0xB8], [1, 448, 0x1p-9, -1]),
            ("e_f8e5m2", .f8e5m2, [2], [0x3C, 0x7C], [1, .infinity]),
            ("f_i64", .i64, [2], le([-5, 1 << 40] as [Int64]), [-5, 0x1p40]),
            ("g_i32", .i32, [1], le([-7] as [Int32]), [-7]),
            ("h_i16", .i16, [1], le([-300] as [Int16]), [-300]),
            ("i_i8", .i8, [1], le([-128] as [Int8]), [-128]),
            ("j_u64", .u64, [1], le([UInt64.max]), [0x1p64]),
            ("k_u32", .u32, [1], le([4_000_000_000] as [UInt32]), [4e9]),
            ("l_u16", .u16, [1], le([65535] as [UInt16]), [65535]),
            ("m_u8", .u8, [2], [0, 255], [0, 255]),
            ("n_bool", .bool, [3], [0, 1, 2], [0, 1, 1]),
            ("o_f32", .f32, [1, 2], le([Float(-1.5).bitPattern, Float.nan.bitPattern]), [-1.5, .nan]),
        ]
        var data: [UInt8] = []
        var fields: [String] = []
        for (name, dtype, shape, bytes, _) in columns {
            fields.append("\"\(name)\":{\"dtype\":\"\(dtype.rawValue)\",\"shape\":\(shape),"
                + "\"data_offsets\":[\(data.count),\(data.count + bytes.count)]}")
            data += bytes
        }
        let file = try SafeTensors.decode(assemble("{" + fields.joined(separator: ",") + "}", data), source: "all")
        #expect(file.entries.map(\.name) == columns.map(\.0))
        for ((name, dtype, shape, _, expected), entry) in zip(columns, file.entries) {
            #expect(entry.dtype == dtype, "\(name)")
            #expect(entry.shape == shape, "\(name)")
            #expect(entry.tensor.scalars.map(\.bitPattern) == expected.map(\.bitPattern), "\(name)")
        }
        #expect(file.metadata.isEmpty)
    }

    @Test("A large tensor round-trips through a file")
    func largeTensorRoundTrips() throws {
        let dir = try TemporaryDirectory()
        let url = dir.url.appendingPathComponent("large.safetensors")
        var rng = RandomGenerator(seed: 7)
        let tensor = Tensor.normal([1024, 4096], using: &rng)
        try SafeTensors.write([("big", tensor)], to: url)
        let read = try #require(try SafeTensors.read(contentsOf: url)["big"])
        #expect(read.shape == tensor.shape)
        #expect(read.scalars == tensor.scalars)
    }

    // MARK: Corrupt files

    @Test("A corrupt file gives one error naming the file and the defect", arguments: CorruptFile.all)
    func corruptFileIsReported(_ corrupt: CorruptFile) throws {
        let dir = try TemporaryDirectory()
        let url = dir.url.appendingPathComponent("checkpoint.safetensors")
        try Data(corrupt.bytes).write(to: url)
        let error = try #require(#expect(throws: SafeTensorsError.self) { try SafeTensors.read(contentsOf: url) })
        #expect(error.file == url.path)
        #expect(error.description == "\(url.path): \(corrupt.defect)")

        let decoded = try #require(#expect(throws: SafeTensorsError.self) {
            try SafeTensors.decode(corrupt.bytes, source: "checkpoint.safetensors")
        })
        #expect(decoded.description == "checkpoint.safetensors: \(corrupt.defect)")
    }

    @Test("A truncated copy of a valid file errors clearly wherever it is cut")
    func truncatedFileIsReported() throws {
        let dir = try TemporaryDirectory()
        let bytes = try SafeTensors.encode(Self.sampleTensors(), metadata: Self.sampleMetadata)
        let headerEnd = 8 + bytes[0 ..< 8].reversed().reduce(0) { $0 << 8 | Int($1) }
        for cut in [0, 1, 7, 8, 9, headerEnd / 2, headerEnd - 1, headerEnd, headerEnd + 3, bytes.count - 1] {
            let url = dir.url.appendingPathComponent("cut-\(cut).safetensors")
            try Data(bytes[..<cut]).write(to: url)
            let error = try #require(#expect(throws: SafeTensorsError.self) { try SafeTensors.read(contentsOf: url) })
            #expect(error.description.hasPrefix("\(url.path): "))
            let expected = cut < 8 ? "file is \(cut) bytes, too short for the 8-byte header length"
                : cut < headerEnd ? "header length \(headerEnd - 8) exceeds the file size \(cut) bytes"
                : "beyond the data buffer of \(cut - headerEnd) bytes"
            #expect(error.defect.contains(expected), "cut at \(cut): \(error)")
        }
    }

    @Test("Reading a missing file names it")
    func missingFileIsReported() throws {
        let dir = try TemporaryDirectory()
        let url = dir.url.appendingPathComponent("absent.safetensors")
        let error = try #require(#expect(throws: SafeTensorsError.self) { try SafeTensors.read(contentsOf: url) })
        #expect(error.description == "\(url.path): cannot open: No such file or directory")
    }

    // MARK: Writing

    @Test("An atomic write replaces the target and leaves no temporary file behind")
    func atomicWriteLeavesNoTemporaryFile() throws {
        let dir = try TemporaryDirectory()
        let url = dir.url.appendingPathComponent("model.safetensors")
        try SafeTensors.write([("a", Tensor([1, 2]))], to: url)
        try SafeTensors.write([("b", Tensor([3]))], metadata: ["v": "2"], to: url)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.url.path) == ["model.safetensors"])
        let file = try SafeTensors.read(contentsOf: url)
        #expect(file.entries.map(\.name) == ["b"])
        #expect(file.metadata == ["v": "2"])
    }

    @Test("A write into a missing directory throws naming the target and creates nothing")
    func writeIntoMissingDirectoryFails() throws {
        let dir = try TemporaryDirectory()
        let url = dir.url.appendingPathComponent("no/such/dir/model.safetensors")
        let error = try #require(#expect(throws: SafeTensorsError.self) {
            try SafeTensors.write([("a", Tensor([1]))], to: url)
        })
        #expect(error.file == url.path)
        #expect(error.description.hasPrefix("\(url.path): cannot create the temporary file \(url.path).tmp-"))
        #expect(error.description.hasSuffix("No such file or directory"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.url.path).isEmpty)
    }

    @Test("A write that cannot rename over the target removes its temporary file")
    func failedRenameRemovesTemporaryFile() throws {
        let dir = try TemporaryDirectory()
        let url = dir.url.appendingPathComponent("model.safetensors")
        try FileManager.default.createDirectory(at: url.appendingPathComponent("occupied"), withIntermediateDirectories: true)
        let error = try #require(#expect(throws: SafeTensorsError.self) {
            try SafeTensors.write([("a", Tensor([1]))], to: url)
        })
        #expect(error.description.hasPrefix("\(url.path): cannot rename \(url.path).tmp-"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.url.path) == ["model.safetensors"])
    }

    @Test("Duplicate names and the reserved name __metadata__ are errors on write")
    func invalidNamesAreRejected() throws {
        let dir = try TemporaryDirectory()
        let url = dir.url.appendingPathComponent("model.safetensors")
        let duplicate = try #require(#expect(throws: SafeTensorsError.self) {
            try SafeTensors.write([("w", Tensor([1])), ("b", Tensor([2])), ("w", Tensor([3]))], to: url)
        })
        #expect(duplicate.description == "\(url.path): duplicate tensor name 'w'")
        let reserved = try #require(#expect(throws: SafeTensorsError.self) {
            try SafeTensors.encode([("__metadata__", Tensor([1]))], metadata: [:])
        })
        #expect(reserved.description == "<memory>: '__metadata__' is reserved and cannot name a tensor")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.url.path).isEmpty)
        // Other names starting with "__" are ordinary names.
        let file = try SafeTensors.decode(try SafeTensors.encode([("__step__", Tensor(1))], metadata: [:]), source: "x")
        #expect(file["__step__"]?.item == 1)
    }

    // MARK: Hardening (issue 14)

    @Test("Every tensor's SHA-256 is stored in the metadata and verified on read")
    func tensorChecksumsAreStoredAndVerified() throws {
        let bytes = try SafeTensors.encode(Self.sampleTensors(), metadata: Self.sampleMetadata)
        let file = try SafeTensors.decode(bytes, source: "model.safetensors")
        #expect(file.metadata == Self.sampleMetadata)
        #expect(Set(file.verifiedTensors) == Set(Self.sampleTensors().map(\.0)))
        // SHA-256 of the 8 bytes of [1, 2] as little-endian Float32 (cross-checked with hashlib).
        let small = try SafeTensors.encode([("w", Tensor([1, 2]))], metadata: [:])
        let header = String(decoding: small[8 ..< 8 + Int(small[0])], as: UTF8.self)
        #expect(header.contains("\"engram.sha256.w\":\"b9c80b5adeca450753a16950c3cc655d271f7bef7a485bc83f112b72fef21d37\""))
    }

    @Test("A flipped bit in a tensor's data is an error naming the tensor")
    func corruptedTensorDataIsDetected() throws {
        let dir = try TemporaryDirectory()
        let url = dir.url.appendingPathComponent("model.safetensors")
        try SafeTensors.write([("layer.weight", Tensor([1, 2, 3, 4])), ("layer.bias", Tensor([5]))], to: url)
        var bytes = try [UInt8](Data(contentsOf: url))
        bytes[bytes.count - 1] ^= 0x01  // the last byte belongs to layer.weight (sorted after layer.bias)
        try Data(bytes).write(to: url)
        let error = try #require(#expect(throws: SafeTensorsError.self) { try SafeTensors.read(contentsOf: url) })
        #expect(error.description.hasPrefix("\(url.path): tensor 'layer.weight' fails its integrity check: SHA-256 of its bytes is "))
    }

    @Test("A checksum entry for a tensor the file lacks is an error, and the prefix is reserved on write")
    func checksumEntriesAreConsistent() throws {
        let orphan = assemble("{\"__metadata__\":{\"engram.sha256.ghost\":\"00\"}}")
        let error = try #require(#expect(throws: SafeTensorsError.self) { try SafeTensors.decode(orphan, source: "x") })
        #expect(error.description == "x: metadata holds a SHA-256 for tensor 'ghost', which the file does not have")
        let reserved = try #require(#expect(throws: SafeTensorsError.self) {
            try SafeTensors.encode([("w", Tensor([1]))], metadata: ["engram.sha256.w": "0"])
        })
        #expect(reserved.description == "<memory>: metadata key 'engram.sha256.w' is reserved for the tensors' SHA-256")
    }

    @Test("A tensor name holding a newline is shown escaped, so the error stays on one line")
    func errorsStayOnOneLine() throws {
        let bytes = assemble("{\"a\\nb\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", [0, 0, 0, 0])
        let error = try #require(#expect(throws: SafeTensorsError.self) { try SafeTensors.decode(bytes, source: "x") })
        #expect(error.description == "x: tensor 'a\\nb' of dtype F32 and shape [2] needs 2 × 4 bytes, but data_offsets [0, 4] span 4")
    }

    @Test("Files without checksum entries (other writers) are read as before")
    func filesWithoutChecksumsAreRead() throws {
        let bytes = assemble("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", [0, 0, 128, 63])
        let file = try SafeTensors.decode(bytes, source: "x")
        #expect(file["w"]?.scalars == [1])
        #expect(file.verifiedTensors.isEmpty)
    }

    @Test("Reading a FIFO fails at once naming it instead of blocking")
    func fifoIsRefused() throws {
        let dir = try TemporaryDirectory()
        let url = dir.url.appendingPathComponent("pipe.safetensors")
        #expect(mkfifo(url.path, 0o644) == 0)
        let error = try #require(#expect(throws: SafeTensorsError.self) { try SafeTensors.read(contentsOf: url) })
        #expect(error.description == "\(url.path): not a regular file (FIFO)")
        let device = try #require(#expect(throws: SafeTensorsError.self) {
            try SafeTensors.read(contentsOf: URL(fileURLWithPath: "/dev/zero"))
        })
        #expect(device.description == "/dev/zero: not a regular file (character device)")
    }

    @Test("A shape whose non-zero extents overflow is rejected even when another extent is zero")
    func emptyTensorWithOverflowingShapeIsRejected() throws {
        let bytes = assemble("{\"w\":{\"dtype\":\"F32\",\"shape\":[0,4611686018427387904,4],\"data_offsets\":[0,0]}}")
        let error = try #require(#expect(throws: SafeTensorsError.self) { try SafeTensors.decode(bytes, source: "x") })
        #expect(error.description == "x: tensor 'w' has shape [0, 4611686018427387904, 4] with too many elements")
        let fine = assemble("{\"w\":{\"dtype\":\"F32\",\"shape\":[0,1048576,1048576],\"data_offsets\":[0,0]}}")
        #expect(try SafeTensors.decode(fine, source: "x")["w"]?.shape == [0, 1_048_576, 1_048_576])
    }

    @Test("A stale temporary file of a killed write is removed by the next write of the same file")
    func staleTemporaryFileIsRemoved() throws {
        let dir = try TemporaryDirectory()
        let url = dir.url.appendingPathComponent("model.safetensors")
        // A pid that cannot be alive (above the kernel's pid_max of 2^22), and a day-old file of this process.
        let dead = url.path + ".tmp-2147483000-1f2e3d"
        let old = url.path + ".tmp-\(getpid())-abc"
        let unrelated = dir.url.appendingPathComponent("other.safetensors.tmp-2147483000-1f2e3d").path
        for path in [dead, old, unrelated] { try Data([1, 2, 3]).write(to: URL(fileURLWithPath: path)) }
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -2 * 86_400)], ofItemAtPath: old)
        try SafeTensors.write([("a", Tensor([1]))], to: url)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.url.path).sorted()
            == ["model.safetensors", "other.safetensors.tmp-2147483000-1f2e3d"])
    }

    // MARK: Interoperability with the Python reference implementation

    @Test("Files written by Python safetensors are read with equal values and metadata")
    func readsFilesWrittenByPython() throws {
        let dir = try TemporaryDirectory()
        let url = dir.url.appendingPathComponent("python.safetensors")
        _ = try Python.run("""
            import sys, numpy as np
            from safetensors.numpy import save_file
            save_file({
                "f32": np.array([[1.5, -0.0], [np.inf, 2.0 ** -140]], dtype=np.float32),
                "f64": np.array([0.1, -2.5, 1e300], dtype=np.float64),
                "f16": np.array([1.0, 2.0 ** -24, 65504.0, -np.inf], dtype=np.float16),
                "i64": np.array([[-3], [0], [2 ** 40]], dtype=np.int64),
                "scalar": np.array(7.0, dtype=np.float32),
                "empty": np.zeros((0, 3), dtype=np.float32),
            }, sys.argv[1], metadata={"format": "np", "note": "h\\u00e9llo \\"q\\"\\n"})
            """, arguments: [url.path])
        let file = try SafeTensors.read(contentsOf: url)
        #expect(file.metadata == ["format": "np", "note": "héllo \"q\"\n"])
        let expected: [String: (SafeTensorsDType, [Int], [Float])] = [
            "f32": (.f32, [2, 2], [1.5, -0.0, .infinity, 0x1p-140]),
            "f64": (.f64, [3], [Float(0.1 as Double), -2.5, .infinity]),
            "f16": (.f16, [4], [1, 0x1p-24, 65504, -.infinity]),
            "i64": (.i64, [3, 1], [-3, 0, 0x1p40]),
            "scalar": (.f32, [], [7]),
            "empty": (.f32, [0, 3], []),
        ]
        #expect(Set(file.entries.map(\.name)) == Set(expected.keys))
        for entry in file.entries {
            let (dtype, shape, values) = try #require(expected[entry.name])
            #expect(entry.dtype == dtype, "\(entry.name)")
            #expect(entry.shape == shape, "\(entry.name)")
            #expect(entry.tensor.scalars.map(\.bitPattern) == values.map(\.bitPattern), "\(entry.name)")
        }
    }

    @Test("Files written by Engram are read by Python safetensors with equal values and metadata")
    func pythonReadsFilesWrittenByEngram() throws {
        let dir = try TemporaryDirectory()
        let url = dir.url.appendingPathComponent("engram.safetensors")
        let tensors = Self.sampleTensors()
        try SafeTensors.write(tensors, metadata: Self.sampleMetadata, to: url)
        let output = try Python.run("""
            import sys, json, numpy as np
            from safetensors import safe_open
            from safetensors.numpy import load_file
            tensors = load_file(sys.argv[1])
            with safe_open(sys.argv[1], framework="np") as f:
                metadata = f.metadata()
            import hashlib
            print(json.dumps({"metadata": metadata, "tensors": {name: {
                "dtype": str(array.dtype), "shape": list(array.shape),
                "bits": array.view(np.uint32).ravel().tolist(),
                "sha256": hashlib.sha256(array.astype("<f4").tobytes()).hexdigest()} for name, array in tensors.items()}}))
            """, arguments: [url.path])

        struct Loaded: Decodable {
            struct Array: Decodable { var dtype: String; var shape: [Int]; var bits: [UInt32]; var sha256: String }
            var metadata: [String: String]
            var tensors: [String: Array]
        }
        let loaded = try JSONDecoder().decode(Loaded.self, from: Data(output.utf8))
        // Python sees the integrity entries as ordinary metadata, each the SHA-256 that hashlib computes.
        #expect(loaded.metadata.filter { !$0.key.hasPrefix(SafeTensors.sha256MetadataPrefix) } == Self.sampleMetadata)
        #expect(loaded.tensors.count == tensors.count)
        for (name, array) in loaded.tensors {
            #expect(loaded.metadata[SafeTensors.sha256MetadataPrefix + name] == array.sha256, "\(name)")
        }
        for (name, tensor) in tensors {
            let array = try #require(loaded.tensors[name], "Python did not load \(name)")
            #expect(array.dtype == "float32")
            #expect(array.shape == tensor.shape, "\(name)")
            #expect(array.bits == tensor.scalars.map(\.bitPattern), "\(name)")
        }
    }
}

// MARK: - Helpers

/// `header` (padded to 8 bytes) with its length prefix (or `length` instead), then `data`.
private func assemble(_ header: String, _ data: [UInt8] = [], length: UInt64? = nil) -> [UInt8] {
    assemble(Array(header.utf8) + Array(repeating: 0x20, count: (8 - header.utf8.count % 8) % 8), data, length: length)
}

private func assemble(_ header: [UInt8], _ data: [UInt8] = [], length: UInt64? = nil) -> [UInt8] {
    withUnsafeBytes(of: (length ?? UInt64(header.count)).littleEndian, Array.init) + header + data
}

/// A malformed file and the defect `SafeTensors` must report for it.
struct CorruptFile: Sendable, CustomTestStringConvertible {
    var name: String
    var bytes: [UInt8]
    var defect: String
    var testDescription: String { name }

    /// An F32 entry.
    static func entry(_ name: String, _ shape: String = "[1]", _ offsets: String) -> String {
        "\"\(name)\":{\"dtype\":\"F32\",\"shape\":\(shape),\"data_offsets\":\(offsets)}"
    }

    static let all: [CorruptFile] = [
        CorruptFile(name: "shorter than 8 bytes", bytes: [1, 0, 0],
                    defect: "file is 3 bytes, too short for the 8-byte header length"),
        CorruptFile(name: "header length beyond the file", bytes: assemble("{}", length: 9999),
                    defect: "header length 9999 exceeds the file size 16 bytes"),
        CorruptFile(name: "header length near UInt64.max", bytes: assemble("{}", length: .max),
                    defect: "header length 18446744073709551615 exceeds the file size 16 bytes"),
        CorruptFile(name: "header not UTF-8", bytes: assemble([0x7B, 0xFF, 0x7D, 0x20, 0x20, 0x20, 0x20, 0x20]),
                    defect: "header is not valid UTF-8"),
        CorruptFile(name: "empty header", bytes: assemble(""),
                    defect: "header is not valid JSON: unexpected end of header at byte 0 of the header"),
        CorruptFile(name: "truncated JSON", bytes: assemble("{\"a\": "),
                    defect: "header is not valid JSON: unexpected end of header at byte 8 of the header"),
        CorruptFile(name: "trailing comma", bytes: assemble("{\"a\":1,}"),
                    defect: "header is not valid JSON: expected a string key, found '}' at byte 7 of the header"),
        CorruptFile(name: "text after the JSON", bytes: assemble("{} x"),
                    defect: "header is not valid JSON: unexpected 'x' after the top-level value at byte 3 of the header"),
        CorruptFile(name: "unpaired surrogate", bytes: assemble("{\"\\ud800\":1}"),
                    defect: "header is not valid JSON: unpaired surrogate in a string at byte 8 of the header"),
        CorruptFile(name: "header not an object", bytes: assemble("[1, 2]"),
                    defect: "header is an array, not a JSON object"),
        CorruptFile(name: "entry not an object", bytes: assemble("{\"w\":3}"),
                    defect: "tensor 'w' has an entry that is the number 3, not an object"),
        CorruptFile(name: "missing dtype", bytes: assemble("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", [0, 0, 0, 0]),
                    defect: "tensor 'w' has no dtype"),
        CorruptFile(name: "missing shape", bytes: assemble("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", [0, 0, 0, 0]),
                    defect: "tensor 'w' has no shape"),
        CorruptFile(name: "missing data_offsets", bytes: assemble("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", [0, 0, 0, 0]),
                    defect: "tensor 'w' has no data_offsets"),
        CorruptFile(name: "unknown dtype",
                    bytes: assemble("{\"w\":{\"dtype\":\"F128\",\"shape\":[1],\"data_offsets\":[0,16]}}", Array(repeating: 0, count: 16)),
                    defect: "tensor 'w' has unknown dtype 'F128'"),
        CorruptFile(name: "negative extent", bytes: assemble("{" + entry("w", "[2,-1]", "[0,0]") + "}"),
                    defect: "tensor 'w' has a shape extent -1 that is negative"),
        CorruptFile(name: "fractional extent", bytes: assemble("{" + entry("w", "[1.5]", "[0,4]") + "}", [0, 0, 0, 0]),
                    defect: "tensor 'w' has a shape extent 1.5 that is not an integer"),
        CorruptFile(name: "string extent", bytes: assemble("{" + entry("w", "[\"2\"]", "[0,8]") + "}", Array(repeating: 0, count: 8)),
                    defect: "tensor 'w' has a shape extent that is a string, not an integer"),
        CorruptFile(name: "shape not an array", bytes: assemble("{" + entry("w", "3", "[0,12]") + "}", Array(repeating: 0, count: 12)),
                    defect: "tensor 'w' has a shape that is the number 3, not an array"),
        CorruptFile(name: "shape overflowing Int", bytes: assemble("{" + entry("w", "[4611686018427387904,4]", "[0,0]") + "}"),
                    defect: "tensor 'w' has shape [4611686018427387904, 4] with too many elements"),
        CorruptFile(name: "one data offset", bytes: assemble("{" + entry("w", "[1]", "[0]") + "}", [0, 0, 0, 0]),
                    defect: "tensor 'w' has data_offsets that are not an array of two integers"),
        CorruptFile(name: "offsets out of order", bytes: assemble("{" + entry("w", "[1]", "[4,0]") + "}", [0, 0, 0, 0]),
                    defect: "tensor 'w' has data_offsets [4, 0] out of order (end before begin)"),
        CorruptFile(name: "offsets beyond the data", bytes: assemble("{" + entry("w", "[2]", "[0,8]") + "}", [0, 0, 0, 0]),
                    defect: "tensor 'w' has data_offsets [0, 8] beyond the data buffer of 4 bytes"),
        CorruptFile(name: "byte count not shape × dtype size",
                    bytes: assemble("{" + entry("w", "[2,3]", "[0,20]") + "}", Array(repeating: 0, count: 20)),
                    defect: "tensor 'w' of dtype F32 and shape [2, 3] needs 6 × 4 bytes, but data_offsets [0, 20] span 20"),
        CorruptFile(name: "overlapping tensors",
                    bytes: assemble("{" + entry("a", "[2]", "[0,8]") + "," + entry("b", "[2]", "[4,12]") + "}",
                                    Array(repeating: 0, count: 12)),
                    defect: "tensor 'b' data_offsets [4, 12] overlap tensor 'a' data_offsets [0, 8]"),
        CorruptFile(name: "gap between tensors",
                    bytes: assemble("{" + entry("b", "[1]", "[8,12]") + "," + entry("a", "[1]", "[0,4]") + "}",
                                    Array(repeating: 0, count: 12)),
                    defect: "data buffer bytes 4..<8 before tensor 'b' belong to no tensor (a gap of 4 bytes)"),
        CorruptFile(name: "gap before the first tensor", bytes: assemble("{" + entry("a", "[1]", "[4,8]") + "}", Array(repeating: 0, count: 8)),
                    defect: "data buffer bytes 0..<4 before tensor 'a' belong to no tensor (a gap of 4 bytes)"),
        CorruptFile(name: "trailing data", bytes: assemble("{" + entry("a", "[1]", "[0,4]") + "}", Array(repeating: 0, count: 7)),
                    defect: "data buffer bytes 4..<7 after the last tensor belong to no tensor (3 trailing bytes)"),
        CorruptFile(name: "data without tensors", bytes: assemble("{}", [1]),
                    defect: "data buffer bytes 0..<1 after the last tensor belong to no tensor (1 trailing bytes)"),
        CorruptFile(name: "duplicate names",
                    bytes: assemble("{" + entry("w", "[1]", "[0,4]") + "," + entry("w", "[1]", "[4,8]") + "}",
                                    Array(repeating: 0, count: 8)),
                    defect: "header names 'w' twice"),
        CorruptFile(name: "metadata value not a string", bytes: assemble("{\"__metadata__\":{\"name\":\"x\",\"epoch\":3}}"),
                    defect: "metadata value for 'epoch' is the number 3, not a string"),
        CorruptFile(name: "metadata not an object", bytes: assemble("{\"__metadata__\":[\"x\"]}"),
                    defect: "__metadata__ is an array, not an object"),
    ]
}

/// A fresh directory under the system temporary directory, removed on deinit.
private final class TemporaryDirectory {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("engram-safetensors-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }
}

/// Runs scripts with the reference implementation (`python3` with `safetensors` and `numpy`).
private enum Python {
    struct Failure: Error, CustomStringConvertible { var description: String }

    /// The script's standard output; throws if python3 or its packages are missing or the script fails.
    static func run(_ script: String, arguments: [String] = []) throws -> String {
        let (probeStatus, _, probeError) = try execute("import safetensors, numpy", [])
        guard probeStatus == 0 else {
            let reason = probeError.split(separator: "\n").last.map(String.init) ?? "exit status \(probeStatus)"
            throw Failure(description: "the interoperability tests need python3 with safetensors and numpy; "
                + "install them with `python3 -m pip install safetensors numpy` (\(reason))")
        }
        let (status, output, error) = try execute(script, arguments)
        guard status == 0 else { throw Failure(description: "python3 exited with status \(status):\n\(error)") }
        return output
    }

    private static func execute(_ script: String, _ arguments: [String]) throws -> (Int32, String, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script] + arguments
        let output = Pipe(), error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        let stdout = output.fileHandleForReading.readDataToEndOfFile()
        let stderr = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
    }
}
