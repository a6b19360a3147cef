/// k-means clustering (Lloyd's algorithm) of row vectors, seeded and reproducible, with the distance computations
/// through BLAS: ‖x − c‖² = ‖x‖² − 2 x·c + ‖c‖², the products x·c of all points and centroids as one GEMM.
///
/// As faiss's `Clustering` (which REMIND's product quantizer trains with), `iterations` rounds of assignment and update
/// (faiss: 25), but seeded by k-means++ where faiss draws k points uniformly: uniform seeding leaves two centroids in
/// one cluster and one between two (a local optimum Lloyd's steps do not leave) far more often. A cluster left empty
/// takes the point farthest from its centroid (faiss splits the largest cluster instead; both keep k centroids).
public struct KMeans: Sendable, Equatable {
    /// Centroids, row-major [k, dimension].
    public private(set) var centroids: [Float]
    public let k: Int, dimension: Int

    /// Centroids given directly (a codebook read back).
    public init(centroids: [Float], k: Int, dimension: Int) {
        precondition(k > 0 && dimension > 0 && centroids.count == k * dimension, "k × dimension centroids")
        self.centroids = centroids
        self.k = k
        self.dimension = dimension
    }

    /// Clusters `points` (row-major [n, dimension], n ≥ k) into `k` clusters.
    public init(points: [Float], dimension: Int, k: Int, iterations: Int = 25, random: inout RandomGenerator) {
        precondition(dimension > 0 && points.count % dimension == 0, "points are rows of \(dimension) values")
        let n = points.count / dimension
        precondition(k >= 1 && n >= k, "k-means needs at least k = \(k) points, got \(n)")
        self.k = k
        self.dimension = dimension
        // k-means++ seeding (Arthur & Vassilvitskii 2007): the first centroid a random point, each next one a point drawn
        // with probability proportional to its squared distance to the nearest centroid chosen so far.
        var centroids = [Float](repeating: 0, count: k * dimension)
        func copy(point i: Int, to c: Int) { for d in 0..<dimension { centroids[c * dimension + d] = points[i * dimension + d] } }
        copy(point: random.nextInt(below: n), to: 0)
        var closest = Self.nearest(points, n: n, centroids: Array(centroids[0..<dimension]), k: 1, dimension: dimension).1
        for c in 1..<k {
            let total = closest.reduce(0.0) { $0 + Double($1) }
            var chosen = n - 1
            if total > 0 {
                var target = Double(random.nextFloat()) * total
                for i in 0..<n { target -= Double(closest[i]); if target < 0 { chosen = i; break } }
            } else {
                chosen = random.nextInt(below: n)
            }
            copy(point: chosen, to: c)
            let distances = Self.nearest(points, n: n, centroids: Array(centroids[c * dimension ..< (c + 1) * dimension]), k: 1,
                                         dimension: dimension).1
            for i in 0..<n { closest[i] = min(closest[i], distances[i]) }
        }
        self.centroids = centroids
        var assignment = [Int](repeating: -1, count: n)
        for _ in 0..<iterations {
            let (nearest, distances) = Self.nearest(points, n: n, centroids: self.centroids, k: k, dimension: dimension)
            if nearest == assignment { break }
            assignment = nearest
            var sums = [Double](repeating: 0, count: k * dimension), counts = [Int](repeating: 0, count: k)
            for i in 0..<n {
                let c = nearest[i]
                counts[c] += 1
                for d in 0..<dimension { sums[c * dimension + d] += Double(points[i * dimension + d]) }
            }
            var taken = Set<Int>()
            for c in 0..<k {
                if counts[c] > 0 {
                    for d in 0..<dimension { self.centroids[c * dimension + d] = Float(sums[c * dimension + d] / Double(counts[c])) }
                } else {
                    // The point farthest from its centroid, not already given to another empty cluster.
                    let far = (0..<n).filter { !taken.contains($0) }.max { distances[$0] < distances[$1] }!
                    taken.insert(far)
                    for d in 0..<dimension { self.centroids[c * dimension + d] = points[far * dimension + d] }
                }
            }
        }
    }

    /// The nearest centroid of each of the `n` rows of `points` (the first on ties) and the squared distance to it.
    public func nearest(_ points: [Float]) -> (indices: [Int], squaredDistances: [Float]) {
        precondition(points.count % dimension == 0, "points are rows of \(dimension) values")
        return Self.nearest(points, n: points.count / dimension, centroids: centroids, k: k, dimension: dimension)
    }

