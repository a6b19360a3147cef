import EngramCL
import Foundation
import Testing

/// Bad input gets one clear error and loses nothing (issue 14): the cases a hostile-input run found.
@Suite(.serialized) struct HardeningTests {
    @Test("an evaluation batch size of zero or below is refused, naming the key", arguments: [0, -3])
    func evaluationBatchSizeIsValidated(size: Int) throws {
        var config = smallPermutedMNIST(strategy: "finetune")
        config.training.evaluationBatchSize = size
        #expect {
            try config.validate()
        } throws: { error in
            "\(error)".contains("evaluation_batch_size") && "\(error)".contains("\(size)")
        }
    }

    @Test("a log.txt that cannot be written (full disk) is reported once and the run still finishes")
    func fullDiskLogDoesNotStopTheRun() throws {
        let dir = try temporaryDirectory("engram-full-disk")
        let out = dir.appendingPathComponent("run")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: out.appendingPathComponent("log.txt").path, withDestinationPath: "/dev/full")
        let log = dir.appendingPathComponent("output.txt")
        let status = try engram(["run", "--benchmark", "permuted-mnist", "--tasks", "2", "--epochs", "1", "--hidden", "16",
                                 "--fraction", "0.01", "--strategy", "finetune", "--data-dir", datasetsRoot, "--out", out.path], log: log)
        let output = try String(contentsOf: log, encoding: .utf8)
        #expect(status == 0, "\(output)")
        #expect(output.contains("cannot write") && output.contains("log.txt"))
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("results.json").path))
    }
}
