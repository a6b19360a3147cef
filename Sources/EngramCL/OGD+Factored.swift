import EngramTensor
import EngramNN

/// OGD's directions kept as the network's own factors, for networks whose shared parameters all belong to Linear
/// layers (the MLPs of the OGD, Stable SGD and MC-SGD protocols).
///
/// The output gradient of one sample is, layer by layer, an outer product: ∂f/∂[W b] = δ âᵀ, with δ the gradient at the
/// layer's output and â = [a; 1] its input (the 1 for the bias). A tangent tⱼ is therefore kept as its factors —
/// out + in + 1 numbers per layer instead of out·(in + 1) — and the orthonormal directions as coefficients,
/// uᵢ = Σⱼ Cᵢⱼ tⱼ, from Gram–Schmidt (twice, as ``GramSchmidt/extend(_:dimension:with:tolerance:)``, same tolerance)
/// in the Gram metric ⟨tᵢ, tⱼ⟩ = Σ_l (δᵢ·δⱼ)(âᵢ·âⱼ), in double precision. A kept tangent adds exactly one
/// direction, so C is square and lower triangular. A step's projection g̃ = g − Σᵢ ⟨g, uᵢ⟩ uᵢ becomes, layer by layer
/// with G = [∂L/∂W ∂L/∂b]:
///   Y = G Âᵀ, sⱼ = Σ_l Σ_o Δ_{jo} Y_{oj}  (sⱼ = ⟨tⱼ, g⟩),   c = C s,   w = Cᵀ c,   G ← G − (diag(w) Δ)ᵀ Â,
/// two products the size of the layer times the M tangents, on data that stays in cache, in place of reading the
/// K × P explicit basis twice from memory every step (memory-bound: 30 ms a step for 190 directions of the
/// 270 000-parameter MLP, about 14 GB/s, whatever the BLAS). The products run in double precision: the coefficients of
/// near-dependent tangents are large, and float rounding of s would be multiplied by them. The projection is the
/// explicit basis's up to rounding (tested against it); the memory is (M + Σ_l (out + in + 1))·M numbers.
public struct FactoredDirections: Sendable, Equatable {
    /// One shared Linear layer: its parameters' names and the factors of every kept tangent.
    public struct Layer: Sendable, Equatable {
        public let weight: String
        public let bias: String?
        public let outputs: Int
        /// Columns of Â: the layer's inputs, plus 1 with a bias.
        public let inputs: Int
        /// The layer's inputs (columns of its weight): `inputs` without the bias's column.
        var weightColumns: Int { inputs - (bias == nil ? 0 : 1) }
        /// Δ [M, outputs] and Â [M, inputs] of the kept tangents, in the order they were kept.
        public internal(set) var deltas: [Double] = []
        public internal(set) var activations: [Double] = []
    }

    public internal(set) var layers: [Layer]
    /// M: tangents kept, also the number of directions.
    public private(set) var count = 0
    /// ⟨tᵢ, tⱼ⟩ [M, M].
    private(set) var gram: [Double] = []
    /// C [M, M], lower triangular: uᵢ = Σⱼ Cᵢⱼ tⱼ.
    public private(set) var coefficients: [Double] = []

    public init(layers: [Layer]) { self.layers = layers }

    /// The shared Linear layers of `model` when they hold every shared parameter (nil otherwise: the explicit basis).
    public static func layers(of model: any Module, shared: [(String, Tensor)]) -> [Layer]? {
        let recorders = Importance.perSampleRecorders(of: model)
        let sharedNames = Set(shared.map(\.0))
        var layers: [Layer] = [], covered = Set<String>()
        for (path, recorder) in recorders {
            guard let linear = recorder as? Linear else { continue }
            let weight = Importance.name(path, "weight"), bias = linear.bias.map { _ in Importance.name(path, "bias") }
            guard sharedNames.contains(weight) else { continue }
            if let bias, !sharedNames.contains(bias) { return nil }
            layers.append(Layer(weight: weight, bias: bias, outputs: linear.weight.shape[0],
                                inputs: linear.weight.shape[1] + (bias == nil ? 0 : 1)))
            covered.insert(weight)
            if let bias { covered.insert(bias) }
        }
        return !layers.isEmpty && covered == sharedNames ? layers : nil
    }

