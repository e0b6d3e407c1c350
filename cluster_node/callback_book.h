// The callbacks a node owes (judge0's callback_url): one record per job,
// "c/<ticket>", staged in the same commit as the origin record that got the
// job's result, so a crash between the two loses neither and a restart
// resumes every callback that was due. Each is tried until its receiver
// answers 2xx, again after a backoff (1 s, doubling, at most 5 min), and
// given up CALLBACK_RETRY_S after its first try. Pure: the shell sends
// (api/callbacks.h) and says how it went; runs on the event-loop thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/time.h"
#include "protocol/fields.h"
#include "storage/staged.h"

namespace jc::node {

class CallbackBook {
 public:
  struct Entry {
    std::uint32_t attempts = 0;
    TimeMs first_ms = 0;  // the first try (0: not tried yet)
    TimeMs next_ms = 0;   // due from then

    template <class A>
    void serialize(A& ar, unsigned) {
      protocol::fields(ar, attempts, first_ms, next_ms);
    }
  };
  static constexpr TimeMs kFirstBackoffMs = 1000;
  static constexpr TimeMs kMaxBackoffMs = 300'000;

  explicit CallbackBook(storage::Staged& staged) : staged_(staged) {}
  // Reads the records left by an earlier process.
  Status recover();
  // The job's result is known: its callback is due now.
  void owe(const std::string& ticket);
  // Up to `max` callbacks due at `now` and not in `busy`, the longest due first.
  std::vector<std::string> due(TimeMs now, std::size_t max, const std::set<std::string>& busy) const;
  // The receiver answered 2xx: done.
  void answered(const std::string& ticket);
  // An attempt failed: tried again after a backoff, unless `give_up_ms`
  // passed since the first try (then dropped, and false).
  bool failed(const std::string& ticket, TimeMs now, TimeMs give_up_ms);
  // The job is gone (RESULT_TTL): its callback too.
  void forget(const std::string& ticket);
  std::size_t size() const { return entries_.size(); }
  std::optional<Entry> entry(const std::string& ticket) const;

 private:
  static std::string key(const std::string& ticket) { return "c/" + ticket; }
  void store(const std::string& ticket, const Entry& e);
  storage::Staged& staged_;
  std::map<std::string, Entry> entries_;
};

}  // namespace jc::node
