#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
#if ENGRAM_DNNL
import CEngramDNNL
#endif

/// The library that computes matrix products and 2-D convolutions.
///
/// `oneDNN` (the default when Engram was built with Debian's `libdnnl-dev`, the library PyTorch runs its CPU
/// kernels with): its JIT sgemm for every matrix product (AVX-512 where the CPU has it) and direct convolution
/// kernels, primitives created once per shape, operands reordered into the primitive's blocked layout and back on
/// every call. `openBLAS`: OpenBLAS sgemm, convolutions as im2col + one GEMM — the fallback, used whenever oneDNN is
/// absent or declines a shape. Both compute the same products; they differ by rounding (summation order), ≈ 1e-6
/// relative. `ENGRAM_BACKEND=openblas` in the environment selects the fallback.
public enum ComputeBackend: String, Sendable, CaseIterable {
    case oneDNN = "onednn"
    case openBLAS = "openblas"

    /// True when Engram was built with oneDNN and it created a CPU engine.
    public static let isOneDNNAvailable: Bool = {
        #if ENGRAM_DNNL
        return engram_dnnl_available() != 0
        #else
        return false
        #endif
    }()

    nonisolated(unsafe) private static var selected: ComputeBackend = {
        if let name = getenvString("ENGRAM_BACKEND"), let chosen = ComputeBackend(rawValue: name.lowercased()) {
            return chosen == .oneDNN && !isOneDNNAvailable ? .openBLAS : chosen
        }
        return isOneDNNAvailable ? .oneDNN : .openBLAS
    }()

    @TaskLocal private static var scoped: ComputeBackend?

    /// The backend products and convolutions use: the one `using(_:_:)` set for the running code, else the
    /// process-wide choice.
    /// Setting `.oneDNN` where it is unavailable keeps `.openBLAS`.
    public static var current: ComputeBackend {
        get { scoped ?? selected }
        set { selected = newValue == .oneDNN && !isOneDNNAvailable ? .openBLAS : newValue }
    }

    /// The backends this build can run: OpenBLAS always, oneDNN where available.
    public static var usable: [ComputeBackend] { isOneDNNAvailable ? [.openBLAS, .oneDNN] : [.openBLAS] }

    /// Runs `body` with products and convolutions computed by `backend` (on this task and the code it calls only;
    /// threads it starts do not inherit the choice).
    public static func using<R>(_ backend: ComputeBackend, _ body: () throws -> R) rethrows -> R {
        try $scoped.withValue(backend == .oneDNN && !isOneDNNAvailable ? .openBLAS : backend, operation: body)
    }

    /// A one-line description of what is wrong with `ENGRAM_BACKEND`, or nil: an unknown value, or `onednn` asked of a
    /// build without oneDNN (either would otherwise fall back silently). Front ends refuse to start with it.
    public static func environmentProblem() -> String? {
        guard let name = getenvString("ENGRAM_BACKEND") else { return nil }
        guard let chosen = ComputeBackend(rawValue: name.lowercased()) else {
            return "ENGRAM_BACKEND: unknown value '\(name)' (known: \(allCases.map(\.rawValue).joined(separator: ", ")))"
        }
        if chosen == .oneDNN && !isOneDNNAvailable {
            return "ENGRAM_BACKEND=onednn: this engram was built without oneDNN; install libdnnl-dev (Debian) and build again"
        }
        return nil
    }

    private static func getenvString(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        return String(cString: value)
    }
}
