// The caching host allocator: freed large blocks are reused without new page faults, what it holds stays
// bounded, values are not disturbed, and running out of memory is still the catchable error.
import Foundation
import Testing
@testable import Torch

/// Minor page faults of the whole process so far (every thread's: libtorch's workers fill tensors too).
private func minorFaults() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return usage.ru_minflt
}

private let largeElements = 16 << 20  // 64 MB of float32: above glibc's largest mmap threshold (32 MB)

/// Faults taken while a 64 MB tensor is allocated, filled and freed.
private func faultsForLargeTensor() throws -> Int {
    let before = minorFaults()
    do { _ = try Tensor.ones([largeElements]) }
    return minorFaults() - before
}

// The allocator is installed when the shim loads, so every test in the process runs on it.
@Suite("Host memory cache") struct HostMemoryTests {
    @Test func freedLargeBlocksAreReusedWithoutFaults() throws {
        try #require(HostMemory.isCaching, "INKWELL_HOST_CACHE=0 is set: these tests need the caching allocator")
        // With glibc's default every call maps the 64 MB afresh and faults all of its 16384 pages in.
        let pages = largeElements * 4 / Int(sysconf(Int32(_SC_PAGESIZE)))
        _ = try faultsForLargeTensor()
        let before = HostMemory.statistics
        let faults = try faultsForLargeTensor()
        let after = HostMemory.statistics
        #expect(faults < pages / 100, "\(faults) faults for \(pages) pages freed and allocated again")
        #expect(after.hits == before.hits + 1 && after.misses == before.misses)

        // A reused block holds whatever the last tensor left: each op still writes all of its output.
        let x = try Tensor.randn([2048, 2048], generator: try Generator(seed: 1))
        let expected = try x.matmul(x).sum().item()
        do { _ = try Tensor.full([2048, 2048], .nan) }
        #expect(try x.matmul(x).sum().item() == expected)
        #expect(try Tensor.zeros([2048, 2048]).abs().max().item() == 0)
    }

    @Test func aFreedBlockServesRequestsUpToAQuarterSmaller() throws {
        try #require(HostMemory.isCaching)
        HostMemory.releaseCached()
        let mb = 1 << 18  // float32 elements in 1 MiB
        do { _ = try Tensor.empty([8 * mb]) }
        let start = HostMemory.statistics
        do { _ = try Tensor.empty([7 * mb]) }  // fits the cached 8 MiB block
        let reused = HostMemory.statistics
        #expect(reused.hits == start.hits + 1 && reused.misses == start.misses)
        do { _ = try Tensor.empty([6 * mb]) }  // 8 MiB would waste more than a quarter: a new block
        #expect(HostMemory.statistics.misses == reused.misses + 1)
    }

    /// The window peak is what tensors held since the reset, freed ones included, and not the cache's slack.
    @Test func theWindowPeakCountsLiveTensorsSinceTheReset() throws {
        try #require(HostMemory.isCaching)
        let mb = 1 << 18  // float32 elements in 1 MiB
        do { _ = try Tensor.empty([32 * mb]) }  // cached afterwards: slack, not live
        HostMemory.resetWindowPeak()
        let start = HostMemory.statistics
        #expect(start.windowPeakLiveBytes == start.liveBytes)
        do {
            let a = try Tensor.empty([8 * mb]), b = try Tensor.empty([4 * mb])
            #expect(HostMemory.statistics.windowPeakLiveBytes >= start.liveBytes + a.count * 4 + b.count * 4)
        }
        let end = HostMemory.statistics
        #expect(end.liveBytes == start.liveBytes)
        #expect(end.windowPeakLiveBytes - start.liveBytes >= 12 << 20)
        #expect(end.windowPeakLiveBytes - start.liveBytes < 32 << 20, "the cached 32 MiB block is not live")
    }

    @Test func heldMemoryStaysWithinAQuarterAboveThePeak() throws {
        try #require(HostMemory.isCaching)
        HostMemory.releaseCached()
        #expect(HostMemory.statistics.cachedBytes == 0)
        // Twenty growing sizes of about an eighth of the process's peak so far (earlier tests set it), each
        // freed before the next: none fits a cached one, and without eviction the cache would keep about
        // 2.5 peaks. `empty` maps without touching the pages, so this stays cheap at any peak.
        let mb = 1 << 18  // float32 elements in 1 MiB
        let base = max(HostMemory.statistics.peakLiveBytes / 8 / (1 << 20), 2)
        for k in 0..<20 { _ = try Tensor.empty([(base + k) * mb]) }
        let s = HostMemory.statistics
        #expect(s.liveBytes + s.cachedBytes <= s.peakLiveBytes + s.peakLiveBytes / 4, "\(s)")
        #expect(s.cachedBytes > 0)
        HostMemory.releaseCached()
        #expect(HostMemory.statistics.cachedBytes == 0)
    }

    @Test func aFailedAllocationFreesTheCacheAndStaysCatchable() throws {
        try #require(HostMemory.isCaching)
        do { _ = try Tensor.ones([largeElements]) }
        #expect(HostMemory.statistics.cachedBytes >= largeElements * 4)
        _ = allocatingFourEiBMessage()
        #expect(HostMemory.statistics.cachedBytes == 0)
        #expect(try Tensor.ones([largeElements]).sum().item() == Double(largeElements))
    }
}
