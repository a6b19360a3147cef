import EngramTensor
import EngramData
import EngramNN
import Foundation

/// REMIND (Hayes, Kafle, Shrestha, Acharya & Kanan, ECCV 2020), read against the authors' code
/// (`image_classification_experiments/REMINDModel.py`, `imagenet_base_initialization.py`, `utils.py`).
///
/// The `cnn` is cut after its first `split_block` convolutional blocks: the lower part G, the upper part F (the other
/// blocks, the linear layers and the head).
/// - **Base initialization** (the first `base_tasks` tasks): the whole network is trained offline on their data
///   (`base_epochs`, SGD), then G is frozen. Every position of G's feature maps of that data (a C-vector) trains a
///   product quantizer (``ProductQuantizer``: `subvectors` pieces, `codebook_size` centroids each, on at most
///   256 × `codebook_size` vectors drawn at random, as faiss samples) and every base sample is stored as its codes.
/// - **Streaming** (later tasks): each new sample x is quantized, and F takes one SGD step (momentum 0.9, weight
///   decay `stream_weight_decay`) on x together with `replay_samples` r reconstructions drawn from memory — with mixup
///   (`mixup_alpha` > 0), 2r are drawn and mixed pairwise, λ ~ Beta(α, α), loss λ·CE(y_a) + (1 − λ)·CE(y_b); every
///   map (x's too) is randomly cropped and resized back (scale 2/7–1 of its area, `random_resized_crops`). The
///   learning rate of a sample of class y is `stream_lr`·`stream_lr_gamma`^⌊n_y / `stream_lr_step`⌋ (n_y: samples of y
///   streamed so far; the authors' per-class step schedule), never below `stream_end_lr`. x's codes then join the memory; a full memory
///   (`buffer_size` samples, or as many as `memory_bytes` holds) drops a random sample of its largest class.
/// - **Inference**: G, quantize, reconstruct, F (as the authors' `predict`).
///
/// Deviations: the authors stream one image per step; Engram streams the run's batches and takes one step per sample
/// of each (the same updates in the same order when `training.batch_size` is 1, as the protocols set). The class-IL loss
/// covers the classes seen so far (`training.active_classes`, Engram's default; the authors' F has all 1 000 units).
/// k-means seeds by k-means++ (faiss: uniform), see ``KMeans``.
public final class REMIND: RegisteredStrategy, EvaluationScoring {
    public static let descriptors = [StrategyDescriptor(
        name: "remind", summary: "REMIND: a frozen lower network, product-quantized feature maps as the memory, streaming updates of the upper network with replay",
        paper: "Hayes, Kafle, Shrestha, Acharya & Kanan, ECCV 2020 (REMIND Your Neural Network to Prevent Catastrophic Forgetting)",
        hyperparameters: [
            .integer("split_block", default: 1, range: .atLeastOne, help: "G is the cnn's first split_block convolutional blocks, F the rest."),
            .integer("subvectors", symbol: "m", default: 2, range: .atLeastOne,
                     help: "m, pieces each C-channel feature vector is cut into (one byte each); must divide C."),
            .integer("codebook_size", default: 256, range: ValueRange(lower: 2, upper: 256), help: "Centroids per piece (≤ 256: one byte)."),
            .integer("replay_samples", symbol: "r", default: 50, range: .nonNegative, help: "r, reconstructions replayed with each new sample."),
            .real("mixup_alpha", symbol: "α", default: 0.1, range: .nonNegative, help: "α of mixup's Beta(α, α) on replayed maps (0: no mixup)."),
            .boolean("random_resized_crops", default: true, help: "Random resized crops (2/7 to all of the map's area) of every reconstructed map."),
            .integer("base_tasks", default: 1, range: .atLeastOne, help: "Tasks of the base initialization (offline, whole network)."),
            .integer("base_epochs", default: 10, range: .atLeastOne, help: "Epochs of the base initialization."),
            .integer("base_batch_size", default: 32, range: .atLeastOne, help: "Batch size of the base initialization."),
            .real("base_lr", default: 0.05, range: .positive, help: "Learning rate of the base initialization (SGD, momentum 0.9)."),
            .real("stream_lr", default: 0.1, range: .positive, help: "Streaming learning rate at a class's first sample."),
            .real("stream_end_lr", default: 0.001, range: .positive, help: "The streaming learning rate never goes below this."),
            .integer("stream_lr_step", default: 100, range: .atLeastOne, help: "Samples of a class between two decays of its learning rate."),
            .real("stream_lr_gamma", default: 0.5, range: .unitIntervalOpenBelow, help: "Decay factor of the per-class schedule."),
            .real("stream_weight_decay", default: 1e-5, range: .nonNegative, help: "Weight decay of F's streaming SGD."),
            .integer("buffer_size", default: nil, defaultDescription: "every sample (the authors' ImageNet run)", range: .atLeastOne,
                     help: "Memory capacity in samples."),
            .integer("memory_bytes", default: nil, defaultDescription: "none", range: .atLeastOne,
                     help: "Memory capacity in bytes, codebooks included (instead of buffer_size): as many samples (codes, label, task) as fit beside the codebooks."),
        ],
        scenarios: [.classIncremental, .domainIncremental], models: ["cnn"],
        make: { o in
            REMIND(splitBlock: o.integer("split_block"), subvectors: o.integer("subvectors"), codebookSize: o.integer("codebook_size"),
                   replaySamples: o.integer("replay_samples"), mixupAlpha: o.double("mixup_alpha"),
                   randomResizedCrops: o.bool("random_resized_crops"), baseTasks: o.integer("base_tasks"),
                   baseEpochs: o.integer("base_epochs"), baseBatchSize: o.integer("base_batch_size"), baseLearningRate: o.float("base_lr"),
                   learningRate: o.float("stream_lr"), endLearningRate: o.float("stream_end_lr"), lrStep: o.integer("stream_lr_step"),
                   lrGamma: o.float("stream_lr_gamma"), weightDecay: o.float("stream_weight_decay"),
                   bufferSize: o.optionalInteger("buffer_size"), memoryBytes: o.optionalInteger("memory_bytes"))
        })]

