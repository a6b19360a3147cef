import EngramTensor
import EngramNN

extension TrainingContext {
    /// Replaces the model's parameters and buffers with those of a freshly initialised model of the run's
    /// architecture, drawn from the generator `label` (MIND's fresh teacher, GDumb's learner trained from scratch).
    public func reinitializeModel(label: String) {
        var rng = generator(label)
        let fresh: any Module = makeFreshModel.map { $0(&rng) } ?? Self.reinitialized(model, using: &rng)
        let values = Dictionary(fresh.stateDictionary().map { ($0.0, $0.1.scalars) }, uniquingKeysWith: { a, _ in a })
        for (name, t) in model.stateDictionary() { if let v = values[name], v.count == t.count { t.scalars = v } }
    }

    /// A copy of `model`'s structure with every Linear/Conv layer drawn afresh (PyTorch's default
    /// initialization) and BatchNorm reset (γ = 1, β = 0, statistics 0 and 1): used when no
    /// model factory is given.
    fileprivate static func reinitialized(_ model: Classifier, using rng: inout RandomGenerator) -> any Module {
        for (_, m) in model.namedModules() {
            if let linear = m as? Linear {
                let fresh = Linear(linear.inFeatures, linear.outFeatures, bias: linear.bias != nil, using: &rng)
                linear.weight.scalars = fresh.weight.scalars
                if let b = linear.bias, let fb = fresh.bias { b.scalars = fb.scalars }
            } else if let conv = m as? Conv2d {
                let s = conv.weight.shape
                let fresh = Conv2d(s[1], s[0], kernelSize: s[2], stride: conv.stride, padding: conv.padding,
                                   bias: conv.bias != nil, using: &rng)
                conv.weight.scalars = fresh.weight.scalars
                if let b = conv.bias, let fb = fresh.bias { b.scalars = fb.scalars }
            } else if let norm = m as? BatchNorm {
                norm.gamma?.scalars = [Float](repeating: 1, count: norm.channels)
                norm.beta?.scalars = [Float](repeating: 0, count: norm.channels)
                norm.runningMean.scalars = [Float](repeating: 0, count: norm.channels)
                norm.runningVariance.scalars = [Float](repeating: 1, count: norm.channels)
                norm.batchesTracked.scalars = [0]
            }
        }
        return model
    }
}
