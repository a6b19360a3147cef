import EngramTensor
import EngramNN
import EngramData
import EngramCL
import EngramReport
import Foundation
import Testing

@Suite struct TextSensitivityChartTests {
    /// A summary row as `summary.json` holds it.
    func row(_ strategy: String, _ parameters: [String: Any], accuracy: Double) throws -> SummaryRow {
        let object: [String: Any] = ["group": strategy, "strategy": strategy, "parameters": parameters, "seeds": [0],
                                     "acc": ["mean": accuracy, "count": 1], "forgetting": ["mean": 0.1, "count": 1]]
        return try JSONDecoder().decode(SummaryRow.self, from: JSONSerialization.data(withJSONObject: object))
    }

    @Test("rows of several grids, each with its own parameter, chart each parameter over its own rows only")
    func gridsWithDifferentParametersAreCharted() throws {
        let rows = [try row("ewc", ["hyperparameters.ewc.lambda": 1, "scenario": "task"], accuracy: 0.9),
                    try row("ewc", ["hyperparameters.ewc.lambda": 10, "scenario": "task"], accuracy: 0.8),
                    try row("si", ["hyperparameters.si.c": 0.1, "scenario": "task"], accuracy: 0.7),
                    try row("si", ["hyperparameters.si.c": 1, "scenario": "task"], accuracy: 0.6)]
        let text = TextSensitivityChart(rows: rows).render()
        #expect(text.contains("sensitivity to hyperparameters.ewc.lambda") && text.contains("sensitivity to hyperparameters.si.c"))
        #expect(text.contains("lambda=10") && text.contains("c=0.1"))
        #expect(!text.contains("si scenario=task\n    lambda"), "si's rows have no λ")
    }
}
