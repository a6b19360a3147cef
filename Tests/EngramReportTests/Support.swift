import EngramTensor
import EngramNN
import EngramData
import EngramReport
import EngramCL
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

/// Builds `RunResults` the way `results.json` holds them (the type has no public memberwise initializer).
func makeResults(strategy: String = "mas", seed: UInt64 = 0, lambda: Float? = nil, rows: [[Double]],
                 baseline: [Double]? = nil, seconds: [Double]? = nil, memory: [Int]? = nil,
                 benchmark: String = "permuted-mnist") throws -> RunResults {
    var configuration = ExperimentConfiguration()
    configuration.strategy = strategy
    configuration.training.seed = seed
    configuration.hyperparameters[shared: "lambda"] = lambda.map { .double(Double($0)) }
    configuration.tasks = rows.count
    configuration.benchmark = benchmark
    let configurationObject = try JSONSerialization.jsonObject(with: JSONEncoder().encode(configuration))
    var matrix: [String: Any] = ["taskCount": rows.count, "values": rows]
    if let baseline { matrix["randomBaseline"] = baseline }
    let object: [String: Any] = [
        "benchmark": benchmark, "scenario": "domain-il", "strategy": strategy, "seed": seed,
        "matrix": matrix, "metrics": [String: Any](),
        "seconds_per_task": seconds ?? rows.indices.map { 10 + Double($0) },
        "strategy_memory_bytes": memory ?? rows.indices.map { $0 * 1_000_000 },
        "parameter_count": 478_410, "configuration": configurationObject,
    ]
    var results = try JSONDecoder().decode(RunResults.self, from: JSONSerialization.data(withJSONObject: object))
    results.metrics = results.matrix.metrics
    return results
}

/// A 3-task matrix whose final row gives ACC = `final`.
func rows(final: Double) -> [[Double]] {
    [[0.98, 0.12, 0.10], [0.90, 0.97, 0.11], [final, final, final]]
}

/// Whether `text` parses as XML, and the concatenated character data.
func parseXML(_ text: String) -> (ok: Bool, characters: String, error: String?) {
    final class Collector: NSObject, XMLParserDelegate {
        var characters = ""
        func parser(_ parser: XMLParser, foundCharacters string: String) { characters += string }
    }
    let parser = XMLParser(data: Data(text.utf8))
    let collector = Collector()
    parser.delegate = collector
    let ok = parser.parse()
    return (ok, collector.characters, parser.parserError.map { "\($0)" })
}

/// Number of occurrences of `needle` in `haystack`.
func occurrences(of needle: String, in haystack: String) -> Int {
    haystack.components(separatedBy: needle).count - 1
}
