#include "common/counters.h"

#include <dlfcn.h>
#include <fmt/format.h>

#include <cstddef>

namespace jc::counters {

Counters& get() {
  static Counters counters;
  return counters;
}

bool heap_allocations(std::uint64_t& out) {
  // jemalloc's mallctl, looked up at run time: the binaries link jemalloc
  // where the system has it, and the tests do not.
  using Mallctl = int (*)(const char*, void*, std::size_t*, void*, std::size_t);
  static const auto mallctl = reinterpret_cast<Mallctl>(dlsym(RTLD_DEFAULT, "mallctl"));
  if (mallctl == nullptr) return false;
  std::uint64_t epoch = 1;
  std::size_t size = sizeof(epoch);
  if (mallctl("epoch", &epoch, &size, &epoch, size) != 0) return false;
  // Every arena's (MALLCTL_ARENAS_ALL is 4096) small and large allocations.
  std::uint64_t small = 0, large = 0;
  size = sizeof(small);
  if (mallctl("stats.arenas.4096.small.nrequests", &small, &size, nullptr, 0) != 0) return false;
  size = sizeof(large);
  if (mallctl("stats.arenas.4096.large.nrequests", &large, &size, nullptr, 0) != 0) return false;
  out = small + large;
  return true;
}

std::string summary() {
  const Counters& c = get();
  auto v = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  std::uint64_t allocations = 0;
  bool known = heap_allocations(allocations);
  return fmt::format(
      "frames_out={} frames_in={} link_bytes_out={} link_bytes_in={} store_writes={} "
      "store_synced_writes={} store_bytes={} allocations={}",
      v(c.frames_out), v(c.frames_in), v(c.link_bytes_out), v(c.link_bytes_in), v(c.store_writes),
      v(c.store_synced_writes), v(c.store_bytes), known ? std::to_string(allocations) : "unknown");
}

}  // namespace jc::counters
