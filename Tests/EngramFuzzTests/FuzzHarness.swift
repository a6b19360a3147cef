import EngramTensor
import EngramNN
import EngramData
import EngramCL
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// SplitMix64: a tiny deterministic generator, so input `i` of a run is reproducible from
/// (seed, reader, i) alone.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// How a fuzz run is configured: from the environment, with CI-sized defaults.
///
/// - `ENGRAM_FUZZ_ITERATIONS`: inputs per reader (default 2,000: a few seconds in CI; use ≥ 100,000
///   for a thorough run).
/// - `ENGRAM_FUZZ_SEED`: the run's seed (default 14, after the issue).
/// - `ENGRAM_FUZZ_INPUT`: run only this input index (to reproduce a failure).
/// - `ENGRAM_FUZZ_TIME_BOUND`: seconds one input may take before it counts as a hang (default 2).
///
/// A crash ends the process; the input it crashed on is left in
/// `$TMPDIR/engram-fuzz-current-<reader>.bin` (see `CrashRecorder`), and `ENGRAM_FUZZ_INPUT` with
/// the same seed replays it.
struct FuzzConfiguration {
    var iterations: Int
    var seed: UInt64
    var onlyInput: Int?
    var timeBound: Duration

    static let current: FuzzConfiguration = {
        let environment = ProcessInfo.processInfo.environment
        return FuzzConfiguration(
            iterations: environment["ENGRAM_FUZZ_ITERATIONS"].flatMap { Int($0) } ?? 2_000,
            seed: environment["ENGRAM_FUZZ_SEED"].flatMap { UInt64($0) } ?? 14,
            onlyInput: environment["ENGRAM_FUZZ_INPUT"].flatMap { Int($0) },
            timeBound: .milliseconds(Int((environment["ENGRAM_FUZZ_TIME_BOUND"].flatMap { Double($0) } ?? 2) * 1000)))
    }()
}

/// The outcome counts of one reader's fuzz run.
struct FuzzReport: CustomStringConvertible {
    var reader: String
    /// Inputs fed to the reader.
    var inputs = 0
    /// Inputs the reader accepted.
    var accepted = 0
    /// Inputs rejected with a clear error (the expected error type, naming the source).
    var clearErrors = 0
    /// Inputs rejected with any other error.
    var unclearErrors = 0
    /// Inputs that took longer than the per-input bound.
    var hangs = 0
    /// Crashes are not survivable in-process: a completed run has none.
    var crashes: Int { 0 }
    /// The slowest input's duration.
    var slowest: Duration = .zero
    /// Distinct error messages seen (the defect part, digits masked), with counts: a sketch of what
    /// the mutations reach.
    var errorKinds: [String: Int] = [:]
    /// The first few unclear errors or hangs, for the failure message.
    var examples: [String] = []

    var description: String {
        "fuzz \(reader): \(inputs) inputs, \(accepted) accepted, \(clearErrors) clear errors, "
            + "\(unclearErrors) unclear errors, \(crashes) crashes, \(hangs) hangs (> bound), slowest \(slowest), "
            + "\(errorKinds.count) distinct error kinds"
    }
}

/// Feeds mutated inputs to a reader in-process and counts the outcomes. A watchdog thread aborts the
/// process, saving the input, if one input runs for more than 30 × the per-input bound (a true hang
/// would otherwise stall the suite forever); inputs over the bound are counted as hangs.
enum Fuzzer {
    /// Runs `iterations` inputs: input `i` is `mutate(seeds[k], rng)` with an RNG seeded from
    /// (seed, reader, i). `read` must return or throw; `isClear` judges a thrown error.
    static func run(reader: String, seeds: [[UInt8]], configuration: FuzzConfiguration = .current,
                    mutate: (inout SplitMix64, [UInt8]) -> [UInt8],
                    read: ([UInt8]) throws -> Void, isClear: (any Error) -> Bool) -> FuzzReport {
        var report = FuzzReport(reader: reader)
        let watchdog = Watchdog(reader: reader, limit: configuration.timeBound * 30)
        defer { watchdog.stop() }
        let recorder = CrashRecorder(reader: reader)
        defer { recorder.finish() }
        let clock = ContinuousClock()
        let readerHash = reader.utf8.reduce(UInt64(1469598103934665603)) { ($0 ^ UInt64($1)) &* 1099511628211 }
        let indices = configuration.onlyInput.map { [$0] } ?? Array(0 ..< configuration.iterations)
        let progressStep = max(1, indices.count / 10)
        for (position, index) in indices.enumerated() {
            var rng = SplitMix64(seed: configuration.seed ^ readerHash ^ (UInt64(index) &* 0x2545_F491_4F6C_DD1D))
            let seed = seeds[Int(rng.next() % UInt64(seeds.count))]
            let input = mutate(&rng, seed)
            recorder.record(index: index, input: input)
            watchdog.begin(index: index, input: input)
            let start = clock.now
            var failure: (any Error)?
            do { try read(input) } catch { failure = error }
            let elapsed = clock.now - start
            watchdog.end()
            report.inputs += 1
            report.slowest = max(report.slowest, elapsed)
            if elapsed > configuration.timeBound {
                report.hangs += 1
                if report.examples.count < 5 { report.examples.append("input \(index) took \(elapsed)") }
            }
            if let failure {
                if isClear(failure) {
                    report.clearErrors += 1
                    report.errorKinds[errorKind(failure), default: 0] += 1
                } else {
                    report.unclearErrors += 1
                    if report.examples.count < 5 { report.examples.append("input \(index): \(type(of: failure)): \(failure)") }
                }
            } else {
                report.accepted += 1
            }
            if (position + 1) % progressStep == 0 && indices.count >= 10_000 {
                print("fuzz \(reader): \(position + 1)/\(indices.count) inputs")
            }
        }
        print(report)
        return report
    }

