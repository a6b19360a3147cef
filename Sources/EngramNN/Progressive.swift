import EngramTensor

/// Named children without parameters of its own (a container that gives sub-modules fixed names).
final class ModuleGroup: Module {
    let named: [(String, any Module)]
    var isTraining = true
    init(_ named: [(String, any Module)]) { self.named = named }
    var children: [(String, any Module)] { named }
    func forward(_ x: Tensor) -> Tensor { preconditionFailure("a ModuleGroup only names modules; it has no forward") }
}

/// One column of a progressive network: its own layers W_i^(k) (hidden layers, then its output head)
/// and lateral connections U_i^(k:j) from every earlier column j < k into its layers i ≥ 1.
///
/// Parameters are named `layers.i.weight` / `layers.i.bias` and `lateral.i.j.weight` (layer i, from column j;
/// laterals have no bias, W_i^(k)'s bias serves).
public final class ProgressiveColumn: Module {
    /// W_1 … W_L: the hidden layers then the head (the last one).
    public let layers: [Linear]
    /// `lateral[i - 1][j]` = U_i^(k:j), for layers i = 1 … L and earlier columns j = 0 … k − 1.
    public let lateral: [[Linear]]
    public var isTraining = true

    init(index k: Int, input: Int, hidden: [Int], classes: Int, using rng: inout RandomGenerator) {
        let widths = [input] + hidden + [classes]
        layers = (1..<widths.count).map { Linear(widths[$0 - 1], widths[$0], using: &rng) }
        lateral = k == 0 ? [] : (2..<widths.count).map { i in
            (0..<k).map { _ in Linear(widths[i - 1], widths[i], bias: false, using: &rng) }
        }
    }

    public var children: [(String, any Module)] {
        var c: [(String, any Module)] = [("layers", Sequential(layers))]
        if !lateral.isEmpty {
            c.append(("lateral", ModuleGroup(lateral.enumerated().map { ("\($0.offset + 1)", Sequential($0.element)) })))
        }
        return c
    }

    /// Runs the column alone; it must have no lateral inputs (column 0).
    public func forward(_ x: Tensor) -> Tensor {
        precondition(lateral.isEmpty, "a column with lateral connections needs the earlier columns' activations")
        return run(x, earlier: []).output!
    }

    /// h_i = ReLU(W_i h_{i−1} + Σ_{j<k} U_i^(k:j) h_{i−1}^(j)) for the hidden layers, then the head without ReLU.
    /// - Parameter earlier: `earlier[j]` = the hidden activations [h_1^(j), …, h_{L−1}^(j)] of column j.
    /// - Returns: this column's hidden activations and its output.
    func run(_ x: Tensor, earlier: [[Tensor]], computeHead: Bool = true) -> (hidden: [Tensor], output: Tensor?) {
        precondition(earlier.count == (lateral.first?.count ?? 0), "column expects \(lateral.first?.count ?? 0) earlier columns, got \(earlier.count)")
        var h = x
        var hidden: [Tensor] = []
        for i in 0..<layers.count {
            let isHead = i == layers.count - 1
            if isHead && !computeHead { break }
            var z = layers[i](h)
            if i > 0 && !lateral.isEmpty { for (j, u) in lateral[i - 1].enumerated() { z = z + u(earlier[j][i - 1]) } }
            if isHead { return (hidden, z) }
            h = z.relu()
            hidden.append(h)
        }
        return (hidden, nil)
    }
}

/// Progressive Neural Network of multilayer perceptrons (Rusu et al. 2016), one column per task.
///
/// Column k computes h_i^(k) = ReLU(W_i^(k) h_{i−1}^(k) + Σ_{j<k} U_i^(k:j) h_{i−1}^(j)) (eq. 1), with
/// h_0 = x, and ends in its own head. The lateral connections are the plain linear U of eq. 1; the paper's
/// non-linear adapters (scalar α, a projection to fewer units and a non-linearity) are not implemented.
///
/// With `activeTask = t`, `forward` runs columns 0 … t and returns column t's output. Columns 0 … t − 1
/// run without gradient recording, so no gradient ever reaches them: they are frozen by construction.
/// Parameters are named `columns.k.layers.i.weight`, `columns.k.layers.i.bias`, `columns.k.lateral.i.j.weight`.
/// Columns can be allocated up front (`init(…classesPerTask:…)`) or one at a time (`addColumn`).
public final class ProgressiveMLP: TaskConditioned {
    public let input: Int
    public let hidden: [Int]
    public private(set) var columns: [ProgressiveColumn] = []
    public var activeTask = 0
    public var isTraining = true
    private var generator: RandomGenerator

    /// - Parameters:
    ///   - input: input features (images are flattened).
    ///   - hidden: hidden sizes of every column.
    ///   - classesPerTask: head sizes of the columns to allocate now (one per task; may be empty).
    public init(input: Int, hidden: [Int], classesPerTask: [Int] = [], using rng: inout RandomGenerator) {
        precondition(input > 0 && hidden.allSatisfy { $0 > 0 }, "ProgressiveMLP needs positive sizes")
        self.input = input
        self.hidden = hidden
        generator = rng.derived("progressive columns")
        _ = rng.next()
        for classes in classesPerTask { addColumn(classes: classes, using: &rng) }
    }

    /// Appends column k = `columns.count` with a head of `classes` outputs and laterals from every earlier column.
    @discardableResult
    public func addColumn(classes: Int, using rng: inout RandomGenerator) -> ProgressiveColumn {
        let column = ProgressiveColumn(index: columns.count, input: input, hidden: hidden, classes: classes, using: &rng)
        columns.append(column)
        return column
    }

    /// Appends a column initialised from the network's own generator.
    @discardableResult
    public func addColumn(classes: Int) -> ProgressiveColumn {
        var rng = generator
        defer { generator = rng }
        return addColumn(classes: classes, using: &rng)
    }

    public var children: [(String, any Module)] { [("columns", Sequential(columns))] }

    /// Number of parameters of column k: Σ_i (h_{i−1}·h_i + h_i) + k·Σ_{i≥2} h_{i−1}·h_i (laterals, no bias).
    public func parameterCount(column k: Int) -> Int {
        columns[k].namedParameters().reduce(0) { $0 + $1.1.count }
    }

    /// The name prefix of column k's parameters within this module (`columns.k.`).
    public static func prefix(column k: Int) -> String { "columns.\(k)." }

    public func forward(_ x: Tensor) -> Tensor {
        let t = activeTask
        precondition(t >= 0 && t < columns.count, "task \(t) has no column (\(columns.count) columns)")
        let flat = x.rank == 2 ? x : x.flattened()
        let earlier: [[Tensor]] = GradMode.withoutGrad {
            var hidden: [[Tensor]] = []
            for j in 0..<t {
                let h = columns[j].run(flat, earlier: hidden, computeHead: false).hidden
                hidden.append(h)
            }
            return hidden
        }
        return columns[t].run(flat, earlier: earlier).output!
    }
}

extension Models {
    /// A progressive network of MLP columns, one per task, wrapped as a `Classifier` (features: `Flatten`,
    /// head: the `ProgressiveMLP`, so parameters are named `head.columns.k.…`).
    public static func progressiveMLP(input: Int, hidden: [Int], classesPerTask: [Int], using rng: inout RandomGenerator) -> Classifier {
        Classifier(features: Flatten(), head: ProgressiveMLP(input: input, hidden: hidden, classesPerTask: classesPerTask, using: &rng))
    }
}
