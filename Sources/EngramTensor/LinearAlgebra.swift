import COpenBLAS
import CEngramKernels
#if ENGRAM_DNNL
import CEngramDNNL
#endif

/// C = α·op(A)·op(B) + β·C through `cblas_sgemm`, row-major, op = transpose when asked (no copies).
/// `m×k` is op(A)'s shape, `k×n` op(B)'s.
@inline(__always)
/// `singleThreaded`: the caller runs several GEMMs at once on its own threads; this one uses the calling thread only.
func gemm(_ a: UnsafePointer<Float>, transA: Bool, _ b: UnsafePointer<Float>, transB: Bool,
          _ c: UnsafeMutablePointer<Float>, m: Int, n: Int, k: Int, alpha: Float = 1, beta: Float = 0,
          singleThreaded: Bool = false) {
    if m == 0 || n == 0 { return }
    if k == 0 {
        if beta == 0 { c.update(repeating: 0, count: m * n) } else if beta != 1 { for i in 0..<(m * n) { c[i] *= beta } }
        return
    }
    #if ENGRAM_DNNL
    if ComputeBackend.current == .oneDNN
        && engram_dnnl_sgemm(transA ? 84 : 78, transB ? 84 : 78, m, n, k, alpha, a, transA ? m : k, b, transB ? k : n,
                             beta, c, n, singleThreaded ? 1 : 0) == 0 {
        return
    }
    #endif
    // Thin products (a batch of 10 through a 400-wide layer) lose more to OpenBLAS's thread hand-off
    // than a second core gains; run them on the calling thread.
    let small = singleThreaded || m * n * k < BLAS.singleThreadBelow
    if small && BLAS.configuredThreads > 1 { openblas_set_num_threads(1) }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha,
                a, Int32(transA ? m : k), b, Int32(transB ? k : n), beta, c, Int32(n))
    if small && BLAS.configuredThreads > 1 { openblas_set_num_threads(Int32(BLAS.configuredThreads)) }
}

/// Array-level GEMM: returns op(A)·op(B) (m×n), or adds into `into` with β = 1.
func gemm(_ a: [Float], transA: Bool, _ b: [Float], transB: Bool, m: Int, n: Int, k: Int) -> [Float] {
    [Float](unsafeUninitializedCapacity: m * n) { buf, initialized in
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                gemm(pa.baseAddress!, transA: transA, pb.baseAddress!, transB: transB, buf.baseAddress!, m: m, n: n, k: k)
            }
        }
        initialized = m * n
    }
}

/// Process-wide BLAS settings.
public enum BLAS {
    /// op(A)·op(B) in double precision through `cblas_dgemm` (row-major; op(A) is m×k, op(B) k×n), for the few
    /// products whose rounding float cannot afford (OGD's factored directions: coefficients of near-dependent tangents).
    public static func doubleGEMM(_ a: [Double], transA: Bool, _ b: [Double], transB: Bool, m: Int, n: Int, k: Int) -> [Double] {
        precondition(a.count == m * k && b.count == k * n, "doubleGEMM: \(a.count) and \(b.count) values for \(m)×\(k) and \(k)×\(n)")
        var c = [Double](repeating: 0, count: m * n)
        guard m > 0, n > 0, k > 0 else { return c }
        cblas_dgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), 1, a, Int32(transA ? m : k), b, Int32(transB ? k : n), 0, &c, Int32(n))
        return c
    }

    /// Sets the number of threads OpenBLAS uses for GEMM (and oneDNN for convolutions, when built with it, and the
    /// element-wise kernels of `CEngramKernels`: optimizer steps, quadratic penalties). Results are deterministic for a
    /// fixed count.
    public static func setThreads(_ n: Int) {
        configuredThreads = max(n, 1)
        openblas_set_num_threads(Int32(n))
        engram_kernels_set_threads(Int32(max(n, 1)))
        #if ENGRAM_DNNL
        engram_dnnl_set_threads(Int32(max(n, 1)))
        #endif
    }
    /// The thread count set through `setThreads` (1 until then: OpenBLAS's own default is kept).
    nonisolated(unsafe) static var configuredThreads = 1
    /// GEMMs with m·n·k below this run single-threaded.
    static let singleThreadBelow = 8_000_000
    /// The number of threads OpenBLAS uses.
    public static var threads: Int { Int(openblas_get_num_threads()) }
}