    /// The defect of an error message with the source name dropped and numbers masked.
    static func errorKind(_ error: any Error) -> String {
        var text = "\(error)"
        if let colon = text.range(of: ": ") { text = String(text[colon.upperBound...]) }
        return String(text.map { $0.isNumber ? "#" : $0 }.prefix(80))
    }

    /// Records the outcome expectations of a run.
    static func expectRobust(_ report: FuzzReport, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(report.inputs > 0, sourceLocation: sourceLocation)
        #expect(report.unclearErrors == 0, "\(report.examples)", sourceLocation: sourceLocation)
        #expect(report.hangs == 0, "\(report.examples)", sourceLocation: sourceLocation)
    }
}

/// Keeps the current input in a shared memory-mapped file, so that if the reader crashes the process
/// (a crash cannot be caught in-process) the input survives in
/// `$TMPDIR/engram-fuzz-current-<reader>.bin`: 8 bytes of input index, 8 of length (little-endian),
/// then the input (up to 4 MiB). The file is removed when the run completes.
final class CrashRecorder {
    let path: String
    private let capacity = 4 << 20
    private var mapping: UnsafeMutableRawPointer?

    init(reader: String) {
        path = NSTemporaryDirectory() + "engram-fuzz-current-\(reader).bin"
        let fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { return }
        defer { close(fd) }
        guard ftruncate(fd, off_t(16 + capacity)) == 0 else { return }
        let address = mmap(nil, 16 + capacity, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        guard let address, address != MAP_FAILED else { return }
        mapping = address
    }

    /// Stores input `index` before it is read.
    func record(index: Int, input: [UInt8]) {
        guard let mapping else { return }
        let count = min(input.count, capacity)
        mapping.storeBytes(of: UInt64(index).littleEndian, toByteOffset: 0, as: UInt64.self)
        mapping.storeBytes(of: UInt64(count).littleEndian, toByteOffset: 8, as: UInt64.self)
        if count > 0 { input.withUnsafeBytes { (mapping + 16).copyMemory(from: $0.baseAddress!, byteCount: count) } }
    }

    /// Unmaps and removes the file: the run completed, nothing crashed.
    func finish() {
        if let mapping { munmap(mapping, 16 + capacity) }
        mapping = nil
        unlink(path)
    }
}

/// Aborts the process (after saving the input) if one input runs far past its bound.
final class Watchdog: @unchecked Sendable {
    private let lock = NSLock()
    private let reader: String
    private let limit: Duration
    private var current: (index: Int, input: [UInt8], start: ContinuousClock.Instant)?
    private var stopped = false

    init(reader: String, limit: Duration) {
        self.reader = reader
        self.limit = limit
        let thread = Thread { [weak self] in
            while let self, self.check() { Thread.sleep(forTimeInterval: 0.5) }
        }
        thread.start()
    }

    func begin(index: Int, input: [UInt8]) {
        lock.lock(); current = (index, input, ContinuousClock.now); lock.unlock()
    }

    func end() { lock.lock(); current = nil; lock.unlock() }

    func stop() { lock.lock(); stopped = true; lock.unlock() }

    /// `false` once stopped; never returns if the current input has hung.
    private func check() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if stopped { return false }
        if let current, ContinuousClock.now - current.start > limit {
            let path = NSTemporaryDirectory() + "engram-fuzz-hang-\(reader)-\(current.index).bin"
            try? Data(current.input).write(to: URL(fileURLWithPath: path))
            FileHandle.standardError.write(Data("fuzz \(reader): input \(current.index) hung for more than \(limit); saved to \(path)\n".utf8))
            exit(3)
        }
        return true
    }
}

/// Mutations of valid inputs: bit flips, byte overwrites, insertions, deletions, truncation,
/// duplicated ranges, and extreme values written over the format's length fields.
enum Mutator {
    /// A length field of a format: its offset, width and byte order.
    struct LengthField {
        var offset: Int
        var width: Int
        var bigEndian: Bool
    }

