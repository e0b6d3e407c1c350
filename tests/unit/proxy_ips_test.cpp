// What a node keeps of its proxies' IPs (PROXY_ADDRESSES): when a name is
// looked up, what a failed look-up or a failed connect leaves to dial.
#include <doctest/doctest.h>

#include "cluster_node/proxy_ips.h"

using jc::TimeMs;
using jc::node::ProxyIps;

namespace {
ProxyIps::Endpoints at(const char* ip, unsigned short port = 8080) {
  return {{boost::asio::ip::make_address(ip), port}};
}
}  // namespace

TEST_CASE("proxy ips: every name is looked up at once, another look-up only when the last goes "
          "unanswered, and at most kMaxLookups at once") {
  ProxyIps ips(3);
  CHECK(ips.dial(0).empty());
  CHECK(ips.start_lookup(0, 1000));
  CHECK(ips.looking_up(0));
  CHECK_FALSE(ips.start_lookup(0, 1000));        // its answer serves every dial
  CHECK_FALSE(ips.start_lookup(0, 1000, true));  // even a waiting one
  CHECK(ips.start_lookup(1, 1000));              // another name looks up on its own
  // The DNS dropped the query: another goes after kLookupPatienceMs ...
  CHECK_FALSE(ips.start_lookup(0, 1000 + ProxyIps::kLookupPatienceMs - 1));
  TimeMs t = 1000;
  for (int running = 1; running < ProxyIps::kMaxLookups; ++running) {
    t += ProxyIps::kLookupPatienceMs;
    CHECK(ips.start_lookup(0, t));
    CHECK_FALSE(ips.start_lookup(0, t));
  }
  // ... up to kMaxLookups, however long they take.
  CHECK_FALSE(ips.start_lookup(0, t + 20 * ProxyIps::kLookupPatienceMs, true));
  ips.resolved(0, at("10.0.0.2"), t + 10, false);  // one answered
  CHECK(ips.looking_up(0));                        // the others still run
  for (int left = ProxyIps::kMaxLookups - 1; left > 0; --left) {
    ips.resolved(0, {}, 11'000, true);  // and fail at last: the answer stays
  }
  CHECK_FALSE(ips.looking_up(0));
  CHECK(ips.dial(0) == at("10.0.0.2"));
  CHECK(ips.dial(1).empty());
}

TEST_CASE("proxy ips: an answer is looked up again after kRefreshMs, and a failed look-up keeps "
          "the last one") {
  ProxyIps ips(2);
  REQUIRE(ips.start_lookup(0, 1000));
  ips.resolved(0, at("10.0.0.2"), 1000, false);
  CHECK_FALSE(ips.start_lookup(0, 1000 + ProxyIps::kRefreshMs - 1));
  CHECK_FALSE(ips.start_lookup(0, 1000 + ProxyIps::kRefreshMs - 1, true));  // it has an answer
  REQUIRE(ips.start_lookup(0, 1000 + ProxyIps::kRefreshMs));
  // The DNS does not answer (a proxy's container was just killed): the
  // node still dials the last IPs.
  ips.resolved(0, {}, 1000 + ProxyIps::kRefreshMs + 5000, true);
  CHECK(ips.dial(0) == at("10.0.0.2"));
  // An empty answer is no answer either.
  REQUIRE(ips.start_lookup(0, 20'000));
  ips.resolved(0, {}, 20'000, false);
  CHECK(ips.dial(0) == at("10.0.0.2"));
  // A new IP replaces the old.
  REQUIRE(ips.start_lookup(0, 30'000));
  ips.resolved(0, at("10.0.0.7"), 30'000, false);
  CHECK(ips.dial(0) == at("10.0.0.7"));
}

TEST_CASE("proxy ips: a failed connect drops the IPs, a dial looks the name up again at once, and "
          "a name without an answer is retried after kLookupPatienceMs") {
  ProxyIps ips(2);
  REQUIRE(ips.start_lookup(1, 1000));
  ips.resolved(1, at("10.0.0.3"), 1000, false);
  // The proxy came back elsewhere: its old IP refuses.
  ips.connect_failed(1);
  CHECK(ips.dial(1).empty());
  CHECK(ips.start_lookup(1, 1001, true));  // the next dial waits for a fresh answer
  ips.resolved(1, {}, 1100, true);         // none came
  CHECK(ips.dial(1).empty());
  // The background refresh tries again, not at every tick ...
  CHECK_FALSE(ips.start_lookup(1, 1100 + ProxyIps::kLookupPatienceMs - 1));
  CHECK(ips.start_lookup(1, 1100 + ProxyIps::kLookupPatienceMs));
  ips.resolved(1, at("10.0.0.9"), 2200, false);
  CHECK(ips.dial(1) == at("10.0.0.9"));
  // ... while a dial waiting for it looks at once.
  ips.connect_failed(1);
  CHECK(ips.start_lookup(1, 2201, true));
}

TEST_CASE("proxy ips: a name the DNS says is gone keeps its IPs as doubtful until an answer comes") {
  ProxyIps ips(2);
  REQUIRE(ips.start_lookup(0, 1000));
  ips.resolved(0, at("10.0.0.2"), 1000, false);
  CHECK_FALSE(ips.doubtful(0));
  // The proxy's container was killed (or the DNS errs about a live one).
  REQUIRE(ips.start_lookup(0, 1000 + ProxyIps::kRefreshMs));
  ips.gone(0, 1000 + ProxyIps::kRefreshMs);
  CHECK_FALSE(ips.looking_up(0));
  CHECK(ips.dial(0) == at("10.0.0.2"));
  CHECK(ips.doubtful(0));
  CHECK(ips.start_lookup(0, 1000 + 2 * ProxyIps::kRefreshMs));
  ips.resolved(0, {}, 3000, true);  // no answer: still doubtful
  CHECK(ips.doubtful(0));
  REQUIRE(ips.start_lookup(0, 3000 + ProxyIps::kRefreshMs));
  ips.resolved(0, at("10.0.0.8"), 4000, false);  // back, elsewhere
  CHECK(ips.dial(0) == at("10.0.0.8"));
  CHECK_FALSE(ips.doubtful(0));
}
