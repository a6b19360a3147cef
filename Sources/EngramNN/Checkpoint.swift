import EngramTensor
import Foundation

/// A training checkpoint in one safetensors file: the model's parameters and buffers
/// (`model.<name>`), the optimizer's state (`optimizer.<name>`), any extra tensors of the caller
/// (`extra.<name>`: a strategy's importance and anchors, RNG state …) and string metadata.
/// Written atomically (temp file, fsync, rename), so a killed process leaves the previous checkpoint intact
/// (and its stale temporary file is removed by the next save). Every tensor's SHA-256 is stored in the
/// file's metadata and verified by `read`, whose error names a tensor whose bytes changed.
public struct Checkpoint {
    public var model: [String: Tensor]
    public var optimizer: [String: Tensor]
    public var extra: [String: Tensor]
    public var metadata: [String: String]

    /// Writes `model`, `optimizer` and `extra` state with `metadata` to `url`.
    public static func save(model: any Module, optimizer: (any Optimizer)? = nil, extra: [(String, Tensor)] = [],
                            metadata: [String: String] = [:], to url: URL) throws {
        var tensors = model.stateDictionary().map { ("model.\($0.0)", $0.1) }
        tensors += (optimizer?.stateTensors() ?? []).map { ("optimizer.\($0.0)", $0.1) }
        tensors += extra.map { ("extra.\($0.0)", $0.1) }
        try SafeTensors.write(tensors, metadata: metadata, to: url)
    }

    /// Reads a checkpoint written by `save`.
    public static func read(from url: URL) throws -> Checkpoint {
        let file = try SafeTensors.read(contentsOf: url)
        var result = Checkpoint(model: [:], optimizer: [:], extra: [:], metadata: file.metadata)
        for entry in file.entries {
            let name = entry.name
            if name.hasPrefix("model.") { result.model[String(name.dropFirst(6))] = entry.tensor }
            else if name.hasPrefix("optimizer.") { result.optimizer[String(name.dropFirst(10))] = entry.tensor }
            else if name.hasPrefix("extra.") { result.extra[String(name.dropFirst(6))] = entry.tensor }
        }
        return result
    }

    /// Loads the model (and optimizer) state of this checkpoint; errors name the missing or misshapen tensor.
    public func restore(into model: any Module, optimizer: (any Optimizer)? = nil) throws {
        try model.load(self.model)
        try optimizer?.loadState(self.optimizer)
    }
}
