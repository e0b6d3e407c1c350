// Cluster membership: CLUSTER_SECRET proofs, and strangers on the node port.
#include <doctest/doctest.h>

#include <random>

#include "tests/support/cluster.h"

using namespace jc::test;

TEST_CASE(
    "CLUSTER_SECRET: a node with the secret joins, one without or with a wrong one is refused") {
  Cluster cluster({.nodes = 1,
                   .slots = 2,
                   .proxy_env = {{"CLUSTER_SECRET", "s3cret"}},
                   .node_env = {{"CLUSTER_SECRET", "s3cret"}}});
  REQUIRE(cluster.wait_nodes_up(1));
  cluster.add_node({{"CLUSTER_SECRET", "wrong"}});
  cluster.add_node({{"CLUSTER_SECRET", ""}});
  // The link is TLS keyed by the secret: a wrong secret fails the handshake,
  // and a node without one speaks plaintext to a proxy that does not.
  CHECK(eventually(
      [&] {
        std::string log = cluster.proxy().log_since_start();
        return log.find("TLS handshake failed: binder does not verify (is CLUSTER_SECRET the "
                        "same on both ends?)") != std::string::npos &&
               log.find("no TLS handshake within") != std::string::npos;
      },
      15s));
  CHECK(eventually(
      [&] {
        return cluster.node(1).log_since_start().find(
                   "lost the proxy reason=\"TLS handshake failed") != std::string::npos &&
               cluster.node(2).log_since_start().find(
                   "lost the proxy before its first frame") != std::string::npos;
      },
      15s));
  // A job submitted through a refused node is given a ticket and kept there.
  Client outsider(cluster.node_port(1));
  std::string t = submit(outsider, 10);
  REQUIRE(!t.empty());
  std::string status = outsider.command("status " + t);
  INFO("status: ", status);
  CHECK(status.find(t) != std::string::npos);
  CHECK(status.find("UNKNOWN") == std::string::npos);
  CHECK(status.rfind("ERR", 0) != 0);
  Client member(cluster.node_port(0));
  auto jobs_before = member.multi("stats");
  REQUIRE(jobs_before.size() >= 2);
  CHECK(jobs_before[1].find("nodes_up=1") != std::string::npos);
  std::string own = submit(member, 10);
  std::string r = wait_result(member, own, 30s);
  CHECK(result_node(r) == "n1");
  CHECK(cluster.proxy().log_count("node joined node=n2") == 0);
  CHECK(cluster.proxy().log_count("node joined node=n3") == 0);
}

TEST_CASE("a stranger trickling a byte at a time is closed at the handshake deadline") {
  Cluster cluster({.nodes = 1, .slots = 1});
  REQUIRE(cluster.wait_nodes_up(1));
  Client slow(cluster.proxy_port());
  // A frame header that never completes, one byte every 200 ms: bytes that
  // are not whole frames must not keep the handshake slot (5 s) open.
  // The header announces a 64 KiB HELLO; then zeros follow, far too slowly.
  std::string bytes("\x00\x01\x00\x00\x02\x00\x00\x00\x00\x00", 10);
  auto start = std::chrono::steady_clock::now();
  bool closed = false;
  for (std::size_t i = 0; !closed && std::chrono::steady_clock::now() - start < 15s; ++i) {
    slow.send(i < bytes.size() ? bytes.substr(i, 1) : std::string(1, '\0'));
    closed = slow.closed_by_peer(200ms);
  }
  CHECK(closed);
  CHECK(std::chrono::steady_clock::now() - start < 10s);
  CHECK(cluster.proxy().running());
}

TEST_CASE("a stranger on the node port: garbage, and many idle handshakes, do not stop the proxy") {
  Cluster cluster({.nodes = 1, .slots = 1});
  REQUIRE(cluster.wait_nodes_up(1));
  {
    Client junk(cluster.proxy_port());
    std::mt19937 rng(99);
    std::string blob(64 * 1024, '\0');
    for (auto& ch : blob) ch = static_cast<char>(rng());
    junk.send(blob);
    CHECK(junk.closed_by_peer(5s));
  }
  std::vector<std::unique_ptr<Client>> idle;
  for (int i = 0; i < 40; ++i) idle.push_back(std::make_unique<Client>(cluster.proxy_port()));
  CHECK(eventually(
      [&] {
        return cluster.proxy().log_since_start().find("handshakes pending") != std::string::npos;
      },
      5s));
  // The member keeps working through all of it.
  Client c(cluster.node_port(0));
  std::string t = submit(c, 5);
  CHECK(!wait_result(c, t, 30s).empty());
  CHECK(cluster.proxy().running());
}
