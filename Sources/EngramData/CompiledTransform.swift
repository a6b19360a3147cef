import EngramTensor
import Foundation

/// A task transform prepared for the inner loop.
enum CompiledTransform: Sendable {
    case identity
    case permutation([Int32])
    /// Like a permutation, but −1 marks pixels outside the source (background, byte 0).
    case gather([Int32])
    case rotation(RotationMap)

    init(_ transform: InputTransform, height: Int, width: Int) throws {
        switch transform {
        case .identity:
            self = .identity
        case .permutation(let p):
            guard p.count == height * width, Set(p) == Set(0 ..< height * width) else {
                throw DataError.invalidConfiguration("pixel permutation of length \(p.count) for \(height)×\(width) images")
            }
            self = .permutation(p.map(Int32.init))
        case .rotation(let degrees):
            let map = RotationMap(height: height, width: width, degrees: degrees)
            // Rotations by multiples of 90° land on the grid: each output pixel copies one source
            // pixel (or is outside), so they become exact gathers through the lookup table.
            var gather = [Int32](repeating: -1, count: height * width)
            var onGrid = true
            for i in 0 ..< height * width {
                let w = map.weights[4 * i ..< 4 * i + 4]
                if let k = w.firstIndex(of: 1) { gather[i] = map.indices[k] }
                else if !w.allSatisfy({ $0 == 0 }) { onGrid = false; break }
            }
            self = onGrid ? .gather(gather) : .rotation(map)
        }
    }

    /// Writes one transformed, normalised plane: `dst[i] = table[byte]` for pixels taken as they are,
    /// `value · scale + bias` for interpolated ones.
    @inline(__always)
    func apply(_ src: UnsafePointer<UInt8>, _ dst: UnsafeMutablePointer<Float>, count: Int,
               table: UnsafePointer<Float>, scale: Float, bias: Float) {
        switch self {
        case .identity:
            for i in 0..<count { dst[i] = table[Int(src[i])] }
        case .permutation(let p):
            p.withUnsafeBufferPointer { p in
                for i in 0..<count { dst[i] = table[Int(src[Int(p[i])])] }
            }
        case .gather(let g):
            g.withUnsafeBufferPointer { g in
                for i in 0..<count { let k = Int(g[i]); dst[i] = table[k < 0 ? 0 : Int(src[k])] }
            }
        case .rotation(let map):
            map.indices.withUnsafeBufferPointer { idx in
                map.weights.withUnsafeBufferPointer { w in
                    for i in 0..<count {
                        let o = 4 * i
                        let v = w[o] * Float(src[Int(idx[o])]) + w[o + 1] * Float(src[Int(idx[o + 1])])
                            + w[o + 2] * Float(src[Int(idx[o + 2])]) + w[o + 3] * Float(src[Int(idx[o + 3])])
                        dst[i] = v * scale + bias
                    }
                }
            }
        }
    }
}
