import EngramTensor
import Testing
import EngramNN

/// Ownership, pruning, random selection, gradient gating and masked inference on hand-made tensors.
@Suite struct TaskWeightMasksTests {
    /// w = [0.5, −3, 1, −1, 2, 0.1, 4, −2] (8 entries) and a 3-entry bias.
    func parameters() -> [(String, Tensor)] {
        [("w", Tensor(shape: [2, 4], scalars: [0.5, -3, 1, -1, 2, 0.1, 4, -2], requiresGrad: true)),
         ("b", Tensor([1, 2, 3], requiresGrad: true))]
    }

    @Test("new masks leave every entry free; claiming gives the free ones to the task")
    func claimingFreeEntries() {
        var masks = TaskWeightMasks(parameters())
        #expect(masks.freeCount == 11)
        #expect(masks.owner("w", 0) == nil)
        #expect(masks.claimFree("w", task: 0) == 8)
        #expect(masks.count(ownedBy: 0) == 8)
        #expect(masks.freeCount == 3)
        #expect(masks.claimFree("w", task: 1) == 0)
    }

    @Test("magnitude pruning keeps exactly the largest |w| of the task's entries, zeroes and frees the rest")
    func pruningKeepsTheLargest() {
        let ps = parameters(), w = ps[0].1
        var masks = TaskWeightMasks(ps)
        masks.claimFree("w", task: 0)
        let released = masks.pruneByMagnitude("w", parameter: w, task: 0, keepFraction: 0.25)
        #expect(released == 6)
        // Largest |w|: 4 (index 6) and 3 (index 1).
        #expect(w.scalars == [0, -3, 0, 0, 0, 0, 4, 0])
        #expect((0..<8).map { masks.owner("w", $0) } == [nil, 0, nil, nil, nil, nil, 0, nil])
    }

    @Test("pruning touches only the task's own entries and breaks ties in |w| by position")
    func pruningOnlyOwnEntriesWithTies() {
        let w = Tensor([2, -1, 1, -1, 1, 5])
        var masks = TaskWeightMasks([("w", w)])
        masks.setOwner("w", 5, 0)          // an earlier task's weight
        masks.claimFree("w", task: 1)     // [2, −1, 1, −1, 1] → task 1
        // keep round(0.6 · 5) = 3: 2, then the first two of the four |w| = 1 ties (indices 1 and 2).
        masks.pruneByMagnitude("w", parameter: w, task: 1, keepFraction: 0.6)
        #expect(w.scalars == [2, -1, 1, 0, 0, 5])
        #expect((0..<6).map { masks.owner("w", $0) } == [1, 1, 1, nil, nil, 0])
    }

    @Test("usable, trainable, owned and frozen masks follow the owners")
    func masksFollowOwners() {
        var masks = TaskWeightMasks(counts: [("w", 4)])
        masks.setOwner("w", 0, 0); masks.setOwner("w", 1, 1); masks.setOwner("w", 2, 2)
        #expect(masks.usableMask("w", task: 1) == [1, 1, 0, 0])
        #expect(masks.trainableMask("w", task: 1) == [0, 1, 0, 1])
        #expect(masks.ownedMask("w", task: 1) == [0, 1, 0, 0])
        #expect(masks.frozenMask("w", task: 1) == [1, 0, 1, 0])
        #expect(masks.updateMasks(task: 2) == ["w": [0, 0, 1, 1]])
    }

    @Test("random selection takes the rounded fraction of the free entries, the same for the same seed")
    func randomSelection() {
        var masks = TaskWeightMasks(counts: [("w", 100)])
        for i in 0..<20 { masks.setOwner("w", i, 0) }
        var g1 = RandomGenerator(seed: 3), g2 = RandomGenerator(seed: 3)
        let a = masks.randomFreeEntries("w", fraction: 0.25, using: &g1)
        #expect(a == masks.randomFreeEntries("w", fraction: 0.25, using: &g2))
        #expect(a.count == 20)
        #expect(a.allSatisfy { $0 >= 20 } && Set(a).count == 20)
        let claimed = masks.claimRandomFree("w", task: 1, fraction: 0.25, using: &g1)
        #expect(masks.count(ownedBy: 1) == 20 && claimed.allSatisfy { masks.owner("w", $0) == 1 })
    }

