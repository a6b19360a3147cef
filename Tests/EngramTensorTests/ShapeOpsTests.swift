import Testing
import EngramTensor

@Suite struct ShapeOperationTests {
    @Test("reshaped infers one −1 extent and keeps the row-major values")
    func reshapeInference() {
        let x = Tensor.arange(0, 24).reshaped([2, 3, 4])
        #expect(x.shape == [2, 3, 4])
        #expect(x.reshaped([4, -1]).shape == [4, 6])
        #expect(x.reshaped([-1]).shape == [24])
        #expect(x.reshaped([-1, 2, 3]).shape == [4, 2, 3])
        #expect(x.flattened().shape == [2, 12])
        #expect(x.reshaped([4, -1]).scalars == x.scalars)
    }

    @Test("reshaped's and flattened's gradients match central differences")
    func reshapeGradients() {
        let x = randomTensor([2, 3, 4], seed: 31)
        checkGradients(wrt: [x]) { x.reshaped([4, -1]) * x.reshaped([4, 6]).exp() }
        checkGradients(wrt: [x]) { x.flattened().tanh() }
    }

    @Test("permuted puts input axis axes[i] at result axis i",
          arguments: [[2, 0, 1], [1, 0, 2], [0, 2, 1]])
    func permute3DValues(axes: [Int]) {
        let shape = [2, 3, 4]
        let x = Tensor.arange(0, 24).reshaped(shape)
        let y = x.permuted(axes)
        #expect(y.shape == axes.map { shape[$0] })
        for flat in 0..<24 {
            let out = multiIndex(flat, y.shape)
            var input = [Int](repeating: 0, count: 3)
            for (i, a) in axes.enumerated() { input[a] = out[i] }
            #expect(y.scalars[flat] == Float((input[0] * 3 + input[1]) * 4 + input[2]))
        }
    }

    @Test("permuted's gradient matches central differences in 3-D and 4-D",
          arguments: [[2, 0, 1], [1, 2, 0], [0, 2, 3, 1], [3, 1, 0, 2], [0, 1, 3, 2]])
    func permuteGradients(axes: [Int]) {
        let x = randomTensor(axes.count == 3 ? [2, 3, 4] : [2, 3, 2, 4], seed: 32)
        checkGradients(wrt: [x]) { x.permuted(axes) }
    }

    @Test("a 4-D permutation followed by its inverse is the identity")
    func permuteRoundTrip() {
        let x = randomTensor([2, 3, 2, 4], seed: 33, requiresGrad: false)
        let y = x.permuted([3, 1, 0, 2])
        #expect(y.shape == [4, 3, 2, 2])
        #expect(y.permuted([2, 1, 3, 0]).scalars == x.scalars)
    }

    @Test("transposed swaps the last two axes and its gradient matches central differences")
    func transpose() {
        let m = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        #expect(m.transposed().shape == [3, 2] && m.transposed().scalars == [1, 4, 2, 5, 3, 6])
        let big = Tensor.arange(0, 40 * 33).reshaped([40, 33])
        let bt = big.transposed()
        #expect(bt.scalars[5 * 40 + 37] == big.scalars[37 * 33 + 5])
        let x = randomTensor([3, 5], seed: 34)
        checkGradients(wrt: [x]) { x.transposed() }
        let x3 = randomTensor([2, 3, 4], seed: 35)
        #expect(x3.transposed().shape == [2, 4, 3])
        checkGradients(wrt: [x3]) { x3.transposed() }
    }

    @Test("indexSelect picks rows in order and scatters the gradient back, adding repeated rows")
    func indexSelect() {
        let x = Tensor(shape: [4, 2], scalars: [0, 1, 10, 11, 20, 21, 30, 31], requiresGrad: true)
        let picked = x.indexSelect([2, 0, 2, 3, 2])
        #expect(picked.shape == [5, 2])
        #expect(picked.scalars == [20, 21, 0, 1, 20, 21, 30, 31, 20, 21])
        let g = picked.sum().gradients(withRespectTo: [x])[0]
        #expect(g.scalars == [1, 1, 0, 0, 3, 3, 1, 1])
        let y = randomTensor([4, 3, 2], seed: 36)
        checkGradients(wrt: [y]) { y.indexSelect([2, 0, 2, 3, 2, 2]) }
        let v = randomTensor([5], seed: 37)
        checkGradients(wrt: [v]) { v.indexSelect([4, 4, 1]) }
    }

