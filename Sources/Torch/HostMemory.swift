// Host (CPU) memory for tensors: the caching allocator and its counters (CTorch/host_allocator.cpp).
import CTorch

/// Host tensors of 1 MiB and more come from a caching allocator, installed when the process loads:
/// blocks that tensors free are kept and handed out again for the same size or up to a quarter smaller, so
/// a training or sampling step reuses the pages the previous step faulted in, where glibc would unmap every
/// block above 32 MB on free and fault it in afresh. Its blocks are 2 MiB-aligned and use transparent huge
/// pages. What it holds, in use and cached, stays within a quarter above the process's peak in use (less
/// where memory is short), and a failed allocation frees the cache first. `INKWELL_HOST_CACHE=0` in the
/// environment keeps libtorch's default allocator.
public enum HostMemory {
    public static var isCaching: Bool { ct_host_cache_is_installed() }

    /// Frees every cached block (the memory goes back to the system).
    public static func releaseCached() { ct_host_cache_empty() }

    /// Counters of the blocks the cache handles (1 MiB and more).
    public struct Statistics: Equatable, Sendable {
        public var liveBytes: Int, cachedBytes: Int, peakLiveBytes: Int
        /// Requests served from the cache, and those that had to map a new block.
        public var hits: Int, misses: Int
        /// The peak of `liveBytes` since `resetWindowPeak()`: what a measured stretch of work held in
        /// tensors (torch.cuda.max_memory_allocated's counterpart on the host, for blocks of 1 MiB and more).
        public var windowPeakLiveBytes: Int
    }

    public static var statistics: Statistics {
        let s = ct_host_cache_stats()
        return Statistics(liveBytes: Int(s.live_bytes), cachedBytes: Int(s.cached_bytes),
                          peakLiveBytes: Int(s.peak_live_bytes), hits: Int(s.hits), misses: Int(s.misses),
                          windowPeakLiveBytes: Int(s.window_peak_live_bytes))
    }

    /// Starts a new window for `Statistics.windowPeakLiveBytes` at what is live now.
    public static func resetWindowPeak() { ct_host_cache_reset_window_peak() }
}
