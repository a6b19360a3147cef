import EngramTensor

/// Zero padding of images (e.g. MNIST's 28×28 to 32×32, as van de Ven & Tolias's Permuted MNIST protocol).
extension ImageDataset {
    /// The dataset with `border` rows and columns of zeros added on every side of every image
    /// (`height + 2·border` × `width + 2·border`); labels unchanged. `border` 0 returns the dataset itself.
    public func padded(by border: Int) throws -> ImageDataset {
        guard border > 0 else {
            if border < 0 { throw DataError.invalidConfiguration("\(name): padding must be ≥ 0, got \(border)") }
            return self
        }
        let (h, w) = (height + 2 * border, width + 2 * border)
        let plane = h * w, source = pixels
        var out = [UInt8](repeating: 0, count: count * channels * plane)
        out.withUnsafeMutableBufferPointer { dst in
            source.withUnsafeBufferPointer { src in
                for image in 0..<(count * channels) {
                    let from = image * height * width, to = image * plane
                    for row in 0..<height {
                        let s = from + row * width, d = to + (row + border) * w + border
                        for col in 0..<width { dst[d + col] = src[s + col] }
                    }
                }
            }
        }
        var result = try ImageDataset(name: name, channels: channels, height: h, width: w, pixels: out, labels: labels,
                                      classCount: classCount, coarseLabels: coarseLabels, classNames: classNames)
        result.coarseClassNames = coarseClassNames
        return result
    }
}

extension DatasetPair {
    /// Both halves zero-padded by `border` pixels on every side.
    public func padded(by border: Int) throws -> DatasetPair {
        DatasetPair(train: try train.padded(by: border), test: try test.padded(by: border))
    }
}
