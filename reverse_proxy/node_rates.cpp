#include "reverse_proxy/node_rates.h"

#include <algorithm>

namespace jc::proxy {

void NodeRate::update(std::uint64_t finished, TimeMs now) {
  constexpr TimeMs kWindowMs = 25;
  constexpr TimeMs kMemoryMs = 500;  // slower: a window this long replaces the old rate
  if (since == 0 || now < since) {
    since = now;
    base = finished;
    return;
  }
  if (now - last_result >= kMemoryMs) {
    per_second = 0;
    since = now;
    base = finished;
    return;
  }
  TimeMs elapsed = now - since;
  if (elapsed < kWindowMs) return;
  double rate = static_cast<double>(finished - base) * 1000.0 / elapsed;
  if (rate > per_second) {
    per_second = rate;
  } else {
    double weight = std::min(1.0, static_cast<double>(elapsed) / kMemoryMs);
    per_second = (1 - weight) * per_second + weight * rate;
  }
  since = now;
  base = finished;
}

std::uint32_t NodeRate::prefetch(TimeMs prefetch_ms) const {
  double jobs = per_second * static_cast<double>(prefetch_ms) / 1000.0;
  return static_cast<std::uint32_t>(std::min<double>(jobs, kMaxAdaptivePrefetch));
}

void FinishRate::update(std::uint64_t finished_total, TimeMs now) {
  if (finished_total == 0) return;
  if (window_start == 0) window_start = now;
  TimeMs elapsed = now - window_start;
  if (elapsed < 1000) return;
  double rate = static_cast<double>(finished_total - window_count) * 1000.0 / elapsed;
  per_second = per_second == 0 ? rate : 0.5 * per_second + 0.5 * rate;
  window_start = now;
  window_count = finished_total;
}

}  // namespace jc::proxy
