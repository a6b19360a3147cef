import EngramTensor
import Testing
import EngramNN

/// 200 seeded points of the 4-quadrant XOR problem: class 1 where x·y < 0. Points keep 0.1 away
/// from the axes so the classes are separable with a margin.
func quadrantXOR(seed: UInt64) -> (x: Tensor, y: [Int]) {
    var rng = RandomGenerator(seed: seed, label: "xor")
    var values: [Float] = [], labels: [Int] = []
    for _ in 0..<200 {
        let p = (0..<2).map { _ -> Float in
            let v = 0.1 + 0.9 * rng.nextFloat()
            return rng.nextInt(below: 2) == 0 ? v : -v
        }
        values += p
        labels.append(p[0] * p[1] < 0 ? 1 : 0)
    }
    return (Tensor(shape: [200, 2], scalars: values), labels)
}

func accuracy(_ model: any Module, _ x: Tensor, _ y: [Int]) -> Double {
    model.eval()
    defer { model.train() }
    let predicted = GradMode.withoutGrad { model(x) }.argmax(axis: 1)
    return Double(zip(predicted, y).filter { $0 == $1 }.count) / Double(y.count)
}

@Suite struct TrainingTests {
    func train(_ makeOptimizer: ([(String, Tensor)]) -> any Optimizer, steps: Int, seed: UInt64) -> (before: Double, after: Double, loss: Float) {
        let (x, y) = quadrantXOR(seed: seed)
        #expect(Set(y) == [0, 1] && y.filter { $0 == 1 }.count > 60 && y.filter { $0 == 0 }.count > 60)
        var rng = RandomGenerator(seed: seed, label: "model")
        let model = Models.mlp(input: 2, hidden: [32, 32], classes: 2, using: &rng)
        let optimizer = makeOptimizer(model.namedParameters())
        let before = accuracy(model, x, y)
        var last: Float = .infinity
        for _ in 0..<steps {
            optimizer.zeroGrad()
            let loss = Losses.crossEntropy(model(x), targets: y)
            loss.backward()
            optimizer.step()
            last = loss.item
        }
        return (before, accuracy(model, x, y), last)
    }

    @Test("an MLP learns the 4-quadrant XOR problem to 100 % training accuracy with SGD and momentum")
    func sgdMomentum() {
        let result = train({ SGD($0, learningRate: 0.1, momentum: 0.9) }, steps: 400, seed: 500)
        #expect(result.before < 0.8)
        #expect(result.after == 1.0)
        #expect(result.loss < 0.1)
    }

    @Test("an MLP learns the 4-quadrant XOR problem to 100 % training accuracy with Adam")
    func adam() {
        let result = train({ Adam($0, learningRate: 0.01) }, steps: 400, seed: 501)
        #expect(result.before < 0.8)
        #expect(result.after == 1.0)
        #expect(result.loss < 0.1)
    }

    @Test("plain SGD decreases the training loss on the XOR problem")
    func plainSGD() {
        let (x, y) = quadrantXOR(seed: 502)
        var rng = RandomGenerator(seed: 502, label: "model")
        let model = Models.mlp(input: 2, hidden: [16], classes: 2, using: &rng)
        let optimizer = SGD(model.namedParameters(), learningRate: 0.5)
        let initial = GradMode.withoutGrad { Losses.crossEntropy(model(x), targets: y).item }
        for _ in 0..<100 {
            optimizer.zeroGrad()
            Losses.crossEntropy(model(x), targets: y).backward()
            optimizer.step()
        }
        let final = GradMode.withoutGrad { Losses.crossEntropy(model(x), targets: y).item }
        #expect(final < 0.7 * initial)
    }
}
