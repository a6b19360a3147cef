import EngramTensor
import Testing
import EngramNN

/// Precise BatchNorm: running statistics as the exact average of the batch statistics.
@Suite struct PreciseBatchNormTests {
    static var batches: [Tensor] { [
        Tensor(shape: [2, 2], scalars: [1, 10, 3, 20]),
        Tensor(shape: [3, 2], scalars: [0, 0, 2, 4, 4, 8]),
        Tensor(shape: [2, 2], scalars: [-5, 1, 5, 1]),
    ] }

    @Test("with momentum nil the running statistics are the cumulative average of the batch statistics")
    func cumulativeAverage() {
        let bn = BatchNorm(2)
        bn.momentum = nil
        for x in Self.batches { _ = bn(x) }
        // Batch means (2, 15), (2, 4), (0, 1); unbiased variances (2, 50), (4, 16), (50, 0).
        let mean = bn.runningMean.scalars, variance = bn.runningVariance.scalars
        #expect(abs(mean[0] - 4.0 / 3) < 1e-5 && abs(mean[1] - 20.0 / 3) < 1e-5)
        #expect(abs(variance[0] - 56.0 / 3) < 1e-4 && abs(variance[1] - 22) < 1e-4)
        #expect(bn.batchesTracked.scalars == [3])
    }

    @Test("recalibrate re-estimates only the given layers, from scratch, and puts back momentum and mode")
    func recalibrateTouchesOnlyTheGivenLayers() {
        let net = TaskBatchNorm(2, tasks: 2)
        net.activeTask = 1
        for x in Self.batches { _ = net(x) }          // task 1's statistics: a moving average (momentum 0.1)
        let stale = net.norms[0].runningMean.scalars
        net.eval()
        BatchNorm.recalibrate([net.norms[1]], in: net) {
            for x in Self.batches { _ = net(x) }
        }
        #expect(abs(net.norms[1].runningMean.scalars[0] - 4.0 / 3) < 1e-5)
        #expect(abs(net.norms[1].runningVariance.scalars[1] - 22) < 1e-4)
        #expect(net.norms[1].momentum == 0.1 && !net.norms[1].isTraining)
        #expect(net.norms[0].runningMean.scalars == stale && !net.norms[0].isTraining)
    }
}
