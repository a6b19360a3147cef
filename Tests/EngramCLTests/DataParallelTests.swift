import EngramTensor
import EngramNN
import EngramData
import EngramCL
import Foundation
import Testing

/// Data-parallel training (`Trainer.group`) over a ``ThreadGroup``: the members take the steps one process takes on
/// the whole batch, and hold bit-identical parameters. (The MPI transport is tested through the CLI in
/// `DataParallelMPITests`.)
@Suite struct DataParallelTests {
    /// Runs `body(rank)` on `size` threads at once and returns their results in rank order.
    static func onThreads<T: Sendable>(_ size: Int, _ body: @escaping @Sendable (Int) throws -> T) throws -> [T] {
        let results = Locked<[Int: Result<T, any Error>]>([:])
        let done = DispatchGroup()
        let backend = ComputeBackend.current  // a scoped choice does not reach new threads by itself
        for rank in 0..<size {
            done.enter()
            // Large stacks: the trainer's recursion (autograd) runs on these threads.
            let thread = Thread {
                let r = ComputeBackend.using(backend) { Result { try body(rank) } }
                results.mutate { $0[rank] = r }
                done.leave()
            }
            thread.stackSize = 64 << 20
            thread.start()
        }
        done.wait()
        return try (0..<size).map { try results.value[$0]!.get() }
    }

    @Test("shards cover a batch once in contiguous blocks differing by at most one row; a batch smaller than the group is taken whole by every member")
    func shardsCoverTheBatch() {
        let group = ThreadGroup(size: 3)
        let shards = (0..<3).map { group.member($0).shard(of: 10) }
        #expect(shards.map(\.rows) == [0..<3, 3..<6, 6..<10])
        #expect(abs(shards.map(\.share).reduce(0, +) - 1) < 1e-6)
        let small = (0..<3).map { group.member($0).shard(of: 2) }
        #expect(small.allSatisfy { $0.rows == 0..<2 && abs($0.share - 1 / 3) < 1e-7 })
    }

    @Test("a thread group's sum is the members' sum in rank order on every member, over many rounds")
    func threadGroupSums() throws {
        let group = ThreadGroup(size: 3)
        let sums = try Self.onThreads(3) { rank -> [Float] in
            var last: [Float] = []
            for round in 0..<200 {
                var v: [Float] = [Float(rank + 1), Float(round)]
                group.member(rank).sum(&v)
                last = v
            }
            return last
        }
        #expect(sums.allSatisfy { $0 == [6, 597] }, "\(sums)")
    }

