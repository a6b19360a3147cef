import EngramTensor
import EngramNN
import EngramData
import Foundation

/// The accuracy matrix R of a continual-learning run: `R[i][j]` is the test accuracy on task `j`
/// after training on task `i` (T × T, filled as the run goes; missing entries are `nil`), plus the
/// optional accuracies `b` of a randomly initialised model, used for forward transfer.
///
/// All metrics are computed from the final row and the diagonal, as defined in the literature:
/// - average accuracy `ACC = (1/T) Σ_j R[T−1][j]`;
/// - forgetting (Chaudhry et al. 2018) `f_j = max_{j≤l<T−1} R[l][j] − R[T−1][j]`, averaged over `j < T−1`;
/// - backward transfer (Lopez-Paz & Ranzato 2017) `BWT = (1/(T−1)) Σ_{j<T−1} (R[T−1][j] − R[j][j])`;
/// - forward transfer (Lopez-Paz & Ranzato 2017) `FWT = (1/(T−1)) Σ_{j≥1} (R[j−1][j] − b_j)`;
/// - learning accuracy `LA = (1/T) Σ_j R[j][j]` (each task just after it is learned).
public struct AccuracyMatrix: Sendable, Equatable, Codable {
    /// Number of tasks T.
    public let taskCount: Int
    /// `values[i][j]`: accuracy on task j after training task i, or `nil` if not (yet) measured.
    public private(set) var values: [[Double?]]
    /// Accuracy of a randomly initialised model on each task (`b_j`), for forward transfer.
    public var randomBaseline: [Double]?

    /// An empty T × T matrix.
    public init(taskCount: Int) {
        precondition(taskCount > 0, "an accuracy matrix needs at least one task")
        self.taskCount = taskCount
        self.values = Array(repeating: Array(repeating: nil, count: taskCount), count: taskCount)
    }

    /// A matrix from complete rows.
    /// - Throws: `DataError.invalidConfiguration` unless `rows` is square and `randomBaseline`
    ///   (if given) has one entry per task.
    public init(rows: [[Double]], randomBaseline: [Double]? = nil) throws {
        guard !rows.isEmpty, rows.allSatisfy({ $0.count == rows.count }) else {
            throw DataError.invalidConfiguration("an accuracy matrix must be square, got rows of \(rows.map(\.count))")
        }
        if let b = randomBaseline, b.count != rows.count {
            throw DataError.invalidConfiguration("\(b.count) baseline accuracies for \(rows.count) tasks")
        }
        self.taskCount = rows.count
        self.values = rows.map { $0.map { Optional($0) } }
        self.randomBaseline = randomBaseline
    }

    /// The accuracy on task `j` after training task `i`.
    public subscript(afterTask i: Int, task j: Int) -> Double? {
        get { values[i][j] }
        set {
            precondition(newValue.map { $0.isFinite } ?? true, "accuracy must be finite")
            values[i][j] = newValue
        }
    }

    /// Records the accuracy on task `j` measured after training task `i`.
    public mutating func record(_ accuracy: Double, afterTraining i: Int, onTask j: Int) {
        precondition((0..<taskCount).contains(i) && (0..<taskCount).contains(j),
                     "entry (\(i), \(j)) outside a \(taskCount)×\(taskCount) matrix")
        self[afterTask: i, task: j] = accuracy
    }

    /// Whether every entry is filled.
    public var isComplete: Bool { values.allSatisfy { $0.allSatisfy { $0 != nil } } }

    /// Average accuracy over the tasks seen after training task `i`: `(1/(i+1)) Σ_{j≤i} R[i][j]`;
    /// for the last task this is ACC. `nil` if an entry is missing.
    public func averageAccuracy(afterTask i: Int) -> Double? {
        mean((0...i).map { values[i][$0] })
    }

    /// ACC = `(1/T) Σ_j R[T−1][j]`.
    public var averageAccuracy: Double? { averageAccuracy(afterTask: taskCount - 1) }

    /// Forgetting of task `j` after training task `k` (default: the last):
    /// `max_{l<k} R[l][j] − R[k][j]` (Chaudhry et al. 2018). Missing earlier entries are skipped.
    public func forgetting(ofTask j: Int, afterTask k: Int? = nil) -> Double? {
        let k = k ?? taskCount - 1
        guard j < k, let current = values[k][j] else { return nil }
        // The best accuracy on task j from the moment it was learned (rows j … k−1); rows before
        // task j was trained measure transfer, not knowledge that could be forgotten.
        guard let best = (j..<k).compactMap({ values[$0][j] }).max() else { return nil }
        return best - current
    }

    /// Average forgetting after task `k` (default: the last) over tasks `j < k`; `nil` for one task.
    public func forgetting(afterTask k: Int? = nil) -> Double? {
        let k = k ?? taskCount - 1
        guard k >= 1 else { return nil }
        return mean((0..<k).map { forgetting(ofTask: $0, afterTask: k) })
    }

