// The balancer's rate logic: how fast a node delivers results (smoothed),
// and the adaptive prefetch that follows from it (README: Balance). Pure:
// time comes in as an argument.
#pragma once

#include <cstdint>

#include "common/time.h"

namespace jc::proxy {

struct NodeRate {
  static constexpr std::uint32_t kMaxAdaptivePrefetch = 1000;

  double per_second = 0;  // results per second, smoothed
  TimeMs since = 0;       // start of the current window
  std::uint64_t base = 0;  // results delivered at `since`
  TimeMs last_result = 0;  // when the node last delivered one

  // With `finished` results delivered so far, at `now`: faster at once (a
  // burst of short jobs needs the room now), slower over half a second, and
  // zero after half a second without a result (a burst of long jobs after a
  // pause must not find room for piles).
  void update(std::uint64_t finished, TimeMs now);
  // Jobs beyond its slots that it finishes in `prefetch_ms` (capped).
  std::uint32_t prefetch(TimeMs prefetch_ms) const;
};

// The cluster's completion rate (jobs per second, smoothed over windows of a
// second), for a queued job's estimated wait.
struct FinishRate {
  double per_second = 0;
  TimeMs window_start = 0;
  std::uint64_t window_count = 0;
  void update(std::uint64_t finished_total, TimeMs now);
};

}  // namespace jc::proxy
