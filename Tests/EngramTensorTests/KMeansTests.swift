import EngramTensor
import Testing

/// k-means and product quantization: hand-made clusters, reproducibility, and the properties REMIND relies on.
@Suite struct KMeansTests {
    /// Gaussian-ish blobs around `centres` (2-D), `perCentre` points each, from `seed`.
    static func blobs(_ centres: [(Float, Float)], perCentre: Int, spread: Float, seed: UInt64) -> [Float] {
        var rng = RandomGenerator(seed: seed, label: "blobs")
        var points: [Float] = []
        for (x, y) in centres {
            for _ in 0..<perCentre {
                points += [x + spread * (rng.nextFloat() - 0.5), y + spread * (rng.nextFloat() - 0.5)]
            }
        }
        return points
    }

    @Test("k-means finds the means of well-separated clusters and assigns every point to its own")
    func findsSeparatedClusters() {
        let centres: [(Float, Float)] = [(0, 0), (10, 0), (0, 10)]
        let points = Self.blobs(centres, perCentre: 50, spread: 1, seed: 1)
        var rng = RandomGenerator(seed: 5, label: "kmeans")
        let kmeans = KMeans(points: points, dimension: 2, k: 3, random: &rng)
        for (x, y) in centres {
            let (index, _) = kmeans.nearest([x, y])
            let c = Array(kmeans.centroids[index[0] * 2 ..< index[0] * 2 + 2])
            // The centroid is the blob's sample mean: within the spread's standard error of the centre.
            #expect(abs(c[0] - x) < 0.2 && abs(c[1] - y) < 0.2, "\(c) for (\(x), \(y))")
        }
        let (assigned, _) = kmeans.nearest(points)
        for blob in 0..<3 { #expect(Set(assigned[blob * 50 ..< (blob + 1) * 50]).count == 1) }
        #expect(Set(assigned).count == 3)
    }

    @Test("nearest returns the squared distance to the chosen centroid, computed as by hand")
    func nearestOnHandComputedCase() {
        let kmeans = KMeans(centroids: [0, 0, 3, 4], k: 2, dimension: 2)
        let (indices, distances) = kmeans.nearest([1, 1, 3, 3, -1, 0])
        #expect(indices == [0, 1, 0])
        #expect(abs(distances[0] - 2) < 1e-5 && abs(distances[1] - 1) < 1e-5 && abs(distances[2] - 1) < 1e-5)
    }

    @Test("k-means is seeded: the same generator gives the same centroids, another one (generally) others")
    func isReproducible() {
        let points = Self.blobs([(0, 0), (3, 3), (6, 0), (2, 7)], perCentre: 40, spread: 4, seed: 2)
        var a = RandomGenerator(seed: 9, label: "k"), b = RandomGenerator(seed: 9, label: "k"), c = RandomGenerator(seed: 10, label: "k")
        let first = KMeans(points: points, dimension: 2, k: 8, random: &a)
        #expect(first == KMeans(points: points, dimension: 2, k: 8, random: &b))
        #expect(first != KMeans(points: points, dimension: 2, k: 8, random: &c))
    }

    @Test("a cluster left empty takes a point, so k distinct centroids remain")
    func emptyClustersAreRefilled() {
        // Two tight groups and k = 4: two clusters would die in Lloyd's update without the refill.
        let points: [Float] = [0, 0, 0.01, 0, 0, 0.01, 5, 5, 5.01, 5, 5, 5.01]
        var rng = RandomGenerator(seed: 3, label: "empty")
        let kmeans = KMeans(points: points, dimension: 2, k: 4, random: &rng)
        let rows = (0..<4).map { Array(kmeans.centroids[$0 * 2 ..< $0 * 2 + 2]) }
        #expect(Set(rows.map { "\($0)" }).count == 4)
    }

    static func features(count: Int, dimension: Int, seed: UInt64) -> [Float] {
        // Correlated features: a few latent factors mixed into every dimension, plus noise.
        var rng = RandomGenerator(seed: seed, label: "features")
        let factors = 4
        let mixing = (0..<factors * dimension).map { _ in rng.nextFloat() - 0.5 }
        var out: [Float] = []
        for _ in 0..<count {
            let z = (0..<factors).map { _ in 2 * rng.nextFloat() - 1 }
            for d in 0..<dimension {
                out.append((0..<factors).reduce(0) { $0 + z[$1] * mixing[$1 * dimension + d] } + 0.1 * (rng.nextFloat() - 0.5))
            }
        }
        return out
    }

    @Test("product quantization: decoding a code and encoding it again gives the same code")
    func encodeDecodeRoundTrip() {
        let data = Self.features(count: 600, dimension: 16, seed: 4)
        var rng = RandomGenerator(seed: 1, label: "pq")
        let pq = ProductQuantizer(training: data, dimension: 16, subvectors: 4, codebookSize: 32, random: &rng)
        let codes = pq.encode(data)
        #expect(codes.count == 600 * 4)
        #expect(pq.encode(pq.decode(codes)) == codes)
        #expect(pq.codebookBytes == 4 * 32 * 4 * 4)
    }

    @Test("product quantization: the reconstruction error falls as the number of pieces grows")
    func errorFallsWithPieces() {
        let data = Self.features(count: 800, dimension: 32, seed: 6)
        var errors: [Double] = []
        for m in [1, 2, 4, 8, 16] {
            var rng = RandomGenerator(seed: 2, label: "pq")
            let pq = ProductQuantizer(training: data, dimension: 32, subvectors: m, codebookSize: 16, random: &rng)
            let back = pq.decode(pq.encode(data))
            errors.append(zip(data, back).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) } / Double(data.count))
        }
        for i in 1..<errors.count { #expect(errors[i] < errors[i - 1], "\(errors)") }
        #expect(errors.last! < 0.25 * errors.first!, "\(errors)")
    }
}
