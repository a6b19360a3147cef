import COpenBLAS

/// Orthonormal bases grown one vector at a time by Gram–Schmidt, run twice per vector ("twice is enough":
/// Giraud, Langou & Rozložník 2005 — the second pass removes what rounding left of the first, keeping the basis
/// orthonormal to working precision however many vectors it holds). Each pass is two BLAS matrix–vector products
/// against the whole basis: c = B·r, r ← r − Bᵀ·c.
public enum GramSchmidt {
    /// Appends to `basis` (row-major, orthonormal rows of `dimension` values) the normalized part of each vector that
    /// the rows do not span yet; a vector whose remainder is below `tolerance` × its norm is dropped. Returns how
    /// many rows were added.
    @discardableResult
    public static func extend(_ basis: inout [Float], dimension d: Int, with vectors: [[Float]], tolerance: Float = 1e-5) -> Int {
        precondition(d > 0 && basis.count % d == 0, "a basis of \(basis.count) values is not rows of \(d)")
        var added = 0
        for v in vectors {
            precondition(v.count == d, "a vector of \(v.count) values for a basis of dimension \(d)")
            var r = v
            let norm = Self.norm(r)
            guard norm > 0 else { continue }
            let k = basis.count / d
            if k > 0 {
                var c = [Float](repeating: 0, count: k)
                for _ in 0..<2 {
                    basis.withUnsafeBufferPointer { b in
                        cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(k), Int32(d), 1, b.baseAddress, Int32(d), r, 1, 0, &c, 1)
                        cblas_sgemv(CblasRowMajor, CblasTrans, Int32(k), Int32(d), -1, b.baseAddress, Int32(d), c, 1, 1, &r, 1)
                    }
                }
            }
            let remainder = Self.norm(r)
            guard remainder > tolerance * norm, remainder > 0 else { continue }
            let scale = 1 / remainder
            basis += r.map { $0 * scale }
            added += 1
        }
        return added
    }

    /// G − (G Bᵀ) B: the rows of G [n, d] without their components along the orthonormal rows of B [k, d] (GPM's and
    /// OGD's gradient projection).
    public static func project(_ g: Tensor, off basis: Tensor) -> Tensor {
        let inSpan = g.matmul(basis, transposeOther: true).matmul(basis)
        return Tensor(shape: g.shape, scalars: zip(g.scalars, inSpan.scalars).map { $0 - $1 })
    }

    /// ‖v‖₂, accumulated in double precision.
    static func norm(_ v: [Float]) -> Float {
        Float(v.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot())
    }
}