    public let splitBlock: Int, subvectors: Int, codebookSize: Int, replaySamples: Int
    public let mixupAlpha: Double, randomResizedCrops: Bool
    public let baseTasks: Int, baseEpochs: Int, baseBatchSize: Int, baseLearningRate: Float
    public let learningRate: Float, endLearningRate: Float, lrStep: Int, lrGamma: Float, weightDecay: Float
    public let bufferSize: Int?, memoryBytesLimit: Int?

    /// The quantizer (nil before the base initialization).
    public private(set) var quantizer: ProductQuantizer?
    /// Stored samples: codes (`codeBytes` each), labels (scenario targets) and tasks.
    public private(set) var codes: [UInt8] = []
    public private(set) var labels: [Int] = []
    public private(set) var tasks: [Int] = []
    /// Feature-map geometry after G: channels, height, width.
    public private(set) var mapShape: [Int] = []
    /// Samples of each class streamed so far (the learning-rate schedule).
    private var streamed: [Int: Int] = [:]
    /// The memory's slots of each class, ascending (the eviction's candidates; rebuilt from `labels` on load).
    private var slotsByClass: [Int: [Int]] = [:]
    private var random: RandomGenerator?
    private var optimizer: SGD?

    public init(splitBlock: Int = 1, subvectors: Int = 2, codebookSize: Int = 256, replaySamples: Int = 50, mixupAlpha: Double = 0.1,
                randomResizedCrops: Bool = true, baseTasks: Int = 1, baseEpochs: Int = 10, baseBatchSize: Int = 32,
                baseLearningRate: Float = 0.05, learningRate: Float = 0.1, endLearningRate: Float = 0.001, lrStep: Int = 100,
                lrGamma: Float = 0.5, weightDecay: Float = 1e-5, bufferSize: Int? = nil, memoryBytes: Int? = nil) {
        self.splitBlock = splitBlock; self.subvectors = subvectors; self.codebookSize = codebookSize
        self.replaySamples = replaySamples; self.mixupAlpha = mixupAlpha; self.randomResizedCrops = randomResizedCrops
        self.baseTasks = baseTasks; self.baseEpochs = baseEpochs; self.baseBatchSize = baseBatchSize
        self.baseLearningRate = baseLearningRate; self.learningRate = learningRate; self.endLearningRate = endLearningRate
        self.lrStep = lrStep; self.lrGamma = lrGamma; self.weightDecay = weightDecay
        self.bufferSize = bufferSize; self.memoryBytesLimit = memoryBytes
    }

