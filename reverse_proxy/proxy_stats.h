// What the proxy counts for `stats`, /metrics and the dashboard: totals since
// it started (or took over as leader), jobs finished by state, the cluster's
// completion rate, and the last notable events. Volatile: rebuilt from
// nothing at every start; no decision depends on it.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>

#include "common/time.h"
#include "protocol/job.h"
#include "reverse_proxy/node_rates.h"

namespace jc::proxy {

struct ProxyStats {
  std::uint64_t submitted = 0;
  std::uint64_t finished = 0;
  std::uint64_t redispatched = 0;
  std::uint64_t dispatched = 0;
  std::uint64_t expired = 0;
  std::map<protocol::JobState, std::uint64_t> finished_by_state;
  FinishRate finish_rate;
  std::deque<std::string> events;  // the last kMaxEvents, oldest first

  static constexpr std::size_t kMaxEvents = 20;
  void note(TimeMs now, std::string event) {
    events.push_back(format_time(now) + " " + std::move(event));
    if (events.size() > kMaxEvents) events.pop_front();
  }
};

}  // namespace jc::proxy