extension Tensor {
    /// Matrix product op(self)·op(other) of rank-2 tensors, op = transpose when asked; transposed
    /// operands are passed to `cblas_sgemm` as such, never copied.
    public func matmul(_ other: Tensor, transposeSelf tA: Bool = false, transposeOther tB: Bool = false) -> Tensor {
        precondition(rank == 2 && other.rank == 2, "matmul needs rank-2 tensors, got \(shape) and \(other.shape)")
        let m = tA ? shape[1] : shape[0], k = tA ? shape[0] : shape[1]
        let k2 = tB ? other.shape[1] : other.shape[0], n = tB ? other.shape[0] : other.shape[1]
        precondition(k == k2, "matmul: inner extents differ (\(shape)\(tA ? "ᵀ" : "") × \(other.shape)\(tB ? "ᵀ" : ""))")
        let a = scalars, b = other.scalars
        let values = gemm(a, transA: tA, b, transB: tB, m: m, n: n, k: k)
        let (needA, needB) = (requiresGrad, other.requiresGrad)
        return Tensor.differentiable(shape: [m, n], scalars: values, inputs: [self, other]) { g in
            var ga: [Float]? = nil, gb: [Float]? = nil
            if needA {
                ga = tA ? gemm(b, transA: tB, g, transB: true, m: k, n: m, k: n)
                        : gemm(g, transA: false, b, transB: !tB, m: m, n: k, k: n)
            }
            if needB {
                gb = tB ? gemm(g, transA: true, a, transB: tA, m: n, n: k, k: m)
                        : gemm(a, transA: !tA, g, transB: false, m: k, n: n, k: m)
            }
            return [ga, gb]
        }
    }

    /// Affine map of a batch, y = x·Wᵀ + b, with x: [n, in], W: [out, in], b: [out] — one GEMM
    /// forward and two backward (the bias is written first and GEMM adds into it).
    public static func linear(_ x: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
        precondition(x.rank == 2 && weight.rank == 2 && x.shape[1] == weight.shape[1],
                     "linear: input \(x.shape) does not fit weight \(weight.shape)")
        let n = x.shape[0], fanIn = x.shape[1], fanOut = weight.shape[0]
        if let bias { precondition(bias.shape == [fanOut], "linear: bias \(bias.shape) does not fit \(fanOut) outputs") }
        let xv = x.scalars, wv = weight.scalars
        var values = [Float](repeating: 0, count: n * fanOut)
        if let bv = bias?.scalars {
            values.withUnsafeMutableBufferPointer { po in
                bv.withUnsafeBufferPointer { pb in
                    for r in 0..<n { (po.baseAddress! + r * fanOut).update(from: pb.baseAddress!, count: fanOut) }
                }
            }
        }
        values.withUnsafeMutableBufferPointer { po in
            xv.withUnsafeBufferPointer { px in
                wv.withUnsafeBufferPointer { pw in
                    gemm(px.baseAddress!, transA: false, pw.baseAddress!, transB: true, po.baseAddress!,
                         m: n, n: fanOut, k: fanIn, beta: bias == nil ? 0 : 1)
                }
            }
        }
        let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
        let (needX, needW, needB) = (x.requiresGrad, weight.requiresGrad, bias?.requiresGrad ?? false)
        return differentiable(shape: [n, fanOut], scalars: values, inputs: inputs) { g in
            let gx = needX ? gemm(g, transA: false, wv, transB: false, m: n, n: fanIn, k: fanOut) : nil
            let gw = needW ? gemm(g, transA: true, xv, transB: false, m: fanOut, n: fanIn, k: n) : nil
            var result: [[Float]?] = [gx, gw]
            if bias != nil {
                result.append(needB ? columnSums(g, rows: n, columns: fanOut) : nil)
            }
            return result
        }
    }
}

/// Σ over rows of a row-major [rows, columns] matrix.
func columnSums(_ g: [Float], rows: Int, columns: Int) -> [Float] {
    var out = [Float](repeating: 0, count: columns)
    out.withUnsafeMutableBufferPointer { po in
        g.withUnsafeBufferPointer { pg in
            for r in 0..<rows {
                let row = pg.baseAddress! + r * columns
                for c in 0..<columns { po[c] += row[c] }
            }
        }
    }
    return out
}
