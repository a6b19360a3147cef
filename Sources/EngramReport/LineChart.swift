import EngramTensor
import EngramNN
import EngramData
import EngramCL
import Foundation

/// Lines through points (optionally with ± error bars) on linear or logarithmic axes, with
/// ticks, axis titles and a legend; renders as an inline `<svg>` string.
public struct LineChart: Sendable, Equatable {
    /// One point of a series.
    public struct Point: Sendable, Equatable {
        /// Horizontal value.
        public var x: Double
        /// Vertical value.
        public var y: Double
        /// Half-length of the error bar (e.g. a standard deviation), if any.
        public var error: Double?

        /// A point at (`x`, `y`) with an optional ± `error`.
        public init(x: Double, y: Double, error: Double? = nil) {
            self.x = x
            self.y = y
            self.error = error
        }
    }

    /// A named line.
    public struct Series: Sendable, Equatable {
        /// Legend text.
        public var name: String
        /// The points, drawn in the given order.
        public var points: [Point]
        /// Colour (`#rrggbb`); `nil` picks the next categorical colour.
        public var color: String?
        /// Draw the line dashed (e.g. a reference or a before-training segment).
        public var dashed: Bool
        /// List the series in the legend.
        public var inLegend: Bool
        /// Line width in pixels.
        public var lineWidth: Double
        /// Draw a marker at each point.
        public var markers: Bool

        /// A series; see the properties for the options.
        public init(name: String, points: [Point], color: String? = nil, dashed: Bool = false,
                    inLegend: Bool = true, lineWidth: Double = 2, markers: Bool = true) {
            self.name = name
            self.points = points
            self.color = color
            self.dashed = dashed
            self.inLegend = inLegend
            self.lineWidth = lineWidth
            self.markers = markers
        }
    }

    /// Shown above the chart (and as the SVG's accessible title).
    public var title: String
    /// Horizontal axis title.
    public var xLabel: String
    /// Vertical axis title.
    public var yLabel: String
    /// The lines.
    public var series: [Series]
    /// Horizontal scale.
    public var xScale: AxisScale
    /// Explicit horizontal ticks (e.g. categorical stages); `nil` chooses round numbers.
    public var xTicks: [AxisTick]?
    /// Fixed vertical range; `nil` fits the data.
    public var yRange: ClosedRange<Double>?
    /// How vertical values are printed.
    public var yFormat: ValueFormat
    /// How horizontal values are printed (when `xTicks` is `nil`).
    public var xFormat: ValueFormat
    /// Plot-area size in pixels.
    public var plotWidth: Double
    /// Plot-area height in pixels.
    public var plotHeight: Double

