import EngramTensor
import EngramNN
import EngramData
import EngramCL

/// A text chart of ACC and forgetting against each numeric grid parameter (`engram sweep`'s sensitivity plot).
public struct TextSensitivityChart {
    public let rows: [SummaryRow]

    public init(rows: [SummaryRow]) { self.rows = rows }

    /// One block per numeric parameter that takes at least two values; rows without the parameter (other grids) are left out.
    public func render() -> String {
        let keys = Array(Set(rows.flatMap(\.parameters.keys))).sorted()
        var out = ""
        for key in keys {
            // Numeric parameters that take at least two values.
            let values = Set(rows.compactMap { $0.parameters[key] })
            guard values.count >= 2, values.allSatisfy({ Self.number($0) != nil }) else { continue }
            // One series per combination of the other parameters.
            var series: [String: [SummaryRow]] = [:]
            var order: [String] = []
            // Rows of other grids (`grids:`) may not have this parameter at all.
            for row in rows where row.parameters[key] != nil {
                let label = ([row.strategy] + row.parameters.filter { $0.key != key && $0.key != "strategy" }.sorted { $0.key < $1.key }
                    .map { "\($0.key.split(separator: ".").last!)=\($0.value)" }).joined(separator: " ")
                if series[label] == nil { order.append(label) }
                series[label, default: []].append(row)
            }
            let short = key.split(separator: ".").last.map(String.init) ?? key
            out += "\nsensitivity to \(key): ACC (█) and forgetting (░), % (bar: 0–100)\n"
            for label in order {
                out += "  \(label)\n"
                let rows = series[label]!.sorted { Self.number($0.parameters[key]!)! < Self.number($1.parameters[key]!)! }
                let width = rows.map { "\(short)=\($0.parameters[key]!)".count }.max() ?? 0
                for row in rows {
                    let name = "\(short)=\(row.parameters[key]!)"
                    let pad = String(repeating: " ", count: width - name.count)
                    out += "    \(name)\(pad)  " + Self.bar(row.accuracy?.mean, "█") + " \(row.accuracy?.formatted() ?? "–")\n"
                    out += "    \(String(repeating: " ", count: width))  " + Self.bar(row.forgetting?.mean, "░")
                        + " \(row.forgetting?.formatted() ?? "–")\n"
                }
            }
        }
        return out
    }

    static func number(_ v: GridValue) -> Double? {
        switch v {
        case let .int(i): Double(i)
        case let .double(d): d
        default: nil
        }
    }

    static func bar(_ fraction: Double?, _ mark: Character, width: Int = 40) -> String {
        let n = Int(((fraction ?? 0) * Double(width)).rounded())
        let filled = min(max(n, 0), width)
        return String(repeating: mark, count: filled) + String(repeating: " ", count: width - filled)
    }
}
