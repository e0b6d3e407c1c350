// What the proxy counts for `stats`, /metrics and the dashboard: totals since
// it started (or took over as leader), jobs finished by state, the cluster's
// completion rate, and the last notable events. Volatile: rebuilt from
// nothing at every start; no decision depends on it.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

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
  struct RecentJob {
    std::string ticket, state, verdict, node, owner;
    std::int32_t language_id = 0;  // a judge0 submission's; 0 for others
    std::int64_t cpu_ms = 0, peak_kb = 0, wall_ms = 0, finished_ms = 0;
  };

  static constexpr std::size_t kMaxEvents = 20;
  static constexpr std::size_t kMaxRecentJobs = 50;
  // The slot of the next finished job, to fill in place: a ring of
  // kMaxRecentJobs whose strings keep their room, so that recording a job
  // (every job, for the last 50 shown) allocates nothing once warm.
  RecentJob& next_recent_job() {
    if (recent_.size() < kMaxRecentJobs) return recent_.emplace_back();
    RecentJob& slot = recent_[recent_next_];
    recent_next_ = (recent_next_ + 1) % kMaxRecentJobs;
    return slot;
  }
  // The last kMaxRecentJobs finished, oldest first (the dashboard's list).
  std::vector<RecentJob> recent_jobs() const {
    std::vector<RecentJob> out;
    out.reserve(recent_.size());
    for (std::size_t i = 0; i < recent_.size(); ++i) {
      out.push_back(recent_[(recent_next_ + i) % recent_.size()]);
    }
    return out;
  }

  void note(TimeMs now, std::string event) {
    events.push_back(format_time(now) + " " + std::move(event));
    if (events.size() > kMaxEvents) events.pop_front();
  }

 private:
  std::vector<RecentJob> recent_;
  std::size_t recent_next_ = 0;  // the oldest, once full
};

}  // namespace jc::proxy