    /// A line chart; see the properties for the options.
    public init(title: String, xLabel: String, yLabel: String, series: [Series], xScale: AxisScale = .linear,
                xTicks: [AxisTick]? = nil, yRange: ClosedRange<Double>? = nil, yFormat: ValueFormat = .compact,
                xFormat: ValueFormat = .compact, plotWidth: Double = 560, plotHeight: Double = 300) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
        self.xScale = xScale
        self.xTicks = xTicks
        self.yRange = yRange
        self.yFormat = yFormat
        self.xFormat = xFormat
        self.plotWidth = plotWidth
        self.plotHeight = plotHeight
    }

    /// The chart as a standalone `<svg>` element.
    public func svg() -> String {
        let allPoints = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
        let xValues = allPoints.map(\.x) + (xTicks?.map(\.value) ?? [])
        let yValues = allPoints.flatMap { p in [p.y - (p.error ?? 0), p.y + (p.error ?? 0)] }
        var xAxis: AxisLayout
        if let xTicks, !xTicks.isEmpty {
            let values = xTicks.map(\.value)
            let lo = values.min()!, hi = values.max()!
            let pad = xScale == .linear ? max((hi - lo) * 0.04, hi == lo ? 0.5 : 0) : 0
            xAxis = AxisLayout(lower: lo - pad, upper: hi + pad, scale: xScale, ticks: values)
            if xScale == .logarithmic { xAxis.lower = lo / pow(10, 0.15); xAxis.upper = hi * pow(10, 0.15) }
        } else {
            xAxis = AxisLayout.fitting(xValues, scale: xScale)
        }
        let yAxis = AxisLayout.fitting(yValues, scale: .linear, fixed: yRange)
        let xTickLabels: [(Double, String)] = xTicks.map { $0.map { ($0.value, $0.label) } }
            ?? Array(zip(xAxis.ticks, tidyTickLabels(xAxis.ticks.map { xFormat.string($0) })))
        let yTickLabels = Array(zip(yAxis.ticks, tidyTickLabels(yAxis.ticks.map { yFormat.string($0) })))

        let yLabelWidth = yTickLabels.map { estimatedTextWidth($0.1, size: 11) }.max() ?? 20
        let left = 14 + (yLabel.isEmpty ? 0 : 20) + yLabelWidth + 8
        let top = 40.0
        let legendEntries = series.enumerated().filter { $0.element.inLegend }
        let legendWidth = legendEntries.isEmpty ? 0 : 34 + (legendEntries.map { estimatedTextWidth($0.element.name, size: 12) }.max() ?? 0)
        let plotRight = left + plotWidth
        let width = max(plotRight + (legendWidth > 0 ? 18 + legendWidth : 0) + 12, estimatedTextWidth(title, size: 15) + 20)
        let legendHeight = Double(legendEntries.count) * 20
        let height = top + max(plotHeight, legendHeight) + 22 + (xLabel.isEmpty ? 6 : 30)

        func px(_ x: Double) -> Double { left + xAxis.fraction(x) * plotWidth }
        func py(_ y: Double) -> Double { top + (1 - yAxis.fraction(y)) * plotHeight }

        var c = SVGCanvas(width: width, height: height)
        c.text(title, x: 10, y: 22, size: 15, weight: "bold")
        // Grid and ticks.
        for (value, label) in yTickLabels {
            let y = py(value)
            c.line(x1: left, y1: y, x2: plotRight, y2: y, stroke: "#e3e3e3")
            c.text(label, x: left - 6, y: y, anchor: .end, size: 11, fill: "#333333", baseline: "central")
        }
        let minLabelGap = xTickLabels.map { estimatedTextWidth($0.1, size: 11) }.max().map { $0 + 6 } ?? 0
        var lastLabelX = -Double.infinity
        for (value, label) in xTickLabels {
            let x = px(value)
            c.line(x1: x, y1: top, x2: x, y2: top + plotHeight, stroke: "#f0f0f0")
            c.line(x1: x, y1: top + plotHeight, x2: x, y2: top + plotHeight + 4, stroke: "#555555")
            if x - lastLabelX >= minLabelGap {
                c.text(label, x: x, y: top + plotHeight + 17, anchor: .middle, size: 11, fill: "#333333")
                lastLabelX = x
            }
        }
        c.rect(x: left, y: top, width: plotWidth, height: plotHeight, fill: "none", stroke: "#999999", strokeWidth: 1)
        if !xLabel.isEmpty { c.text(xLabel, x: left + plotWidth / 2, y: top + plotHeight + 40, anchor: .middle, size: 12, fill: "#555555") }
        if !yLabel.isEmpty { c.text(yLabel, x: 18, y: top + plotHeight / 2, anchor: .middle, size: 12, fill: "#555555", rotate: -90) }

        // Series.
        var colorIndex = 0
        var colors: [String] = []
        for s in series {
            if let color = s.color { colors.append(color) } else { colors.append(ChartColors.series(colorIndex)); colorIndex += 1 }
        }
        for (k, s) in series.enumerated() {
            let color = colors[k]
            let points = s.points.filter { $0.x.isFinite && $0.y.isFinite && (xScale == .linear || $0.x > 0) }
            for p in points {
                if let e = p.error, e > 0 {
                    let x = px(p.x)
                    c.line(x1: x, y1: py(p.y - e), x2: x, y2: py(p.y + e), stroke: color, width: 1.2)
                    c.line(x1: x - 4, y1: py(p.y - e), x2: x + 4, y2: py(p.y - e), stroke: color, width: 1.2)
                    c.line(x1: x - 4, y1: py(p.y + e), x2: x + 4, y2: py(p.y + e), stroke: color, width: 1.2)
                }
            }
            c.polyline(points.map { (px($0.x), py($0.y)) }, stroke: color, width: s.lineWidth, dash: s.dashed ? "6 4" : nil,
                       opacity: s.dashed ? 0.7 : 1)
            if s.markers {
                for p in points {
                    var tip = "\(s.name): \(xFormat.string(p.x)) → \(yFormat.string(p.y))"
                    if let xTicks, let t = xTicks.first(where: { $0.value == p.x }) { tip = "\(s.name), \(t.label): \(yFormat.string(p.y))" }
                    if let e = p.error { tip += " ± \(yFormat.string(e))" }
                    c.circle(cx: px(p.x), cy: py(p.y), r: 3.5, fill: s.dashed ? "#ffffff" : color, stroke: s.dashed ? color : nil, tooltip: tip)
                }
            }
        }
        // Legend to the right of the plot.
        for (row, entry) in legendEntries.enumerated() {
            let y = top + 8 + Double(row) * 20
            let x = plotRight + 18
            let color = colors[entry.offset]
            c.line(x1: x, y1: y, x2: x + 24, y2: y, stroke: color, width: entry.element.lineWidth, dash: entry.element.dashed ? "6 4" : nil)
            if entry.element.markers { c.circle(cx: x + 12, cy: y, r: 3.5, fill: entry.element.dashed ? "#ffffff" : color, stroke: entry.element.dashed ? color : nil) }
            c.text(entry.element.name, x: x + 32, y: y, size: 12, baseline: "central")
        }
        return c.render(title: title, description: "Line chart of \(yLabel) against \(xLabel), \(series.count) series")
    }
}
