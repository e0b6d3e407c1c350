// What a node with several proxy addresses (PROXY_ADDRESSES) knows of the
// IPs behind each one's name, so that it can go to a new leader at once.
//
// When a proxy's container dies, the DNS of its network may leave names
// unanswered for seconds (podman's did, for the dead proxy's name and for
// the live ones'), while the other proxies elect a leader in well under a
// second. A node that looked each name up when it dialled waited that long
// before it reached the new leader. So every name is kept looked up (every
// kRefreshMs, each on a thread of its own: net::NameResolvers) and the node
// dials from the last answer; a failed look-up keeps it. A connect that
// fails drops it (the proxy may have come back elsewhere, with a new IP):
// the next dial of that name waits for a fresh answer, at most
// kLookupPatienceMs, and then the node tries the next address.
//
// Pure: the shell (ProxyLink) looks names up and dials when told to.
#pragma once

#include <cstddef>
#include <vector>

#include "common/time.h"
#include "net/asio.h"

namespace jc::node {

class ProxyIps {
 public:
  using Endpoints = std::vector<boost::asio::ip::tcp::endpoint>;
  // A second: a proxy's container restarted after a kill has a new IP,
  // and the old one answers no SYN (each dial of it costs the connect's
  // limit); a few queries a second are nothing to a DNS server.
  static constexpr TimeMs kRefreshMs = 1'000;
  static constexpr TimeMs kLookupPatienceMs = 500;
  static constexpr int kMaxLookups = 4;

  explicit ProxyIps(std::size_t addresses) : known_(addresses) {}

  // Where to dial address k: its last answer; empty when there is none
  // (never answered, or dropped after a failed connect): look it up first.
  const Endpoints& dial(std::size_t k) const { return known_.at(k).endpoints; }
  // Whether to look address k up now, and if so marks the look-up as
  // running (its answer serves every dial). Due when its answer is
  // kRefreshMs old, or when it has no endpoints and its last look-up is
  // kLookupPatienceMs old or `dialling` (a dial waits). While look-ups
  // run, another is due once the last has gone kLookupPatienceMs
  // unanswered (a DNS server that dropped a query may answer the next),
  // up to kMaxLookups at once (getaddrinfo may wait 10 s on a dropped one).
  bool start_lookup(std::size_t k, TimeMs now, bool dialling = false);
  bool looking_up(std::size_t k) const { return known_.at(k).in_flight > 0; }
  // A look-up's answer. `failed` (no answer, or no such name): the last
  // endpoints stay, since the proxy most likely still has them.
  void resolved(std::size_t k, Endpoints endpoints, TimeMs now, bool failed);
  // The DNS says there is no such name now: most likely a proxy's container
  // killed and not back yet, whose old IP answers no SYN; but podman's DNS
  // has said so of live proxies too, just after another was killed. So the
  // IPs stay, doubtful: the shell dials them with a short connect limit,
  // which a live proxy meets, until an answer comes.
  void gone(std::size_t k, TimeMs now) {
    resolved(k, {}, now, true);
    known_.at(k).doubtful = true;
  }
  bool doubtful(std::size_t k) const { return known_.at(k).doubtful; }
  // Dialling what dial(k) gave failed: dropped, so the next dial waits for
  // a fresh answer.
  void connect_failed(std::size_t k) { known_.at(k).endpoints.clear(); }

 private:
  struct Known {
    Endpoints endpoints;
    TimeMs at = 0;  // of the last answer (a failed look-up counts too)
    int in_flight = 0;          // look-ups running
    TimeMs lookup_started = 0;  // the last one's start
    bool doubtful = false;  // the DNS said the name is gone since they came
  };
  std::vector<Known> known_;
};

}  // namespace jc::node
