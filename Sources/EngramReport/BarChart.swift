import EngramTensor
import EngramNN
import EngramData
import EngramCL
import Foundation

/// Vertical bars, grouped by category, with optional ± error bars (e.g. mean ± std over seeds),
/// value labels, a value axis with ticks and a legend; renders as an inline `<svg>` string.
public struct BarChart: Sendable, Equatable {
    /// One bar per category.
    public struct Series: Sendable, Equatable {
        /// Legend text.
        public var name: String
        /// One value per category (`nil`: no bar).
        public var values: [Double?]
        /// One error half-length per category (`nil`: no error bar); may be empty.
        public var errors: [Double?]
        /// Colour (`#rrggbb`); `nil` picks the next categorical colour.
        public var color: String?

        /// A series of bars; `errors`, if given, align with `values`.
        public init(name: String, values: [Double?], errors: [Double?] = [], color: String? = nil) {
            self.name = name
            self.values = values
            self.errors = errors
            self.color = color
        }
    }

    /// Shown above the chart (and as the SVG's accessible title).
    public var title: String
    /// Category labels along the horizontal axis.
    public var categories: [String]
    /// Bars per category, side by side, one per series.
    public var series: [Series]
    /// Vertical axis title.
    public var yLabel: String
    /// How values are printed.
    public var format: ValueFormat
    /// Fixed vertical range; `nil` fits the data (always including zero).
    public var yRange: ClosedRange<Double>?
    /// Print each bar's value above it.
    public var showValues: Bool
    /// Plot-area height in pixels.
    public var plotHeight: Double

    /// A bar chart; see the properties for the options.
    public init(title: String, categories: [String], series: [Series], yLabel: String = "",
                format: ValueFormat = .compact, yRange: ClosedRange<Double>? = nil, showValues: Bool = true,
                plotHeight: Double = 240) {
        self.title = title
        self.categories = categories
        self.series = series
        self.yLabel = yLabel
        self.format = format
        self.yRange = yRange
        self.showValues = showValues
        self.plotHeight = plotHeight
    }

