/// A seeded pseudo-random generator (xoshiro256**, seeded through SplitMix64).
///
/// Every random choice in Engram takes one of these, derived from the run's seed and a purpose
/// label (`seed → "permutation/task 3"`), so adding randomness in one place never shifts the
/// numbers drawn elsewhere. The whole state is four words and can be saved and restored.
public struct RandomGenerator: RandomNumberGenerator, Sendable, Hashable, Codable {
    /// The xoshiro256** state.
    public var state: (UInt64, UInt64, UInt64, UInt64) {
        get { (s0, s1, s2, s3) }
        set { (s0, s1, s2, s3) = newValue }
    }
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    /// Creates a generator whose whole stream is fixed by `seed`.
    public init(seed: UInt64) {
        var sm = seed
        s0 = RandomGenerator.splitMix(&sm)
        s1 = RandomGenerator.splitMix(&sm)
        s2 = RandomGenerator.splitMix(&sm)
        s3 = RandomGenerator.splitMix(&sm)
        if s0 | s1 | s2 | s3 == 0 { s0 = 0x9E37_79B9_7F4A_7C15 }
    }

    /// Restores a generator from a saved state.
    public init(state: (UInt64, UInt64, UInt64, UInt64)) {
        (s0, s1, s2, s3) = state
    }

    /// Creates a generator for one purpose: seed and label together fix its stream (FNV-1a of the label
    /// mixed into the seed), independent of every other label.
    public init(seed: UInt64, label: String) {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in label.utf8 {
            h ^= UInt64(byte)
            h = h &* 0x0000_0100_0000_01B3
        }
        self.init(seed: seed ^ (h &* 0x9E37_79B9_7F4A_7C15) &+ h)
    }

    /// A generator for a sub-purpose, derived from this one's current state and `label`
    /// without advancing this one.
    public func derived(_ label: String) -> RandomGenerator {
        RandomGenerator(seed: s0 ^ (s1 &<< 1) ^ (s2 &<< 2) ^ s3, label: label)
    }

    private static func splitMix(_ x: inout UInt64) -> UInt64 {
        x &+= 0x9E37_79B9_7F4A_7C15
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    @inline(__always)
    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) &<< 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = (s3 << 45) | (s3 >> 19)
        return result
    }

    /// Uniform in [0, 1) with 24 bits of precision.
    @inline(__always)
    public mutating func nextFloat() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// Uniform in [0, 1) with 53 bits of precision.
    @inline(__always)
    public mutating func nextDouble() -> Double {
        Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// Standard normal sample (Box–Muller; one sample per call, so the stream position is simple).
    public mutating func nextNormal() -> Float {
        var u1 = nextDouble()
        while u1 <= .leastNonzeroMagnitude { u1 = nextDouble() }
        let u2 = nextDouble()
        return Float((-2 * _log(u1)).squareRoot() * _cos(2 * Double.pi * u2))
    }

    /// Uniform integer in `0..<bound` (Lemire's unbiased method).
    public mutating func nextInt(below bound: Int) -> Int {
        precondition(bound > 0, "bound must be positive")
        return Int(next(upperBound: UInt64(bound)))
    }

    /// A uniformly random permutation of `0..<n` (Fisher–Yates).
    public mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        shuffle(&p)
        return p
    }

    /// `k` distinct integers of `0..<n` (all of them when k ≥ n), in the order drawn: uniform draws, repeats
    /// rejected. O(k) for k ≪ n, where a partial Fisher–Yates (the replay buffer's `sampleSlots`) first builds all n.
    public mutating func distinctIndices(_ k: Int, below n: Int) -> [Int] {
        var chosen: [Int] = [], taken = Set<Int>()
        let k = min(k, n)
        chosen.reserveCapacity(k)
        while chosen.count < k {
            let i = nextInt(below: n)
            if taken.insert(i).inserted { chosen.append(i) }
        }
        return chosen
    }

    /// Shuffles `array` in place (Fisher–Yates, from the end).
    public mutating func shuffle<T>(_ array: inout [T]) {
        if array.count < 2 { return }
        for i in stride(from: array.count - 1, to: 0, by: -1) {
            let j = nextInt(below: i + 1)
            if i != j { array.swapAt(i, j) }
        }
    }

    public static func == (a: RandomGenerator, b: RandomGenerator) -> Bool {
        a.s0 == b.s0 && a.s1 == b.s1 && a.s2 == b.s2 && a.s3 == b.s3
    }
    public func hash(into h: inout Hasher) { h.combine(s0); h.combine(s1); h.combine(s2); h.combine(s3) }
}

#if canImport(Glibc)
import Glibc
@inline(__always) func _log(_ x: Double) -> Double { Glibc.log(x) }
@inline(__always) func _cos(_ x: Double) -> Double { Glibc.cos(x) }
#elseif canImport(Darwin)
import Darwin
@inline(__always) func _log(_ x: Double) -> Double { Darwin.log(x) }
@inline(__always) func _cos(_ x: Double) -> Double { Darwin.cos(x) }
#endif
