// End-to-end behaviour of a healthy cluster: real binaries on loopback.
#include "tests/support/cluster.h"

#include <doctest/doctest.h>

#include <map>
#include <set>

using namespace jc::test;

namespace {

// Parses "node <id> ... held=<n>" from `stats`.
int held_by(Client& c, const std::string& node) {
  for (const auto& l : c.multi("stats")) {
    if (l.rfind("node " + node + " ", 0) != 0) continue;
    auto pos = l.find(" held=");
    if (pos != std::string::npos) return std::stoi(l.substr(pos + 6));
  }
  return -1;
}

}  // namespace

TEST_CASE("300 sleep jobs through 3 nodes all finish and each node runs its share") {
  Cluster cluster({.nodes = 3, .slots = 2});
  REQUIRE(cluster.wait_nodes_up(3));
  std::vector<std::unique_ptr<Client>> clients;
  std::vector<std::string> tickets;
  for (std::size_t i = 0; i < 3; ++i) {
    clients.push_back(std::make_unique<Client>(cluster.node_port(i)));
    auto t = submit_many(*clients.back(), 100, 20);
    REQUIRE(t.size() == 100);
    tickets.insert(tickets.end(), t.begin(), t.end());
  }
  CHECK(std::set<std::string>(tickets.begin(), tickets.end()).size() == 300);
  std::map<std::string, int> ran;
  for (std::size_t k = 0; k < tickets.size(); ++k) {
    // Asked through a node other than the one it was submitted to.
    std::string r = wait_result(*clients[(k / 100 + 1) % 3], tickets[k]);
    REQUIRE_MESSAGE(!r.empty(), "no result for " << tickets[k]);
    CHECK(r.find("Executed Job[" + tickets[k] + "] for 20 milliseconds") != std::string::npos);
    ran[result_node(r)]++;
  }
  CHECK(ran.size() == 3);
  for (auto& [node, n] : ran) {
    INFO("node " << node << " ran " << n);
    CHECK(n >= 70);
    CHECK(n <= 130);
  }
}

TEST_CASE("any node answers for any ticket, with the same result") {
  Cluster cluster({.nodes = 3, .slots = 1});
  Client a(cluster.node_port(0)), b(cluster.node_port(1)), c(cluster.node_port(2));
  std::string t = submit(a, 50);
  REQUIRE(!t.empty());
  std::string from_b = wait_result(b, t);
  REQUIRE(!from_b.empty());
  CHECK(c.command("r" + t) == from_b);
  CHECK(a.command("r" + t) == from_b);
  std::string status = c.command("status " + t);
  CHECK(status.rfind("Status: " + t + " DONE node=", 0) == 0);
}

TEST_CASE("a node that joins late gets work at once") {
  Cluster cluster({.nodes = 2, .slots = 1});
  REQUIRE(cluster.wait_nodes_up(2));
  Client a(cluster.node_port(0));
  auto tickets = submit_many(a, 30, 300);
  REQUIRE(tickets.size() == 30);
  std::size_t late = cluster.add_node();
  REQUIRE(cluster.wait_nodes_up(3));
  CHECK(eventually([&] { return held_by(a, cluster.node_id(late)) >= 1; }, 5s, 50ms));
  std::map<std::string, int> ran;
  for (const auto& t : tickets) {
    std::string r = wait_result(a, t);
    REQUIRE(!r.empty());
    ran[result_node(r)]++;
  }
  CHECK(ran[cluster.node_id(late)] >= 5);
}

TEST_CASE("getall lists the jobs submitted through a node, with their state") {
  Cluster cluster({.nodes = 1, .slots = 1});
  Client a(cluster.node_port(0));
  std::string t1 = submit(a, 0);
  std::string t2 = submit(a, 60000);
  REQUIRE(!wait_result(a, t1).empty());
  auto lines = a.multi("getall");
  REQUIRE(lines.size() == 3);
  CHECK(lines[0] == "Jobs: 2");
  CHECK(lines[1] == t1 + " DONE sleep 0");
  // The origin node knows a forwarded job is not finished; not where it is.
  CHECK(lines[2] == t2 + " QUEUED sleep 60000");
  CHECK(a.command("r" + t2) == "Result has not been executed yet, come back later.");
  CHECK(a.command("status " + t2).rfind("Status: " + t2 + " RUNNING node=n1 attempt=1", 0) == 0);
}

TEST_CASE("json format gives one object per line") {
  Cluster cluster({.nodes = 1, .slots = 1});
  Client a(cluster.node_port(0));
  CHECK(a.command("format json") == "OK format json");
  std::string ticket_line = a.command("5");
  REQUIRE(ticket_line.rfind("{\"ticket\":\"", 0) == 0);
  std::string t = ticket_line.substr(11, ticket_line.size() - 13);
  std::string r = a.command("wait " + t + " 30");
  CHECK(r.find("\"state\":\"DONE\"") != std::string::npos);
  CHECK(r.find("\"node\":\"n1\"") != std::string::npos);
  CHECK(r.find("\"attempts\":1") != std::string::npos);
  CHECK(r.find("\"result\":\"Executed Job[" + t + "]") != std::string::npos);
  CHECK(a.command("bogus").rfind("{\"error\":", 0) == 0);
  CHECK(a.command("format text") == "OK format text");
}

TEST_CASE("replies come in command order and EOF still answers everything, wait included") {
  Cluster cluster({.nodes = 2, .slots = 2});
  Client a(cluster.node_port(0));
  std::string t = submit(a, 300);
  Client b(cluster.node_port(1));
  b.send("help\nwait " + t + "\nbogus\n10\nexit\n");
  b.shutdown_write();
  auto help = b.line();
  REQUIRE(help);
  CHECK(help->rfind("Help: ", 0) == 0);
  for (int i = 0; i < std::stoi(help->substr(6)); ++i) REQUIRE(b.line());
  auto waited = b.line();
  REQUIRE(waited);
  CHECK(waited->rfind("Result: Executed Job[" + t + "]", 0) == 0);
  CHECK(b.line().value_or("").rfind("ERR unknown command 'bogus'", 0) == 0);
  CHECK(b.line().value_or("").rfind("Ticket ID: ", 0) == 0);
  CHECK(b.line().value_or("") == "Come back later to check your results.");
  CHECK(b.closed_by_peer(5s));
}

TEST_CASE("thousands of pipelined commands answered at once are read exactly once") {
  // Replies known at once (a finished job's result) used to start the next
  // read into the buffer still being parsed, turning the tail of a line into
  // a phantom command.
  Cluster cluster({.nodes = 1, .slots = 1});
  Client c(cluster.node_port(0));
  std::string t = submit(c, 0);
  REQUIRE(!wait_result(c, t, 30s).empty());
  std::string batch;
  for (int i = 0; i < 20000; ++i) batch += "r" + t + " \n";
  REQUIRE(c.send(batch));
  for (int i = 0; i < 20000; ++i) {
    auto l = c.line();
    REQUIRE(l);
    REQUIRE(l->rfind("Result: Executed Job[" + t + "]", 0) == 0);
  }
  CHECK(c.multi("getall")[0] == "Jobs: 1");
}
