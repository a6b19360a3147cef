import EngramTensor

/// One convolutional block of `Models.cnn` and of the progressive conv columns:
/// 3×3 convolution (padding 1, no bias: BatchNorm's β serves) → BatchNorm → ReLU → 2×2 max-pool.
/// Parameters are named `conv.weight`, `bn.weight`, `bn.bias`; buffers `bn.running_mean`, ….
public final class ConvBlock: Module {
    public let conv: Conv2d
    /// A `BatchNorm`, or a `TaskBatchNorm` (one per task) when built with `taskNorms`.
    public let bn: any Module
    public var isTraining = true

    public init(_ inChannels: Int, _ outChannels: Int, taskNorms: Int? = nil, using rng: inout RandomGenerator) {
        conv = Conv2d(inChannels, outChannels, kernelSize: 3, stride: 1, padding: 1, bias: false, using: &rng)
        bn = Models.batchNorm(outChannels, taskNorms: taskNorms)
    }

    public var children: [(String, any Module)] { [("conv", conv), ("bn", bn)] }

    public func forward(_ x: Tensor) -> Tensor { finish(conv(x)) }

    /// BatchNorm → ReLU → 2×2 max-pool of a pre-activation (the convolution's output, plus any lateral inputs).
    public func finish(_ z: Tensor) -> Tensor { bn.forward(z).relu().maxPool2d(kernel: 2, stride: 2) }

    /// Spatial size after the block's pooling (floor, as the pooling does).
    public static func outputSize(_ size: Int) -> Int { size / 2 }
}

extension Models {
    /// A small convolutional network for 28×28 / 32×32 images: one `ConvBlock` (3×3 conv, BatchNorm, ReLU,
    /// 2×2 max-pool) per entry of `channels`, flatten, Linear–ReLU for each size in `hidden`, then a head.
    /// `cnn(inputChannels: 1, channels: [32, 64], hidden: [128], classes: 10)` on 1×28×28 is
    /// conv32–pool–conv64–pool (64×7×7 = 3136 features)–128–10.
    ///
    /// The experiment configuration builds it for `--model cnn` with channels [width, 2·width] and `hidden`;
    /// the `pnn` strategy gets the progressive network of the same columns (`progressiveCNN`).
    /// Parameters are named `features.i.conv.weight`, `features.i.bn.…` for the blocks, then
    /// `features.n+1.weight` … for the linear layers (`features.n` is the Flatten), and `head.…`.
    /// - Parameters:
    ///   - inputHeight, inputWidth: image size (each block halves it, rounding down).
    ///   - headsPerTask: if given, one head per task with these output sizes (multi-head).
    ///   - taskNorms: if given, every BatchNorm is a `TaskBatchNorm` with this many tasks.
    public static func cnn(inputChannels: Int, inputHeight: Int = 28, inputWidth: Int = 28, channels: [Int],
                           hidden: [Int], classes: Int, headsPerTask: [Int]? = nil, taskNorms: Int? = nil,
                           using rng: inout RandomGenerator) -> Classifier {
        precondition(inputChannels > 0 && !channels.isEmpty && channels.allSatisfy { $0 > 0 } && hidden.allSatisfy { $0 > 0 },
                     "cnn needs positive sizes and at least one convolutional block")
        var layers: [any Module] = []
        var inC = inputChannels
        for c in channels {
            layers.append(ConvBlock(inC, c, taskNorms: taskNorms, using: &rng))
            inC = c
        }
        layers.append(Flatten())
        var features = flattenedFeatures(channels: channels, height: inputHeight, width: inputWidth)
        for h in hidden {
            layers.append(Linear(features, h, using: &rng))
            layers.append(ReLU())
            features = h
        }
        let head: any Module = headsPerTask.map { MultiHead(inFeatures: features, classesPerTask: $0, using: &rng) }
            ?? Linear(features, classes, using: &rng)
        return Classifier(features: Sequential(layers), head: head)
    }

    /// Features after the convolutional blocks: last channel count × (height/2ⁿ) × (width/2ⁿ).
    static func flattenedFeatures(channels: [Int], height: Int, width: Int) -> Int {
        var (h, w) = (height, width)
        for _ in channels { (h, w) = (ConvBlock.outputSize(h), ConvBlock.outputSize(w)) }
        precondition(h > 0 && w > 0, "a \(height)×\(width) image is too small for \(channels.count) pooling blocks")
        return channels.last! * h * w
    }
}
