import EngramTensor
import EngramNN
import EngramData
import EngramCL
import Foundation
import Testing
import Yams

// Seeded mutation fuzzing of the configuration readers (issue 14): run configurations and sweep files, as YAML.
// Each input must decode and validate, or fail with one clear line — never a crash (an overflow trap, a failed
// precondition) or a hang. Seeds: every example file of the repository.

/// The repository's example files (run configurations and sweeps), as bytes.
private let exampleSeeds: [[UInt8]] = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0 ..< 3 { url.deleteLastPathComponent() }
    let examples = url.appendingPathComponent("examples")
    let files = (FileManager.default.enumerator(atPath: examples.path)?.compactMap { $0 as? String } ?? [])
        .filter { $0.hasSuffix(".yaml") }.sorted()
    return files.compactMap { try? Array(Data(contentsOf: examples.appendingPathComponent($0))) }
        + [Array("benchmark: split-mnist\nscenario: class\ntasks: 5\nhidden: [400, 400]\nwidth: 20\npadding: 2\ntraining: {epochs: 2, batch_size: 64, lr: 0.01}\nhyperparameters: {lambda: 1}\n".utf8),
           Array("strategy: mas+mind\nhyperparameters:\n  mas: {lambda: 1, importance_chunk: 64, output: logits}\n  mind: {teacher_milestones: [3, 5], teacher_epochs: 2, precise_batchnorm: true}\n".utf8)]
}()

/// Decodes `bytes` as a run configuration (then validates it), or else as a sweep file (then resolves its grids
/// and validates its base); throws the run configuration's error if neither reads.
private func readConfiguration(_ bytes: [UInt8]) throws {
    let text = String(decoding: bytes, as: UTF8.self)
    do {
        try YAMLDecoder().decode(ExperimentConfiguration.self, from: text).validate()
    } catch let configurationError {
        do {
            let sweep = try YAMLDecoder().decode(SweepSpecification.self, from: text)
            _ = try sweep.canonicalGrids()
            try sweep.base.validate()
        } catch {
            throw configurationError
        }
    }
}

/// Values that break arithmetic: extremes, signs, non-finite numbers, empty and typed-wrong values.
private let hostileValues = ["-1", "0", "-0", "9223372036854775807", "-9223372036854775808", "99999999999999999999", "1e308",
                             "-1e308", ".nan", ".inf", "-.inf", "1e-320", "0.0000001", "[]", "[0]", "[-1, 0]", "''", "~", "true",
                             "[9223372036854775807, 9223372036854775807]", "4294967296"]

/// Replaces one to three numbers of the text (digit runs) by hostile values.
private func replaceNumbers(_ seed: [UInt8], rng: inout SplitMix64) -> [UInt8] {
    var bytes = seed
    for _ in 0 ..< 1 + Int(rng.next() % 3) {
        let starts = bytes.indices.filter { i in
            (48...57).contains(bytes[i]) && (i == 0 || !((48...57).contains(bytes[i - 1]) || bytes[i - 1] == 46))
        }
        guard !starts.isEmpty else { break }
        let start = starts[Int(rng.next() % UInt64(starts.count))]
        var end = start
        while end < bytes.count, (48...57).contains(bytes[end]) || bytes[end] == 46 || bytes[end] == 101 || bytes[end] == 45 { end += 1 }
        bytes.replaceSubrange(start ..< end, with: Array(hostileValues[Int(rng.next() % UInt64(hostileValues.count))].utf8))
    }
    return bytes
}

/// One line, from Engram's own description of the error.
private func isClearConfigurationError(_ error: any Error) -> Bool {
    let line = ConfigurationError.describe(error)
    return !line.isEmpty && !line.contains("\n")
}

@Suite("Configuration fuzzing")
struct ConfigurationFuzzTests {
    @Test("mutated run configurations and sweep files decode or fail in one line, never crash or hang")
    func mutatedConfigurationsAreHandled() {
        #expect(!exampleSeeds.isEmpty)
        let report = Fuzzer.run(reader: "yaml", seeds: exampleSeeds, mutate: { rng, seed in
            rng.next() % 2 == 0 ? Mutator.mutate(seed, rng: &rng) : replaceNumbers(seed, rng: &rng)
        }, read: readConfiguration, isClear: isClearConfigurationError)
        Fuzzer.expectRobust(report)
    }
}
