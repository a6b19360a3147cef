import EngramTensor
import EngramData
import EngramNN

/// What a memory does when a task ends (herding's fill) and the rehearsal data set of iCaRL: the task's data and
/// the memory trained as one shuffled set.
extension ReplayMemory {
    /// Fills a herding memory with `task`'s exemplars when the task ends (nothing for the other policies, which
    /// store while training).
    func endTask(_ task: Int, context: TrainingContext) {
        if policy == .herding { fillByHerding(task: task, context: context) }
    }

    /// iCaRL's exemplar management (Rebuffi et al. 2017, algorithms 4–5; Mammoth's `fill_buffer`): with C the
    /// classes of tasks 0…`task` and q = ⌊capacity / C⌋, every stored class keeps its first q exemplars, and each of
    /// `task`'s classes gets q exemplars chosen by ``Herding/select(_:dimension:count:)`` on the normalised features
    /// φ(x)/‖φ(x)‖ of all its training samples, computed by the model as it ends the task (evaluation mode).
    ///
    /// The features are those of the stream's training batches, so a stream with training augmentation (CIFAR's
    /// crop and flip) herds augmented views; the stored inputs are the original samples.
    func fillByHerding(task: Int, context: TrainingContext) {
        precondition(logitWidth == 0, "a herding memory does not keep logits")
        let stream = context.stream, model = context.model
        let buffer = buffer(context)
        let classes = (0...task).reduce(0) { $0 + stream.outputClasses(task: $1).count }
        let quota = capacity / max(classes, 1)
        buffer.keepFirst(perClass: quota)
        let restore = model.enterEvaluationMode()
        defer { restore(); model.setActiveTask(context.task) }
        model.setActiveTask(task)
        var pixels: [Int: [UInt8]] = [:], features: [Int: [Float]] = [:]
        var dimension = 0
        let bytes = buffer.sampleBytes
        GradMode.withoutGrad {
            // A batch order of its own (far past any training epoch), so training's shuffles are untouched.
            for batch in stream.trainingBatches(task: task, epoch: 2_000_000, batchSize: 256) {
                let (values, width) = Self.normalizedFeatures(batch.inputs, model: model)
                dimension = width
                let stored = stream.storedPixels(of: batch)
                for (r, label) in batch.labels.enumerated() {
                    pixels[label, default: []] += stored[r * bytes ..< (r + 1) * bytes]
                    features[label, default: []] += values[r * width ..< (r + 1) * width]
                }
            }
        }
        for label in features.keys.sorted() {
            let own = pixels[label]!
            for i in Herding.select(features[label]!, dimension: dimension, count: quota) {
                buffer.append(pixels: own[i * bytes ..< (i + 1) * bytes], label: label, task: task)
            }
        }
    }

    /// φ(x)/‖φ(x)‖ for every row of `inputs` (the model's features: its output before the head), flat, with the
    /// feature width. A zero feature vector stays zero.
    static func normalizedFeatures(_ inputs: Tensor, model: Classifier) -> (values: [Float], width: Int) {
        let features = GradMode.withoutGrad { model.features(inputs).flattened() }
        let width = features.shape[1]
        var values = features.scalars
        for r in 0..<features.shape[0] {
            var norm: Float = 0
            for d in 0..<width { norm += values[r * width + d] * values[r * width + d] }
            norm = norm.squareRoot()
            if norm > 0 { for d in 0..<width { values[r * width + d] /= norm } }
        }
        return (values, width)
    }

    /// One epoch of `task`'s training data and every stored sample, shuffled as one data set (iCaRL's training
    /// set, Mammoth's `icarl_replay`): which positions of the n + m samples are stored ones is a seeded shuffle, the
    /// stored samples come in a seeded order, the task's in its loader's. Batches have the run's batch size (the
    /// last one the rest); stored samples carry the index −1 and go through their task's transform.
    func rehearsalBatches(task: Int, epoch: Int, context: TrainingContext) -> Batches {
        let stream = context.stream, size = context.configuration.batchSize
        let own = stream.trainingBatches(task: task, epoch: epoch, batchSize: size)
        guard let buffer, !buffer.isEmpty else { return own }
        let n = stream.trainingCount(task: task), m = buffer.count
        var random = context.generator("\(owner)/rehearsal/task \(task)/epoch \(epoch)")
        var isStored = Array(repeating: true, count: m) + Array(repeating: false, count: n)
        random.shuffle(&isStored)
        let slots = buffer.sampleSlots(m, random: &random)
        let streamBatches = own.makeIterator()
        var pending: Batch?
        /// The next `count` samples of the task's own data (fewer when it runs out).
        func streamSamples(_ count: Int) -> Batch? {
            var taken: Batch?, need = count
            while need > 0 {
                if pending == nil { pending = streamBatches.next() }
                guard let next = pending else { break }
                let part = next.count <= need ? next : next.rows(Array(0..<need))
                pending = next.count <= need ? nil : next.rows(Array(need..<next.count))
                taken = taken.map { $0.appending(part) } ?? part
                need -= part.count
            }
            return taken
        }
        var position = 0, cursor = 0, index = 0
        let batchCount = (n + m + size - 1) / size
        return Batches(count: batchCount, AnySequence { [owner] in AnyIterator { () -> Batch? in
            guard position < isStored.count else { return nil }
            let end = min(position + size, isStored.count)
            let storedCount = isStored[position..<end].lazy.filter { $0 }.count
            let fromStream = streamSamples(end - position - storedCount)
            position = end
            var augmentation = context.generator("\(owner)/rehearsal/task \(task)/epoch \(epoch)/batch \(index)")
            index += 1
            let fromMemory = storedCount == 0 ? nil
                : buffer.batch(Array(slots[cursor ..< cursor + storedCount]), stream: stream, random: &augmentation)
            cursor += storedCount
            switch (fromStream, fromMemory) {
            case let (s?, r?): return s.appending(r)
            case let (s?, nil): return s
            case let (nil, r?): return r
            case (nil, nil): return nil
            }
        } })
    }
}
