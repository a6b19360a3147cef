import EngramTensor
import Foundation

/// One sample of a stream: the task it is seen under (which fixes its transform and target) and
/// its index in the source dataset.
public struct TaskSample: Hashable, Sendable, Codable {
    /// The task.
    public var task: Int
    /// Index into the benchmark's `train` (train/validation splits) or `test` dataset.
    public var index: Int32

    /// Creates a sample reference.
    public init(task: Int, index: Int32) {
        self.task = task
        self.index = index
    }
}

/// One batch: inputs as a contiguous tensor, one target per sample, and the task(s) it came from.
public struct Batch: @unchecked Sendable {
    /// `[b, C·H·W]` or `[b, C, H, W]`, normalised and transformed.
    public let inputs: Tensor
    /// Targets in the scenario's label space (each relative to its sample's task).
    public let labels: [Int]
    /// The task of each sample.
    public let taskIDs: [Int]
    /// The benchmark's scenario.
    public let scenario: Scenario
    /// The samples' indices in the source dataset (−1 for a replayed sample appended to a stream batch; empty for a
    /// batch assembled without them).
    public let indices: [Int32]

    /// The task all samples belong to, or `nil` for a batch mixing tasks (joint or replay batches).
    public var taskID: Int? {
        guard let first = taskIDs.first, taskIDs.allSatisfy({ $0 == first }) else { return nil }
        return first
    }
    /// The task identity a model may be told: the (single) task id under task-incremental
    /// learning, `nil` under domain- and class-incremental learning.
    public var visibleTaskID: Int? { scenario == .taskIncremental ? taskID : nil }
    /// Per-sample task identities a model may be told (task-incremental only).
    public var visibleTaskIDs: [Int]? { scenario == .taskIncremental ? taskIDs : nil }
    /// Number of samples.
    public var count: Int { labels.count }

    /// A batch assembled elsewhere (replay buffers, joint training, tests): one task id per sample.
    public init(inputs: Tensor, labels: [Int], taskIDs: [Int], scenario: Scenario, indices: [Int32] = []) {
        precondition(inputs.shape.first == labels.count && taskIDs.count == labels.count,
                     "batch of \(labels.count) labels and \(taskIDs.count) task ids with inputs \(inputs.shape)")
        self.inputs = inputs
        self.labels = labels
        self.taskIDs = taskIDs
        self.scenario = scenario
        self.indices = indices
    }
}

extension Batch {
    /// This batch followed by `other` (a replayed batch appended to the stream's): inputs, targets and task ids
    /// concatenated; a sample without a dataset index (a replayed one) gets the index −1, so a memory offered the
    /// combined batch stores only the stream's samples.
    public func appending(_ other: Batch) -> Batch {
        precondition(other.scenario == scenario && Array(other.inputs.shape.dropFirst()) == Array(inputs.shape.dropFirst()),
                     "appending a batch of inputs \(other.inputs.shape) to one of \(inputs.shape)")
        let own = indices.count == count ? indices : Array(repeating: -1, count: count)
        let theirs = other.indices.count == other.count ? other.indices : Array(repeating: -1, count: other.count)
        return Batch(inputs: Tensor.concatenate([inputs, other.inputs]), labels: labels + other.labels,
                     taskIDs: taskIDs + other.taskIDs, scenario: scenario, indices: own + theirs)
    }

    /// The samples at `rows`, in that order (inputs gathered, targets, tasks and indices kept).
    public func rows(_ rows: [Int]) -> Batch {
        Batch(inputs: inputs.indexSelect(rows).detached(), labels: rows.map { labels[$0] }, taskIDs: rows.map { taskIDs[$0] },
              scenario: scenario, indices: indices.count == count ? rows.map { indices[$0] } : [])
    }
}
