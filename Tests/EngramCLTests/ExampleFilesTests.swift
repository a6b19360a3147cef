import EngramTensor
import EngramNN
import EngramData
import EngramCL
import Foundation
import Testing
import Yams

/// The YAML files in `examples/` stay valid as the configuration grows.
@Suite struct ExampleFilesTests {
    /// The YAML files of `examples/` and `examples/protocols/`.
    static let files: [String] = ["/examples", "/examples/protocols"].flatMap { folder -> [String] in
        let directory = repositoryRoot + folder
        return ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasSuffix(".yaml") }.sorted().map { directory + "/" + $0 }
    }

    @Test("there are example files to check")
    func examplesExist() { #expect(Self.files.count >= 7) }

    @Test("every example decodes and validates: sweeps expand to valid points, run configurations are valid",
          arguments: files)
    func exampleIsValid(path: String) throws {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        if text.contains("\ngrid:") || text.contains("\ngrids:") {
            // A protocol's final sweep whose choices the validation sweep has not filled in yet (no grid line at all) is
            // refused by name.
            if text.contains("\ngrids:") && !text.contains("\n  - {") {
                #expect { try YAMLDecoder().decode(SweepSpecification.self, from: text) } throws: { "\($0)".contains("grids is empty") }
                return
            }
            let specification = try YAMLDecoder().decode(SweepSpecification.self, from: text)
            let points = try specification.expand()
            #expect(!points.isEmpty)
            for point in points { try point.configuration.validate() }
        } else {
            try YAMLDecoder().decode(ExperimentConfiguration.self, from: text).validate()
        }
    }

    @Test("MIND's CIFAR-100 protocol file carries the reference code's hyper-parameters")
    func mindProtocolFile() throws {
        let text = try String(contentsOfFile: repositoryRoot + "/examples/mind-split-cifar100.yaml", encoding: .utf8)
        let c = try YAMLDecoder().decode(ExperimentConfiguration.self, from: text)
        #expect(c.benchmark == "split-cifar100" && c.tasks == 10 && c.model == "resnet32" && c.usesPerTaskBatchNorm)
        #expect(c.training.optimizer == .adamw && c.training.learningRate == 0.035 && c.training.milestones == [40])
        #expect(c.resolved().hyperparameters[c.strategy, "teacher_lr"]?.number == 0.005 && c.resolved().hyperparameters[c.strategy, "teacher_milestones"] == .list([35]))
        #expect(c.resolved().hyperparameters[c.strategy, "distill_beta"]?.number == 5 && c.resolved().hyperparameters[c.strategy, "temperature"]?.number == 6.5)
    }
}
