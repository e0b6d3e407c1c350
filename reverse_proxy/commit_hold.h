// Whether a single proxy's synced commit waits a moment (DiskCommit in
// commit_path.h), so that the results of the jobs it just sent share its
// fsync. Pure: the caller says what the turn holds and what time it is.
#pragma once

#include <chrono>
#include <optional>

namespace jc::proxy {

// A turn that sent JOBs and has only ACKs to send once durable (a
// submission's turn, typically) holds its commit for up to `hold`. A job
// that ends within it has its result staged in the same write, so an idle
// job costs the proxy one fsync, not two in a row. Nobody waits for those
// ACKs: the origin already gave the ticket after its own fsync. The hold
// ends at the first turn with anything else to send after the commit (a
// RESULT, a WELCOME...), or when it runs out.
class CommitHold {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Decision {
    kCommit,     // now
    kHold,       // not yet: a hold runs
    kStartHold,  // not yet: a hold starts; flush again after hold()
  };
  explicit CommitHold(Clock::duration hold) : hold_(hold) {}
  Decision decide(bool sent_jobs, bool sync_required, bool only_acks, Clock::time_point now);
  Clock::duration hold() const { return hold_; }
  void stop() {
    hold_ = Clock::duration::zero();
    until_.reset();
  }

 private:
  Clock::duration hold_;
  std::optional<Clock::time_point> until_;
};

}  // namespace jc::proxy
