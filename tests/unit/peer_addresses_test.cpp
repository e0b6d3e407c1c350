// Which IPs a PROXY_PEERS name stands for: when a PEER_HELLO is taken on the
// last answer, and when the name is looked up again.
#include <doctest/doctest.h>

#include "reverse_proxy/peer_addresses.h"

using jc::proxy::PeerAddresses;
using Verdict = PeerAddresses::Verdict;

TEST_CASE("peer addresses: a name is looked up first, one look-up at a time") {
  PeerAddresses peers;
  CHECK(peers.check(1, "10.0.0.2", 1000) == Verdict::kResolve);
  CHECK(peers.start_resolving(1));
  CHECK_FALSE(peers.start_resolving(1));  // the answer serves every waiting PEER_HELLO
  CHECK(peers.start_resolving(2));        // another entry looks up on its own
  peers.resolved(1, {"10.0.0.2"}, 1000);
  CHECK(peers.check(1, "10.0.0.2", 1000) == Verdict::kMatches);
  CHECK(peers.check(1, "10.0.0.9", 1000) == Verdict::kDiffers);
  CHECK(peers.check(0, "10.0.0.2", 1000) == Verdict::kResolve);  // entry 0's name is not entry 1's
  CHECK(peers.start_resolving(1));
}

TEST_CASE("peer addresses: a peer back with a new IP is looked up again within kRetryMs, not "
          "refused until the answer is old") {
  PeerAddresses peers;
  peers.resolved(0, {"10.0.0.2"}, 1000);
  // The peer's container restarted as 10.0.0.7: refused only while the
  // answer is younger than kRetryMs (a stranger's HELLOs cannot make the
  // proxy query DNS at their pace) ...
  CHECK(peers.check(0, "10.0.0.7", 1000 + PeerAddresses::kRetryMs - 1) == Verdict::kDiffers);
  // ... then the name is looked up again, and the new answer decides.
  CHECK(peers.check(0, "10.0.0.7", 1000 + PeerAddresses::kRetryMs) == Verdict::kResolve);
  peers.resolved(0, {"10.0.0.7"}, 2000);
  CHECK(peers.check(0, "10.0.0.7", 2000) == Verdict::kMatches);
  CHECK(peers.check(0, "10.0.0.2", 2000) == Verdict::kDiffers);
}

TEST_CASE("peer addresses: a match in an old answer is taken and the name looked up again, and "
          "a failed look-up keeps the last IPs") {
  PeerAddresses peers;
  peers.resolved(0, {"10.0.0.2"}, 1000);
  CHECK(peers.check(0, "10.0.0.2", 1000 + PeerAddresses::kFreshMs) == Verdict::kMatches);
  // Taken at once: a slow DNS never holds a link between live proxies.
  CHECK(peers.check(0, "10.0.0.2", 1001 + PeerAddresses::kFreshMs) == Verdict::kRefresh);
  // No answer (a DNS server that does not answer): the last IPs stay.
  peers.resolved(0, {}, 20000, true);
  CHECK(peers.check(0, "10.0.0.2", 20000) == Verdict::kMatches);
  CHECK(peers.check(0, "10.0.0.7", 20000) == Verdict::kDiffers);
}