    @Test("gated training leaves frozen entries bit-identical, with momentum and weight decay")
    func gatedTrainingKeepsFrozenEntries() {
        let ps = parameters(), w = ps[0].1
        var masks = TaskWeightMasks(ps)
        for i in 0..<4 { masks.setOwner("w", i, 0) }          // task 0 owns the first row
        let before = w.scalars
        let sgd = SGD(ps, learningRate: 0.1, momentum: 0.9, weightDecay: 0.01)
        sgd.updateMasks = masks.updateMasks(task: 1)
        for _ in 0..<5 {
            for (_, p) in ps { p.grad = Tensor(shape: p.shape, scalars: p.scalars.map { $0 + 0.5 }) }
            masks.gateGradients(ps, task: 1)
            #expect(Array(w.grad!.scalars[0..<4]) == [0, 0, 0, 0])
            sgd.step()
        }
        #expect(Array(w.scalars[0..<4]) == Array(before[0..<4]))
        #expect(zip(w.scalars[4...], before[4...]).allSatisfy { $0 != $1 })
    }

    @Test("masked inference equals a forward with W ⊙ M_t and leaves the model unchanged")
    func maskedInference() {
        var rng = RandomGenerator(seed: 1)
        let model = Models.mlp(input: 6, hidden: [5], classes: 3, using: &rng)
        var masks = TaskWeightMasks(model.namedParameters())
        var g = RandomGenerator(seed: 2)
        for (name, _) in model.namedParameters() {
            masks.claimRandomFree(name, task: 0, fraction: 0.4, using: &g)
            masks.claimRandomFree(name, task: 1, fraction: 0.5, using: &g)
        }
        let x = Tensor(shape: [4, 6], scalars: (0..<24).map { Float($0 % 7) - 3 })
        let before = model.stateDictionary().map { $0.1.scalars }
        let masked = masks.withUsableMask(model.namedParameters(), task: 0) { model(x).scalars }
        #expect(model.stateDictionary().map { $0.1.scalars } == before)
        // The same forward on a copy whose weights were multiplied by M_0 by hand.
        var rng2 = RandomGenerator(seed: 1)
        let copy = Models.mlp(input: 6, hidden: [5], classes: 3, using: &rng2)
        for (name, p) in copy.namedParameters() {
            p.scalars = zip(p.scalars, masks.usableMask(name, task: 0)).map { $0 * $1 }
        }
        #expect(copy(x).scalars == masked)
        #expect(model(x).scalars != masked)
    }

    @Test("memory is one byte per parameter entry, and state round-trips")
    func memoryAndState() throws {
        var masks = TaskWeightMasks(parameters())
        #expect(masks.memoryBytes == 11)
        masks.claimFree("w", task: 3)
        masks.setOwner("b", 1, 254)
        #expect(masks.memoryBytes == 11)
        var restored = TaskWeightMasks(parameters())
        try restored.loadState(Dictionary(uniqueKeysWithValues: masks.stateTensors()))
        #expect(restored == masks)
    }

    @Test("claiming the largest free entries takes the rounded fraction by |value|, ties by position, skipping owned ones")
    func claimLargestFree() {
        var masks = TaskWeightMasks(counts: [("w", 6)])
        masks.setOwner("w", 0, 0)   // owned by task 0: never claimed, whatever its value
        let values: [Float] = [9, -0.5, 3, -3, 0.1, 2]
        // Free: entries 1…5; fraction 0.6 of 5 = 3 → |−3| (3) and |3| (2) tie, position breaks it: 2, 3, then 5.
        #expect(masks.claimLargestFree("w", values: values, task: 1, fraction: 0.6) == [2, 3, 5])
        #expect((0..<6).map { masks.owner("w", $0) } == [0, nil, 1, 1, nil, 1])
    }

    @Test("parameter roles: heads and per-task BatchNorm belong to their task, matrices are partitioned, the rest shared")
    func parameterRoles() {
        let matrix = Tensor.zeros([2, 3]), vector = Tensor.zeros([3])
        #expect(ParameterRole.of("head.heads.3.weight", matrix) == .task(3))
        #expect(ParameterRole.of("features.1.0.bn1.tasks.2.weight", vector) == .task(2))
        #expect(ParameterRole.of("features.0.weight", matrix) == .partitioned)
        #expect(ParameterRole.of("features.0.bias", vector) == .shared)
        #expect(ParameterRole.of("head.weight", matrix) == .partitioned)
    }
}
