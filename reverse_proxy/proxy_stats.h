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
  // The last kMaxRecentJobs finished, oldest first (the dashboard's list).
  struct RecentJob {
    std::string ticket, state, verdict, node, owner;
    std::int32_t language_id = 0;  // a judge0 submission's; 0 for others
    std::int64_t cpu_ms = 0, peak_kb = 0, wall_ms = 0, finished_ms = 0;
  };
  std::deque<RecentJob> recent_jobs;

  static constexpr std::size_t kMaxEvents = 20;
  static constexpr std::size_t kMaxRecentJobs = 50;
  void finished_job(RecentJob job) {
    recent_jobs.push_back(std::move(job));
    if (recent_jobs.size() > kMaxRecentJobs) recent_jobs.pop_front();
  }
  void note(TimeMs now, std::string event) {
    events.push_back(format_time(now) + " " + std::move(event));
    if (events.size() > kMaxEvents) events.pop_front();
  }
};

}  // namespace jc::proxy