    /// The factors of the output gradients of `inputs` (one tangent per sample and seed, sample by sample, seeds in
    /// order: the explicit path's order): one forward pass with the Linear layers recording, one backward pass per
    /// seed matrix with the parameters frozen. `seeds[s]` is [n, width]: row k seeds sample k's outputs.
    public static func factors(of model: any Module, inputs: Tensor, seeds: [[Float]], layers: [Layer])
        -> [(deltas: [[Double]], activations: [[Double]])] {
        let recorders = Importance.perSampleRecorders(of: model)
        let byWeight = Dictionary(uniqueKeysWithValues: recorders.compactMap { path, r in
            (r as? Linear).map { (Importance.name(path, "weight"), $0) }
        })
        let n = inputs.shape[0]
        // [layer][seed] → Δ rows of the n samples
        var deltas = [[[Float]]](repeating: [], count: layers.count)
        var activations = [[Float]](repeating: [], count: layers.count)
        Importance.recordingWithFrozenParameters(recorders: recorders, parameters: model.namedParameters()) {
            let logits = model(inputs)
            for (s, seed) in seeds.enumerated() {
                logits.backward(seed: Tensor(shape: logits.shape, scalars: seed), retainGraph: s < seeds.count - 1)
                for (l, layer) in layers.enumerated() {
                    let linear = byWeight[layer.weight]!
                    deltas[l].append(linear.lastOutput?.grad?.scalars ?? [Float](repeating: 0, count: n * layer.outputs))
                    linear.lastOutput?.grad = nil
                    if s == 0 { activations[l] = linear.lastInput!.scalars }
                }
            }
        }
        for (_, r) in recorders { r.clearRecord() }
        // Tangent (k, s): per layer Δ row k of seed s, and sample k's input with a trailing 1 for the bias.
        var result: [(deltas: [[Double]], activations: [[Double]])] = []
        for k in 0..<n {
            for s in seeds.indices {
                var tangent: (deltas: [[Double]], activations: [[Double]]) = ([], [])
                for (l, layer) in layers.enumerated() {
                    let out = layer.outputs, width = layer.weightColumns
                    tangent.deltas.append(deltas[l][s][(k * out)..<((k + 1) * out)].map(Double.init))
                    tangent.activations.append(activations[l][(k * width)..<((k + 1) * width)].map(Double.init)
                                               + (layer.bias == nil ? [] : [1]))
                }
                result.append(tangent)
            }
        }
        return result
    }

    /// ⟨t, tⱼ⟩ for every kept tangent j, and ⟨t, t⟩ last.
    private func gramRow(deltas: [[Double]], activations: [[Double]]) -> [Double] {
        func dot(_ a: ArraySlice<Double>, _ b: [Double]) -> Double {
            var sum = 0.0
            for (x, y) in zip(a, b) { sum += x * y }
            return sum
        }
        var row = [Double](repeating: 0, count: count + 1)
        for (l, layer) in layers.enumerated() {
            for j in 0..<count {
                let d = dot(layer.deltas[(j * layer.outputs)..<((j + 1) * layer.outputs)], deltas[l])
                let a = dot(layer.activations[(j * layer.inputs)..<((j + 1) * layer.inputs)], activations[l])
                row[j] += d * a
            }
            row[count] += dot(deltas[l][...], deltas[l]) * dot(activations[l][...], activations[l])
        }
        return row
    }

