import EngramTensor
import EngramNN
import EngramData
import EngramCL
import EngramReport
import Foundation
import Testing

@Suite struct XMLEscapingTests {
    @Test func markupCharactersBecomeEntities() {
        #expect(XMLEscaping.escape("a<b & \"c\" 'd'>") == "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;")
    }

    @Test func controlCharactersThatXMLForbidsAreDropped() {
        #expect(XMLEscaping.escape("x\u{1}y\tz") == "xy\tz")
    }
}

@Suite struct NumberFormatTests {
    @Test func negativeZeroPrintsAsZero() {
        #expect(NumberFormat.fixed(-0.0001, decimals: 2) == "0.00")
    }

    @Test func compactNumbersKeepThreeSignificantDigits() {
        #expect(NumberFormat.compact(100) == "100")
        #expect(NumberFormat.compact(0.1) == "0.1")
        #expect(NumberFormat.compact(2.5) == "2.5")
        #expect(NumberFormat.compact(0.0001) == "1e-4")
    }

    @Test func bytesUseBinaryUnits() {
        #expect(NumberFormat.bytes(512) == "512 B")
        #expect(NumberFormat.bytes(1536) == "1.50 KiB")
        #expect(NumberFormat.bytes(3 * 1024 * 1024) == "3.00 MiB")
    }
}

@Suite struct HeatmapTests {
    let heatmap = Heatmap(title: "R", rowLabels: ["after task 1", "after task 2"], columnLabels: ["task 1", "task 2"],
                          values: [[0.853, nil], [0.5, 0.999]], legendTitle: "accuracy (%)")

    @Test func svgIsWellFormedXML() {
        let parsed = parseXML(heatmap.svg())
        #expect(parsed.ok, "\(parsed.error ?? "")")
    }

    @Test func everyCellShowsItsValueAndMissingCellsADash() {
        let svg = heatmap.svg()
        for text in [">85.3<", ">50.0<", ">99.9<", ">–<", "after task 2", "task 1"] { #expect(svg.contains(text), "\(text)") }
    }

    @Test func theColourLegendHasTicksAcrossTheRange() {
        let svg = heatmap.svg()
        for tick in [">0<", ">25<", ">100<", "accuracy (%)"] { #expect(svg.contains(tick), "\(tick)") }
    }

    @Test func titlesAndLabelsAreEscaped() {
        var h = heatmap
        h.title = "<R & \"S\">"
        h.rowLabels = ["a<b", "c&d"]
        let svg = h.svg()
        #expect(!svg.contains("<R &"))
        #expect(svg.contains("&lt;R &amp; &quot;S&quot;&gt;"))
        let parsed = parseXML(svg)
        #expect(parsed.ok)
        #expect(parsed.characters.contains("<R & \"S\">"))
        #expect(parsed.characters.contains("c&d"))
    }

    @Test func theSameInputGivesTheSameBytes() {
        let copy = Heatmap(title: "R", rowLabels: ["after task 1", "after task 2"], columnLabels: ["task 1", "task 2"],
                           values: [[0.853, nil], [0.5, 0.999]], legendTitle: "accuracy (%)")
        #expect(heatmap.svg() == copy.svg())
    }

    @Test func darkCellsGetLightTextAndLightCellsDarkText() {
        #expect(!ChartColors.sequential(0).darkText)
        #expect(ChartColors.sequential(1).darkText)
    }
}

@Suite struct LineChartTests {
    let chart = LineChart(title: "ACC vs λ", xLabel: "λ", yLabel: "ACC (%)", series: [
        .init(name: "mas", points: [.init(x: 0.1, y: 0.5, error: 0.02), .init(x: 1, y: 0.7), .init(x: 100, y: 0.6)]),
        .init(name: "ewc <online>", points: [.init(x: 0.1, y: 0.4), .init(x: 100, y: 0.65)], dashed: true),
    ], xScale: .logarithmic, yRange: 0...1, yFormat: .percent(decimals: 0))

    @Test func svgIsWellFormedXML() {
        let parsed = parseXML(chart.svg())
        #expect(parsed.ok, "\(parsed.error ?? "")")
    }

    @Test func aLogarithmicAxisTicksAtPowersOfTen() {
        let svg = chart.svg()
        for tick in [">0.1<", ">1<", ">10<", ">100<"] { #expect(svg.contains(tick), "\(tick)") }
    }

    @Test func theLegendNamesEverySeriesEscaped() {
        let svg = chart.svg()
        #expect(svg.contains(">mas<"))
        #expect(svg.contains("ewc &lt;online&gt;"))
        #expect(occurrences(of: "<polyline", in: svg) == 2)
    }

    @Test func errorBarsAreDrawnAndListedInTooltips() {
        #expect(chart.svg().contains("± 2"))
    }

    @Test func explicitTicksLabelCategoricalStages() {
        let c = LineChart(title: "t", xLabel: "after task", yLabel: "acc", series: [.init(name: "s", points: [.init(x: 1, y: 0.2), .init(x: 2, y: 0.3)])],
                          xTicks: [.init(value: 1, label: "T1"), .init(value: 2, label: "T2")])
        #expect(c.svg().contains(">T1<") && c.svg().contains(">T2<"))
        #expect(parseXML(c.svg()).ok)
    }

    @Test func theSameInputGivesTheSameBytes() {
        #expect(chart.svg() == chart.svg())
    }
}

@Suite struct BarChartTests {
    let chart = BarChart(title: "ACC per method", categories: ["mas", "ewc & co"], series: [
        .init(name: "ACC", values: [0.9, 0.8], errors: [0.01, nil]),
        .init(name: "forgetting", values: [0.05, nil], errors: [0.005, nil]),
    ], format: .percent(decimals: 1))

    @Test func svgIsWellFormedXML() {
        let parsed = parseXML(chart.svg())
        #expect(parsed.ok, "\(parsed.error ?? "")")
    }

    @Test func valuesAndErrorsAppear() {
        let svg = chart.svg()
        for text in [">90.0<", ">80.0<", ">5.0<", "90.0 ± 1.0", "ewc &amp; co"] { #expect(svg.contains(text), "\(text)") }
    }

    @Test func missingValuesDrawNoBar() {
        // Three bars plus the legend's two swatches.
        #expect(occurrences(of: "<rect x=", in: chart.svg()) == 5)
    }

    @Test func errorBarsHaveAStemAndTwoCaps() {
        let plain = BarChart(title: "t", categories: ["a"], series: [.init(name: "s", values: [1])])
        let withError = BarChart(title: "t", categories: ["a"], series: [.init(name: "s", values: [1], errors: [0.2])])
        #expect(occurrences(of: "<line", in: withError.svg()) - occurrences(of: "<line", in: plain.svg()) == 3)
    }

    @Test func negativeValuesHangBelowZero() {
        let c = BarChart(title: "BWT", categories: ["a"], series: [.init(name: "BWT", values: [-0.2])], format: .percent(decimals: 0))
        #expect(c.svg().contains(">-20<"))
        #expect(parseXML(c.svg()).ok)
    }

    @Test func theSameInputGivesTheSameBytes() {
        #expect(chart.svg() == chart.svg())
    }
}
