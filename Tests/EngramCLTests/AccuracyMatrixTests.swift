import EngramTensor
import EngramNN
import EngramData
import EngramCL
import Foundation
import Testing

@Suite("AccuracyMatrix")
struct AccuracyMatrixTests {
    /// R[i][j] for three tasks. R[1][0] > R[0][0], so forgetting (max over earlier rows) and BWT
    /// (diagonal) differ.
    let rows: [[Double]] = [
        [0.90, 0.10, 0.20],
        [0.92, 0.80, 0.30],
        [0.60, 0.40, 0.95],
    ]
    let baseline: [Double] = [0.10, 0.15, 0.20]

    func close(_ a: Double?, _ b: Double) -> Bool { a.map { abs($0 - b) < 1e-12 } ?? false }

    @Test("computes ACC, forgetting, BWT, FWT and learning accuracy as worked out by hand")
    func handComputedMetrics() throws {
        let r = try AccuracyMatrix(rows: rows, randomBaseline: baseline)
        #expect(close(r.averageAccuracy, (0.60 + 0.40 + 0.95) / 3))             // 0.65
        #expect(close(r.forgetting(ofTask: 0), 0.92 - 0.60))                     // 0.32
        #expect(close(r.forgetting(ofTask: 1), 0.80 - 0.40))                     // 0.40
        #expect(close(r.forgetting, 0.36))
        #expect(close(r.backwardTransfer, ((0.60 - 0.90) + (0.40 - 0.80)) / 2))  // −0.35
        #expect(close(r.forwardTransfer, ((0.10 - 0.15) + (0.30 - 0.20)) / 2))   // 0.025
        #expect(close(r.learningAccuracy, (0.90 + 0.80 + 0.95) / 3))
        #expect(close(r.averageAccuracy(afterTask: 1), (0.92 + 0.80) / 2))
        #expect(close(r.forgetting(afterTask: 1), 0.90 - 0.92))                  // −0.02: task 0 improved
        #expect(r.forgetting(ofTask: 2) == nil)
    }

    @Test("forgetting ignores accuracies measured before a task was learned")
    func forgettingStartsAtTheTask() throws {
        // Task 1 scores 0.9 before it is trained (forward transfer), 0.7 once learned, 0.6 at the end.
        let r = try AccuracyMatrix(rows: [[0.9, 0.9, 0.1], [0.8, 0.7, 0.2], [0.7, 0.6, 0.9]])
        #expect(close(r.forgetting(ofTask: 1), 0.7 - 0.6))
        #expect(close(r.forgetting(ofTask: 0), 0.9 - 0.7))
    }

    @Test("a single task has accuracy but no forgetting or transfer")
    func singleTask() throws {
        let r = try AccuracyMatrix(rows: [[0.7]], randomBaseline: [0.1])
        #expect(r.averageAccuracy == 0.7 && r.learningAccuracy == 0.7)
        #expect(r.forgetting == nil && r.backwardTransfer == nil && r.forwardTransfer == nil)
    }

    @Test("metrics wait for the entries they need while the run fills the matrix")
    func incrementalFilling() {
        var r = AccuracyMatrix(taskCount: 2)
        r.record(0.9, afterTraining: 0, onTask: 0)
        #expect(r.averageAccuracy(afterTask: 0) == 0.9)
        #expect(r.averageAccuracy == nil && !r.isComplete)
        #expect(r.forwardTransfer == nil)  // no baseline
        r.record(0.2, afterTraining: 0, onTask: 1)
        r.record(0.5, afterTraining: 1, onTask: 0)
        r.record(0.8, afterTraining: 1, onTask: 1)
        #expect(r.isComplete)
        #expect(close(r.averageAccuracy, 0.65) && close(r.forgetting, 0.4) && close(r.backwardTransfer, -0.4))
        r.randomBaseline = [0.5, 0.1]
        #expect(close(r.forwardTransfer, 0.1))
    }

    @Test("exports the matrix and the metrics as CSV")
    func csvExport() throws {
        var r = AccuracyMatrix(taskCount: 2)
        r.record(0.5, afterTraining: 0, onTask: 0)
        r.record(0.25, afterTraining: 1, onTask: 0)
        r.record(1, afterTraining: 1, onTask: 1)
        #expect(r.csv() == "after_task,task_0,task_1\n0,0.5,\n1,0.25,1.0\n")
        let full = try AccuracyMatrix(rows: [[0.5, 0.125], [0.25, 1]])
        #expect(full.metrics.csv() == "metric,value\nacc,0.625\nforgetting,0.25\nbwt,-0.25\nfwt,\nlearning_accuracy,0.75\n")
    }

    @Test("round-trips through JSON with nulls for missing entries")
    func jsonRoundTrip() throws {
        var r = try AccuracyMatrix(rows: rows, randomBaseline: baseline)
        r[afterTask: 0, task: 2] = nil
        let data = try JSONEncoder().encode(r)
        #expect(String(decoding: data, as: UTF8.self).contains("null"))
        let back = try JSONDecoder().decode(AccuracyMatrix.self, from: data)
        #expect(back == r)
        #expect(close(back.metrics.averageAccuracy, 0.65))
    }

    @Test("rejects non-square matrices, in code and in JSON")
    func rejectsBadShapes() throws {
        #expect(throws: DataError.self) { try AccuracyMatrix(rows: [[1, 2], [3]]) }
        #expect(throws: DataError.self) { try AccuracyMatrix(rows: [[1]], randomBaseline: [0, 0]) }
        let json = Data(#"{"taskCount": 2, "values": [[0.5, null]]}"#.utf8)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(AccuracyMatrix.self, from: json) }
    }
}
