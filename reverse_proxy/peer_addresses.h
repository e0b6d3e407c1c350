// Which IPs each PROXY_PEERS entry's host name stands for, as this proxy
// last resolved it: a peer proxy's PEER_HELLO must come from one of them.
//
// The decisions are pure; the shell looks names up when told to, always
// asynchronously. A PEER_HELLO from an IP of the last answer is taken at
// once (the name is looked up again in the background when that answer is
// old: a slow DNS never holds a link between live proxies). One from
// another IP (a peer restarted in a container comes back with a new one)
// waits for a new answer, at most every kRetryMs, so a stranger's
// PEER_HELLOs cannot make the proxy query DNS at their pace.
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
    kMatches,    // the IP is the entry's
    kRefresh,    // it is, by an answer older than kFreshMs: taken, and the name looked up again
    kDiffers,    // it is not, by an answer younger than kRetryMs
    kResolve,    // look the name up (then ask again)
  };

  // `ip` in the form IPs are stored in (the shell normalizes v4-mapped IPv6).
  Verdict check(std::size_t entry, const std::string& ip, TimeMs now) const;
  // The answer of a look-up; `failed`: none came (a DNS server that did
  // not answer, or a name it no longer has): the last IPs stay, as the
  // peer most likely still has them, and the retry pause applies.
  void resolved(std::size_t entry, std::vector<std::string> ips, TimeMs now, bool failed = false);
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
