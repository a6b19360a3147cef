import Testing
import EngramTensor

@Suite struct RandomGeneratorTests {
    func draw(_ rng: inout RandomGenerator, _ n: Int) -> [UInt64] { (0..<n).map { _ in rng.next() } }

    @Test("the same seed gives the same stream and different seeds differ")
    func reproducible() {
        var a = RandomGenerator(seed: 42), b = RandomGenerator(seed: 42), c = RandomGenerator(seed: 43)
        let sa = draw(&a, 100)
        #expect(sa == draw(&b, 100))
        #expect(sa != draw(&c, 100))
        #expect(Set(sa).count == 100)
    }

    @Test("seed and label streams are reproducible and differ across labels")
    func labels() {
        var a1 = RandomGenerator(seed: 7, label: "permutation/task 3")
        var a2 = RandomGenerator(seed: 7, label: "permutation/task 3")
        var b = RandomGenerator(seed: 7, label: "permutation/task 4")
        var c = RandomGenerator(seed: 8, label: "permutation/task 3")
        var plain = RandomGenerator(seed: 7)
        let s = draw(&a1, 50)
        #expect(s == draw(&a2, 50))
        #expect(s != draw(&b, 50))
        #expect(s != draw(&c, 50))
        #expect(s != draw(&plain, 50))
        var e1 = RandomGenerator(seed: 7, label: ""), e2 = RandomGenerator(seed: 7, label: "a")
        #expect(draw(&e1, 5) != draw(&e2, 5))
    }

    @Test("derived(_:) does not advance the parent and depends on the label")
    func derived() {
        var parent = RandomGenerator(seed: 1)
        let before = parent
        var d1 = parent.derived("dropout"), d2 = parent.derived("dropout"), d3 = parent.derived("init")
        #expect(parent == before)
        let s = draw(&d1, 10)
        #expect(s == draw(&d2, 10) && s != draw(&d3, 10))
        _ = parent.next()
        var d4 = parent.derived("dropout")
        #expect(draw(&d4, 10) != s)
    }

    @Test("a saved state restores the stream exactly")
    func stateRoundTrip() {
        var rng = RandomGenerator(seed: 99)
        _ = draw(&rng, 17)
        var copy = RandomGenerator(state: rng.state)
        #expect(draw(&rng, 20) == draw(&copy, 20))
    }

    @Test("uniform draws lie in [0, 1) and normal draws have mean ≈ 0 and variance ≈ 1")
    func distributions() {
        var rng = RandomGenerator(seed: 5)
        let n = 20000
        let u = (0..<n).map { _ in rng.nextFloat() }
        #expect(u.allSatisfy { $0 >= 0 && $0 < 1 })
        let uMean = u.map(Double.init).reduce(0, +) / Double(n)
        #expect(Swift.abs(uMean - 0.5) < 0.01)
        let z = (0..<n).map { _ in Double(rng.nextNormal()) }
        let mean = z.reduce(0, +) / Double(n)
        let variance = z.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n)
        #expect(Swift.abs(mean) < 0.03 && Swift.abs(variance - 1) < 0.04)
        let ints = (0..<n).map { _ in rng.nextInt(below: 7) }
        #expect(ints.allSatisfy { (0..<7).contains($0) } && Set(ints).count == 7)
        let t = Tensor.uniform([1000], low: -2, high: 3, using: &rng)
        #expect(t.scalars.allSatisfy { $0 >= -2 && $0 < 3 })
    }

    @Test("distinct indices are distinct, in range, all of them when k ≥ n, and each index equally likely")
    func distinctIndices() {
        var rng = RandomGenerator(seed: 5)
        var hits = [Int](repeating: 0, count: 10)
        for _ in 0..<20_000 {
            let draw = rng.distinctIndices(3, below: 10)
            #expect(draw.count == 3 && Set(draw).count == 3)
            for i in draw { hits[i] += 1 }
        }
        // 6 000 draws of each index expected (3/10 of 20 000); a binomial's sd is ≈ 65.
        #expect(hits.allSatisfy { Swift.abs($0 - 6_000) < 400 }, "\(hits)")
        #expect(rng.distinctIndices(12, below: 5).sorted() == Array(0..<5))
        #expect(rng.distinctIndices(0, below: 5).isEmpty)
    }

    @Test("permutation returns every index exactly once")
    func permutation() {
        var rng = RandomGenerator(seed: 11)
        let p = rng.permutation(50)
        #expect(p.sorted() == Array(0..<50) && p != Array(0..<50))
    }
}
