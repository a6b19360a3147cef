import EngramTensor
import Foundation

/// How pixel bytes become input floats.
public enum Normalization: Sendable, Equatable {
    /// `x / 255`, in [0, 1].
    case unitRange
    /// `(x / 255 − mean[c]) / std[c]` per channel (one value is used for every channel).
    case standardize(mean: [Float], std: [Float])

    /// The usual per-channel statistics of `dataset` (e.g. MNIST 0.1307 / 0.3081).
    public static func dataset(_ dataset: DatasetID) -> Normalization {
        .standardize(mean: dataset.channelMean, std: dataset.channelStd)
    }

    /// A 256-entry table per channel (channel-major), computed as torchvision does:
    /// `Float(byte) / 255`, then `(x − mean) / std`.
    func lookupTable(channels: Int) throws -> [Float] {
        var table = [Float](repeating: 0, count: 256 * channels)
        switch self {
        case .unitRange:
            for c in 0..<channels { for v in 0..<256 { table[c * 256 + v] = Float(v) / 255 } }
        case .standardize(let mean, let std):
            _ = try affine(channels: channels)
            for c in 0..<channels {
                let m = mean.count == 1 ? mean[0] : mean[c], s = std.count == 1 ? std[0] : std[c]
                for v in 0..<256 { table[c * 256 + v] = (Float(v) / 255 - m) / s }
            }
        }
        return table
    }

    /// Per-channel (scale, bias) so that value ≈ byte · scale + bias (for interpolated values).
    func affine(channels: Int) throws -> (scale: [Float], bias: [Float]) {
        switch self {
        case .unitRange:
            return (Array(repeating: 1 / 255, count: channels), Array(repeating: 0, count: channels))
        case .standardize(let mean, let std):
            guard mean.count == channels || mean.count == 1, std.count == mean.count, std.allSatisfy({ $0 > 0 }) else {
                throw DataError.invalidConfiguration("normalisation mean \(mean) / std \(std) for \(channels) channel(s)")
            }
            let m = mean.count == 1 ? Array(repeating: mean[0], count: channels) : mean
            let s = std.count == 1 ? Array(repeating: std[0], count: channels) : std
            return (s.map { 1 / (255 * $0) }, zip(m, s).map { -$0 / $1 })
        }
    }
}

/// The shape of a batch's input tensor.
public enum InputLayout: String, Sendable, Codable {
    /// `[batch, channels · height · width]`, for MLPs.
    case flat
    /// `[batch, channels, height, width]`, for convolutional networks.
    case image
}

/// Random training augmentation (CIFAR style), seeded per task, epoch and batch.
public struct Augmentation: Sendable, Equatable {
    /// Zero padding around the image before a random crop back to the original size (0 = no crop).
    public var cropPadding: Int
    /// Whether to mirror left–right with probability ½.
    public var horizontalFlip: Bool

    /// Creates an augmentation.
    public init(cropPadding: Int = 4, horizontalFlip: Bool = true) {
        self.cropPadding = cropPadding
        self.horizontalFlip = horizontalFlip
    }

    /// Random 32×32 crops of the 4-pixel zero-padded image, and horizontal flips.
    public static let cifar = Augmentation(cropPadding: 4, horizontalFlip: true)
}

/// How a loader batches a split.
public struct LoaderOptions: Sendable, Equatable {
    /// Samples per batch (the last batch may be smaller unless `dropLast`).
    public var batchSize: Int
    /// Whether to visit samples in a fresh seeded order each epoch.
    public var shuffle: Bool
    /// Whether to drop a final partial batch.
    public var dropLast: Bool
    /// Flat vectors or images.
    public var layout: InputLayout
    /// Pixel scaling.
    public var normalization: Normalization
    /// Random augmentation, or `nil` (use it for training splits only).
    public var augmentation: Augmentation?

    /// Creates options.
    public init(batchSize: Int = 64, shuffle: Bool = true, dropLast: Bool = false, layout: InputLayout = .image,
                normalization: Normalization = .unitRange, augmentation: Augmentation? = nil) {
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.dropLast = dropLast
        self.layout = layout
        self.normalization = normalization
        self.augmentation = augmentation
    }
}
