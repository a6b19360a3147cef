import COpenBLAS

/// The thin singular value decomposition A = U·diag(σ)·Vᵀ of a real matrix, through LAPACK's `dgesdd` (OpenBLAS),
/// in double precision.
public struct SingularValueDecomposition: Sendable {
    /// Rows m and columns n of A; k = min(m, n).
    public let rows: Int, columns: Int
    /// The k left singular vectors, each of `rows` values: `leftVectors[i]` is uᵢ.
    public let leftVectors: [[Double]]
    /// σ₁ ≥ σ₂ ≥ … ≥ σₖ ≥ 0.
    public let singularValues: [Double]

    /// The decomposition of the `rows` × `columns` matrix whose **columns** are given one after another
    /// (column-major: `columnMajor[j·rows + i]` = Aᵢⱼ) — for a matrix of n samples' m features, the samples' rows
    /// as they lie in a [n, m] tensor. Returns nil when LAPACK reports no convergence.
    public init?(columnMajor: [Double], rows: Int, columns: Int) {
        precondition(rows > 0 && columns > 0 && columnMajor.count == rows * columns,
                     "an SVD needs \(rows) × \(columns) values, got \(columnMajor.count)")
        var a = columnMajor
        let k = min(rows, columns)
        var s = [Double](repeating: 0, count: k)
        var u = [Double](repeating: 0, count: rows * k)
        var vt = [Double](repeating: 0, count: k * columns)
        var iwork = [Int32](repeating: 0, count: 8 * k)
        var m = Int32(rows), n = Int32(columns), lda = Int32(rows), ldu = Int32(rows), ldvt = Int32(k)
        var info: Int32 = 0
        var jobz = Int8(UInt8(ascii: "S"))
        // Workspace query, then the decomposition.
        var size = 0.0, query: Int32 = -1
        dgesdd_(&jobz, &m, &n, &a, &lda, &s, &u, &ldu, &vt, &ldvt, &size, &query, &iwork, &info)
        guard info == 0 else { return nil }
        var lwork = Int32(size.rounded(.up))
        var work = [Double](repeating: 0, count: Int(lwork))
        dgesdd_(&jobz, &m, &n, &a, &lda, &s, &u, &ldu, &vt, &ldvt, &work, &lwork, &iwork, &info)
        guard info == 0 else { return nil }
        self.rows = rows; self.columns = columns
        singularValues = s
        leftVectors = (0..<k).map { Array(u[$0 * rows ..< ($0 + 1) * rows]) }
    }
}
