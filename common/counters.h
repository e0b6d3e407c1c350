// What a process has done, counted since it started: frames and bytes on
// its links to other processes, LevelDB writes (synced or not) and their
// bytes, and heap allocations. The benchmarks divide them by the jobs of a
// run (docs/benchmarks.md, per-job figures); an operator gets them with
// SIGUSR1, which logs one `counters ...` line. Process-wide relaxed atomics:
// the peer links of replicated proxies have a thread of their own.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace jc::counters {

struct Counters {
  std::atomic<std::uint64_t> frames_out{0}, frames_in{0};
  std::atomic<std::uint64_t> link_bytes_out{0}, link_bytes_in{0};
  std::atomic<std::uint64_t> store_writes{0}, store_synced_writes{0}, store_bytes{0};
};

Counters& get();

inline void add(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) {
  c.fetch_add(n, std::memory_order_relaxed);
}

// Allocations since start, as the allocator counts them (jemalloc, when it
// is the process's allocator and keeps statistics); false otherwise.
bool heap_allocations(std::uint64_t& out);

// "frames_out=... frames_in=... link_bytes_out=... link_bytes_in=...
// store_writes=... store_synced_writes=... store_bytes=... allocations=..."
// (allocations=unknown without jemalloc's statistics).
std::string summary();

}  // namespace jc::counters
