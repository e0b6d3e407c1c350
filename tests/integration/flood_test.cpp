// One address flooding a node's client port, or the proxy's status port,
// while a client from another address is served. 127.0.0.2 is another
// loopback address: another client as far as the limits can tell.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/support/cluster.h"

using namespace jc::test;

namespace {
const std::string kFlooder = "127.0.0.2";
}  // namespace

TEST_CASE("flood: one address's connections do not lock others out, and idle ones are closed") {
  Cluster cluster({.nodes = 1,
                   .slots = 1,
                   .node_env = {{"MAX_CLIENTS", "100"},
                                {"MAX_CLIENTS_PER_ADDRESS", "20"},
                                {"CLIENT_IDLE_TIMEOUT", "1500"}}});
  REQUIRE(cluster.wait_nodes_up(1));
  // A client that waits for a long job is waiting for something: it stays.
  Client waiter(cluster.node_port(0));
  std::string slow = submit(waiter, 4000);
  REQUIRE(!slow.empty());
  waiter.send("wait " + slow + " 30\n");

  std::vector<std::unique_ptr<Client>> flood;
  for (int i = 0; i < 120; ++i) {
    flood.push_back(std::make_unique<Client>(cluster.node_port(0), 10s, "127.0.0.1", kFlooder));
    REQUIRE(flood.back()->connected());
  }
  // Another address is served all along (MAX_CLIENTS is 100: on its own
  // it would have let the flood take every connection).
  Client other(cluster.node_port(0));
  std::string t = submit(other, 5);
  REQUIRE(!t.empty());
  CHECK(!wait_result(other, t, 30s).empty());

  // Each flooder connection gets one line: refused at once, or (the 20
  // accepted, which then send nothing) closed after CLIENT_IDLE_TIMEOUT.
  int refused = 0, closed_idle = 0;
  for (auto& c : flood) {
    auto line = c->line(10s);
    if (!line) continue;
    if (line->find("too many connections from your address") != std::string::npos) ++refused;
    if (line->find("closing: nothing sent for 1500 ms") != std::string::npos) ++closed_idle;
  }
  CHECK(refused == 100);
  CHECK(closed_idle == 20);
  CHECK(cluster.node(0).log_count("client refused peer=127.0.0.2:") >= 1);
  // The waiter outlived the timeout and got its result.
  auto result = waiter.line(30s);
  REQUIRE(result);
  CHECK(result->rfind("Result: ", 0) == 0);
}

TEST_CASE("flood: half-open HTTP requests from one address do not starve /metrics") {
  Cluster cluster({.nodes = 1, .slots = 1, .proxy_env = {{"STATUS_PORT", "0"}}});
  std::uint16_t http = cluster.proxy().wait_listening("for status");
  REQUIRE(http != 0);
  std::vector<std::unique_ptr<Client>> half_open;
  for (int i = 0; i < 80; ++i) {
    half_open.push_back(std::make_unique<Client>(http, 10s, "127.0.0.1", kFlooder));
    half_open.back()->send("GET /metrics HTTP/1.1\r\nHost: x\r\n");  // never ends
  }
  Client scraper(http);
  scraper.send("GET /metrics HTTP/1.0\r\nHost: prometheus\r\n\r\n");
  auto reply = scraper.until_close(10s);
  REQUIRE(reply);
  CHECK(reply->rfind("HTTP/1.0 200", 0) == 0);
  CHECK(reply->find("jobcluster_") != std::string::npos);
  // The half-open ones end at the request deadline.
  CHECK(half_open.back()->closed_by_peer(20s));
  CHECK(half_open.front()->closed_by_peer(20s));
}