    /// Keeps each tangent whose part outside the current directions is at least `tolerance` of its norm (the
    /// explicit path's rule), one after the other; returns how many were kept.
    @discardableResult
    public mutating func extend(with tangents: [(deltas: [[Double]], activations: [[Double]])], tolerance: Double = 1e-5) -> Int {
        var kept = 0
        for tangent in tangents {
            let row = gramRow(deltas: tangent.deltas, activations: tangent.activations)
            let m = count, size = m + 1
            let squaredNorm = row[m]
            guard squaredNorm > 0 else { continue }
            // The Gram matrix with the new tangent as index m.
            var grown = [Double](repeating: 0, count: size * size)
            for i in 0..<m { for j in 0..<m { grown[i * size + j] = gram[i * m + j] } }
            for j in 0..<size { grown[m * size + j] = row[j]; grown[j * size + m] = row[j] }
            // e: the new direction's coefficients over the m + 1 tangents, Gram–Schmidt twice against C's rows.
            var e = [Double](repeating: 0, count: size)
            e[m] = 1
            for _ in 0..<(m > 0 ? 2 : 0) {
                let ge = (0..<size).map { a in (0..<size).reduce(0.0) { $0 + grown[a * size + $1] * e[$1] } }
                let p = (0..<m).map { k in (0..<m).reduce(0.0) { $0 + coefficients[k * m + $1] * ge[$1] } }
                for a in 0..<m { e[a] -= (0..<m).reduce(0.0) { $0 + p[$1] * coefficients[$1 * m + a] } }
            }
            var remainder = 0.0
            for a in 0..<size { for b in 0..<size { remainder += e[a] * grown[a * size + b] * e[b] } }
            guard remainder > 0, remainder.squareRoot() > tolerance * squaredNorm.squareRoot() else { continue }
            let scale = 1 / remainder.squareRoot()
            var grownCoefficients = [Double](repeating: 0, count: size * size)
            for i in 0..<m { for j in 0..<m { grownCoefficients[i * size + j] = coefficients[i * m + j] } }
            for j in 0..<size { grownCoefficients[m * size + j] = e[j] * scale }
            gram = grown
            coefficients = grownCoefficients
            for l in layers.indices {
                layers[l].deltas += tangent.deltas[l]
                layers[l].activations += tangent.activations[l]
            }
            count = size
            kept += 1
        }
        return kept
    }

    /// g ← g − Σᵢ ⟨g, uᵢ⟩ uᵢ on the layers' gradients (parameters without a gradient count as 0).
    public func project(_ parameters: [String: Tensor]) {
        guard count > 0 else { return }
        let m = count
        // G = [∂L/∂W ∂L/∂b] of every layer, in double.
        let gradients: [[Double]] = layers.map { layer in
            let w = parameters[layer.weight]!, width = layer.weightColumns
            let gw = w.grad?.scalars ?? [Float](repeating: 0, count: w.count)
            let gb = layer.bias.flatMap { parameters[$0]?.grad?.scalars } ?? [Float](repeating: 0, count: layer.outputs)
            var g = [Double](repeating: 0, count: layer.outputs * layer.inputs)
            for o in 0..<layer.outputs {
                for i in 0..<width { g[o * layer.inputs + i] = Double(gw[o * width + i]) }
                if layer.bias != nil { g[o * layer.inputs + width] = Double(gb[o]) }
            }
            return g
        }
        // s = T g
        var s = [Double](repeating: 0, count: m)
        for (l, layer) in layers.enumerated() {
            let y = BLAS.doubleGEMM(gradients[l], transA: false, layer.activations, transB: true,
                                    m: layer.outputs, n: m, k: layer.inputs)   // [out, M]
            for j in 0..<m {
                var sum = 0.0
                for o in 0..<layer.outputs { sum += layer.deltas[j * layer.outputs + o] * y[o * m + j] }
                s[j] += sum
            }
        }
        // c = C s, w = Cᵀ c
        let c = (0..<m).map { i in (0...i).reduce(0.0) { $0 + coefficients[i * m + $1] * s[$1] } }
        let w = (0..<m).map { j in (j..<m).reduce(0.0) { $0 + coefficients[$1 * m + j] * c[$1] } }
        for (l, layer) in layers.enumerated() {
            var scaled = layer.deltas
            for j in 0..<m { for o in 0..<layer.outputs { scaled[j * layer.outputs + o] *= w[j] } }
            let z = BLAS.doubleGEMM(scaled, transA: true, layer.activations, transB: false,
                                    m: layer.outputs, n: layer.inputs, k: m)   // [out, inputs]
            let width = layer.weightColumns
            let g = gradients[l]
            var gw = [Float](repeating: 0, count: layer.outputs * width), gb = [Float](repeating: 0, count: layer.outputs)
            for o in 0..<layer.outputs {
                for i in 0..<width { gw[o * width + i] = Float(g[o * layer.inputs + i] - z[o * layer.inputs + i]) }
                if layer.bias != nil { gb[o] = Float(g[o * layer.inputs + width] - z[o * layer.inputs + width]) }
            }
            let weight = parameters[layer.weight]!
            weight.grad = Tensor(shape: weight.shape, scalars: gw)
            if let name = layer.bias, let bias = parameters[name] { bias.grad = Tensor(shape: bias.shape, scalars: gb) }
        }
    }