    @Test("synchronised BatchNorm over two shards gives the whole batch's output, input gradient and statistics; γ's and β's gradients add up to the whole batch's")
    func synchronisedBatchNorm() throws {
        var random = RandomGenerator(seed: 3)
        let x = (0..<(6 * 3 * 2 * 2)).map { _ in random.nextFloat() * 4 - 1 }
        let upstream = (0..<x.count).map { _ in random.nextFloat() - 0.5 }
        @Sendable func run(rows: Range<Int>, group: (any ProcessGroup)?) -> (y: [Float], dx: [Float], dgamma: [Float], mean: [Float], variance: [Float]) {
            let per = 3 * 2 * 2
            let input = Tensor(shape: [rows.count, 3, 2, 2], scalars: Array(x[rows.lowerBound * per ..< rows.upperBound * per]), requiresGrad: true)
            let gamma = Tensor(shape: [3], scalars: [1.5, 0.5, -1], requiresGrad: true), beta = Tensor(shape: [3], scalars: [0, 1, 2], requiresGrad: true)
            let (y, mean, variance) = Tensor.batchNorm(input, gamma: gamma, beta: beta, runningMean: [0, 0, 0], runningVariance: [1, 1, 1],
                                                       training: true, group: group)
            let g = Tensor(shape: y.shape, scalars: Array(upstream[rows.lowerBound * per ..< rows.upperBound * per]))
            (y * g).sum().backward()
            return (y.scalars, input.grad!.scalars, gamma.grad!.scalars, mean, variance)
        }
        let whole = run(rows: 0..<6, group: nil)
        let group = ThreadGroup(size: 2)
        let shards = try Self.onThreads(2) { rank in
            let r = run(rows: rank == 0 ? 0..<3 : 3..<6, group: group.member(rank))
            return [r.y, r.dx, r.dgamma, r.mean, r.variance]
        }
        func close(_ a: [Float], _ b: [Float]) -> Bool { zip(a, b).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($1)) } && a.count == b.count }
        #expect(close(shards[0][0] + shards[1][0], whole.y))
        #expect(close(shards[0][1] + shards[1][1], whole.dx))
        #expect(close(zip(shards[0][2], shards[1][2]).map { $0 + $1 }, whole.dgamma))
        #expect(close(shards[0][3], whole.mean) && close(shards[1][4], whole.variance))
    }

    /// A ResNet-20 (width 4, BatchNorm) on task-incremental Split MNIST, one step per task (five steps, a new head
    /// each), momentum SGD. More steps are not comparable at 1e-5: at initialisation this narrow network has
    /// BatchNorm channels of near-zero variance, which multiply rounding differences by up to 1/√ε ≈ 316 per layer
    /// (measured with two steps per task: the group ends 0.07 apart from one process in a running variance — and one
    /// process fed each batch in reversed row order ends 0.12 apart from itself; through the CLI, one process with one
    /// and with two OpenBLAS threads end 1.5·10⁻³ apart after one step per task).
    static func resnet(strategy: String) -> ExperimentConfiguration {
        var c = smallSplitMNIST(strategy: strategy, fraction: 0.01)
        c.model = "resnet20"
        c.width = 4
        c.training.iterations = 1
        c.training.batchSize = 19
        c.training.momentum = 0.9
        c.testFraction = 0.05
        return c
    }

    /// An MLP with dropout (0.25), EWC and SAM on Permuted MNIST.
    static func mlpWithDropout() -> ExperimentConfiguration {
        var c = smallPermutedMNIST(strategy: "ewc", tasks: 2, fraction: 0.01)
        c.dropout = 0.25
        c.training.iterations = 5
        c.training.batchSize = 25
        c.training.samRho = 0.05
        return c
    }

    /// The final checkpoint's model tensors after running `configuration` alone and as `size` members (member 0's:
    /// the member that writes), with both runs' results. The run itself stops if the members' parameters differ
    /// after any task (``DataParallel/membersAgree(on:group:)``), so a group run that finishes held identical ones.
    static func alongside(_ configuration: ExperimentConfiguration, size: Int) throws -> (alone: [String: Tensor], group: [String: Tensor], results: [RunResults], single: RunResults) {
        let benchmark = try configuration.makeBenchmark()
        let single = try temporaryDirectory("engram-dp-single")
        let singleResults = try ExperimentRun(configuration: configuration, directory: single).run(benchmark: benchmark)
        let group = ThreadGroup(size: size)
        let directory = try temporaryDirectory("engram-dp-group")
        let results = try Self.onThreads(size) { rank -> UncheckedBox<RunResults> in
            // Each member builds its own benchmark, as each MPI rank does (its loaders keep state).
            let run = try ExperimentRun(configuration: configuration, directory: directory)
            run.group = group.member(rank)
            return UncheckedBox(try run.run(benchmark: try configuration.makeBenchmark()))
        }
        return (try Checkpoint.read(from: single.appendingPathComponent(ExperimentRun.checkpointName)).model,
                try Checkpoint.read(from: directory.appendingPathComponent(ExperimentRun.checkpointName)).model,
                results.map(\.value), singleResults)
    }

    @Test("members with synchronised BatchNorm (ResNet-20) and with dropout and SAM (MLP) take one process's steps on the whole batch, to 1e-5, and hold bit-identical parameters",
          arguments: [("resnet20 finetune", 2), ("resnet20 finetune", 3), ("mlp dropout ewc sam", 2), ("mlp dropout ewc sam", 3)])
    func equalsOneProcess(_ setting: String, _ size: Int) throws {
        let configuration = setting.hasPrefix("resnet") ? Self.resnet(strategy: "finetune") : Self.mlpWithDropout()
        // The ResNet's BatchNorm channels of near-zero variance amplify rounding (see `resnet`); oneDNN's convolutions
        // sum a shard's weight gradient in another order than the whole batch's (9e-3 apart after 5 steps), so this
        // comparison of the data-parallel algorithm runs on OpenBLAS (im2col + GEMM), whose sums split at the shard boundary.
        // DataParallelMPITests checks oneDNN's convolutions under data parallelism (a conv net, to 1e-5).
        let (alone, together, results, single) = try ComputeBackend.using(.openBLAS) { try Self.alongside(configuration, size: size) }
        #expect(alone.keys.sorted() == together.keys.sorted())
        var worst: Float = 0, worstName = ""
        for (name, t) in alone {
            let other = together[name]!.scalars
            for (a, b) in zip(t.scalars, other) where abs(a - b) / max(1, abs(a)) > worst { worst = abs(a - b) / max(1, abs(a)); worstName = name }
        }
        #expect(worst <= 1e-5, "largest relative difference from one process: \(worst) in \(worstName)")
        #expect(results.allSatisfy { $0.matrix.values == results[0].matrix.values })
        let gap = zip(single.matrix.values.joined(), results[0].matrix.values.joined()).map { abs(($0 ?? 0) - ($1 ?? 0)) }.max() ?? 0
        #expect(gap <= 0.01, "accuracies of one process \(single.matrix.values) and the group \(results[0].matrix.values)")
    }

    @Test("the members' agreement check finds one differing parameter bit, and passes identical models")
    func agreementCheck() throws {
        let c = smallPermutedMNIST(strategy: "finetune", tasks: 2)
        let benchmark = try c.makeBenchmark()
        let box = UncheckedBox(benchmark)
        let group = ThreadGroup(size: 2)
        let verdicts = try Self.onThreads(2) { rank -> [Bool] in
            let model = c.makeModel(for: box.value)
            let same = DataParallel.membersAgree(on: model, group: group.member(rank))
            if rank == 1 { model.namedParameters()[0].1.scalars[7] = model.namedParameters()[0].1.scalars[7].nextUp }
            return [same, DataParallel.membersAgree(on: model, group: group.member(rank))]
        }
        #expect(verdicts == [[true, false], [true, false]])
    }

    @Test("strategies whose loss sees the whole batch are refused with the reason")
    func refusesWholeBatchStrategies() throws {
        var c = smallSplitMNIST(strategy: "der", fraction: 0.01)
        c.training.iterations = 1
        let run = try ExperimentRun(configuration: c, directory: try temporaryDirectory("engram-dp-der"))
        run.group = ThreadGroup(size: 1).member(0)
        #expect { try run.run() } throws: { "\($0)".contains("data-parallel training does not support der") }
    }
}

/// A value handed between threads in a test (the benchmark is read only).
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// A value guarded by a lock.
final class Locked<T>: @unchecked Sendable {
    private var stored: T
    private let lock = NSLock()
    init(_ value: T) { stored = value }
    var value: T { lock.lock(); defer { lock.unlock() }; return stored }
    func mutate(_ body: (inout T) -> Void) { lock.lock(); body(&stored); lock.unlock() }
}
