// --priority and --delay through real processes: the order jobs start in,
// what status shows while they wait, and a delay that outlives a proxy restart.
#include <doctest/doctest.h>

#include <string>

#include "tests/support/cluster.h"

using namespace jc::test;

namespace {

// "from YYYY-MM-DD HH:MM:SS.mmm" of a sleep result: compares as text.
std::string started(const std::string& result) {
  auto at = result.find(" from ");
  return at == std::string::npos ? "" : result.substr(at + 6, 23);
}

std::string ticket_of(const std::string& reply) {
  return reply.rfind("Ticket ID: ", 0) == 0 ? reply.substr(11) : "";
}

}  // namespace

TEST_CASE("schedule: a queued job of higher priority starts first, arrival order within one") {
  Cluster cluster({.nodes = 1,
                   .slots = 1,
                   .proxy_env = {{"DISPATCH_PREFETCH", "0"}, {"DISPATCH_PREFETCH_MS", "0"}}});
  REQUIRE(cluster.wait_nodes_up(1));
  Client c(cluster.node_port(0));
  std::string blocker = ticket_of(c.command("sleep 1500"));
  std::string low = ticket_of(c.command("sleep --priority -1 10"));
  std::string first = ticket_of(c.command("10"));
  std::string second = ticket_of(c.command("sleep --priority 0 10"));
  std::string high = ticket_of(c.command("sleep --priority 5 10"));
  std::string high_run = ticket_of(c.command("run --priority 5 sleep 0.01"));
  REQUIRE(!high_run.empty());
  CHECK(c.command("status " + low).find(" QUEUED ") != std::string::npos);
  CHECK(c.command("status " + low).find(" priority=-1") != std::string::npos);
  std::string r_first = wait_result(c, first, 30s), r_second = wait_result(c, second, 30s),
              r_low = wait_result(c, low, 30s), r_high = wait_result(c, high, 30s);
  REQUIRE(!wait_result(c, blocker, 30s).empty());
  c.send("wait " + high_run + " 30\n");
  std::string high_header = c.line(30s).value_or("");
  // A run result's header has no start time: the sleep jobs give the order.
  REQUIRE(high_header.find(" DONE ") != std::string::npos);
  CHECK(started(r_high) < started(r_first));
  CHECK(started(r_first) < started(r_second));
  CHECK(started(r_second) < started(r_low));
}

TEST_CASE("schedule: a delayed job shows not_before while queued and waits for it, restarts too") {
  Cluster cluster({.nodes = 1, .slots = 2});
  REQUIRE(cluster.wait_nodes_up(1));
  Client c(cluster.node_port(0));
  std::string t = ticket_of(c.command("sleep --delay 4000 10"));
  REQUIRE(!t.empty());
  std::string status = c.command("status " + t);
  CHECK(status.find(" QUEUED ") != std::string::npos);
  CHECK(status.find(" not_before=") != std::string::npos);
  std::string quick = ticket_of(c.command("10"));
  CHECK(!wait_result(c, quick, 30s).empty());  // the delayed one takes no slot meanwhile
  CHECK(c.command("status " + t).find(" QUEUED ") != std::string::npos);
  cluster.restart_proxy();
  REQUIRE(cluster.wait_nodes_up(1));
  CHECK(eventually([&] { return c.command("status " + t).find(" not_before=") != std::string::npos; },
                   10s));
  std::string result = wait_result(c, t, 30s);
  REQUIRE(!result.empty());
  // not_before=2026-11-29T23:10:00.123Z against the start "2026-11-29 23:10:00.200".
  auto at = status.find(" not_before=");
  std::string not_before = status.substr(at + 12, 23);
  not_before[10] = ' ';
  CHECK(started(result) >= not_before);
}
