import EngramTensor
import Testing
import EngramNN

@Suite struct ProgressiveConvNetTests {
    /// Two columns on 1×8×8 images: blocks of 2 and 3 channels (8 → 4 → 2), hidden [4], heads of 2.
    func tinyNet(seed: UInt64 = 1, columns: Int = 2) -> ProgressiveConvNet {
        var rng = RandomGenerator(seed: seed)
        return ProgressiveConvNet(inputChannels: 1, inputHeight: 8, inputWidth: 8, channels: [2, 3], hidden: [4],
                                  classesPerTask: Array(repeating: 2, count: columns), using: &rng)
    }

    func state(_ m: any Module) -> [String: [Float]] {
        Dictionary(uniqueKeysWithValues: m.stateDictionary().map { ($0.0, $0.1.scalars) })
    }

    @Test("parameters and buffers are named per column and layer; laterals per target layer and source column")
    func names() {
        let net = tinyNet()
        let column1 = net.columns[1].namedParameters().map(\.0)
        #expect(column1 == ["layers.0.conv.weight", "layers.0.bn.weight", "layers.0.bn.bias",
                            "layers.1.conv.weight", "layers.1.bn.weight", "layers.1.bn.bias",
                            "layers.2.weight", "layers.2.bias", "layers.3.weight", "layers.3.bias",
                            "lateral.1.0.weight", "lateral.2.0.weight", "lateral.3.0.weight"])
        #expect(net.columns[0].namedParameters().map(\.0) == Array(column1.prefix(10)))
        #expect(net.namedBuffers().map(\.0).contains("columns.1.layers.1.bn.running_var"))
        // Lateral shapes: a 3×3 conv 2 → 3 channels, a Linear from the flattened 3×2×2 block output, a Linear 4 → 2.
        let shapes = Dictionary(uniqueKeysWithValues: net.columns[1].namedParameters().map { ($0.0, $0.1.shape) })
        #expect(shapes["lateral.1.0.weight"] == [3, 2, 3, 3])
        #expect(shapes["lateral.2.0.weight"] == [4, 12])
        #expect(shapes["lateral.3.0.weight"] == [2, 4])
        var rng = RandomGenerator(seed: 2)
        let model = Models.progressiveCNN(inputChannels: 1, channels: [4, 8], hidden: [16], classesPerTask: [2, 2, 2], using: &rng)
        #expect(model.namedParameters().map(\.0).filter { $0.contains("lateral.1.") }
                == ["head.columns.1.lateral.1.0.weight", "head.columns.2.lateral.1.0.weight", "head.columns.2.lateral.1.1.weight"])
        let x = distinctTensor([2, 1, 28, 28], seed: 3, spacing: 0.01, requiresGrad: false)
        model.setActiveTask(2)
        #expect(model(x).shape == [2, 2])
    }

    @Test("column k has the cnn's parameters plus k sets of laterals (conv 3×3 and linear, no bias)")
    func parameterCount() {
        let net = tinyNet(columns: 3)
        // Own: conv 1→2 (18) + BN (4) + conv 2→3 (54) + BN (6) + Linear 12→4 (52) + head 4→2 (10) = 144.
        // Laterals from one column: conv 2→3 (54) + Linear 12→4 (48) + Linear 4→2 (8) = 110.
        #expect((0..<3).map { net.parameterCount(column: $0) } == [144, 254, 364])
        #expect((0..<3).map { net.bufferCount(column: $0) } == [12, 12, 12])
        var rng = RandomGenerator(seed: 4)
        let cnn = Models.cnn(inputChannels: 1, inputHeight: 8, inputWidth: 8, channels: [2, 3], hidden: [4], classes: 2, using: &rng)
        #expect(cnn.parameterCount == 144)
    }

    @Test("the second column's output equals eq. 1 computed by hand from the modules")
    func lateralForward() {
        let net = tinyNet()
        net.eval()
        let x = distinctTensor([3, 1, 8, 8], seed: 5, requiresGrad: false)
        let (c0, c1) = (net.columns[0], net.columns[1])
        let h0 = c0.blocks[0](x), h1 = c0.blocks[1](h0).flattened(), h2 = c0.linears[0](h1).relu()
        func u(_ i: Int, _ h: Tensor) -> Tensor { c1.lateral[i - 1][0].forward(h) }
        let g0 = c1.blocks[0](x)
        let g1 = c1.blocks[1].finish(c1.blocks[1].conv(g0) + u(1, h0)).flattened()
        let g2 = (c1.linears[0](g1) + u(2, h1)).relu()
        let y = c1.linears[1](g2) + u(3, h2)
        net.activeTask = 1
        expectClose(net(x), y)
        net.activeTask = 0
        expectClose(net(x), c0.linears[1](h2))
    }

    @Test("gradients w.r.t. column 1's weights and lateral adapters match central differences; column 0 gets none")
    func gradientCheck() {
        let net = tinyNet()
        let x = distinctTensor([3, 1, 8, 8], seed: 6, spacing: 0.05, requiresGrad: false)
        net.activeTask = 1
        let active = net.columns[1].namedParameters().map(\.1)
        #expect(net.columns[1].namedParameters().filter { $0.0.hasPrefix("lateral.") }.count == 3)
        checkGradients(wrt: active, tolerance: 2e-2, kinkSteps: kinkSteps) { net(x) }
        net.zeroGrad()
        net(x).sum().backward()
        for (name, p) in net.columns[0].namedParameters() { #expect(p.grad == nil, "column 0 \(name) got a gradient") }
        for (name, p) in net.columns[1].namedParameters() { #expect(p.grad != nil, "column 1 \(name) got no gradient") }
    }

    @Test("in training mode the earlier columns run in evaluation mode: their BatchNorm statistics stay bit-identical")
    func frozenBatchNormStatistics() {
        let net = tinyNet()
        let x = distinctTensor([4, 1, 8, 8], seed: 7, requiresGrad: false)
        net.train()
        net.activeTask = 0
        _ = net(x)   // column 0 trains: its statistics move
        let column0 = state(net.columns[0]), column1 = state(net.columns[1])
        #expect(column0["layers.0.bn.num_batches_tracked"] == [1])
        net.activeTask = 1
        for _ in 0..<3 { _ = net(x) }
        #expect(state(net.columns[0]) == column0)
        #expect(state(net.columns[1])["layers.0.bn.running_mean"] != column1["layers.0.bn.running_mean"])
        #expect(state(net.columns[1])["layers.0.bn.num_batches_tracked"] == [3])
        // The network's modes are left as they were.
        #expect(net.namedModules().allSatisfy { $0.1.isTraining })
        // Evaluation uses column 0's own statistics: its output is the same with or without column 1 trained.
        net.eval()
        net.activeTask = 0
        let before = net(x).scalars
        net.train(); net.activeTask = 1; _ = net(x); net.eval(); net.activeTask = 0
        #expect(net(x).scalars == before)
    }

    @Test("Models.cnn: conv blocks, flatten, hidden linears and one head per task; names are stable")
    func plainCNN() {
        var rng = RandomGenerator(seed: 8)
        let model = Models.cnn(inputChannels: 1, channels: [4, 8], hidden: [16], classes: 2, headsPerTask: [2, 3], using: &rng)
        #expect(model.namedParameters().map(\.0).prefix(8) == ["features.0.conv.weight", "features.0.bn.weight", "features.0.bn.bias",
                                                               "features.1.conv.weight", "features.1.bn.weight", "features.1.bn.bias",
                                                               "features.3.weight", "features.3.bias"])
        let shapes = Dictionary(uniqueKeysWithValues: model.namedParameters().map { ($0.0, $0.1.shape) })
        #expect(shapes["features.3.weight"] == [16, 8 * 7 * 7])
        let x = distinctTensor([2, 1, 28, 28], seed: 9, spacing: 0.01, requiresGrad: false)
        model.setActiveTask(1)
        #expect(model(x).shape == [2, 3])
        var rng2 = RandomGenerator(seed: 8)
        let cifar = Models.cnn(inputChannels: 3, inputHeight: 32, inputWidth: 32, channels: [4, 8], hidden: [], classes: 10, using: &rng2)
        #expect(cifar(distinctTensor([1, 3, 32, 32], seed: 10, spacing: 0.001, requiresGrad: false)).shape == [1, 10])
    }
}
