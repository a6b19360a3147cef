import EngramCL
import Foundation
import Plot

/// The mode-connectivity picture of an ``Interpolation``: loss and accuracy of each task along the line between two
/// checkpoints, as two inline-SVG charts and a table — on its own page (`engram analyze interpolate`) and in the run
/// report of the run whose `analysis/` folder holds it.
public struct InterpolationReport: Sendable {
    public var interpolation: Interpolation

    public init(_ interpolation: Interpolation) { self.interpolation = interpolation }

    /// Interpolations written by `engram analyze interpolate` into `directory/analysis/` (`interpolate-*.json`), by name.
    public static func load(fromRunIn directory: URL) -> [Interpolation] {
        let folder = directory.appendingPathComponent("analysis")
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [])
            .filter { $0.hasPrefix("interpolate-") && $0.hasSuffix(".json") }.sorted()
        return names.compactMap { name in
            (try? Data(contentsOf: folder.appendingPathComponent(name))).flatMap { try? JSONDecoder().decode(Interpolation.self, from: $0) }
        }
    }

    func chart(loss: Bool) -> LineChart {
        let i = interpolation
        let series = i.tasks.indices.map { j in
            LineChart.Series(name: "task \(i.tasks[j])", points: i.alphas.indices.map { k in
                LineChart.Point(x: i.alphas[k], y: loss ? i.loss[k][j] : i.accuracy[k][j])
            }, color: ChartColors.series(j))
        }
        return LineChart(title: loss ? "Loss along the line" : "Accuracy along the line", xLabel: "α  (θ = (1 − α)θ_A + αθ_B)",
                         yLabel: loss ? "\(i.split) loss (cross-entropy)" : "\(i.split) accuracy (%)", series: series,
                         yRange: loss ? nil : 0...1, yFormat: loss ? .compact : .percent(decimals: 0), xFormat: .fixed(decimals: 1))
    }

    /// The charts, their caption and the table.
    public func nodes() -> [Node<HTML.BodyContext>] {
        let i = interpolation
        let caption = "A = \(i.from), B = \(i.to). α = 0 is A's model and α = 1 B's, exactly."
        return [
            .div(.class("charts"), ReportPage.figure(svg: chart(loss: true).svg(), caption: caption),
                 ReportPage.figure(svg: chart(loss: false).svg())),
            ReportPage.table(header: ["α"] + i.tasks.flatMap { ["task \($0) loss", "task \($0) accuracy"] },
                             rows: i.alphas.indices.map { k in
                                 [String(format: "%.2f", i.alphas[k])] + i.tasks.indices.flatMap { j in
                                     [String(format: "%.4f", i.loss[k][j]), NumberFormat.percent(i.accuracy[k][j], decimals: 2)]
                                 }
                             }, numericColumns: Set(0...(2 * i.tasks.count))),
        ]
    }

    /// The page `engram analyze interpolate` writes.
    public func html() -> String {
        ReportPage.document(title: "Engram: linear interpolation between two checkpoints",
                            body: [.h1("Linear interpolation between two checkpoints")] + nodes())
    }

    public func write(to url: URL) throws { try ReportPage.write(html(), to: url) }
}
