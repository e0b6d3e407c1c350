// Bad client input never crashes a node or disturbs other clients.
#include <doctest/doctest.h>

#include <random>

#include "tests/support/cluster.h"

using namespace jc::test;

namespace {
// Another client is still served, normally.
void check_still_serving(Cluster& cluster) {
  Client other(cluster.node_port(0));
  std::string t = submit(other, 0);
  REQUIRE(!t.empty());
  CHECK(!wait_result(other, t, 30s).empty());
  CHECK(cluster.node(0).running());
}
}  // namespace

TEST_CASE("bad commands get a clear ERR line") {
  Cluster cluster({.nodes = 1, .slots = 1});
  Client c(cluster.node_port(0));
  CHECK(c.command("frobnicate now") ==
        "ERR unknown command 'frobnicate': send help for the list of commands");
  CHECK(c.command("rUNKNOWN-1") == "ERR unknown ticket 'UNKNOWN-1'");
  CHECK(c.command("r bad/ticket").rfind("ERR malformed ticket 'bad/ticket'", 0) == 0);
  CHECK(c.command("99999999999999999999") ==
        "ERR sleep takes milliseconds from 0 to 86400000, got '99999999999999999999'");
  CHECK(c.command("sleep -1").rfind("ERR sleep takes milliseconds", 0) == 0);
  CHECK(c.command("wait").rfind("ERR missing ticket", 0) == 0);
  CHECK(c.command("status UNKNOWN-2") == "ERR unknown ticket 'UNKNOWN-2'");
  CHECK(c.command("format yaml") == "ERR format takes json or text, got 'yaml'");
  CHECK(c.command("HELP").rfind("Help: ", 0) == 0);
}

TEST_CASE("a 10 MiB line is refused and the connection goes on") {
  Cluster cluster({.nodes = 1, .slots = 1});
  Client c(cluster.node_port(0));
  std::string huge(10 << 20, 'x');
  huge += "\n";
  REQUIRE(c.send(huge));
  CHECK(c.line().value_or("").rfind("ERR line too long: the limit is 65536 bytes", 0) == 0);
  CHECK(c.command("sleep 0").rfind("Ticket ID: ", 0) == 0);
  check_still_serving(cluster);
}

TEST_CASE("random bytes get ERR lines, then the node serves others") {
  Cluster cluster({.nodes = 1, .slots = 1});
  {
    Client c(cluster.node_port(0));
    std::mt19937 rng(1234);
    std::string blob(256 * 1024, '\0');
    for (auto& ch : blob) ch = static_cast<char>(rng());
    c.send(blob);
    c.send("\nhelp\n");
    // Every reply is an ERR, a ticket (digits), or the help we asked for,
    // which must come.
    std::optional<std::string> l;
    while ((l = c.line(10s)) && l->rfind("Help: ", 0) != 0) {
      INFO("reply: ", *l);
      CHECK((l->rfind("ERR", 0) == 0 || l->rfind("Ticket ID: ", 0) == 0));
    }
    CHECK(l.has_value());
  }
  check_still_serving(cluster);
}

TEST_CASE("a client that vanishes mid-line, and a thousand idle ones, do not disturb others") {
  // The thousand come from another loopback address, allowed that many.
  Cluster cluster({.nodes = 1, .slots = 1, .node_env = {{"MAX_CLIENTS_PER_ADDRESS", "1000"}}});
  {
    Client c(cluster.node_port(0));
    c.send("sleep 10");  // no newline, then gone
  }
  std::vector<std::unique_ptr<Client>> idle;
  for (int i = 0; i < 1000; ++i) {
    idle.push_back(std::make_unique<Client>(cluster.node_port(0), 10s, "127.0.0.1", "127.0.0.2"));
    REQUIRE(idle.back()->connected());
  }
  check_still_serving(cluster);
  Client c(cluster.node_port(0));
  auto jobs = c.multi("getall");
  CHECK(jobs[0] == "Jobs: 1");  // only check_still_serving's job: the half line was not a job
}

TEST_CASE("wait for a ticket nobody knows answers ERR instead of waiting forever") {
  Cluster cluster({.nodes = 1, .slots = 1});
  REQUIRE(cluster.wait_nodes_up(1));
  Client c(cluster.node_port(0));
  // Without SECONDS there is no timeout: before the fix this never answered.
  CHECK(c.command("wait NOPE-7") == "ERR unknown ticket 'NOPE-7'");
}

TEST_CASE("commands after a wait take effect after it answered: a read never goes backwards") {
  Cluster cluster({.nodes = 2, .slots = 1});
  REQUIRE(cluster.wait_nodes_up(2));
  for (std::size_t via = 0; via < 2; ++via) {  // the node that took the job, then another
    Client submitter(cluster.node_port(0));
    std::string t = submit(submitter, 50);
    REQUIRE(!t.empty());
    Client c(cluster.node_port(via));
    // One write: the three commands arrive together, as from `printf | nc`.
    c.send("wait " + t + "\nstatus " + t + "\nr" + t + "\n");
    auto result = c.line(30s);
    REQUIRE(result);
    CHECK(result->rfind("Result: Executed Job[" + t + "]", 0) == 0);
    auto status = c.line(10s);
    REQUIRE(status);
    CHECK(status->rfind("Status: " + t + " DONE ", 0) == 0);
    auto again = c.line(10s);
    REQUIRE(again);
    CHECK(*again == *result);
  }
}

TEST_CASE("a here-document after a wait is kept whole until the wait answered") {
  Cluster cluster({.nodes = 1, .slots = 1});
  REQUIRE(cluster.wait_nodes_up(1));
  Client c(cluster.node_port(0));
  std::string t = submit(c, 100);
  REQUIRE(!t.empty());
  c.send("wait " + t + "\nrun <<END\necho kept\nEND\n5\n");
  auto result = c.line(30s);
  REQUIRE(result);
  CHECK(result->rfind("Result: ", 0) == 0);
  auto run = c.line(10s);
  REQUIRE(run);
  CHECK(run->rfind("Ticket ID: ", 0) == 0);
  auto sleep = c.line(10s);
  REQUIRE(sleep);
  CHECK(sleep->rfind("Ticket ID: ", 0) == 0);
}

TEST_CASE("a wait whose seconds run out answers as r does, through any node") {
  Cluster cluster({.nodes = 2, .slots = 1});
  REQUIRE(cluster.wait_nodes_up(2));
  Client home(cluster.node_port(0));
  std::string t = submit(home, 5000);
  REQUIRE(!t.empty());
  Client other(cluster.node_port(1));
  std::string r = other.command("r" + t);
  CHECK(r == "Result has not been executed yet, come back later.");
  CHECK(other.command("wait " + t + " 1", 10s) == r);
  CHECK(home.command("wait " + t + " 1", 10s) == r);
  // A ticket nobody knows is still unknown, after its seconds too.
  CHECK(other.command("wait zzzzzz-1-AAAAAAAAAAA 1", 15s) ==
        "ERR unknown ticket 'zzzzzz-1-AAAAAAAAAAA'");
}