    @Test("slice takes a range along an axis and its gradient matches central differences",
          arguments: [0, 1, 2, -1])
    func slice(axis: Int) {
        let x = randomTensor([3, 4, 5], seed: 38)
        let y = x.slice(axis: axis, 1..<3)
        var expectedShape = [3, 4, 5]
        expectedShape[axis < 0 ? axis + 3 : axis] = 2
        #expect(y.shape == expectedShape)
        checkGradients(wrt: [x]) { x.slice(axis: axis, 1..<3) }
        let t = Tensor.arange(0, 12).reshaped([3, 4])
        #expect(t.slice(axis: 1, 1..<3).scalars == [1, 2, 5, 6, 9, 10])
        #expect(t.slice(axis: 0, 2..<3).scalars == [8, 9, 10, 11])
    }

    @Test("concatenate joins along an axis and splits the gradient back", arguments: [0, 1, 2])
    func concatenate(axis: Int) {
        var shapes = [[2, 3, 2], [2, 3, 2], [2, 3, 2]]
        for (k, extent) in [1, 2, 3].enumerated() { shapes[k][axis] = extent }
        let parts = shapes.enumerated().map { randomTensor($0.element, seed: 40 + UInt64($0.offset)) }
        let y = Tensor.concatenate(parts, axis: axis)
        var expected = [2, 3, 2]
        expected[axis] = 6
        #expect(y.shape == expected)
        checkGradients(wrt: parts) { Tensor.concatenate(parts, axis: axis) }
        let a = Tensor(shape: [2, 1], scalars: [1, 2]), b = Tensor(shape: [2, 2], scalars: [3, 4, 5, 6])
        #expect(Tensor.concatenate([a, b], axis: 1).scalars == [1, 3, 4, 2, 5, 6])
        #expect(Tensor.concatenate([b, b], axis: 0).scalars == [3, 4, 5, 6, 3, 4, 5, 6])
    }

    @Test("subsampled2d keeps every s-th pixel from the first (x[:, :, ::s, ::s]), odd sizes rounding up")
    func subsampleValues() {
        let x = Tensor.arange(0, 2 * 5 * 4).reshaped([1, 2, 5, 4])
        let y = x.subsampled2d(stride: 2)
        #expect(y.shape == [1, 2, 3, 2])
        // plane 0: rows 0, 2, 4 × columns 0, 2 of 0..<20; plane 1: the same + 20
        #expect(y.scalars == [0, 2, 8, 10, 16, 18, 20, 22, 28, 30, 36, 38])
        #expect(x.subsampled2d(stride: 1) === x)
        #expect(Tensor.zeros([2, 3, 7, 7]).subsampled2d(stride: 3).shape == [2, 3, 3, 3])
    }

    @Test("subsampled2d's gradient matches central differences and is zero on skipped pixels", arguments: [2, 3])
    func subsampleGradients(stride: Int) {
        let x = randomTensor([2, 3, 5, 6], seed: 91)
        checkGradients(wrt: [x]) { x.subsampled2d(stride: stride).tanh() }
        let g = x.subsampled2d(stride: stride).sum().gradients(withRespectTo: [x])[0].scalars
        for (flat, value) in g.enumerated() {
            let (i, j) = ((flat / 6) % 5, flat % 6)
            #expect(value == (i % stride == 0 && j % stride == 0 ? 1 : 0))
        }
    }

    @Test("stack adds a new axis and its gradient matches central differences", arguments: [0, 1, 2])
    func stack(axis: Int) {
        let parts = (0..<3).map { randomTensor([2, 4], seed: 50 + UInt64($0)) }
        let y = Tensor.stack(parts, axis: axis)
        var expected = [2, 4]
        expected.insert(3, at: axis)
        #expect(y.shape == expected)
        checkGradients(wrt: parts) { Tensor.stack(parts, axis: axis) }
        let s = Tensor.stack([Tensor([1, 2]), Tensor([3, 4])], axis: 1)
        #expect(s.shape == [2, 2] && s.scalars == [1, 3, 2, 4])
    }
}
