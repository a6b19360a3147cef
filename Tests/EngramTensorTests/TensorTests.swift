import Testing
import EngramTensor

@Suite struct TensorCreationTests {
    @Test("zeros, ones, full and arange fill the requested shapes")
    func creation() {
        #expect(Tensor.zeros([2, 3]).scalars == [0, 0, 0, 0, 0, 0] && Tensor.zeros([2, 3]).shape == [2, 3])
        #expect(Tensor.ones([2]).scalars == [1, 1])
        #expect(Tensor.full([1, 2], 7).scalars == [7, 7])
        #expect(Tensor.arange(0, 5).scalars == [0, 1, 2, 3, 4])
        #expect(Tensor.arange(1, 2, step: 0.25).scalars == [1, 1.25, 1.5, 1.75])
        #expect(Tensor.arange(3, 0, step: -1).scalars == [3, 2, 1])
        let s = Tensor(2.5)
        #expect(s.shape == [] && s.rank == 0 && s.item == 2.5 && s.count == 1)
        #expect(Tensor([1, 2, 3]).shape == [3])
    }

    @Test("assign copies values, detached() cuts the graph, and a reshape shares values until written")
    func valueSemantics() {
        let a = Tensor([1, 2, 3, 4], requiresGrad: true)
        let r = a.reshaped([2, 2])
        a.scalars[0] = 10
        #expect(r.scalars == [1, 2, 3, 4] && a.scalars[0] == 10)
        let b = Tensor.zeros([4])
        b.assign(a)
        #expect(b.scalars == a.scalars && !b.requiresGrad)
        let d = (a * 2).detached()
        #expect(d.isLeaf && !d.requiresGrad && d.scalars == [20, 4, 6, 8])
        #expect(a.isLeaf && !(a * 2).isLeaf)
    }

    @Test("seeded normal and uniform tensors are reproducible")
    func seeded() {
        var g1 = RandomGenerator(seed: 3), g2 = RandomGenerator(seed: 3)
        #expect(Tensor.normal([10], using: &g1).scalars == Tensor.normal([10], using: &g2).scalars)
        let n = Tensor.normal([4000], mean: 2, std: 0.5, using: &g1).scalars
        let mean = n.reduce(0, +) / 4000
        #expect(Swift.abs(mean - 2) < 0.05)
        #expect(Tensor.uniform([3], using: &g1, requiresGrad: true).requiresGrad)
    }
}