    public var name: String { "remind" }
    /// The trainer only shows REMIND the stream: it trains F itself, one step per sample.
    public var trainsOnStream: Bool { false }

    /// Bytes of one stored sample: its codes, a 4-byte label and a 4-byte task id.
    public var sampleBytes: Int { mapShape.count == 3 ? mapShape[1] * mapShape[2] * subvectors + 8 : 0 }
    /// Bytes of one sample's codes.
    var codeBytes: Int { mapShape[1] * mapShape[2] * subvectors }
    public var count: Int { labels.count }

    /// The memory's capacity in samples (nil: unbounded): `buffer_size`, or the samples that fit in `memory_bytes`
    /// beside the codebooks (REMIND's whole memory is counted, as ER's images are).
    public var capacity: Int? {
        if let bufferSize { return bufferSize }
        if let memoryBytesLimit, sampleBytes > 0 {
            return max(1, (memoryBytesLimit - (quantizer?.codebookBytes ?? 0)) / sampleBytes)
        }
        return nil
    }

    // MARK: The two parts of the network

    struct Parts { let lower: [any Module]; let upper: [any Module]; let head: any Module }

    func parts(of model: Classifier) throws -> Parts {
        guard let features = model.features as? Sequential else {
            throw StrategyError(key: "model", "remind splits a cnn; this model's features are not a sequence of blocks")
        }
        let blocks = features.layers.prefix { $0 is ConvBlock }.count
        guard splitBlock < blocks else {
            throw StrategyError(key: "split_block", "is \(splitBlock) but the cnn has \(blocks) convolutional block\(blocks == 1 ? "" : "s"): F needs at least one")
        }
        return Parts(lower: Array(features.layers[..<splitBlock]), upper: Array(features.layers[splitBlock...]), head: model.head)
    }

    /// G's feature maps of `inputs` ([n, C, H, W] values), without gradients.
    func lowerFeatures(_ inputs: Tensor, parts: Parts) -> Tensor {
        let out = parts.lower.reduce(inputs) { $1.forward($0) }
        return Tensor(shape: out.shape, scalars: out.scalars)
    }

    /// F's outputs for maps [n, C, H, W].
    func upperOutputs(_ maps: Tensor, parts: Parts) -> Tensor {
        parts.head.forward(parts.upper.reduce(maps) { $1.forward($0) })
    }

    /// Feature vectors by position: [n, C, H, W] → rows of C values ([n·H·W, C]).
    static func positionVectors(_ maps: [Float], n: Int, channels: Int, positions: Int) -> [Float] {
        var out = [Float](repeating: 0, count: maps.count)
        for s in 0..<n { for c in 0..<channels { for p in 0..<positions {
            out[(s * positions + p) * channels + c] = maps[(s * channels + c) * positions + p]
        } } }
        return out
    }

    /// The inverse of ``positionVectors(_:n:channels:positions:)``.
    static func maps(fromPositionVectors rows: [Float], n: Int, channels: Int, positions: Int) -> [Float] {
        var out = [Float](repeating: 0, count: rows.count)
        for s in 0..<n { for c in 0..<channels { for p in 0..<positions {
            out[(s * channels + c) * positions + p] = rows[(s * positions + p) * channels + c]
        } } }
        return out
    }

    /// Codes of `inputs`: `codeBytes` per sample.
    func encode(_ inputs: Tensor, parts: Parts) -> [UInt8] {
        let maps = lowerFeatures(inputs, parts: parts), n = maps.shape[0]
        return quantizer!.encode(Self.positionVectors(maps.scalars, n: n, channels: mapShape[0], positions: mapShape[1] * mapShape[2]))
    }

    /// Reconstructed maps of `n` samples' codes: [n, C, H, W].
    func decode(_ sampleCodes: [UInt8], n: Int) -> [Float] {
        Self.maps(fromPositionVectors: quantizer!.decode(sampleCodes), n: n, channels: mapShape[0], positions: mapShape[1] * mapShape[2])
    }

