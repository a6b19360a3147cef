import EngramTensor
import Foundation

/// The spiking network Sleep Replay Consolidation runs during sleep: a layered network of non-leaky-reset
/// integrate-and-fire neurons over a bias-free ReLU network's weights (the authors' `sleepnn_old.m`).
///
/// At each time step t, layer by layer (a spike crosses every layer within the step):
///
///     vₗ ← γ vₗ + αₗ Wₗ sₗ₋₁          (membrane potential; γ the decay, αₗ the layer's scale)
///     sₗ = [vₗ ≥ βₗ]                  (spikes; βₗ the layer's threshold)
///     for each neuron j with sₗ[j] = 1 (post fired), for each input i:
///         Wₗ[j, i] += inc · m(Wₗ[j, i])   if sₗ₋₁[i] = 1   (pre fired: potentiation)
///         Wₗ[j, i] −= dec · m(Wₗ[j, i])   otherwise        (post fired without pre: depression)
///     vₗ[j] ← 0 where sₗ[j] = 1      (reset)
///
/// with the authors' modulation m(w) = 2 (1 − σ(w / 0.001)) = 2 / (1 + e^{1000 w}) (their code's `sigmoid`): about 2
/// for negative weights, 1 at 0, vanishing for weights above a few thousandths. Only weights into neurons that fired
/// change. The weights are the ANN's own (unscaled): the scales αₗ act on the input currents only, so the network
/// returned to the ANN is Wₗ as changed.
public struct SleepNetwork: Sendable {
    /// Neurons per layer, input first: [784, 1200, 1200, 10].
    public let sizes: [Int]
    /// Each layer's weights Wₗ, row-major [sizes[l + 1], sizes[l]].
    public var weights: [[Float]]
    /// αₗ, βₗ per layer (one per weight matrix).
    public let scales: [Float], thresholds: [Float]
    /// γ, inc, dec.
    public let decay: Float, increment: Float, decrement: Float
    /// Membrane potentials per layer (layer 0, the input, has none).
    public private(set) var potentials: [[Float]]
    /// Spikes each neuron has fired so far, per layer (input included).
    public private(set) var spikeCounts: [[Int]]

    public init(weights: [[Float]], sizes: [Int], scales: [Float], thresholds: [Float], decay: Float,
                increment: Float, decrement: Float) {
        precondition(sizes.count == weights.count + 1 && scales.count == weights.count && thresholds.count == weights.count,
                     "one weight matrix, scale and threshold per layer")
        for l in weights.indices { precondition(weights[l].count == sizes[l] * sizes[l + 1], "layer \(l) has the wrong size") }
        self.sizes = sizes
        self.weights = weights
        self.scales = scales
        self.thresholds = thresholds
        self.decay = decay
        self.increment = increment
        self.decrement = decrement
        potentials = sizes.dropFirst().map { [Float](repeating: 0, count: $0) }
        spikeCounts = sizes.map { [Int](repeating: 0, count: $0) }
    }

    /// m(w) = 2 / (1 + e^{1000 w}), the authors' weight-dependent factor of both plasticity terms.
    @inlinable public static func modulation(_ w: Float) -> Float { 2 / (1 + exp(1000 * w)) }

    /// One time step driven by the input neurons `inputSpikes` (indices); returns the indices of the neurons of each
    /// layer that fired, input first.
    @discardableResult
    public mutating func step(inputSpikes: [Int]) -> [[Int]] {
        var fired = [inputSpikes]
        var preFired = [Bool](repeating: false, count: sizes[0])
        for i in inputSpikes { preFired[i] = true; spikeCounts[0][i] += 1 }
        for l in weights.indices {
            let nIn = sizes[l], nOut = sizes[l + 1], pre = fired[l]
            let alpha = scales[l], threshold = thresholds[l]
            var post: [Int] = []
            weights[l].withUnsafeMutableBufferPointer { w in
                potentials[l].withUnsafeMutableBufferPointer { v in
                    for j in 0..<nOut {
                        var current: Float = 0
                        let row = j * nIn
                        for i in pre { current += w[row + i] }
                        v[j] = decay * v[j] + alpha * current
                        if v[j] >= threshold { post.append(j) }
                    }
                    for j in post {
                        let row = j * nIn
                        for i in 0..<nIn {
                            let m = Self.modulation(w[row + i])
                            w[row + i] += preFired[i] ? increment * m : -decrement * m
                        }
                        v[j] = 0
                    }
                }
            }
            preFired = [Bool](repeating: false, count: nOut)
            for j in post { preFired[j] = true; spikeCounts[l + 1][j] += 1 }
            fired.append(post)
        }
        return fired
    }

    /// The layer scales of the authors' `normalize_nn_data.m` from each layer's largest weight and largest activation
    /// on the data: with pₗ the larger of max(0, max Wₗ) and max(0, max aₗ) (aₗ the ReLU outputs, the last layer's
    /// outputs' positive part), and r₀ = 1, rₗ = pₗ / rₗ₋₁, the scale is 1 / rₗ.
    public static func dataScales(maxWeights: [Float], maxActivations: [Float]) -> [Float] {
        precondition(maxWeights.count == maxActivations.count, "one maximum of each kind per layer")
        var previous: Float = 1
        return zip(maxWeights, maxActivations).map { w, a in
            let applied = max(max(0, w), max(0, a)) / previous
            guard applied > 0 else { return 1 }   // an all-zero layer: nothing to scale
            previous = applied
            return 1 / applied
        }
    }
}
