#if os(Linux)
import CMalloc
#endif

/// Process-wide settings: the allocator for training speed, and a sweep point's lifetime.
public enum Runtime {
    /// Asks the kernel to kill this process (SIGKILL) the moment its parent exits (Linux; false elsewhere or on
    /// failure). A sweep point's child uses it so it cannot outlive its rank: an orphan would go on writing the
    /// point's directory while a rerun starts the point again.
    public static func dieWithParent() -> Bool {
        #if os(Linux)
        return engram_set_parent_death_signal(SIGKILL) == 0
        #else
        return false
        #endif
    }

    /// Serves large tensor buffers from the heap instead of fresh `mmap`s.
    ///
    /// glibc maps every allocation above 128 KiB (growing adaptively) with `mmap` and returns it with
    /// `munmap`, so each training step page-faults its activations and gradients in anew. Raising the
    /// mmap threshold to its 32 MiB maximum and the trim threshold to 1 GiB keeps freed buffers for reuse
    /// (what a caching allocator does in other frameworks); allowing no mmapped chunks at all (`M_MMAP_MAX` 0)
    /// does the same for buffers above 32 MiB — a batch of 1 000 through ResNet-20 has 50 MB activations, and
    /// mapping them anew spent more time in page faults than in the convolutions (evaluation 2.2× faster).
    /// Call once at start-up; numbers are unchanged.
    public static func configureAllocator() {
        #if os(Linux)
        _ = mallopt(M_MMAP_THRESHOLD, 32 << 20)
        _ = mallopt(M_TRIM_THRESHOLD, 1 << 30)
        _ = mallopt(M_MMAP_MAX, 0)
        #endif
    }
}