    // MARK: Hooks

    public func beforeTask(_ task: Int, context: TrainingContext) throws {
        let p = try parts(of: context.model)
        if task == 0 {
            let probe = context.stream.trainingBatches(task: 0, epoch: 0, batchSize: 1).first { _ in true }
            if let probe {
                let restore = context.model.enterEvaluationMode()
                defer { restore() }
                let shape = lowerFeatures(probe.inputs, parts: p).shape
                mapShape = Array(shape.dropFirst())
                guard mapShape[0] % subvectors == 0 else {
                    throw StrategyError(key: "subvectors", "\(subvectors) must divide the \(mapShape[0]) channels of the feature maps after block \(splitBlock)")
                }
            }
        }
        if task >= baseTasks { freezeLower(p) }
    }

    /// Puts G in evaluation mode (BatchNorm statistics fixed); F trains.
    func freezeLower(_ p: Parts) {
        for m in p.lower { for (_, sub) in m.namedModules() { sub.isTraining = false } }
    }

    public func beforeForward(_ batch: Batch, context: TrainingContext) throws -> Batch {
        guard context.task >= baseTasks, quantizer != nil else { return batch }
        let p = try parts(of: context.model)
        freezeLower(p)
        let newCodes = encode(batch.inputs, parts: p)
        for k in 0..<batch.count {
            try stream(codes: Array(newCodes[k * codeBytes ..< (k + 1) * codeBytes]), label: batch.labels[k],
                       task: batch.taskIDs[k], parts: p, context: context)
        }
        return batch
    }

    /// One streaming update with a new sample's codes, then the sample joins the memory.
    func stream(codes sample: [UInt8], label: Int, task: Int, parts p: Parts, context: TrainingContext) throws {
        var random = self.random ?? context.generator("remind/stream")
        defer { self.random = random }
        let optimizer = self.optimizer ?? makeOptimizer(p)
        self.optimizer = optimizer
        let draws = min(count, mixupAlpha > 0 ? 2 * replaySamples : replaySamples)
        let slots = random.distinctIndices(draws, below: count)
        var batchCodes = sample
        for s in slots { batchCodes += codes[s * codeBytes ..< (s + 1) * codeBytes] }
        let n = 1 + slots.count
        var maps = decode(batchCodes, n: n)
        let (c, h, w) = (mapShape[0], mapShape[1], mapShape[2]), size = c * h * w
        if randomResizedCrops {
            for i in 0..<n {
                let box = FeatureAugmentation.cropBox(height: h, width: w, scale: (2.0 / 7)...1, random: &random)
                let cropped = FeatureAugmentation.resizeCrop(Array(maps[i * size ..< (i + 1) * size]), channels: c, height: h, width: w, box: box)
                maps.replaceSubrange(i * size ..< (i + 1) * size, with: cropped)
            }
        }
        var labelsA = [label] + slots.map { labels[$0] }, labelsB = labelsA
        var lambda: Float = 1
        var rows = n
        if mixupAlpha > 0 && slots.count >= 2 {
            let half = slots.count / 2
            lambda = Float(FeatureAugmentation.beta(mixupAlpha, random: &random))
            var mixed = [Float](repeating: 0, count: (1 + half) * size)
            maps.withUnsafeBufferPointer { m in
                mixed.withUnsafeMutableBufferPointer { out in
                    for j in 0..<size { out[j] = m[j] }
                    for i in 0..<half {
                        let a = (1 + i) * size, b = (1 + half + i) * size, o = (1 + i) * size
                        for j in 0..<size { out[o + j] = lambda * m[a + j] + (1 - lambda) * m[b + j] }
                    }
                }
            }
            maps = mixed
            labelsA = [label] + (0..<half).map { labels[slots[$0]] }
            labelsB = [label] + (0..<half).map { labels[slots[half + $0]] }
            rows = 1 + half
        }
        let output = upperOutputs(Tensor(shape: [rows, c, h, w], scalars: maps), parts: p)
        let allowed = context.activeClasses
        var loss = Losses.crossEntropy(output, targets: labelsA, allowedClasses: allowed) * lambda
        if lambda < 1 { loss = loss + Losses.crossEntropy(output, targets: labelsB, allowedClasses: allowed) * (1 - lambda) }
        let seen = streamed[label, default: 0]
        optimizer.learningRate = max(endLearningRate, learningRate * pow(lrGamma, Float(seen / lrStep)))
        try TrainingStep.take(loss, optimizer: optimizer) { value in
            "REMIND's streaming loss became \(value) in task \(context.task + 1); lower remind.stream_lr"
        }
        streamed[label] = seen + 1
        store(sample, label: label, task: task, random: &random)
    }

