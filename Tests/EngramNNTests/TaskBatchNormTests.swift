import EngramTensor
import Testing
import EngramNN

/// Per-task BatchNorm: each task normalizes with its own parameters and statistics.
@Suite struct TaskBatchNormTests {
    @Test("names are stable per task and only the active task's statistics move")
    func perTaskStatistics() {
        let bn = TaskBatchNorm(2, tasks: 3)
        #expect(bn.namedParameters().map(\.0) == ["tasks.0.weight", "tasks.0.bias", "tasks.1.weight", "tasks.1.bias",
                                                  "tasks.2.weight", "tasks.2.bias"])
        bn.activeTask = 1
        _ = bn(Tensor(shape: [3, 2], scalars: [1, 2, 3, 4, 5, 6]))
        #expect(bn.norms[1].runningMean.scalars != [0, 0])
        #expect(bn.norms[0].runningMean.scalars == [0, 0] && bn.norms[2].runningMean.scalars == [0, 0])
        bn.eval()
        #expect(bn.norms.allSatisfy { !$0.isTraining })
    }
}
