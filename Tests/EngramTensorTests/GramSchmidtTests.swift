import EngramTensor
import Testing

/// Gram–Schmidt twice: orthonormal rows, spanned vectors dropped.
@Suite struct GramSchmidtTests {
    @Test("extending a basis keeps it orthonormal to 1e-5 and drops vectors it already spans")
    func orthonormalAndDropsSpanned() {
        var random = RandomGenerator(seed: 2)
        let d = 200
        let vectors = (0..<50).map { _ in (0..<d).map { _ in random.nextNormal() } }
        var basis: [Float] = []
        #expect(GramSchmidt.extend(&basis, dimension: d, with: vectors) == 50)
        for a in 0..<50 {
            for b in 0..<50 {
                var dot: Float = 0
                for j in 0..<d { dot += basis[a * d + j] * basis[b * d + j] }
                #expect(abs(dot - (a == b ? 1 : 0)) < 1e-5)
            }
        }
        // A combination of stored vectors and a repeat add nothing; a fresh vector adds one row.
        let combination = (0..<d).map { 2 * vectors[0][$0] - vectors[7][$0] }
        #expect(GramSchmidt.extend(&basis, dimension: d, with: [combination, vectors[3]]) == 0)
        #expect(GramSchmidt.extend(&basis, dimension: d, with: [(0..<d).map { _ in random.nextNormal() }]) == 1)
    }
}