    /// Adds a sample; a full memory first drops a random sample of its largest class (the smallest label on ties).
    func store(_ sample: [UInt8], label: Int, task: Int, random: inout RandomGenerator) {
        if let capacity, count >= capacity {
            let largest = slotsByClass.max { a, b in a.value.count < b.value.count || (a.value.count == b.value.count && a.key > b.key) }!
            let victim = largest.value[random.nextInt(below: largest.value.count)]
            codes.replaceSubrange(victim * codeBytes ..< (victim + 1) * codeBytes, with: sample)
            slotsByClass[largest.key]!.removeAll { $0 == victim }
            if slotsByClass[largest.key]!.isEmpty { slotsByClass[largest.key] = nil }
            var slots = slotsByClass[label, default: []]
            slots.insert(victim, at: slots.firstIndex { $0 > victim } ?? slots.endIndex)
            slotsByClass[label] = slots
            labels[victim] = label
            tasks[victim] = task
            return
        }
        slotsByClass[label, default: []].append(count)
        codes += sample
        labels.append(label)
        tasks.append(task)
    }

    static func slotsByClass(_ labels: [Int]) -> [Int: [Int]] {
        var perClass: [Int: [Int]] = [:]
        for (slot, y) in labels.enumerated() { perClass[y, default: []].append(slot) }
        return perClass
    }

    func makeOptimizer(_ p: Parts) -> SGD {
        let parameters = (p.upper.flatMap { $0.namedParameters() } + p.head.namedParameters()).enumerated().map { ("f.\($0.offset).\($0.element.0)", $0.element.1) }
        return SGD(parameters, learningRate: learningRate, momentum: 0.9, weightDecay: weightDecay)
    }

    /// The base initialization once its last task is trained: the whole network offline, then the quantizer and the
    /// memory of the base data.
    public func afterTask(_ task: Int, context: TrainingContext) throws {
        guard task == baseTasks - 1 else { return }
        let model = context.model, p = try parts(of: model)
        let baseData = Array(0...task)
        let parameters = model.namedParameters()
        let optimizer = SGD(parameters, learningRate: baseLearningRate, momentum: 0.9, weightDecay: 0)
        model.train()
        for epoch in 0..<baseEpochs {
            for batch in context.stream.mixedTrainingBatches(tasks: baseData, epoch: epoch, batchSize: baseBatchSize) {
                let output = ReplayMemory.forward(batch, context: context)
                let loss = Losses.crossEntropy(output, targets: batch.labels, allowedClasses: context.activeClasses)
                try TrainingStep.take(loss, optimizer: optimizer) { value in
                    "REMIND's base initialization loss became \(value) in epoch \(epoch + 1); lower remind.base_lr"
                }
            }
        }
        for (_, t) in parameters { t.grad = nil }
        freezeLower(p)
        // The quantizer on (a sample of) the base data's position vectors, then every base sample's codes.
        var vectors: [Float] = [], batchLabels: [Int] = [], batchTasks: [Int] = []
        let positions = mapShape[1] * mapShape[2]
        for batch in context.stream.mixedTrainingBatches(tasks: baseData, epoch: 0, batchSize: context.configuration.evaluationBatchSize) {
            let maps = lowerFeatures(batch.inputs, parts: p)
            vectors += Self.positionVectors(maps.scalars, n: batch.count, channels: mapShape[0], positions: positions)
            batchLabels += batch.labels
            batchTasks += batch.taskIDs
        }
        var random = context.generator("remind/pq")
        let limit = 256 * codebookSize, rows = vectors.count / mapShape[0]
        var training = vectors
        if rows > limit {
            let picked = random.distinctIndices(limit, below: rows).sorted()
            training = picked.flatMap { vectors[$0 * mapShape[0] ..< ($0 + 1) * mapShape[0]] }
        }
        quantizer = ProductQuantizer(training: training, dimension: mapShape[0], subvectors: subvectors,
                                     codebookSize: min(codebookSize, training.count / mapShape[0]), random: &random)
        if let memoryBytesLimit, memoryBytesLimit < quantizer!.codebookBytes + sampleBytes {
            throw StrategyError(key: "memory_bytes", "is \(memoryBytesLimit) but the codebooks alone take \(quantizer!.codebookBytes) bytes and one sample \(sampleBytes)")
        }
        let allCodes = quantizer!.encode(vectors)
        var storeRandom = context.generator("remind/base memory")
        for s in 0..<batchLabels.count {
            store(Array(allCodes[s * codeBytes ..< (s + 1) * codeBytes]), label: batchLabels[s], task: batchTasks[s], random: &storeRandom)
        }
    }