    static func nearest(_ points: [Float], n: Int, centroids: [Float], k: Int, dimension: Int) -> ([Int], [Float]) {
        guard n > 0 else { return ([], []) }
        let products = gemm(points, transA: false, centroids, transB: true, m: n, n: k, k: dimension)   // [n, k]
        var centroidNorms = [Float](repeating: 0, count: k)
        for c in 0..<k { for d in 0..<dimension { centroidNorms[c] += centroids[c * dimension + d] * centroids[c * dimension + d] } }
        var indices = [Int](repeating: 0, count: n), distances = [Float](repeating: 0, count: n)
        for i in 0..<n {
            var best = 0, bestScore = Float.infinity
            for c in 0..<k {
                let score = centroidNorms[c] - 2 * products[i * k + c]
                if score < bestScore { bestScore = score; best = c }
            }
            var norm: Float = 0
            for d in 0..<dimension { norm += points[i * dimension + d] * points[i * dimension + d] }
            indices[i] = best
            distances[i] = max(0, norm + bestScore)
        }
        return (indices, distances)
    }
}

/// Product quantization (Jégou, Douze & Schmid 2011; REMIND's compression of feature maps through faiss's
/// `ProductQuantizer`): a vector of `dimension` values is cut into `subvectors` consecutive pieces, and each piece is
/// replaced by the index of its nearest centroid in that piece's codebook of `codebookSize` ≤ 256 centroids (one byte).
/// A vector of D Float32 values (4D bytes) is stored in `subvectors` bytes.
public struct ProductQuantizer: Sendable, Equatable {
    public let dimension: Int, subvectors: Int, codebookSize: Int
    /// One k-means codebook per piece.
    public let codebooks: [KMeans]

    /// Values per piece.
    public var pieceDimension: Int { dimension / subvectors }

    /// Codebooks given directly (read back from a checkpoint).
    public init(codebooks: [KMeans]) {
        precondition(!codebooks.isEmpty && codebooks.allSatisfy { $0.k == codebooks[0].k && $0.dimension == codebooks[0].dimension },
                     "codebooks of one size")
        self.codebooks = codebooks
        subvectors = codebooks.count
        codebookSize = codebooks[0].k
        dimension = subvectors * codebooks[0].dimension
    }

    /// Trains the codebooks on `vectors` (row-major [n, dimension]; n ≥ codebookSize).
    public init(training vectors: [Float], dimension: Int, subvectors: Int, codebookSize: Int = 256, iterations: Int = 25,
                random: inout RandomGenerator) {
        precondition(subvectors >= 1 && dimension % subvectors == 0, "\(subvectors) pieces must divide the dimension \(dimension)")
        precondition((1...256).contains(codebookSize), "a code is one byte: at most 256 centroids, got \(codebookSize)")
        let piece = dimension / subvectors
        self.dimension = dimension
        self.subvectors = subvectors
        self.codebookSize = codebookSize
        codebooks = (0..<subvectors).map { j in
            var generator = random.derived("piece \(j)")
            return KMeans(points: Self.piece(j, of: vectors, dimension: dimension, pieceDimension: piece), dimension: piece,
                          k: codebookSize, iterations: iterations, random: &generator)
        }
    }

    /// The `j`-th piece of every row, contiguous ([n, pieceDimension]).
    static func piece(_ j: Int, of vectors: [Float], dimension: Int, pieceDimension: Int) -> [Float] {
        let n = vectors.count / dimension
        var out = [Float](repeating: 0, count: n * pieceDimension)
        for i in 0..<n {
            for d in 0..<pieceDimension { out[i * pieceDimension + d] = vectors[i * dimension + j * pieceDimension + d] }
        }
        return out
    }

    /// The codes of `vectors` (row-major [n, dimension]): [n, subvectors] bytes, row-major.
    public func encode(_ vectors: [Float]) -> [UInt8] {
        precondition(vectors.count % dimension == 0, "vectors are rows of \(dimension) values")
        let n = vectors.count / dimension
        var codes = [UInt8](repeating: 0, count: n * subvectors)
        for (j, codebook) in codebooks.enumerated() {
            let (nearest, _) = codebook.nearest(Self.piece(j, of: vectors, dimension: dimension, pieceDimension: pieceDimension))
            for i in 0..<n { codes[i * subvectors + j] = UInt8(nearest[i]) }
        }
        return codes
    }

    /// The vectors `codes` stand for: each piece its centroid ([n, dimension]).
    public func decode(_ codes: [UInt8]) -> [Float] {
        precondition(codes.count % subvectors == 0, "codes are rows of \(subvectors) bytes")
        let n = codes.count / subvectors, piece = pieceDimension
        var out = [Float](repeating: 0, count: n * dimension)
        for i in 0..<n {
            for j in 0..<subvectors {
                let c = Int(codes[i * subvectors + j])
                precondition(c < codebookSize, "code \(c) is outside a codebook of \(codebookSize)")
                let source = codebooks[j].centroids
                for d in 0..<piece { out[i * dimension + j * piece + d] = source[c * piece + d] }
            }
        }
        return out
    }

    /// Bytes the codebooks take (Float32 centroids).
    public var codebookBytes: Int { subvectors * codebookSize * pieceDimension * MemoryLayout<Float>.size }
}
