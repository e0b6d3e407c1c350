// The history of client reads, and the check that no read went backwards
// (INTERFACE.md section 4): once any reply, from any node, has shown a
// ticket's final result, every reply to a read sent later shows that same
// result. Pure: the chaos test records, this judges; unit-tested on
// made-up histories.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <vector>

namespace jc::test {

class History {
 public:
  struct Read {
    std::string ticket, node, command, reply;
    std::chrono::steady_clock::time_point sent, received;
  };
  void record(Read r) {
    std::lock_guard lock(mutex_);
    reads_.push_back(std::move(r));
  }
  std::vector<Read> snapshot() const {
    std::lock_guard lock(mutex_);
    return reads_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<Read> reads_;
};

// What a reply claims about its ticket: nothing (an ERR that says it cannot
// tell), not final ("has not been executed", QUEUED, RUNNING, "unknown
// ticket"), or final with its state and, for `r`/`wait`, its result line.
struct Claim {
  enum Kind { kNone, kNotFinal, kFinal } kind = kNone;
  std::string state;
  std::string result;
};
Claim claim_of(const std::string& reply);

// One line per violation: "BACKWARDS <ticket>: ..." for a read sent after a
// final reply was received that shows the ticket not final (or in another
// final state), "ANOTHER RESULT <ticket>: ..." for two different results.
std::vector<std::string> backwards_reads(const std::vector<History::Read>& reads);

}  // namespace jc::test
