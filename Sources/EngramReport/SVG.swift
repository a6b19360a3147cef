import EngramTensor
import EngramNN
import EngramData
import EngramCL
import Foundation

/// XML escaping for text content and attribute values of inline SVG and HTML.
public enum XMLEscaping {
    /// `s` with `&`, `<`, `>`, `"` and `'` replaced by entities, and control characters
    /// that XML 1.0 forbids dropped; safe both as element text and inside a quoted attribute.
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            case "\t", "\n", "\r": out.unicodeScalars.append(scalar)
            default:
                if scalar.value < 0x20 || scalar.value == 0xFFFE || scalar.value == 0xFFFF { continue }
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}

/// Locale-independent, deterministic number formatting for reports.
public enum NumberFormat {
    /// `x` with exactly `decimals` digits after the point (never `-0.00`; `nan`/`inf` spelled out).
    public static func fixed(_ x: Double, decimals: Int) -> String {
        guard x.isFinite else { return x.isNaN ? "nan" : (x > 0 ? "inf" : "-inf") }
        let s = String(format: "%.\(max(0, decimals))f", x)
        if s.hasPrefix("-"), s.dropFirst().allSatisfy({ $0 == "0" || $0 == "." }) { return String(s.dropFirst()) }
        return s
    }

    /// A coordinate: at most two decimals, trailing zeros removed.
    static func coordinate(_ x: Double) -> String {
        var s = fixed(x, decimals: 2)
        if s.contains(".") {
            while s.hasSuffix("0") { s.removeLast() }
            if s.hasSuffix(".") { s.removeLast() }
        }
        return s
    }

    /// A fraction in [0, 1] as a percentage with `decimals` digits, without the `%` sign.
    public static func percent(_ x: Double, decimals: Int = 1) -> String { fixed(100 * x, decimals: decimals) }

    /// A compact general number: integers as such, otherwise up to 3 significant digits (`1e-3`, `0.01`, `2.5`, `100`).
    public static func compact(_ x: Double) -> String {
        guard x.isFinite else { return fixed(x, decimals: 0) }
        if x == 0 { return "0" }
        if x == x.rounded(), abs(x) < 1e6 { return fixed(x, decimals: 0) }
        let magnitude = abs(x)
        if magnitude < 1e-3 || magnitude >= 1e6 {
            let exponent = Int(floor(log10(magnitude)))
            let mantissa = x / pow(10, Double(exponent))
            let m = trimmed(fixed(mantissa, decimals: 2))
            return "\(m)e\(exponent)"
        }
        let digits = max(0, 2 - Int(floor(log10(magnitude))))
        return trimmed(fixed(x, decimals: digits))
    }

    /// Bytes in the largest binary unit that keeps the number ≥ 1 (`512 B`, `1.5 KiB`, `3.20 MiB`).
    public static func bytes(_ n: Double) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = n
        var unit = 0
        while abs(value) >= 1024, unit < units.count - 1 { value /= 1024; unit += 1 }
        return unit == 0 ? "\(fixed(value, decimals: 0)) B" : "\(fixed(value, decimals: value < 10 ? 2 : 1)) \(units[unit])"
    }

    private static func trimmed(_ s: String) -> String {
        guard s.contains(".") else { return s }
        var s = s
        while s.hasSuffix("0") { s.removeLast() }
        if s.hasSuffix(".") { s.removeLast() }
        return s
    }
}

/// Colours used by the charts: a colour-blind-safe categorical palette (Okabe & Ito) and a
/// perceptually ordered sequential scale (viridis) for heatmaps.
public enum ChartColors {
    /// Categorical colours for series, in order of use.
    public static let categorical = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#7F7F7F", "#B8A000", "#000000"]

    /// The `i`-th categorical colour (cycling).
    public static func series(_ i: Int) -> String { categorical[((i % categorical.count) + categorical.count) % categorical.count] }

    /// Viridis anchor colours, from low to high.
    static let viridis: [(Double, Double, Double)] = [
        (68, 1, 84), (72, 40, 120), (62, 74, 137), (49, 104, 142), (38, 130, 142),
        (31, 158, 137), (53, 183, 121), (109, 205, 89), (180, 222, 44), (253, 231, 37),
    ]

    /// The sequential colour of `t` ∈ [0, 1] (clamped) as `#rrggbb`, and whether text on it should be dark.
    public static func sequential(_ t: Double) -> (fill: String, darkText: Bool) {
        let t = t.isFinite ? min(1, max(0, t)) : 0
        let position = t * Double(viridis.count - 1)
        let i = min(viridis.count - 2, Int(position))
        let f = position - Double(i)
        let a = viridis[i], b = viridis[i + 1]
        let r = a.0 + (b.0 - a.0) * f, g = a.1 + (b.1 - a.1) * f, bl = a.2 + (b.2 - a.2) * f
        let luminance = (0.2126 * r + 0.7152 * g + 0.0722 * bl) / 255
        return (hex(r, g, bl), luminance > 0.45)
    }

    static func hex(_ r: Double, _ g: Double, _ b: Double) -> String {
        func c(_ x: Double) -> String {
            let v = Int(min(255, max(0, x.rounded())))
            let digits = Array("0123456789abcdef")
            return String([digits[v / 16], digits[v % 16]])
        }
        return "#" + c(r) + c(g) + c(b)
    }
}

