// A caching allocator for host tensors, installed in place of c10's default CPU allocator.
//
// Why: glibc serves every block above its mmap threshold (32 MB at most) with a fresh mmap and unmaps it
// on free, and trims free memory off the heap's top. Each training or sampling step then faulted its large
// activations in again, page by page: half a million faults, 5–10 % of a 512 px SD1.5 training step on a
// CPU. Steps repeat the same sizes, so freed blocks of 1 MiB and more are kept by size and handed out again.
//
// Bound: the process holds in large blocks (live + cached) at most a quarter more than its peak of live ones,
// less where memory is short (`held_limit`). A request the cache cannot serve first frees the least recently
// freed blocks beyond that, and a failed allocation frees the whole cache and tries once more.
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>

#include <algorithm>
#include <atomic>
#include <list>
#include <mutex>
#include <unistd.h>
#include <unordered_map>
#include <vector>

#include "ctorch.h"

namespace {

constexpr size_t kMinCachedBytes = size_t(1) << 20;
constexpr size_t kPageBytes = 4096;

class CachingHostAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t n) override {
    void *p = n < kMinCachedBytes ? c10::alloc_cpu(n) : take((n + kPageBytes - 1) / kPageBytes * kPageBytes);
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
    std::vector<void *> freed;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      while (!by_age_.empty()) evict_oldest(freed);
    }
    for (void *p : freed) c10::free_cpu(p);
  }

  ct_host_memory_stats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

 private:
  struct Block {
    size_t size;
    void *data;
  };

  static void release(void *p) { shared().give_back(p); }

  void *take(size_t size) {
    std::vector<void *> freed;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto same = free_by_size_.find(size);
      if (same != free_by_size_.end() && !same->second.empty()) {
        auto block = same->second.back();  // the most recently freed: likeliest still in the CPU's caches
        same->second.pop_back();
        void *p = block->data;
        by_age_.erase(block);
        stats_.cached_bytes -= size;
        record_live(p, size);
        ++stats_.hits;
        return p;
      }
      ++stats_.misses;
      const size_t limit = held_limit(std::max<size_t>(stats_.peak_live_bytes, stats_.live_bytes + size));
      while (!by_age_.empty() && stats_.live_bytes + size + stats_.cached_bytes > limit) evict_oldest(freed);
    }
    for (void *q : freed) c10::free_cpu(q);
    void *p = nullptr;
    try {
      p = c10::alloc_cpu(size);
    } catch (const c10::Error &) {
      empty_cache();
      p = c10::alloc_cpu(size);  // a second failure propagates as the default allocator's error
    }
    std::lock_guard<std::mutex> lock(mutex_);
    record_live(p, size);
    return p;
  }

  void give_back(void *p) {
    if (p == nullptr) return;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto live = live_.find(p);
      if (live != live_.end()) {
        const size_t size = live->second;
        live_.erase(live);
        stats_.live_bytes -= size;
        by_age_.push_back({size, p});
        free_by_size_[size].push_back(std::prev(by_age_.end()));
        stats_.cached_bytes += size;
        return;
      }
    }
    c10::free_cpu(p);  // a block below the caching size
  }

  // What may be held, live and cached, for a given peak: a quarter more than the peak (with none, blocks a
  // step frees late and the next wants early evict each other: a hundred misses a step at SD1.5 sizes),
  // and never more than a quarter of the memory the peak leaves free.
  static size_t held_limit(size_t peak) {
    static const size_t physical = size_t(sysconf(_SC_PHYS_PAGES)) * size_t(sysconf(_SC_PAGE_SIZE));
    const size_t headroom = physical > peak ? (physical - peak) / 4 : 0;
    return peak + std::min(peak / 4, headroom);
  }

  void record_live(void *p, size_t size) {
    live_.emplace(p, size);
    stats_.live_bytes += size;
    stats_.peak_live_bytes = std::max(stats_.peak_live_bytes, stats_.live_bytes);
  }

  // Caller holds the lock; the memory is freed after it is released.
  void evict_oldest(std::vector<void *> &freed) {
    auto oldest = by_age_.begin();
    auto &same = free_by_size_[oldest->size];
    same.erase(std::find(same.begin(), same.end(), oldest));
    stats_.cached_bytes -= oldest->size;
    freed.push_back(oldest->data);
    by_age_.erase(oldest);
  }

  std::mutex mutex_;
  std::unordered_map<void *, size_t> live_;                                   // large blocks in use
  std::list<Block> by_age_;                                                   // cached, oldest first
  std::unordered_map<size_t, std::vector<std::list<Block>::iterator>> free_by_size_;
  ct_host_memory_stats stats_{};
};

std::once_flag installed;
std::atomic<bool> is_installed{false};

}  // namespace

extern "C" {

void ct_host_cache_install(void) {
  std::call_once(installed, [] {
    // Above the default's priority 0, so nothing registered later at the default replaces it.
    c10::SetCPUAllocator(&CachingHostAllocator::shared(), 1);
    is_installed = true;
  });
}

bool ct_host_cache_is_installed(void) { return is_installed; }

void ct_host_cache_empty(void) { CachingHostAllocator::shared().empty_cache(); }

ct_host_memory_stats ct_host_cache_stats(void) { return CachingHostAllocator::shared().stats(); }

}  // extern "C"
