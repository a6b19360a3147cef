import EngramTensor
import Testing
import EngramNN

@Suite struct DeterminismTests {
    /// 20 SGD steps of an MLP with dropout on seeded data; returns every parameter's bits.
    func run(seed: UInt64) -> [[UInt32]] {
        var rng = RandomGenerator(seed: seed, label: "model")
        let model = Models.mlp(input: 6, hidden: [16, 16], classes: 3, dropout: 0.3, using: &rng)
        var dataRNG = RandomGenerator(seed: seed, label: "data")
        let x = Tensor.normal([32, 6], using: &dataRNG)
        let y = (0..<32).map { _ in dataRNG.nextInt(below: 3) }
        let optimizer = SGD(model.namedParameters(), learningRate: 0.05, momentum: 0.9)
        for step in 0..<20 {
            let batch = Array((step % 4 * 8)..<(step % 4 * 8 + 8))
            optimizer.zeroGrad()
            Losses.crossEntropy(model(x.indexSelect(batch)), targets: batch.map { y[$0] }).backward()
            optimizer.step()
        }
        return model.namedParameters().map { $0.1.scalars.map(\.bitPattern) }
    }

    @Test("the same seed gives bit-identical parameters after 20 SGD steps of an MLP with dropout")
    func sameSeed() {
        let a = run(seed: 600), b = run(seed: 600)
        #expect(a == b)
        #expect(a != run(seed: 601))
    }

    @Test("dropout masks depend on the model seed and each Dropout layer gets its own stream")
    func dropoutStreams() {
        var rng1 = RandomGenerator(seed: 602), rng2 = RandomGenerator(seed: 602)
        let m1 = Models.mlp(input: 4, hidden: [8, 8], classes: 2, dropout: 0.5, using: &rng1)
        let m2 = Models.mlp(input: 4, hidden: [8, 8], classes: 2, dropout: 0.5, using: &rng2)
        let drop1 = m1.namedModules().compactMap { $0.1 as? Dropout }
        let drop2 = m2.namedModules().compactMap { $0.1 as? Dropout }
        #expect(drop1.count == 2)
        #expect(drop1.map(\.generator) == drop2.map(\.generator))
        #expect(drop1[0].generator != drop1[1].generator)
        let x = Tensor.ones([4, 4])
        #expect(m1(x).scalars == m2(x).scalars)
    }
}
