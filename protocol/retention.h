// RESULT_TTL: how long a final job is kept, and the pure decisions about it
// that the proxy and the nodes share (INTERFACE.md sections 2 to 4).
//
// A job expires RESULT_TTL after its final time (JobResult::final_time():
// the proxy's time of its one result). Reads check that time themselves, so
// every process answers "expired" from the same moment, whatever its sweep
// has removed yet; the sweeps (every min(RESULT_TTL, 60 s)) then remove the
// records, and LevelDB compacts the ranges they held.
//
// Once a record is gone, a ticket is known to have expired by its counter:
// tickets are <prefix>-<counter>-<random>, a node's counter only grows, and
// a node forwards its jobs in counter order. So each process keeps, per
// prefix, the highest counter it removed: a ticket of that prefix not found
// with a counter at most that has expired. (A made-up ticket below it is
// answered "expired" too, which tells nothing: counters are not secret.)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/time.h"
#include "protocol/job.h"

namespace jc::protocol {

constexpr TimeMs kDefaultResultTtlMs = 7LL * 24 * 3600 * 1000;
constexpr TimeMs kMaxSweepPeriodMs = 60000;

struct Retention {
  TimeMs ttl_ms = kDefaultResultTtlMs;  // 0 keeps everything forever

  bool enabled() const { return ttl_ms > 0; }
  // A job final at `final_ms` (0: not known) is gone at `now`.
  bool expired(std::int64_t final_ms, TimeMs now) const {
    return enabled() && final_ms > 0 && final_ms <= now - ttl_ms;
  }
  // How often a sweep runs: a tenth of RESULT_TTL (at least a second, or
  // RESULT_TTL when shorter), at most 60 s. Small, frequent sweeps keep
  // memory and disk flat rather than a sawtooth of a whole TTL's jobs.
  TimeMs sweep_period_ms() const {
    TimeMs floor = ttl_ms < 1000 ? ttl_ms : 1000;
    TimeMs tenth = ttl_ms / 10 > floor ? ttl_ms / 10 : floor;
    return tenth < kMaxSweepPeriodMs ? tenth : kMaxSweepPeriodMs;
  }
  // How often the ranges sweeps emptied are compacted, at most: every
  // min(RESULT_TTL, 60 s). A compaction rewrites the tables the range
  // overlaps, the TTL's live jobs included, so not at every sweep.
  TimeMs compact_period_ms() const { return ttl_ms < kMaxSweepPeriodMs ? ttl_ms : kMaxSweepPeriodMs; }
};

// The report of a ticket whose job expired: nothing of it is left, not
// even its owner.
inline JobReport expired_report(const std::string& ticket) {
  JobReport r;
  r.ticket = ticket;
  r.state = JobState::kExpired;
  return r;
}

// What one sweep of expired jobs did.
struct SweepOutcome {
  std::size_t removed = 0;
  bool more = false;  // cut at its batch size: sweep again soon
  // Key ranges [first, last] that held removed records, for Store::compact
  // once the removal is committed.
  std::vector<std::pair<std::string, std::string>> compact;
};

// The key ranges sweeps emptied, merged per key space ("e/", "f/", ...),
// handed out for compaction at most once per period (the shells call due()
// right after a commit, so every range given is committed).
class CompactionPlan {
 public:
  void add(std::vector<std::pair<std::string, std::string>> ranges);
  // The merged ranges when `period` has passed since the last ones (and
  // there are any), else nothing.
  std::vector<std::pair<std::string, std::string>> due(TimeMs now, TimeMs period);

 private:
  std::vector<std::pair<std::string, std::string>> ranges_;
  TimeMs last_ = 0;
};

// The parts of a ticket as nodes issue them
// (<prefix>-<counter>-<11 random characters>, the counter without leading
// zeros: each ticket has one spelling); nullopt for any other.
constexpr std::size_t kTicketRandomChars = 11;
struct TicketParts {
  std::string_view prefix;
  std::uint64_t counter = 0;
  std::string_view random;
};
std::optional<TicketParts> parse_ticket(std::string_view ticket);

// Keys of the expiry index, "e/<final ms, 16 digits>/<rest>": a scan of
// "e/" visits records in the order they expire.
constexpr std::string_view kExpiryPrefix = "e/";
std::string expiry_key(std::int64_t final_ms, std::string_view rest);
// The time and the rest of an expiry key; nullopt for a malformed one.
std::optional<std::pair<std::int64_t, std::string_view>> parse_expiry_key(std::string_view key);

}  // namespace jc::protocol