    /// The chart as a standalone `<svg>` element.
    public func svg() -> String {
        let seriesCount = max(1, series.count)
        var extents: [Double] = [0]
        for s in series {
            for (k, v) in s.values.enumerated() {
                guard let v, v.isFinite else { continue }
                let e = k < s.errors.count ? (s.errors[k] ?? 0) : 0
                extents += [v - e, v + e]
            }
        }
        var yAxis = AxisLayout.fitting(extents, scale: .linear, fixed: yRange)
        if format == .bytes, yRange == nil {
            // Round ticks in the binary unit of the largest value (1, 2, 3 MiB rather than 0.95, 1.91 MiB).
            let largest = extents.map(abs).max() ?? 0
            var unit = 1.0
            while largest / unit >= 1024 { unit *= 1024 }
            let scaled = AxisLayout.fitting(extents.map { $0 / unit }, scale: .linear)
            yAxis = AxisLayout(lower: scaled.lower * unit, upper: scaled.upper * unit, scale: .linear, ticks: scaled.ticks.map { $0 * unit })
        }
        let yTickLabels = Array(zip(yAxis.ticks, tidyTickLabels(yAxis.ticks.map { format.string($0) })))
        let yLabelWidth = yTickLabels.map { estimatedTextWidth($0.1, size: 11) }.max() ?? 20
        let left = 14 + (yLabel.isEmpty ? 0 : 20) + yLabelWidth + 8
        let top = 44.0
        let valueTextWidth = showValues ? (series.flatMap(\.values).compactMap { $0 }.map { estimatedTextWidth(format.string($0), size: 10) }.max() ?? 0) : 0
        let barWidth = max(14, min(48, valueTextWidth + 4))
        let groupGap = 12.0
        let categoryLabelWidth = categories.map { estimatedTextWidth($0, size: 12) }.max() ?? 0
        let groupWidth = max(Double(seriesCount) * barWidth + groupGap, min(categoryLabelWidth + 8, 150))
        let rotateLabels = categoryLabelWidth + 6 > groupWidth
        let plotWidth = max(groupWidth * Double(categories.count), 160)
        let labelBand = rotateLabels ? min(categoryLabelWidth, 220) * 0.72 + 14 : 22
        let legend = series.count > 1 ? series.map(\.name) : []
        let legendWidth = legend.isEmpty ? 0 : 30 + (legend.map { estimatedTextWidth($0, size: 12) }.max() ?? 0)
        let plotRight = left + plotWidth
        let width = max(plotRight + (legendWidth > 0 ? 18 + legendWidth : 0) + 12, estimatedTextWidth(title, size: 15) + 20)
        let height = top + plotHeight + labelBand + 8

        func py(_ y: Double) -> Double { top + (1 - yAxis.fraction(y)) * plotHeight }

        var c = SVGCanvas(width: width, height: height)
        c.text(title, x: 10, y: 22, size: 15, weight: "bold")
        for (value, label) in yTickLabels {
            let y = py(value)
            c.line(x1: left, y1: y, x2: plotRight, y2: y, stroke: value == 0 ? "#777777" : "#e3e3e3")
            c.text(label, x: left - 6, y: y, anchor: .end, size: 11, fill: "#333333", baseline: "central")
        }
        if !yLabel.isEmpty { c.text(yLabel, x: 18, y: top + plotHeight / 2, anchor: .middle, size: 12, fill: "#555555", rotate: -90) }

        var colorIndex = 0
        let colors: [String] = series.map { s in
            if let color = s.color { return color }
            defer { colorIndex += 1 }
            return ChartColors.series(colorIndex)
        }
        let zero = py(min(max(0, yAxis.lower), yAxis.upper))
        for (j, category) in categories.enumerated() {
            let groupLeft = left + Double(j) * groupWidth
            let barsWidth = Double(seriesCount) * barWidth
            let firstBar = groupLeft + (groupWidth - barsWidth) / 2
            for (k, s) in series.enumerated() {
                guard j < s.values.count, let v = s.values[j], v.isFinite else { continue }
                let x = firstBar + Double(k) * barWidth
                let y = py(v)
                let error = j < s.errors.count ? s.errors[j] : nil
                var tip = "\(category) — \(s.name): \(format.string(v))"
                if let error { tip += " ± \(format.string(error))" }
                c.rect(x: x + 1, y: min(y, zero), width: barWidth - 2, height: abs(zero - y), fill: colors[k], tooltip: tip)
                var labelY = v >= 0 ? y : zero
                if let error, error > 0 {
                    let cx = x + barWidth / 2
                    let hi = py(v + error), lo = py(v - error)
                    c.line(x1: cx, y1: hi, x2: cx, y2: lo, stroke: "#222222", width: 1.3)
                    c.line(x1: cx - 4, y1: hi, x2: cx + 4, y2: hi, stroke: "#222222", width: 1.3)
                    c.line(x1: cx - 4, y1: lo, x2: cx + 4, y2: lo, stroke: "#222222", width: 1.3)
                    labelY = min(labelY, hi)
                }
                if showValues {
                    c.text(format.string(v), x: x + barWidth / 2, y: labelY - 4, anchor: .middle, size: 10, fill: "#333333")
                }
            }
            let cx = groupLeft + groupWidth / 2
            if rotateLabels {
                c.text(category, x: cx, y: top + plotHeight + 12, anchor: .end, size: 12, rotate: -35)
            } else {
                c.text(category, x: cx, y: top + plotHeight + 16, anchor: .middle, size: 12)
            }
        }
        c.line(x1: left, y1: top, x2: left, y2: top + plotHeight, stroke: "#999999")
        for (k, name) in legend.enumerated() {
            let y = top + 8 + Double(k) * 20
            c.rect(x: plotRight + 18, y: y - 6, width: 14, height: 12, fill: colors[k])
            c.text(name, x: plotRight + 38, y: y, size: 12, baseline: "central")
        }
        return c.render(title: title, description: "Bar chart of \(yLabel) for \(categories.count) categories")
    }
}