    /// Scores through G, the quantizer and F (plain model outputs before the base initialization).
    public func evaluationScores(_ inputs: Tensor, task: Int, context: TrainingContext) -> Tensor {
        guard quantizer != nil, let p = try? parts(of: context.model) else { return context.model(inputs) }
        let n = inputs.shape[0]
        let maps = decode(encode(inputs, parts: p), n: n)
        let out = upperOutputs(Tensor(shape: [n] + mapShape, scalars: maps), parts: p)
        return Tensor(shape: out.shape, scalars: out.scalars)
    }

    public var memoryBytes: Int { count * sampleBytes + (quantizer?.codebookBytes ?? 0) }

    // MARK: State

    struct Record: Codable {
        var codes: Data, labels: [Int], tasks: [Int], mapShape: [Int], streamed: [String: Int], random: RandomGenerator?
    }

    public func saveState() throws -> StrategyState {
        var state = StrategyState()
        try state.record(Record(codes: Data(codes), labels: labels, tasks: tasks, mapShape: mapShape,
                                streamed: Dictionary(uniqueKeysWithValues: streamed.map { ("\($0.key)", $0.value) }), random: random),
                         as: "memory")
        if let quantizer {
            for (j, book) in quantizer.codebooks.enumerated() {
                state.add([("codebook.\(j)", Tensor(shape: [book.k, book.dimension], scalars: book.centroids))])
            }
        }
        if let optimizer { state.add(optimizer.stateTensors().map { ("optimizer.\($0.0)", $0.1) }) }
        return state
    }

    public func loadState(_ state: StrategyState, context: TrainingContext) throws {
        let p = try parts(of: context.model)
        if let record = try state.optionalRecord(Record.self, "memory") {
            codes = [UInt8](record.codes); labels = record.labels; tasks = record.tasks; mapShape = record.mapShape
            streamed = Dictionary(uniqueKeysWithValues: record.streamed.compactMap { k, v in Int(k).map { ($0, v) } })
            random = record.random
            slotsByClass = Self.slotsByClass(labels)
            guard labels.count == tasks.count, mapShape.isEmpty || codes.count == labels.count * codeBytes else {
                throw StrategyError("record 'memory' holds \(codes.count) code bytes for \(labels.count) samples")
            }
        }
        let books = state.tensors.keys.filter { $0.hasPrefix("codebook.") }.count
        if books > 0 {
            quantizer = ProductQuantizer(codebooks: try (0..<books).map { j in
                guard let t = state.tensors["codebook.\(j)"], t.shape.count == 2 else { throw StrategyError("tensor 'codebook.\(j)' is missing") }
                return KMeans(centroids: t.scalars, k: t.shape[0], dimension: t.shape[1])
            })
        }
        let moments = state.tensors.filter { $0.key.hasPrefix("optimizer.") }
        if !moments.isEmpty {
            let optimizer = makeOptimizer(p)
            try optimizer.loadState(Dictionary(uniqueKeysWithValues: moments.map { (String($0.key.dropFirst("optimizer.".count)), $0.value) }))
            self.optimizer = optimizer
        }
        if context.task >= baseTasks { freezeLower(p) }
    }
}
