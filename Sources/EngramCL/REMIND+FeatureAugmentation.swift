import EngramTensor
import Foundation

/// REMIND's augmentation of reconstructed feature maps (the authors' `utils.RandomResizeCrop` and `mixup_data`).
public enum FeatureAugmentation {
    /// The crop of torchvision's `RandomResizedCrop.get_params` on an h × w map: up to ten tries of an area fraction in
    /// `scale` and a log-uniform aspect ratio in `ratio` that fits; else the whole map (the authors' fallback for
    /// square maps). Returns (top, left, height, width).
    public static func cropBox(height: Int, width: Int, scale: ClosedRange<Double>, ratio: ClosedRange<Double> = 0.75...(4.0 / 3),
                               random: inout RandomGenerator) -> (top: Int, left: Int, height: Int, width: Int) {
        let area = Double(height * width)
        for _ in 0..<10 {
            let target = (scale.lowerBound + Double(random.nextFloat()) * (scale.upperBound - scale.lowerBound)) * area
            let logRatio = log(ratio.lowerBound) + Double(random.nextFloat()) * (log(ratio.upperBound) - log(ratio.lowerBound))
            let aspect = exp(logRatio)
            let w = Int((target * aspect).squareRoot().rounded()), h = Int((target / aspect).squareRoot().rounded())
            if w >= 1, h >= 1, w <= width, h <= height {
                return (random.nextInt(below: height - h + 1), random.nextInt(below: width - w + 1), h, w)
            }
        }
        return (0, 0, height, width)
    }

    /// Bilinear resize of the box of a [channels, height, width] map back to height × width, as PyTorch's
    /// `interpolate(mode: "bilinear", align_corners: false)`: output pixel i samples the box at (i + ½)·s − ½, s the
    /// box's size over the output's, clamped at the edges.
    public static func resizeCrop(_ map: [Float], channels: Int, height: Int, width: Int,
                                  box: (top: Int, left: Int, height: Int, width: Int)) -> [Float] {
        var out = [Float](repeating: 0, count: map.count)
        func source(_ i: Int, size: Int, boxSize: Int) -> (Int, Int, Float) {
            let scale = Double(boxSize) / Double(size)
            let x = max(0, (Double(i) + 0.5) * scale - 0.5)
            let low = min(Int(x), boxSize - 1), high = min(low + 1, boxSize - 1)
            return (low, high, Float(x - Double(low)))
        }
        let rows = (0..<height).map { source($0, size: height, boxSize: box.height) }
        let columns = (0..<width).map { source($0, size: width, boxSize: box.width) }
        for c in 0..<channels {
            let base = c * height * width
            for (i, (y0, y1, fy)) in rows.enumerated() {
                for (j, (x0, x1, fx)) in columns.enumerated() {
                    func at(_ y: Int, _ x: Int) -> Float { map[base + (box.top + y) * width + box.left + x] }
                    let top = at(y0, x0) * (1 - fx) + at(y0, x1) * fx
                    let bottom = at(y1, x0) * (1 - fx) + at(y1, x1) * fx
                    out[base + i * width + j] = top * (1 - fy) + bottom * fy
                }
            }
        }
        return out
    }

    /// A draw of Beta(α, α), mixup's λ (α > 0), as X / (X + Y) with X, Y ~ Gamma(α, 1).
    public static func beta(_ alpha: Double, random: inout RandomGenerator) -> Double {
        let x = gamma(alpha, random: &random), y = gamma(alpha, random: &random)
        return x + y > 0 ? x / (x + y) : 0.5
    }

    /// Gamma(shape, 1) by Marsaglia & Tsang (2000), with the shape < 1 boost U^{1/shape}.
    public static func gamma(_ shape: Double, random: inout RandomGenerator) -> Double {
        if shape < 1 {
            let u = max(Double(random.nextFloat()), 1e-12)
            return gamma(shape + 1, random: &random) * pow(u, 1 / shape)
        }
        let d = shape - 1.0 / 3, c = 1 / (9 * d).squareRoot()
        while true {
            var x: Double, v: Double
            repeat {
                x = normal(random: &random)
                v = 1 + c * x
            } while v <= 0
            v = v * v * v
            let u = max(Double(random.nextFloat()), 1e-12)
            if u < 1 - 0.0331 * x * x * x * x || log(u) < 0.5 * x * x + d * (1 - v + log(v)) { return d * v }
        }
    }

    /// A standard normal draw (Box–Muller).
    static func normal(random: inout RandomGenerator) -> Double {
        let u1 = max(Double(random.nextFloat()), 1e-12), u2 = Double(random.nextFloat())
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }
}
