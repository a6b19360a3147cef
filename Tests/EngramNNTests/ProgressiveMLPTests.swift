import EngramTensor
import Testing
import EngramNN

@Suite struct ProgressiveMLPTests {
    /// Sets a parameter by name.
    func set(_ net: ProgressiveMLP, _ name: String, _ values: [Float]) {
        guard let p = net.namedParameters().first(where: { $0.0 == name })?.1 else { fatalError("no parameter \(name)") }
        p.assign(Tensor(shape: p.shape, scalars: values))
    }

    @Test("the second column adds lateral inputs from the first column's previous layer (eq. 1), checked by hand")
    func lateralForwardByHand() {
        var rng = RandomGenerator(seed: 1)
        let net = ProgressiveMLP(input: 2, hidden: [2, 1], classesPerTask: [1, 1], using: &rng)
        // Column 0: h1 = relu(W x + b), h2 = relu(W h1 + b), y = W h2 + b.
        set(net, "columns.0.layers.0.weight", [1, 0, 0, -1]); set(net, "columns.0.layers.0.bias", [0, 0.5])
        set(net, "columns.0.layers.1.weight", [1, 1]); set(net, "columns.0.layers.1.bias", [-0.5])
        set(net, "columns.0.layers.2.weight", [3]); set(net, "columns.0.layers.2.bias", [1])
        // Column 1, with U_2^(1:0) and U_3^(1:0).
        set(net, "columns.1.layers.0.weight", [0.5, 0.5, -1, 1]); set(net, "columns.1.layers.0.bias", [0, 0])
        set(net, "columns.1.layers.1.weight", [1, -1]); set(net, "columns.1.layers.1.bias", [0])
        set(net, "columns.1.lateral.1.0.weight", [2, 3])
        set(net, "columns.1.layers.2.weight", [2]); set(net, "columns.1.layers.2.bias", [0.25])
        set(net, "columns.1.lateral.2.0.weight", [-1])
        let x = Tensor(shape: [2, 2], scalars: [1, 2, -1, 1])
        // x = (1, 2):  h^(0) = (1, 0) → 0.5 → y0 = 2.5;  h^(1) = (1.5, 1) → 1.5 − 1 + 2·1 + 3·0 = 2.5 → y1 = 2·2.5 + 0.25 − 0.5 = 4.75.
        // x = (−1, 1): h^(0) = (0, 0) → 0 → y0 = 1;      h^(1) = (0, 2) → relu(−2) = 0 → y1 = 0.25.
        net.activeTask = 0
        #expect(net(x).scalars == [2.5, 1])
        net.activeTask = 1
        #expect(net(x).shape == [2, 1])
        #expect(net(x).scalars == [4.75, 0.25])
    }

    @Test("parameters are named per column, layer and source column of each lateral")
    func parameterNames() {
        var rng = RandomGenerator(seed: 2)
        let net = ProgressiveMLP(input: 2, hidden: [2, 1], classesPerTask: [1, 1], using: &rng)
        let layers = ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias", "layers.2.weight", "layers.2.bias"]
        #expect(net.namedParameters().map(\.0) == layers.map { "columns.0." + $0 } + layers.map { "columns.1." + $0 }
                + ["columns.1.lateral.1.0.weight", "columns.1.lateral.2.0.weight"])
        let model = Models.progressiveMLP(input: 2, hidden: [2], classesPerTask: [1, 1, 1], using: &rng)
        #expect(model.namedParameters().map(\.0).filter { $0.contains("lateral") }
                == ["head.columns.1.lateral.1.0.weight", "head.columns.2.lateral.1.0.weight", "head.columns.2.lateral.1.1.weight"])
    }

    @Test("column k has Σᵢ(hᵢ₋₁hᵢ + hᵢ) parameters of its own plus k·Σ_{i≥2} hᵢ₋₁hᵢ lateral ones, and addColumn grows the network")
    func parameterCountPerColumn() {
        var rng = RandomGenerator(seed: 3)
        let (d, hidden, classes) = (5, [4, 3], [2, 3, 2])
        let net = ProgressiveMLP(input: d, hidden: hidden, classesPerTask: Array(classes.prefix(2)), using: &rng)
        net.addColumn(classes: classes[2])
        #expect(net.columns.count == 3)
        for (k, c) in classes.enumerated() {
            let widths = [d] + hidden + [c]
            let own = (1..<widths.count).reduce(0) { $0 + widths[$1 - 1] * widths[$1] + widths[$1] }
            let lateral = (2..<widths.count).reduce(0) { $0 + widths[$1 - 1] * widths[$1] }
            #expect(net.parameterCount(column: k) == own + k * lateral)
        }
        #expect(net.parameterCount == (0..<3).reduce(0) { $0 + net.parameterCount(column: $1) })
    }

    @Test("gradients w.r.t. the active column match central differences and no gradient reaches earlier columns")
    func gradientsOnlyInActiveColumn() {
        var rng = RandomGenerator(seed: 4)
        let net = ProgressiveMLP(input: 4, hidden: [3, 3], classesPerTask: [2, 2, 2], using: &rng)
        let x = randomTensor([3, 4], seed: 5, requiresGrad: false)
        net.activeTask = 2
        let active = net.columns[2].namedParameters().map(\.1)
        checkGradients(wrt: active, kinkSteps: kinkSteps) { net(x) }
        net.zeroGrad()
        net(x).sum().backward()
        for k in 0..<2 { for (name, p) in net.columns[k].namedParameters() { #expect(p.grad == nil, "column \(k) \(name) got a gradient") } }
        for (name, p) in net.columns[2].namedParameters() { #expect(p.grad != nil, "column 2 \(name) got no gradient") }
    }
}