    /// Bytes held: the factors, the Gram matrix and the coefficients (8 bytes a number).
    public var byteCount: Int {
        8 * (gram.count + coefficients.count + layers.reduce(0) { $0 + $1.deltas.count + $1.activations.count })
    }

    /// The factors as state tensors (`factors.<l>.deltas` [M, out], `factors.<l>.activations` [M, inputs]; exact: they
    /// were floats). The Gram matrix and the coefficients are recomputed from them on load: `extend` over the same
    /// tangents in the same order repeats the same arithmetic, so a resumed run is bit-identical.
    func tensors() -> [(String, Tensor)] {
        layers.enumerated().flatMap { l, layer -> [(String, Tensor)] in
            [("factors.\(l).deltas", Tensor(shape: [count, layer.outputs], scalars: layer.deltas.map(Float.init))),
             ("factors.\(l).activations", Tensor(shape: [count, layer.inputs], scalars: layer.activations.map(Float.init)))]
        }
    }

    /// Rebuilds the directions from state tensors written by `tensors()` for `layers` (the model's).
    static func restored(from state: [String: Tensor], layers: [Layer]) throws -> FactoredDirections {
        var directions = FactoredDirections(layers: layers)
        var stored: [(deltas: [Float], activations: [Float])] = []
        var m: Int?
        for (l, layer) in layers.enumerated() {
            guard let d = state["factors.\(l).deltas"], let a = state["factors.\(l).activations"] else {
                throw StrategyError("state has no factors for layer \(l) (\(layer.weight)): not a checkpoint of this network's OGD")
            }
            guard d.shape.count == 2, a.shape.count == 2, d.shape[1] == layer.outputs, a.shape[1] == layer.inputs,
                  d.shape[0] == a.shape[0], m == nil || m == d.shape[0] else {
                throw StrategyError("tensors 'factors.\(l).*' have shapes \(d.shape) and \(a.shape), not [M, \(layer.outputs)] and [M, \(layer.inputs)]")
            }
            m = d.shape[0]
            stored.append((d.scalars, a.scalars))
        }
        let tangents = (0..<(m ?? 0)).map { j in
            (deltas: layers.indices.map { l in stored[l].deltas[(j * layers[l].outputs)..<((j + 1) * layers[l].outputs)].map(Double.init) },
             activations: layers.indices.map { l in stored[l].activations[(j * layers[l].inputs)..<((j + 1) * layers[l].inputs)].map(Double.init) })
        }
        let kept = directions.extend(with: tangents)
        guard kept == tangents.count else {
            throw StrategyError("the stored OGD factors are not independent (\(kept) of \(tangents.count) kept): damaged state")
        }
        return directions
    }
}
