// A caching allocator for host tensors, installed in place of c10's default CPU allocator.
//
// Why: glibc serves every block above its mmap threshold (32 MB at most) with a fresh mmap and unmaps it
// on free, and trims free memory off the heap's top. Each training or sampling step then faulted its large
// activations in again, 4 KiB at a time: half a million faults, 5–10 % of a 512 px SD1.5 training step on
// a CPU. Here blocks of 1 MiB and more are mapped by the allocator itself, 2 MiB-aligned and marked for
// transparent huge pages (a fault then brings in 2 MiB, and large GEMMs miss the TLB less), and freed
// blocks are kept to serve later requests of the same size or up to a quarter smaller.
//
// Bound: the process holds in these blocks (live + cached) at most a quarter more than its peak of live
// ones, less where memory is short (`held_limit`). A request the cache cannot serve first unmaps the least
// recently freed blocks beyond that, and a failed mapping unmaps the whole cache and tries once more.
// Smaller blocks go to c10's default (glibc keeps those in its heap).
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <c10/util/Exception.h>

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cerrno>
#include <cstring>
#include <list>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "ctorch.h"

namespace {

constexpr size_t kMinCachedBytes = size_t(1) << 20;
constexpr size_t kHugePageBytes = size_t(2) << 20;
constexpr size_t kPageBytes = 4096;

size_t round_up(size_t n, size_t unit) { return (n + unit - 1) / unit * unit; }

// Blocks of 32 MiB and more are whole huge pages (at most 6 % more); smaller ones whole pages, which keeps
// a model's many 1–8 MiB weights from growing by up to a quarter.
constexpr size_t kWholeHugePagesFrom = size_t(32) << 20;
size_t block_size(size_t n) { return round_up(n, n >= kWholeHugePagesFrom ? kHugePageBytes : kPageBytes); }

class CachingHostAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t n) override {
    void *p = n < kMinCachedBytes ? c10::alloc_cpu(n) : take(block_size(n));
    return {p, p, &release, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &release; }

  void copy_data(void *dest, const void *src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }

  static CachingHostAllocator &shared() {
    static auto *instance = new CachingHostAllocator();  // never destroyed: tensors outlive static teardown
    return *instance;
  }

