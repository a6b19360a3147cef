// swift-tools-version: 6.0
import Foundation
import PackageDescription

/// Engram's layers, one target each; dependencies only point down:
/// engram (CLI) → Engram (umbrella: re-exports the layers below, nothing else re-exports) → EngramStore (the
/// SQLite index of runs, GRDB) → EngramReport →
/// EngramCL → EngramNN and EngramData (siblings) → EngramTensor → COpenBLAS. Each target lists every layer its
/// files import.

/// The vector instructions of the machine that builds (Engram is built where it runs: the README's commands build
/// from source): Swift's default x86-64 target is SSE2, four floats a vector, so every loop Swift vectorizes would run
/// a quarter (AVX-512) or half (AVX2) as wide as the CPU allows. Widths change no result: neither Swift nor these C
/// targets contract a·b + c into one rounding or reorder a floating-point sum, so the same bits come out (tested:
/// docs/speed.md item 15). `ENGRAM_TARGET_CPU=x86-64` builds the portable binary; other systems get the default.
let hostCPU: String? = {
    if let forced = ProcessInfo.processInfo.environment["ENGRAM_TARGET_CPU"] {
        return forced.isEmpty || forced == "x86-64" ? nil : forced  // x86-64: the compilers' default
    }
    guard let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
          let line = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
    let flags = Set(line.split(separator: " ").map(String.init))
    let haswell: Set = ["avx", "avx2", "fma", "bmi1", "bmi2", "movbe", "f16c", "abm", "popcnt", "sse4_2", "xsave"]
    let skylakeAVX512 = haswell.union(["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl", "adx"])
    if skylakeAVX512.isSubset(of: flags) { return "skylake-avx512" }
    if haswell.isSubset(of: flags) { return "haswell" }
    return nil
}()
let hostVectorFlags: [String] = hostCPU.map { ["-target-cpu", $0] } ?? []
let hostVectorCFlags: [String] = hostCPU.map { ["-march=\($0)"] } ?? []

/// Release builds keep Swift's overflow, bounds and precondition checks (`-O`, not `-Ounchecked`): Engram reads
/// downloaded archives and other people's checkpoints, so a malformed value must stop cleanly, never corrupt
/// memory. Hot kernels skip checks locally through unsafe buffer pointers over extents validated once.
let optimized: [SwiftSetting] = [.unsafeFlags(["-O", "-wmo"] + hostVectorFlags, .when(configuration: .release))]

/// Open MPI (Debian `libopenmpi-dev`): `engram sweep --mpi` is built only where its pkg-config file is found; without
/// it the package and the tests build and pass, and `--mpi` says how to get it.
let hasMPI = ["/usr/lib/x86_64-linux-gnu/pkgconfig/ompi-c.pc", "/usr/lib/aarch64-linux-gnu/pkgconfig/ompi-c.pc",
              "/usr/lib/pkgconfig/ompi-c.pc", "/usr/local/lib/pkgconfig/ompi-c.pc"].contains { FileManager.default.fileExists(atPath: $0) }

/// oneDNN (Debian `libdnnl-dev`): matrix products and convolutions run on it where its header is found
/// (`ComputeBackend`); without it they use OpenBLAS (and im2col), with the same results up to rounding.
let hasOneDNN = ["/usr/include/oneapi/dnnl/dnnl.h", "/usr/local/include/oneapi/dnnl/dnnl.h"].contains { FileManager.default.fileExists(atPath: $0) }

let package = Package(
    name: "Engram",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "engram", targets: ["engram"]),
        .library(name: "Engram", targets: ["Engram"]),
        .library(name: "EngramTensor", targets: ["EngramTensor"]),
        .library(name: "EngramNN", targets: ["EngramNN"]),
        .library(name: "EngramData", targets: ["EngramData"]),
        .library(name: "EngramCL", targets: ["EngramCL"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/JohnSundell/Plot", from: "0.14.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
    ],
    targets: [
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .systemLibrary(name: "CMalloc"),
        .target(name: "CEngramKernels", cSettings: [.unsafeFlags(["-O2", "-ffp-contract=off"] + hostVectorCFlags)]),
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .target(name: "EngramTensor", dependencies: ["COpenBLAS", "CMalloc", "CEngramKernels"] + (hasOneDNN ? ["CEngramDNNL"] : []),
                swiftSettings: optimized + (hasOneDNN ? [.define("ENGRAM_DNNL")] : [])),
        .target(
            name: "EngramNN",
            dependencies: ["EngramTensor", "CEngramKernels", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: optimized
        ),
        .target(
            name: "EngramData",
            dependencies: [
                "EngramTensor", "CZlib",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: optimized
        ),
        .target(
            name: "EngramCL",
            dependencies: ["EngramTensor", "EngramNN", "EngramData", "CEngramKernels", .product(name: "Logging", package: "swift-log"),
                           .product(name: "Yams", package: "Yams")],
            swiftSettings: optimized
        ),
        .target(name: "EngramReport", dependencies: ["EngramTensor", "EngramNN", "EngramData", "EngramCL",
                                                     .product(name: "Plot", package: "Plot")]),
        .target(name: "EngramStore", dependencies: ["EngramCL", "EngramReport", .product(name: "GRDB", package: "GRDB.swift")]),
        .target(name: "Engram", dependencies: ["EngramTensor", "EngramNN", "EngramData", "EngramCL", "EngramReport", "EngramStore"]),
        .executableTarget(
            name: "engram",
            // The layers are listed beside the umbrella module that re-exports them: the umbrella's .swiftmodule is not
            // rewritten when only a layer changes, so without them an incremental build kept the CLI compiled against a
            // layer's old memory layout (a stored property added to RunResults crashed every run at its end).
            dependencies: [
                "Engram", "EngramTensor", "EngramNN", "EngramData", "EngramCL", "EngramReport", "EngramStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
            ] + (hasMPI ? ["CMPI"] : []),
            swiftSettings: optimized + (hasMPI ? [.define("ENGRAM_MPI")] : [])
        ),
        .testTarget(name: "EngramTensorTests", dependencies: ["EngramTensor"]),
        .testTarget(name: "EngramNNTests", dependencies: ["EngramTensor", "EngramNN", "CEngramKernels"]),
        .testTarget(name: "EngramDataTests", dependencies: ["EngramTensor", "EngramData"]),
        .testTarget(name: "EngramFuzzTests", dependencies: ["EngramTensor", "EngramNN", "EngramData", "EngramCL",
                                                          .product(name: "Yams", package: "Yams")]),
        .testTarget(name: "EngramCLTests", dependencies: ["EngramTensor", "EngramNN", "EngramData", "EngramCL", "CEngramKernels", .product(name: "Yams", package: "Yams")]),
        .testTarget(name: "EngramReportTests", dependencies: ["EngramTensor", "EngramNN", "EngramData", "EngramCL", "EngramReport"]),
        .testTarget(name: "EngramStoreTests", dependencies: ["EngramCL", "EngramReport", "EngramStore"]),
    ] + (hasMPI ? [.systemLibrary(name: "CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])])] : [])
      + (hasOneDNN ? [.target(name: "CEngramDNNL", cSettings: [.unsafeFlags(["-O2"])], linkerSettings: [.linkedLibrary("dnnl")])] : []),
    swiftLanguageModes: [.v6]
)
