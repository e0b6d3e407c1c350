// Which IPs each PROXY_PEERS entry's host name stands for, as this proxy
// last resolved it: a peer proxy's PEER_HELLO must come from one of them.
//
// The decisions are pure; the shell looks names up when told to, always
// asynchronously. A name is looked up again when its answer is old, and
// when a PEER_HELLO comes from another IP (a peer restarted in a container
// comes back with a new one), but at most every kRetryMs for that, so a
// stranger's PEER_HELLOs cannot make the proxy query DNS at their pace.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "common/time.h"

namespace jc::proxy {

class PeerAddresses {
 public:
  static constexpr TimeMs kFreshMs = 10'000;  // a match in an answer this young is enough
  static constexpr TimeMs kRetryMs = 1'000;   // an IP not in the answer: look again after this

  enum class Verdict {
    kMatches,  // the IP is the entry's
    kDiffers,  // it is not, by an answer younger than kRetryMs
    kResolve,  // look the name up (then ask again)
  };

  // `ip` in the form IPs are stored in (the shell normalizes v4-mapped IPv6).
  Verdict check(std::size_t entry, const std::string& ip, TimeMs now) const;
  // The answer of a look-up (empty when the name did not resolve).
  void resolved(std::size_t entry, std::vector<std::string> ips, TimeMs now);
  // One look-up at a time per entry: the shell marks it while it runs.
  bool start_resolving(std::size_t entry);

 private:
  struct Known {
    TimeMs at = 0;
    std::vector<std::string> ips;
    bool resolving = false;
    bool answered = false;
  };
  std::map<std::size_t, Known> known_;
};

}  // namespace jc::proxy
