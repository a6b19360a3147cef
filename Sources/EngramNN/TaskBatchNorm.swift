import EngramTensor

/// BatchNorm with one set of statistics and affine parameters per task, chosen by the active task:
/// y = γ_t·(x − μ_t)/√(σ²_t + ε) + β_t. Parameter isolation methods use it so that learning a new
/// task cannot move an earlier task's normalization. Names are stable: `tasks.<t>.weight`,
/// `tasks.<t>.running_mean`, …
public final class TaskBatchNorm: TaskConditioned {
    /// One BatchNorm per task.
    public let norms: [BatchNorm]
    public var activeTask = 0
    public var isTraining = true {
        didSet { for n in norms { n.isTraining = isTraining } }
    }

    public init(_ channels: Int, tasks: Int, momentum: Float = 0.1, epsilon: Float = 1e-5, affine: Bool = true) {
        precondition(tasks > 0, "TaskBatchNorm needs at least one task")
        norms = (0..<tasks).map { _ in BatchNorm(channels, momentum: momentum, epsilon: epsilon, affine: affine) }
    }

    public var children: [(String, any Module)] { [("tasks", Sequential(norms))] }

    public func forward(_ x: Tensor) -> Tensor {
        precondition(activeTask >= 0 && activeTask < norms.count, "task \(activeTask) has no BatchNorm (\(norms.count) tasks)")
        return norms[activeTask](x)
    }
}
