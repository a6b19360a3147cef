import EngramTensor
import Testing
import EngramNN

@Suite struct MultiHeadRoutingTests {
    /// A two-layer MLP with heads of 2, 3 and 2 units.
    func model() -> Classifier {
        var rng = RandomGenerator(seed: 3)
        return Models.mlp(input: 4, hidden: [5], classes: 0, headsPerTask: [2, 3, 2], using: &rng)
    }

    func inputs(_ rows: Int) -> Tensor {
        var rng = RandomGenerator(seed: 4)
        return Tensor(shape: [rows, 4], scalars: (0..<rows * 4).map { _ in rng.nextNormal() })
    }

    @Test("each sample of a mixed batch gets its own task's head, narrower heads padded")
    func routesEachSample() throws {
        let net = model(), x = inputs(5), tasks = [2, 0, 1, 2, 0]
        try net.setSampleTasks(tasks)
        let mixed = net(x)
        #expect(mixed.shape == [5, 3])
        for (row, task) in tasks.enumerated() {
            net.setActiveTask(task)
            let alone = net(x.indexSelect([row])).scalars
            let got = Array(mixed.scalars[row * 3 ..< row * 3 + 3])
            #expect(zip(got.prefix(alone.count), alone).allSatisfy { abs($0 - $1) < 1e-6 })
            #expect(got.dropFirst(alone.count).allSatisfy { $0 == MultiHead.paddingLogit })
        }
    }

    @Test("gradients of a mixed batch equal the sum of each task's batch alone")
    func gradientsMatchSeparateBatches() throws {
        let net = model(), x = inputs(6), tasks = [1, 0, 1, 0, 0, 1], labels = [2, 1, 0, 0, 1, 1]
        try net.setSampleTasks(tasks)
        (Losses.crossEntropy(net(x), targets: labels) * 6).backward()
        let mixed = net.namedParameters().map { $0.1.grad?.scalars ?? [] }
        net.zeroGrad()
        var total: Tensor?
        for task in [0, 1] {
            let rows = tasks.indices.filter { tasks[$0] == task }
            net.setActiveTask(task)
            let loss = Losses.crossEntropy(net(x.indexSelect(rows)), targets: rows.map { labels[$0] }) * Float(rows.count)
            total = total.map { $0 + loss } ?? loss
        }
        total!.backward()
        for ((name, p), g) in zip(net.namedParameters(), mixed) {
            let separate = p.grad?.scalars ?? []
            #expect(separate.count == g.count, "\(name)")
            #expect(zip(separate, g).allSatisfy { abs($0 - $1) < 1e-5 }, "\(name)")
        }
        #expect(net.namedParameters().first { $0.0 == "head.heads.2.weight" }?.1.grad == nil, "the unused head gets no gradient")
    }

    @Test("setting one active task ends the routing; a batch of one task is the same as setActiveTask")
    func activeTaskClearsRouting() throws {
        let net = model()
        try net.setSampleTasks([0, 1])
        net.setActiveTask(1)
        #expect(net(inputs(2)).shape == [2, 3])
        try net.setSampleTasks([2, 2, 2])
        #expect(net(inputs(3)).shape == [3, 2])
        #expect((net.head as! MultiHead).sampleTasks == nil && (net.head as! MultiHead).activeTask == 2)
    }

    @Test("a model with per-task BatchNorm refuses a mixed batch, naming the module")
    func perTaskBatchNormRefusesMixedBatches() throws {
        var rng = RandomGenerator(seed: 1)
        let net = Models.cifarResNet(depth: 8, inputChannels: 1, classes: 0, headsPerTask: [2, 2], taskNorms: 2, using: &rng)
        #expect(throws: ModuleError.singleTaskPerBatch("features.1 (TaskBatchNorm)")) { try net.setSampleTasks([0, 1]) }
        try net.setSampleTasks([1, 1])
    }
}
