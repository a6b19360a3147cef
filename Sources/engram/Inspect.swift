import Engram
import ArgumentParser
import Foundation

/// `engram inspect FILE.safetensors`: names, shapes, dtypes and statistics of a checkpoint.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the tensors of a safetensors file: name, dtype, shape and statistics.")

    @Argument(help: "A .safetensors file (an Engram checkpoint or any other).")
    var file: String

    @Flag(help: "Print one JSON object per tensor instead of a table.")
    var json = false

    func run() throws {
        let contents = try SafeTensors.read(contentsOf: URL(fileURLWithPath: file))
        if !json {
            for (key, value) in contents.metadata.sorted(by: { $0.key < $1.key }) {
                let shown = value.count > 100 ? String(value.prefix(97)) + "…" : value
                print("# \(key): \(shown)")
            }
            print("name".padding(toLength: 44, withPad: " ", startingAt: 0)
                  + "dtype  shape               min          max          mean         std")
        }
        var total = 0
        for entry in contents.entries {
            let v = entry.tensor.scalars
            total += v.count
            let finite = v.filter(\.isFinite)
            let mean = finite.isEmpty ? Double.nan : finite.reduce(0.0) { $0 + Double($1) } / Double(finite.count)
            let variance = finite.isEmpty ? Double.nan
                : finite.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(finite.count)
            let minimum = finite.min().map(Double.init) ?? .nan, maximum = finite.max().map(Double.init) ?? .nan
            if json {
                let object: [String: Any] = ["name": entry.name, "dtype": entry.dtype.rawValue, "shape": entry.shape,
                                             "min": minimum, "max": maximum, "mean": mean, "std": variance.squareRoot(),
                                             "non_finite": v.count - finite.count]
                let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            } else {
                let shape = "[" + entry.shape.map(String.init).joined(separator: ", ") + "]"
                print(entry.name.padding(toLength: 44, withPad: " ", startingAt: 0)
                      + entry.dtype.rawValue.padding(toLength: 7, withPad: " ", startingAt: 0)
                      + shape.padding(toLength: 20, withPad: " ", startingAt: 0)
                      + String(format: "%-12.4g %-12.4g %-12.4g %-12.4g", minimum, maximum, mean, variance.squareRoot())
                      + (finite.count < v.count ? "  (\(v.count - finite.count) non-finite)" : ""))
            }
        }
        if !json { print("\(contents.entries.count) tensors, \(total) values") }
    }
}
