import EngramNN
@_exported import EngramData

/// A batch of a task: inputs, labels in the model's output space for that task, and the task id.
public struct Batch {
    public var inputs: Tensor
    public var labels: [Int]
    public var taskID: Int
    public init(inputs: Tensor, labels: [Int], taskID: Int) {
        self.inputs = inputs
        self.labels = labels
        self.taskID = taskID
    }
}

/// A stream of tasks, as the trainer and the strategies see it.
public protocol TaskStream {
    /// Number of tasks.
    var taskCount: Int { get }
    /// How labels and heads relate across tasks.
    var scenario: Scenario { get }
    /// Shape of one input sample, e.g. [784] or [3, 32, 32].
    var inputShape: [Int] { get }
    /// Output units of each task's head (task-incremental) or of the shared head (others, same for every task).
    func headSize(task: Int) -> Int
    /// Output units a task's labels live in (its classes in the class-incremental head; all units otherwise).
    func outputClasses(task: Int) -> [Int]
    /// The training batches of `task` for `epoch`, shuffled deterministically from the stream's seed.
    func trainingBatches(task: Int, epoch: Int, batchSize: Int) -> [Batch]
    /// The test batches of `task`, in a fixed order.
    func testBatches(task: Int, batchSize: Int) -> [Batch]
    /// Number of training samples of `task`.
    func trainingCount(task: Int) -> Int
}
