import EngramTensor
import EngramNN
import EngramData
import EngramCL
import Foundation

/// A matrix of values drawn as coloured cells with the value printed in each, row and column
/// labels, axis titles and a colour-scale legend; renders as an inline `<svg>` string.
public struct Heatmap: Sendable, Equatable {
    /// Shown above the chart (and as the SVG's accessible title).
    public var title: String
    /// One label per row, top to bottom.
    public var rowLabels: [String]
    /// One label per column, left to right.
    public var columnLabels: [String]
    /// `values[row][column]`; `nil` cells are drawn grey with a dash.
    public var values: [[Double?]]
    /// The values mapped to the ends of the colour scale (values outside are clamped).
    public var range: ClosedRange<Double>
    /// How values are printed in the cells and on the legend.
    public var format: ValueFormat
    /// Title of the vertical axis (rows), e.g. "after training task".
    public var rowAxisTitle: String
    /// Title of the horizontal axis (columns), e.g. "accuracy on task".
    public var columnAxisTitle: String
    /// Title of the colour legend, e.g. "accuracy (%)".
    public var legendTitle: String

    /// A heatmap; `values` must have `rowLabels.count` rows of `columnLabels.count` entries.
    public init(title: String, rowLabels: [String], columnLabels: [String], values: [[Double?]],
                range: ClosedRange<Double> = 0...1, format: ValueFormat = .percent(decimals: 1),
                rowAxisTitle: String = "", columnAxisTitle: String = "", legendTitle: String = "") {
        self.title = title
        self.rowLabels = rowLabels
        self.columnLabels = columnLabels
        self.values = values
        self.range = range
        self.format = format
        self.rowAxisTitle = rowAxisTitle
        self.columnAxisTitle = columnAxisTitle
        self.legendTitle = legendTitle
    }

    /// The chart as a standalone `<svg>` element.
    public func svg() -> String {
        let rows = values.count
        let columns = max(columnLabels.count, values.map(\.count).max() ?? 0)
        let longestCell = (values.flatMap { $0 }.compactMap { $0 }.map { format.string($0) } + ["100.0"])
            .map { estimatedTextWidth($0, size: 12) }.max() ?? 40
        let cellWidth = max(52, min(90, longestCell + 16))
        let cellHeight = rows > 12 ? 24.0 : 34.0
        let cellFont = rows > 12 ? 10.0 : 12.0
        let rowLabelWidth = (rowLabels.map { estimatedTextWidth($0, size: 12) }.max() ?? 0) + 10
        let left = 10 + (rowAxisTitle.isEmpty ? 0 : 22) + rowLabelWidth
        let top = 30.0 + 22
        let gridWidth = cellWidth * Double(columns)
        let gridHeight = cellHeight * Double(rows)
        let legendX = left + gridWidth + 24
        let legendBarWidth = 14.0
        let legendLabels = tidyTickLabels(legendTicks().map { format.string($0) })
        let legendWidth = legendBarWidth + 8 + (legendLabels.map { estimatedTextWidth($0, size: 11) }.max() ?? 20)
        let legendTitleWidth = estimatedTextWidth(legendTitle, size: 11)
        let width = max(legendX + max(legendWidth, legendTitleWidth) + 16, estimatedTextWidth(title, size: 15) + 20)
        let bottom = columnAxisTitle.isEmpty ? 10.0 : 34
        let height = top + max(gridHeight, 120) + bottom + 4

        var c = SVGCanvas(width: width, height: height)
        c.text(title, x: 10, y: 20, size: 15, weight: "bold")
        // Column labels above the grid.
        for j in 0..<columns {
            let label = j < columnLabels.count ? columnLabels[j] : ""
            c.text(label, x: left + (Double(j) + 0.5) * cellWidth, y: top - 8, anchor: .middle, size: 12)
        }
        // Rows.
        for i in 0..<rows {
            let y = top + Double(i) * cellHeight
            c.text(i < rowLabels.count ? rowLabels[i] : "", x: left - 8, y: y + cellHeight / 2, anchor: .end, size: 12, baseline: "central")
            for j in 0..<columns {
                let x = left + Double(j) * cellWidth
                let value = j < values[i].count ? values[i][j] : nil
                let rowName = i < rowLabels.count ? rowLabels[i] : "row \(i)"
                let columnName = j < columnLabels.count ? columnLabels[j] : "column \(j)"
                if let value {
                    let (fill, dark) = ChartColors.sequential(normalized(value))
                    c.rect(x: x, y: y, width: cellWidth, height: cellHeight, fill: fill, stroke: "#ffffff", strokeWidth: 1,
                           tooltip: "\(rowName), \(columnName): \(format.string(value))")
                    c.text(format.string(value), x: x + cellWidth / 2, y: y + cellHeight / 2, anchor: .middle, size: cellFont,
                           fill: dark ? "#111111" : "#ffffff", baseline: "central")
                } else {
                    c.rect(x: x, y: y, width: cellWidth, height: cellHeight, fill: "#eeeeee", stroke: "#ffffff", strokeWidth: 1,
                           tooltip: "\(rowName), \(columnName): not measured")
                    c.text("–", x: x + cellWidth / 2, y: y + cellHeight / 2, anchor: .middle, size: cellFont, fill: "#888888", baseline: "central")
                }
            }
        }
        if !rowAxisTitle.isEmpty {
            let cy = top + gridHeight / 2
            c.text(rowAxisTitle, x: 18, y: cy, anchor: .middle, size: 12, fill: "#555555", rotate: -90)
        }
        if !columnAxisTitle.isEmpty {
            c.text(columnAxisTitle, x: left + gridWidth / 2, y: top + max(gridHeight, 0) + 22, anchor: .middle, size: 12, fill: "#555555")
        }
        // Colour legend: a stack of thin bands (no gradient ids, so several heatmaps can share a page).
        let legendHeight = max(gridHeight, 120)
        if !legendTitle.isEmpty { c.text(legendTitle, x: legendX, y: top - 8, size: 11, fill: "#555555") }
        let bands = 40
        for k in 0..<bands {
            let t = 1 - (Double(k) + 0.5) / Double(bands)
            c.rect(x: legendX, y: top + Double(k) * legendHeight / Double(bands), width: legendBarWidth,
                   height: legendHeight / Double(bands) + 0.5, fill: ChartColors.sequential(t).fill)
        }
        c.rect(x: legendX, y: top, width: legendBarWidth, height: legendHeight, fill: "none", stroke: "#888888", strokeWidth: 0.5)
        for (tick, label) in zip(legendTicks(), legendLabels) {
            let y = top + (1 - normalized(tick)) * legendHeight
            c.line(x1: legendX + legendBarWidth, y1: y, x2: legendX + legendBarWidth + 4, y2: y, stroke: "#555555")
            c.text(label, x: legendX + legendBarWidth + 7, y: y, size: 11, fill: "#333333", baseline: "central")
        }
        return c.render(title: title, description: "Heatmap with \(rows) rows and \(columns) columns")
    }

    private func normalized(_ v: Double) -> Double {
        let span = range.upperBound - range.lowerBound
        return span > 0 ? (v - range.lowerBound) / span : 0.5
    }

    private func legendTicks() -> [Double] {
        AxisLayout.fitting([], scale: .linear, fixed: range, targetTicks: 4).ticks
    }
}
