import EngramTensor
import Foundation

/// A per-task change to the input, applied when batches are assembled (the stored pixels never
/// change).
public enum InputTransform: Sendable, Equatable, Codable {
    /// The image as stored.
    case identity
    /// Output pixel `i` of each channel plane takes input pixel `p[i]` (a permutation of `0..<H*W`).
    case permutation([Int])
    /// Rotation by `degrees` counter-clockwise about the image centre, with bilinear interpolation
    /// and zero (background) fill outside the source image. Deviation: Mirzadeh et al.'s Rotated MNIST code rotates
    /// with torchvision's default, nearest-neighbour; on their Stable SGD recipe bilinear measured +2.2 points of
    /// ACC in their own code (docs/results.md, Rotated MNIST 20).
    case rotation(degrees: Double)

    /// A short description for logs and results.
    public var summary: String {
        switch self {
        case .identity: return "identity"
        case .permutation(let p): return "permutation of \(p.count) pixels"
        case .rotation(let d): return "rotation by \(d)°"
        }
    }
}

/// Bilinear sampling positions for rotating an `height × width` plane: for each output pixel, four
/// source indices and weights (out-of-image neighbours get weight 0 and index 0).
public struct RotationMap: Sendable {
    /// Image rows.
    public let height: Int
    /// Image columns.
    public let width: Int
    /// The rotation angle in degrees (counter-clockwise).
    public let degrees: Double
    /// `4 × height × width` source indices, four per output pixel.
    public let indices: [Int32]
    /// `4 × height × width` bilinear weights, four per output pixel.
    public let weights: [Float]

    /// Precomputes the map. Output pixel (x, y), relative to the centre ((w−1)/2, (h−1)/2), samples
    /// the source at (x cos θ − y sin θ, x sin θ + y cos θ) — with y pointing down this turns the
    /// picture counter-clockwise by θ, as `torchvision.transforms.functional.rotate` does.
    public init(height: Int, width: Int, degrees: Double) {
        self.height = height
        self.width = width
        self.degrees = degrees
        let theta = degrees * Double.pi / 180
        // Snap sin/cos of multiples of 90° to exact values so those rotations are exact.
        func snap(_ v: Double) -> Double { abs(v) < 1e-12 ? 0 : abs(abs(v) - 1) < 1e-12 ? (v > 0 ? 1 : -1) : v }
        let c = snap(cos(theta)), s = snap(sin(theta))
        let cx = Double(width - 1) / 2, cy = Double(height - 1) / 2
        var indices = [Int32](repeating: 0, count: 4 * height * width)
        var weights = [Float](repeating: 0, count: 4 * height * width)
        for y in 0..<height {
            for x in 0..<width {
                let dx = Double(x) - cx, dy = Double(y) - cy
                var sx = dx * c - dy * s + cx
                var sy = dx * s + dy * c + cy
                // Remove rounding noise so exact grid points stay exact.
                if abs(sx - sx.rounded()) < 1e-9 { sx = sx.rounded() }
                if abs(sy - sy.rounded()) < 1e-9 { sy = sy.rounded() }
                let x0 = Int(sx.rounded(.down)), y0 = Int(sy.rounded(.down))
                let fx = sx - Double(x0), fy = sy - Double(y0)
                let o = 4 * (y * width + x)
                let corners = [(x0, y0, (1 - fx) * (1 - fy)), (x0 + 1, y0, fx * (1 - fy)),
                               (x0, y0 + 1, (1 - fx) * fy), (x0 + 1, y0 + 1, fx * fy)]
                for (k, (px, py, w)) in corners.enumerated() where px >= 0 && px < width && py >= 0 && py < height && w > 0 {
                    indices[o + k] = Int32(py * width + px)
                    weights[o + k] = Float(w)
                }
            }
        }
        self.indices = indices
        self.weights = weights
    }

    /// Rotates one `UInt8` plane into floats (raw 0–255 scale), for tests and previews.
    public func apply(_ plane: [UInt8]) -> [Float] {
        precondition(plane.count == height * width, "plane has \(plane.count) pixels, expected \(height * width)")
        var out = [Float](repeating: 0, count: height * width)
        for i in 0 ..< height * width {
            var v: Float = 0
            for k in 0..<4 { v += weights[4 * i + k] * Float(plane[Int(indices[4 * i + k])]) }
            out[i] = v
        }
        return out
    }
}