    /// Values that break careless arithmetic, for a field of `width` bytes.
    static func extremes(width: Int) -> [UInt64] {
        let maximum: UInt64 = width >= 8 ? .max : (1 << UInt64(width * 8)) - 1
        return [0, 1, 2, 7, 8, 15, 16, 255, 256, 511, 512, 513, 65_535, 65_536, 0x7FFF_FFFF, 0x8000_0000,
                0xFFFF_FFFF, 0x1_0000_0000, 0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, .max, maximum, maximum - 1,
                maximum / 2, maximum / 2 + 1].map { $0 & maximum }
    }

    /// One to four random mutations of `seed`; `fields` are candidates for length-field extremes.
    static func mutate(_ seed: [UInt8], rng: inout SplitMix64, fields: [LengthField] = []) -> [UInt8] {
        var bytes = seed
        let rounds = 1 + Int(rng.next() % 4)
        for _ in 0 ..< rounds {
            switch rng.next() % 9 {
            case 0, 1:  // bit flip
                guard !bytes.isEmpty else { continue }
                let i = Int(rng.next() % UInt64(bytes.count))
                bytes[i] ^= 1 << UInt8(rng.next() % 8)
            case 2:  // byte overwrite with an interesting value
                guard !bytes.isEmpty else { continue }
                let i = Int(rng.next() % UInt64(bytes.count))
                let interesting: [UInt8] = [0, 1, 0x7F, 0x80, 0xFF, 0x20, 0x30, 0x37, 0x22, 0x5C, 0x7B, 0x7D, 0x2C]
                bytes[i] = rng.next() % 2 == 0 ? interesting[Int(rng.next() % UInt64(interesting.count))] : UInt8(truncatingIfNeeded: rng.next())
            case 3:  // insert random bytes
                let i = bytes.isEmpty ? 0 : Int(rng.next() % UInt64(bytes.count + 1))
                let n = 1 + Int(rng.next() % 16)
                bytes.insert(contentsOf: (0 ..< n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: i)
            case 4:  // delete a range
                guard !bytes.isEmpty else { continue }
                let i = Int(rng.next() % UInt64(bytes.count))
                let n = 1 + Int(rng.next() % UInt64(min(64, bytes.count - i)))
                bytes.removeSubrange(i ..< i + n)
            case 5:  // truncate
                bytes = Array(bytes.prefix(Int(rng.next() % UInt64(bytes.count + 1))))
            case 6:  // duplicate a range
                guard !bytes.isEmpty else { continue }
                let i = Int(rng.next() % UInt64(bytes.count))
                let n = 1 + Int(rng.next() % UInt64(min(512, bytes.count - i)))
                let at = Int(rng.next() % UInt64(bytes.count + 1))
                bytes.insert(contentsOf: Array(bytes[i ..< i + n]), at: at)
            default:  // a length field set to an extreme
                guard let field = fields.randomElement(using: &rng), field.offset + field.width <= bytes.count else {
                    if bytes.count >= 4 {  // any aligned 4 bytes instead
                        let i = Int(rng.next() % UInt64(bytes.count / 4)) * 4
                        write(extremes(width: 4).randomElement(using: &rng)!, into: &bytes, at: i, width: 4, bigEndian: rng.next() % 2 == 0)
                    }
                    continue
                }
                write(extremes(width: field.width).randomElement(using: &rng)!, into: &bytes, at: field.offset,
                      width: field.width, bigEndian: field.bigEndian)
            }
        }
        return bytes
    }

    static func write(_ value: UInt64, into bytes: inout [UInt8], at offset: Int, width: Int, bigEndian: Bool) {
        for k in 0 ..< width {
            let shift = UInt64(bigEndian ? (width - 1 - k) * 8 : k * 8)
            bytes[offset + k] = shift >= 64 ? 0 : UInt8(truncatingIfNeeded: value >> shift)
        }
    }
}

/// A gzip stream of `data` in stored (uncompressed) deflate blocks, with a correct CRC-32 and ISIZE:
/// lets the fuzzer wrap a mutated IDX file in valid gzip, so the IDX checks behind the inflater are
/// reached too.
func storedGzip(_ data: [UInt8]) -> [UInt8] {
    var out: [UInt8] = [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 255]
    var offset = 0
    repeat {
        let n = min(65_535, data.count - offset)
        let final: UInt8 = offset + n == data.count ? 1 : 0
        out += [final, UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
        out += data[offset ..< offset + n]
        offset += n
    } while offset < data.count
    let crc = crc32(data), size = UInt32(truncatingIfNeeded: data.count)
    for shift in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: crc >> UInt32(shift))) }
    for shift in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: size >> UInt32(shift))) }
    return out
}

private let crcTable: [UInt32] = (0 ..< 256).map { n -> UInt32 in
    var c = UInt32(n)
    for _ in 0 ..< 8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
    return c
}

/// The CRC-32 of gzip (ISO 3309).
func crc32(_ data: [UInt8]) -> UInt32 {
    var c: UInt32 = 0xFFFF_FFFF
    for byte in data { c = crcTable[Int((c ^ UInt32(byte)) & 0xFF)] ^ (c >> 8) }
    return c ^ 0xFFFF_FFFF
}
