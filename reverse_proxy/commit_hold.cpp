#include "reverse_proxy/commit_hold.h"

namespace jc::proxy {

CommitHold::Decision CommitHold::decide(bool sent_jobs, bool sync_required, bool only_acks,
                                        Clock::time_point now) {
  if (hold_ <= Clock::duration::zero() || !sync_required || !only_acks) {
    until_.reset();
    return Decision::kCommit;
  }
  if (until_) {
    if (now < *until_) return Decision::kHold;
    until_.reset();
    return Decision::kCommit;
  }
  if (!sent_jobs) return Decision::kCommit;
  until_ = now + hold_;
  return Decision::kStartHold;
}

}  // namespace jc::proxy
