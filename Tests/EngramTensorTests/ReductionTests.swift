import Testing
import EngramTensor

@Suite struct ReductionTests {
    let m = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])

    @Test("sum and mean over axes give the hand-computed values and shapes")
    func sumAndMeanValues() {
        #expect(m.sum().shape == [] && m.sum().item == 21)
        #expect(m.sum(axis: 0).shape == [3] && m.sum(axis: 0).scalars == [5, 7, 9])
        #expect(m.sum(axis: 1).scalars == [6, 15])
        #expect(m.sum(axis: -1, keepingDims: true).shape == [2, 1])
        #expect(m.sum(axes: [0, 1], keepingDims: true).shape == [1, 1])
        #expect(m.mean(axis: 0).scalars == [2.5, 3.5, 4.5])
        #expect(m.mean(axis: 1, keepingDims: true).shape == [2, 1] && m.mean(axis: 1).scalars == [2, 5])
        #expect(m.mean().item == 3.5)
        let t = Tensor(shape: [2, 2, 2], scalars: [1, 2, 3, 4, 5, 6, 7, 8])
        #expect(t.sum(axes: [0, 2]).scalars == [14, 22])  // 1+2+5+6, 3+4+7+8
        #expect(t.sum(axes: [0, 2], keepingDims: true).shape == [1, 2, 1])
    }

    @Test("variance is the biased mean square deviation, or divides by n − 1 when unbiased")
    func varianceValues() {
        let v = Tensor([1, 2, 3, 4])
        expectClose([v.variance().item], [1.25], rtol: 1e-6)
        expectClose([v.variance(unbiased: true).item], [5.0 / 3.0], rtol: 1e-6)
        expectClose(m.variance(axes: [1]).scalars, [2.0 / 3.0, 2.0 / 3.0], rtol: 1e-6)
        #expect(m.variance(axes: [0], keepingDims: true).shape == [1, 3])
        expectClose(m.variance(axes: [0], unbiased: true).scalars, [4.5, 4.5, 4.5], rtol: 1e-6)
    }

    @Test("max and argmax pick the largest entry along an axis, the first on ties")
    func maxValues() {
        let t = Tensor(shape: [2, 3], scalars: [1, 7, 7, -2, -5, -1])
        #expect(t.max(axis: 1).scalars == [7, -1])
        #expect(t.max(axis: 0).scalars == [1, 7, 7])
        #expect(t.max(axis: 0, keepingDims: true).shape == [1, 3])
        #expect(t.argmax(axis: 1) == [1, 2])
        #expect(t.argmax(axis: 0) == [0, 0, 0])
        #expect(t.max().item == 7 && t.max().shape == [])
        let u = Tensor(shape: [2, 3, 2], scalars: [0, 9, 8, 1, 2, 3, 4, 4, 5, 6, 7, -1])
        #expect(u.argmax(axis: 1) == [1, 0, 2, 1])
        #expect(u.argmax(axis: 2) == [1, 0, 1, 0, 1, 0])
        // The gradient of a tie goes to the first maximum only.
        let x = Tensor([3, 5, 5, 1], requiresGrad: true)
        #expect(x.max(axis: 0).gradients(withRespectTo: [x])[0].scalars == [0, 1, 0, 0])
    }

    @Test("sum's gradient matches central differences over every axis choice, keeping dims or not",
          arguments: [[0], [1], [2], [-1], [0, 2], [0, 1, 2]], [false, true])
    func sumGradients(axes: [Int], keep: Bool) {
        let x = randomTensor([2, 3, 4], seed: 21)
        checkGradients(wrt: [x]) { x.sum(axes: axes, keepingDims: keep) }
    }

    @Test("mean's gradient matches central differences over every axis choice, keeping dims or not",
          arguments: [[0], [1], [2], [1, 2]], [false, true])
    func meanGradients(axes: [Int], keep: Bool) {
        let x = randomTensor([2, 3, 4], seed: 22)
        checkGradients(wrt: [x]) { x.mean(axes: axes, keepingDims: keep) }
    }

    @Test("sum and mean of all elements have matching gradients")
    func totalReductions() {
        let x = randomTensor([3, 4], seed: 23)
        checkGradients(wrt: [x]) { x.sum() }
        checkGradients(wrt: [x]) { x.mean() }
    }

    @Test("max(axis:)'s gradient matches central differences without ties",
          arguments: [0, 1, 2], [false, true])
    func maxGradients(axis: Int, keep: Bool) {
        let x = distinctTensor([2, 3, 4], seed: 24)
        checkGradients(wrt: [x]) { x.max(axis: axis, keepingDims: keep) }
    }

    @Test("variance's gradient matches central differences, biased and unbiased",
          arguments: [[0], [1], [1, 2], [0, 1, 2]], [false, true])
    func varianceGradients(axes: [Int], unbiased: Bool) {
        let x = randomTensor([3, 3, 4], seed: 25)
        checkGradients(wrt: [x]) { x.variance(axes: axes, keepingDims: unbiased, unbiased: unbiased) }
    }
}
