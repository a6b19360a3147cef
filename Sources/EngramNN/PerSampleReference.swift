import EngramTensor

/// Per-sample gradient statistics by brute force: each sample is run through `model` alone, its
/// loss is differentiated, and |g| and g² are summed over the samples.
///
/// This is the slow, general reference for the exact GEMM shortcuts of `PerSampleGradients`
/// (MAS's Σₖ|gₖ|, EWC's diagonal Fisher Σₖgₖ²): it works for any module, at the price of one forward
/// and backward pass per sample. A model with batch statistics must be in evaluation mode (a
/// BatchNorm in training mode cannot normalize a batch of one). Parameters' `grad` are not touched.
///
/// - Parameters:
///   - model: the network; its parameters are the ones `namedParameters()` lists.
///   - inputs: a batch [n, …]; sample k is `inputs[k]` with a batch axis of 1.
///   - loss: the loss of one sample from the model's output for it ([1, …]) and the sample index.
/// - Returns: for each parameter name, Σₖ|∂ℓₖ/∂θ| and Σₖ(∂ℓₖ/∂θ)², shaped like the parameter.
public func perSampleGradientStatistics(model: any Module, inputs: Tensor,
                                        loss: (_ output: Tensor, _ sample: Int) -> Tensor)
    -> [String: (absSum: Tensor, sqSum: Tensor)] {
    precondition(inputs.rank >= 1, "perSampleGradientStatistics: inputs need a batch axis")
    let parameters = model.namedParameters()
    var absSums = parameters.map { [Double](repeating: 0, count: $0.1.count) }
    var sqSums = absSums
    let x = inputs.detached()
    for k in 0..<x.shape[0] {
        let sample = x.slice(axis: 0, k..<(k + 1))
        let l = loss(model(sample), k)
        precondition(l.count == 1, "perSampleGradientStatistics: the loss of one sample must be a scalar, got \(l.shape)")
        guard l.requiresGrad else { continue }  // no parameter influences this sample's loss
        let grads = l.gradients(withRespectTo: parameters.map(\.1))
        for (p, g) in grads.enumerated() {
            for (i, v) in g.scalars.enumerated() {
                let d = Double(v)
                absSums[p][i] += Swift.abs(d)
                sqSums[p][i] += d * d
            }
        }
    }
    var result: [String: (absSum: Tensor, sqSum: Tensor)] = [:]
    for (p, (name, tensor)) in parameters.enumerated() {
        result[name] = (Tensor(shape: tensor.shape, scalars: absSums[p].map { Float($0) }),
                        Tensor(shape: tensor.shape, scalars: sqSums[p].map { Float($0) }))
    }
    return result
}