/// A minimal SVG writer: collects elements in order and renders one `<svg>` element.
/// Coordinates are rounded to two decimals so the output is byte-for-byte deterministic.
struct SVGCanvas {
    let width: Double
    let height: Double
    private(set) var body: [String] = []

    init(width: Double, height: Double) {
        self.width = width
        self.height = height
    }

    private static func n(_ x: Double) -> String { NumberFormat.coordinate(x) }
    private static func e(_ s: String) -> String { XMLEscaping.escape(s) }

    /// Appends raw, already escaped markup.
    mutating func raw(_ markup: String) { body.append(markup) }

    mutating func rect(x: Double, y: Double, width: Double, height: Double, fill: String,
                       stroke: String? = nil, strokeWidth: Double = 1, tooltip: String? = nil) {
        var s = "<rect x=\"\(Self.n(x))\" y=\"\(Self.n(y))\" width=\"\(Self.n(max(0, width)))\" height=\"\(Self.n(max(0, height)))\" fill=\"\(Self.e(fill))\""
        if let stroke { s += " stroke=\"\(Self.e(stroke))\" stroke-width=\"\(Self.n(strokeWidth))\"" }
        if let tooltip { s += "><title>\(Self.e(tooltip))</title></rect>" } else { s += "/>" }
        body.append(s)
    }

    mutating func line(x1: Double, y1: Double, x2: Double, y2: Double, stroke: String,
                       width: Double = 1, dash: String? = nil) {
        var s = "<line x1=\"\(Self.n(x1))\" y1=\"\(Self.n(y1))\" x2=\"\(Self.n(x2))\" y2=\"\(Self.n(y2))\" stroke=\"\(Self.e(stroke))\" stroke-width=\"\(Self.n(width))\""
        if let dash { s += " stroke-dasharray=\"\(Self.e(dash))\"" }
        body.append(s + "/>")
    }

    mutating func polyline(_ points: [(Double, Double)], stroke: String, width: Double = 2, dash: String? = nil, opacity: Double = 1) {
        guard points.count > 1 else { return }
        let p = points.map { "\(Self.n($0.0)),\(Self.n($0.1))" }.joined(separator: " ")
        var s = "<polyline points=\"\(p)\" fill=\"none\" stroke=\"\(Self.e(stroke))\" stroke-width=\"\(Self.n(width))\" stroke-linejoin=\"round\""
        if let dash { s += " stroke-dasharray=\"\(Self.e(dash))\"" }
        if opacity < 1 { s += " stroke-opacity=\"\(Self.n(opacity))\"" }
        body.append(s + "/>")
    }

    mutating func circle(cx: Double, cy: Double, r: Double, fill: String, stroke: String? = nil, tooltip: String? = nil, opacity: Double = 1) {
        var s = "<circle cx=\"\(Self.n(cx))\" cy=\"\(Self.n(cy))\" r=\"\(Self.n(r))\" fill=\"\(Self.e(fill))\""
        if let stroke { s += " stroke=\"\(Self.e(stroke))\" stroke-width=\"1.5\"" }
        if opacity < 1 { s += " fill-opacity=\"\(Self.n(opacity))\"" }
        if let tooltip { s += "><title>\(Self.e(tooltip))</title></circle>" } else { s += "/>" }
        body.append(s)
    }

    enum Anchor: String { case start, middle, end }

    mutating func text(_ string: String, x: Double, y: Double, anchor: Anchor = .start, size: Double = 12,
                       weight: String? = nil, fill: String = "#222", rotate: Double? = nil, baseline: String? = nil) {
        var s = "<text x=\"\(Self.n(x))\" y=\"\(Self.n(y))\" font-size=\"\(Self.n(size))\" fill=\"\(Self.e(fill))\""
        if anchor != .start { s += " text-anchor=\"\(anchor.rawValue)\"" }
        if let weight { s += " font-weight=\"\(Self.e(weight))\"" }
        if let baseline { s += " dominant-baseline=\"\(Self.e(baseline))\"" }
        if let rotate { s += " transform=\"rotate(\(Self.n(rotate)) \(Self.n(x)) \(Self.n(y)))\"" }
        body.append(s + ">\(Self.e(string))</text>")
    }

    /// The `<svg>` element with an accessible title (and `<desc>` if given).
    func render(title: String, description: String? = nil) -> String {
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Self.n(width))\" height=\"\(Self.n(height))\" viewBox=\"0 0 \(Self.n(width)) \(Self.n(height))\" role=\"img\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">"
        s += "<title>\(Self.e(title))</title>"
        if let description { s += "<desc>\(Self.e(description))</desc>" }
        s += "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>"
        s += body.joined()
        return s + "</svg>"
    }
}

/// Approximate width of `text` at `size` px in a sans-serif font (for layout only).
func estimatedTextWidth(_ text: String, size: Double) -> Double {
    var units = 0.0
    for c in text {
        switch c {
        case "i", "l", "j", "I", "!", ".", ",", ":", ";", "'", "|", " ": units += 0.32
        case "f", "t", "r", "(", ")", "[", "]", "-": units += 0.42
        case "m", "w", "M", "W": units += 0.9
        case _ where c.isUppercase: units += 0.7
        case _ where c.isNumber: units += 0.62
        default: units += 0.6
        }
    }
    return units * size
}
