import EngramTensor
import EngramNN
import EngramData
import Foundation
import Yams

extension ExperimentConfiguration {
    /// The configuration as `config.yaml` text: keys in the order of the type, numbers written the shortest way
    /// that reads back to the same value (`lr: 0.01`, not Yams' `9.99999977648258e-3` for a `Float`).
    public func yamlText() throws -> String {
        let yaml = try YAMLEncoder().encode(self)
        // JSONEncoder writes each Float and Double in its shortest round-trip form; those texts replace Yams' numbers.
        let reference = try JSONSerialization.jsonObject(with: JSONEncoder().encode(self), options: [.fragmentsAllowed])
        guard let node = try Yams.compose(yaml: yaml) else { return yaml }
        return try Yams.serialize(node: Self.shortestNumbers(node, reference: reference))
    }

    /// `node` with every non-integer number scalar replaced by the shortest form of the value at the same
    /// place in `reference` (the JSON object of the same configuration).
    static func shortestNumbers(_ node: Node, reference: Any?) -> Node {
        switch node {
        case .mapping(let mapping):
            let object = reference as? [String: Any]
            let pairs = mapping.map { pair in
                (pair.key, shortestNumbers(pair.value, reference: pair.key.string.flatMap { object?[$0] }))
            }
            return Node(pairs, mapping.tag, mapping.style)
        case .sequence(let sequence):
            let array = reference as? [Any]
            let nodes = sequence.enumerated().map { i, element in
                shortestNumbers(element, reference: array.flatMap { i < $0.count ? $0[i] : nil })
            }
            return Node(nodes, sequence.tag, sequence.style)
        case .scalar(let scalar):
            guard Double(scalar.string) != nil, Int(scalar.string) == nil,
                  let value = (reference as? Double) ?? (reference as? Int).map(Double.init) ?? (reference as? NSNumber)?.doubleValue,
                  value.isFinite else { return node }
            return Node(value == value.rounded() && abs(value) < 1e15 ? String(format: "%.1f", value) : "\(value)")
        default:
            return node
        }
    }
}