  void empty_cache() {
    std::vector<Block> freed;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      while (!by_age_.empty()) evict_oldest(freed);
    }
    unmap(freed);
  }

  ct_host_memory_stats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

  // Starts a new window for window_peak_live_bytes (a measurement's; the bound keeps the lifetime peak).
  void reset_window_peak() {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.window_peak_live_bytes = stats_.live_bytes;
  }

 private:
  struct Block {
    size_t size;
    void *data;
  };
  using Cached = std::list<Block>::iterator;

  static void release(void *p) { shared().give_back(p); }

  void *take(size_t size) {
    std::vector<Block> freed;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      // The smallest cached block that fits, if it is at most a quarter larger than needed.
      auto fit = free_by_size_.lower_bound(size);
      if (fit != free_by_size_.end() && fit->first <= size + size / 4) {
        const Block block = *fit->second;
        by_age_.erase(fit->second);
        free_by_size_.erase(fit);
        stats_.cached_bytes -= block.size;
        record_live(block);
        ++stats_.hits;
        return block.data;
      }
      ++stats_.misses;
      const size_t limit = held_limit(std::max<size_t>(stats_.peak_live_bytes, stats_.live_bytes + size));
      while (!by_age_.empty() && stats_.live_bytes + size + stats_.cached_bytes > limit) evict_oldest(freed);
    }
    unmap(freed);
    void *p = map(size);
    if (p == nullptr) {
      empty_cache();
      p = map(size);
      TORCH_CHECK_WITH(OutOfMemoryError, p != nullptr, "CachingHostAllocator: can't allocate memory: you tried to allocate ",
                       size, " bytes (", std::strerror(errno), ")");
    }
    std::lock_guard<std::mutex> lock(mutex_);
    record_live({size, p});
    return p;
  }

  void give_back(void *p) {
    if (p == nullptr) return;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto live = live_.find(p);
      if (live != live_.end()) {
        const Block block{live->second, p};
        live_.erase(live);
        stats_.live_bytes -= block.size;
        by_age_.push_back(block);
        free_by_size_.emplace(block.size, std::prev(by_age_.end()));
        stats_.cached_bytes += block.size;
        return;
      }
    }
    c10::free_cpu(p);  // a block below the caching size
  }

  // A fresh mapping of `size` bytes starting on a huge-page boundary, or nullptr.
  static void *map(size_t size) {
    const size_t padded = size + kHugePageBytes;
    void *raw = mmap(nullptr, padded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return nullptr;
    const auto start = reinterpret_cast<uintptr_t>(raw);
    const uintptr_t aligned = round_up(start, kHugePageBytes);
    if (aligned > start) munmap(raw, aligned - start);
    const uintptr_t end = aligned + round_up(size, kPageBytes);
    if (start + padded > end) munmap(reinterpret_cast<void *>(end), start + padded - end);
    if (size >= kHugePageBytes) madvise(reinterpret_cast<void *>(aligned), size, MADV_HUGEPAGE);  // a hint
    return reinterpret_cast<void *>(aligned);
  }

  static void unmap(const std::vector<Block> &blocks) {
    for (const Block &b : blocks) munmap(b.data, b.size);
  }

  // What may be held, live and cached, for a given peak: a quarter more than the peak (with none, blocks a
  // step frees late and the next wants early evict each other: a hundred misses a step at SD1.5 sizes),
  // and never more than a quarter of the memory the peak leaves free.
  static size_t held_limit(size_t peak) {
    static const size_t physical = size_t(sysconf(_SC_PHYS_PAGES)) * size_t(sysconf(_SC_PAGE_SIZE));
    const size_t headroom = physical > peak ? (physical - peak) / 4 : 0;
    return peak + std::min(peak / 4, headroom);
  }

  void record_live(const Block &block) {
    live_.emplace(block.data, block.size);
    stats_.live_bytes += block.size;
    stats_.peak_live_bytes = std::max(stats_.peak_live_bytes, stats_.live_bytes);
    stats_.window_peak_live_bytes = std::max(stats_.window_peak_live_bytes, stats_.live_bytes);
  }

  // Caller holds the lock; the blocks are unmapped after it is released.
  void evict_oldest(std::vector<Block> &freed) {
    const Block oldest = by_age_.front();
    auto [first, last] = free_by_size_.equal_range(oldest.size);
    for (auto it = first; it != last; ++it) {
      if (it->second == by_age_.begin()) {
        free_by_size_.erase(it);
        break;
      }
    }
    by_age_.pop_front();
    stats_.cached_bytes -= oldest.size;
    freed.push_back(oldest);
  }

  std::mutex mutex_;
  std::unordered_map<void *, size_t> live_;     // large blocks in use, by address
  std::list<Block> by_age_;                     // cached, least recently freed first
  std::multimap<size_t, Cached> free_by_size_;  // the same cached blocks, by size
  ct_host_memory_stats stats_{};
};

bool is_installed = false;

// Registered when the shim is loaded, as c10 registers its own default, so that every tensor a process
// makes, and every test, goes through the allocator users get. INKWELL_HOST_CACHE=0 keeps c10's default.
__attribute__((constructor)) void install() {
  const char *setting = std::getenv("INKWELL_HOST_CACHE");
  if (setting != nullptr && std::strcmp(setting, "0") == 0) return;
  // Above the default's priority 0, so nothing registered later at the default replaces it.
  c10::SetCPUAllocator(&CachingHostAllocator::shared(), 1);
  is_installed = true;
}

}  // namespace

extern "C" {

bool ct_host_cache_is_installed(void) { return is_installed; }

void ct_host_cache_empty(void) { CachingHostAllocator::shared().empty_cache(); }

ct_host_memory_stats ct_host_cache_stats(void) { return CachingHostAllocator::shared().stats(); }

void ct_host_cache_reset_window_peak(void) { CachingHostAllocator::shared().reset_window_peak(); }

}  // extern "C"
