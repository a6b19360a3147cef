import EngramTensor
import EngramNN
import EngramData
import EngramCL
import Foundation

/// How a chart maps a value to a position along an axis.
public enum AxisScale: Sendable, Equatable {
    /// Equal distances for equal differences.
    case linear
    /// Equal distances for equal ratios (base 10); every value must be positive.
    case logarithmic
}

/// How a chart prints values (tick labels, cell text, tooltips).
public enum ValueFormat: Sendable, Equatable {
    /// A fraction shown as a percentage with the given decimals (0.853 → `85.3`).
    case percent(decimals: Int)
    /// A plain number with the given decimals.
    case fixed(decimals: Int)
    /// Up to three significant digits (`0.001`, `2.5`, `100`).
    case compact
    /// Bytes in binary units (`1.50 MiB`).
    case bytes

    /// `x` formatted.
    public func string(_ x: Double) -> String {
        switch self {
        case .percent(let d): NumberFormat.percent(x, decimals: d)
        case .fixed(let d): NumberFormat.fixed(x, decimals: d)
        case .compact: NumberFormat.compact(x)
        case .bytes: NumberFormat.bytes(x)
        }
    }
}

/// A labelled position on an axis.
public struct AxisTick: Sendable, Equatable {
    /// The data value.
    public var value: Double
    /// The text shown beside it.
    public var label: String

    /// A tick at `value` labelled `label`.
    public init(value: Double, label: String) {
        self.value = value
        self.label = label
    }
}

/// An axis's range and ticks, and the mapping from data to pixels.
struct AxisLayout {
    var lower: Double
    var upper: Double
    var scale: AxisScale
    var ticks: [Double]

    /// A "nice" axis covering `values` (padded to round numbers; includes `include` if given).
    static func fitting(_ values: [Double], scale: AxisScale, include: [Double] = [], fixed: ClosedRange<Double>? = nil,
                        targetTicks: Int = 5) -> AxisLayout {
        switch scale {
        case .logarithmic:
            let positive = (values + include).filter { $0 > 0 && $0.isFinite }
            var lo = fixed?.lowerBound ?? positive.min() ?? 1
            var hi = fixed?.upperBound ?? positive.max() ?? 10
            if lo <= 0 { lo = hi > 0 ? hi / 10 : 1 }
            if hi <= lo { hi = lo * 10 }
            let e0 = floor(log10(lo) + 1e-9), e1 = ceil(log10(hi) - 1e-9)
            var ticks = stride(from: e0, through: e1, by: 1).map { pow(10, $0) }
            if ticks.count <= 2 {
                ticks = stride(from: e0, through: e1, by: 1).flatMap { e in [1.0, 2, 5].map { $0 * pow(10, e) } }
                    .filter { $0 >= pow(10, e0) * 0.999 && $0 <= pow(10, e1) * 1.001 }
            }
            if fixed == nil {
                lo = min(lo, pow(10, e0)); hi = max(hi, pow(10, e1))
                // Half a decade of breathing room when the data sits on the ends.
                return AxisLayout(lower: lo / pow(10, 0.15), upper: hi * pow(10, 0.15), scale: .logarithmic, ticks: ticks)
            }
            return AxisLayout(lower: lo, upper: hi, scale: .logarithmic, ticks: ticks.filter { $0 >= lo * 0.999 && $0 <= hi * 1.001 })
        case .linear:
            let finite = (values + include).filter(\.isFinite)
            var lo = fixed?.lowerBound ?? finite.min() ?? 0
            var hi = fixed?.upperBound ?? finite.max() ?? 1
            if hi - lo < 1e-12 { lo -= lo == 0 ? 0 : abs(lo) * 0.1; hi += hi == 0 ? 1 : abs(hi) * 0.1 }
            let step = niceStep((hi - lo) / Double(max(1, targetTicks)))
            if fixed == nil {
                lo = floor(lo / step + 1e-9) * step
                hi = ceil(hi / step - 1e-9) * step
            }
            var ticks: [Double] = []
            var t = ceil(lo / step - 1e-9) * step
            while t <= hi + step * 1e-6 {
                ticks.append(abs(t) < step * 1e-9 ? 0 : t)
                t += step
            }
            return AxisLayout(lower: lo, upper: hi, scale: .linear, ticks: ticks)
        }
    }

    /// 1, 2 or 5 × 10^k, the smallest not below `raw`.
    static func niceStep(_ raw: Double) -> Double {
        guard raw > 0, raw.isFinite else { return 1 }
        let e = floor(log10(raw))
        let base = pow(10, e)
        for m in [1.0, 2, 2.5, 5, 10] where m * base >= raw * (1 - 1e-9) { return m * base }
        return 10 * base
    }

    /// Position of `value` in [0, 1] along the axis.
    func fraction(_ value: Double) -> Double {
        switch scale {
        case .linear: return upper == lower ? 0.5 : (value - lower) / (upper - lower)
        case .logarithmic:
            guard value > 0, lower > 0, upper > lower else { return 0 }
            return (log10(value) - log10(lower)) / (log10(upper) - log10(lower))
        }
    }
}

/// Tick labels without a fractional part that is zero on every tick (`0.0, 20.0` → `0, 20`;
/// `1.00 MiB, 2.00 MiB` → `1 MiB, 2 MiB`); labels are left alone if any tick needs its decimals.
func tidyTickLabels(_ labels: [String]) -> [String] {
    func stripped(_ label: String) -> String? {
        guard let dot = label.firstIndex(of: ".") else { return label }
        let fraction = label[label.index(after: dot)...].prefix { $0.isNumber }
        guard fraction.allSatisfy({ $0 == "0" }) else { return nil }
        return String(label[..<dot]) + String(label[label.index(after: dot)...].dropFirst(fraction.count))
    }
    let tidy = labels.map(stripped)
    return tidy.contains(where: { $0 == nil }) ? labels : tidy.map { $0! }
}
