import Foundation

/// The processes that train one model together (data parallelism): each member runs the same program on the same
/// data, computes on its shard of every batch, and sums what the shards produced across the members. Engram's CLI
/// implements it over MPI (`engram run --data-parallel` under `mpirun`); ``ThreadGroup`` implements it over threads
/// of one process (tests, and a reference for other transports).
///
/// Every member must call the collective operations in the same order with the same counts; each returns the same
/// bits on every member.
public protocol ProcessGroup: AnyObject {
    /// This member's index, 0 ..< `size`.
    var rank: Int { get }
    /// The number of members.
    var size: Int { get }
    /// Replaces `values` on every member by their elementwise sum over the members.
    func sum(_ values: inout [Float])
    /// Replaces `values` on every member by their elementwise sum over the members.
    func sum(_ values: inout [Double])
}

extension ProcessGroup {
    /// The rows of a batch of `count` samples this member trains on, and its share of the batch's mean loss: a
    /// contiguous block of ⌊count·r/size⌋ ..< ⌊count·(r+1)/size⌋ (sizes differ by at most one), share = rows/count.
    /// A batch with fewer samples than members is not split: every member takes all of it with share 1/size (the
    /// shares' gradients still sum to the batch's).
    public func shard(of count: Int) -> (rows: Range<Int>, share: Float) {
        guard count >= size else { return (0..<count, 1 / Float(size)) }
        let rows = count * rank / size ..< count * (rank + 1) / size
        return (rows, Float(rows.count) / Float(count))
    }

    /// Whether every member holds the same `words` (e.g. a hash of its parameters): compares the sum over members
    /// with `size` times this member's own, word by word (exact in Double for 32-bit words).
    public func allHold(_ words: [UInt32]) -> Bool {
        var sums = words.map(Double.init)
        sum(&sums)
        return zip(sums, words).allSatisfy { $0 == Double($1) * Double(size) }
    }
}

/// A ``ProcessGroup`` whose members are threads of this process: `size` threads each run the same program with their
/// own model, calling ``ThreadGroup/Member`` methods in the same order. A sum waits until every member has arrived,
/// then adds their contributions in rank order (the same bits on every member, and the same as a sequential sum).
public final class ThreadGroup: @unchecked Sendable {
    public let size: Int
    private let condition = NSCondition()
    private var contributions: [[Double]?]
    private var result: [Double] = []
    private var arrived = 0, generation = 0, collected = 0

    public init(size: Int) {
        precondition(size > 0, "a thread group needs at least one member")
        self.size = size
        contributions = Array(repeating: nil, count: size)
    }

    /// The member of rank `rank`.
    public func member(_ rank: Int) -> Member { Member(group: self, rank: rank) }

    /// The sum over members of `values` (every member passes the same count).
    func reduce(_ values: [Double], rank: Int) -> [Double] {
        condition.lock()
        defer { condition.unlock() }
        // A member of the next sum waits until every member has collected this one.
        while collected != 0 { condition.wait() }
        let mine = generation
        contributions[rank] = values
        arrived += 1
        if arrived == size {
            var total = contributions[0]!
            for r in 1..<size {
                precondition(contributions[r]!.count == total.count, "thread group: members summed different counts")
                for i in total.indices { total[i] += contributions[r]![i] }
            }
            result = total
            arrived = 0
            generation += 1
            collected = size
            condition.broadcast()
        } else {
            while generation == mine { condition.wait() }
        }
        let answer = result
        collected -= 1
        if collected == 0 {
            contributions = Array(repeating: nil, count: size)
            condition.broadcast()
        }
        return answer
    }

    /// One thread's view of the group.
    public final class Member: ProcessGroup, @unchecked Sendable {
        let group: ThreadGroup
        public let rank: Int
        init(group: ThreadGroup, rank: Int) { self.group = group; self.rank = rank }
        public var size: Int { group.size }
        /// Summed in Double, in rank order, then rounded once (as an MPI sum over Float may not be: the transports
        /// agree with a sequential sum to rounding, not bit for bit).
        public func sum(_ values: inout [Float]) {
            values = group.reduce(values.map(Double.init), rank: rank).map(Float.init)
        }
        public func sum(_ values: inout [Double]) { values = group.reduce(values, rank: rank) }
    }
}
