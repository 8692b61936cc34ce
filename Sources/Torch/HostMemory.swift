// Host (CPU) memory for tensors: the caching allocator and its counters (CTorch/host_allocator.cpp).
import CTorch
import Foundation

public enum HostMemory {
    /// Installs the caching allocator for host tensors: blocks of 1 MiB and more that tensors free are kept
    /// by size and handed out again, so a training or sampling step reuses the pages the previous step
    /// faulted in instead of mapping and zeroing them afresh (glibc unmaps every block above 32 MB on free).
    /// Large blocks held, in use or cached, stay within a quarter above the process's peak in use (less where
    /// memory is short), and a failed allocation first frees the cache. Once per process, before
    /// the work; it cannot be undone. Returns whether it is installed: not with `INKWELL_HOST_CACHE=0`.
    @discardableResult
    public static func enableCaching(environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        if environment["INKWELL_HOST_CACHE"] == "0" { return isCaching }
        ct_host_cache_install()
        return true
    }

    public static var isCaching: Bool { ct_host_cache_is_installed() }

    /// Frees every cached block (the memory goes back to the system).
    public static func releaseCached() { ct_host_cache_empty() }

    /// Counters of the blocks the cache handles (1 MiB and more).
    public struct Statistics: Equatable, Sendable {
        public var liveBytes: Int, cachedBytes: Int, peakLiveBytes: Int
        /// Requests served from the cache, and those that had to allocate.
        public var hits: Int, misses: Int
    }

    public static var statistics: Statistics {
        let s = ct_host_cache_stats()
        return Statistics(liveBytes: Int(s.live_bytes), cachedBytes: Int(s.cached_bytes),
                          peakLiveBytes: Int(s.peak_live_bytes), hits: Int(s.hits), misses: Int(s.misses))
    }
}