    /// Average forgetting after the last task.
    public var forgetting: Double? { forgetting() }

    /// BWT = `(1/(T−1)) Σ_{j<T−1} (R[T−1][j] − R[j][j])`; `nil` for one task.
    public var backwardTransfer: Double? {
        guard taskCount > 1 else { return nil }
        let last = taskCount - 1
        return mean((0..<last).map { j in values[last][j].flatMap { a in values[j][j].map { a - $0 } } })
    }

    /// FWT = `(1/(T−1)) Σ_{j≥1} (R[j−1][j] − b_j)`; `nil` without a random baseline or with one task.
    public var forwardTransfer: Double? {
        guard taskCount > 1, let b = randomBaseline else { return nil }
        return mean((1..<taskCount).map { j in values[j - 1][j].map { $0 - b[j] } })
    }

    /// LA = `(1/T) Σ_j R[j][j]`.
    public var learningAccuracy: Double? {
        mean((0..<taskCount).map { values[$0][$0] })
    }

    /// All summary metrics.
    public var metrics: ContinualMetrics {
        ContinualMetrics(averageAccuracy: averageAccuracy, forgetting: forgetting, backwardTransfer: backwardTransfer,
                         forwardTransfer: forwardTransfer, learningAccuracy: learningAccuracy)
    }

    /// The matrix as CSV: a header `after_task,task_0,…,task_{T−1}`, then one row per training
    /// stage; missing entries are empty fields.
    public func csv() -> String {
        var lines = ["after_task," + (0..<taskCount).map { "task_\($0)" }.joined(separator: ",")]
        for (i, row) in values.enumerated() {
            lines.append("\(i)," + row.map { $0.map(formatNumber) ?? "" }.joined(separator: ","))
        }
        if let b = randomBaseline { lines.append("random," + b.map(formatNumber).joined(separator: ",")) }
        return lines.joined(separator: "\n") + "\n"
    }

    // MARK: Codable (checks the shape when decoding)

    private enum CodingKeys: String, CodingKey {
        case taskCount, values, randomBaseline
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let taskCount = try container.decode(Int.self, forKey: .taskCount)
        let values = try container.decode([[Double?]].self, forKey: .values)
        let baseline = try container.decodeIfPresent([Double].self, forKey: .randomBaseline)
        guard taskCount > 0, values.count == taskCount, values.allSatisfy({ $0.count == taskCount }),
              baseline.map({ $0.count == taskCount }) ?? true else {
            throw DecodingError.dataCorruptedError(forKey: .values, in: container,
                                                   debugDescription: "not a \(taskCount)×\(taskCount) accuracy matrix")
        }
        self.taskCount = taskCount
        self.values = values
        self.randomBaseline = baseline
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(taskCount, forKey: .taskCount)
        try container.encode(values, forKey: .values)
        try container.encodeIfPresent(randomBaseline, forKey: .randomBaseline)
    }

    private func mean(_ entries: [Double?]) -> Double? {
        guard !entries.isEmpty else { return nil }
        var sum = 0.0
        for e in entries { guard let e else { return nil }; sum += e }
        return sum / Double(entries.count)
    }
}

/// The summary metrics of one run (`nil` where undefined or not yet measurable).
public struct ContinualMetrics: Sendable, Equatable, Codable {
    /// ACC: mean final accuracy over all tasks.
    public var averageAccuracy: Double?
    /// Mean forgetting over all but the last task (Chaudhry et al. 2018).
    public var forgetting: Double?
    /// BWT (Lopez-Paz & Ranzato 2017).
    public var backwardTransfer: Double?
    /// FWT (Lopez-Paz & Ranzato 2017); needs a random-initialisation baseline.
    public var forwardTransfer: Double?
    /// Mean accuracy on each task right after learning it.
    public var learningAccuracy: Double?

    /// Creates a summary.
    public init(averageAccuracy: Double?, forgetting: Double?, backwardTransfer: Double?,
                forwardTransfer: Double?, learningAccuracy: Double?) {
        self.averageAccuracy = averageAccuracy
        self.forgetting = forgetting
        self.backwardTransfer = backwardTransfer
        self.forwardTransfer = forwardTransfer
        self.learningAccuracy = learningAccuracy
    }

    /// `metric,value` CSV, one metric per line; undefined metrics are empty.
    public func csv() -> String {
        let rows: [(String, Double?)] = [("acc", averageAccuracy), ("forgetting", forgetting), ("bwt", backwardTransfer),
                                         ("fwt", forwardTransfer), ("learning_accuracy", learningAccuracy)]
        return "metric,value\n" + rows.map { "\($0.0),\($0.1.map(formatNumber) ?? "")" }.joined(separator: "\n") + "\n"
    }
}

/// Shortest round-tripping decimal form.
private func formatNumber(_ x: Double) -> String { "\(x)" }
