// Who may join a cluster and what a member may claim, tried as an attacker
// on the network would: a program speaking the node protocol (RogueNode)
// from another address, with a wrong secret, with a stolen node id, and
// with forged results for jobs it was never given.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "tests/support/cluster.h"
#include "tests/support/rogue_node.h"
#include "tests/support/run_jobs.h"
#include "tests/support/skip.h"

using namespace jc::test;
namespace protocol = jc::protocol;

namespace {

// An address of this machine that is not loopback: one end of a veth pair
// of the test's own (needs root with CAP_NET_ADMIN), removed at the end.
struct OtherAddress {
  OtherAddress() {
    int id = static_cast<int>(::getpid() % 100000);
    link = "jcva" + std::to_string(id);
    address = "10.213." + std::to_string(id % 250) + "." + std::to_string(1 + id / 250 % 250);
    std::string up = "ip link add " + link + " type veth peer name jcvb" + std::to_string(id) +
                     " 2>/dev/null && ip addr add " + address + "/32 dev " + link +
                     " && ip link set " + link + " up";
    ok = ::geteuid() == 0 && std::system(up.c_str()) == 0;
  }
  ~OtherAddress() { std::system(("ip link del " + link + " 2>/dev/null").c_str()); }
  std::string link, address;
  bool ok = false;
};

}  // namespace

TEST_CASE("security: in protected mode only loopback nodes join, and the secret admits others") {
  OtherAddress other;
  if (!other.ok) JC_SKIP("needs root with CAP_NET_ADMIN to give this machine a second address");
  {
    Cluster cluster({.nodes = 0});
    RogueNode far(cluster.proxy_port(), other.address, other.address);
    REQUIRE(far.connected());
    auto refused = far.join("far1");
    REQUIRE(refused);
    CHECK_FALSE(refused->accepted);
    CHECK(refused->reason.find("protected mode") != std::string::npos);
    CHECK(refused->reason.find("CLUSTER_SECRET") != std::string::npos);
    CHECK(cluster.proxy().log_count("refused node node=far1") == 1);
    CHECK(cluster.proxy().log_count("protected mode: nodes may join from loopback addresses only") ==
          1);
    RogueNode near(cluster.proxy_port());
    auto admitted = near.join("near1");
    REQUIRE(admitted);
    CHECK(admitted->accepted);
  }
  {
    Cluster cluster({.nodes = 0, .proxy_env = {{"CLUSTER_SECRET", "correct horse"}}});
    // Without the secret there is no TLS link to speak on at all.
    RogueNode guess(cluster.proxy_port(), other.address, other.address, "battery staple");
    CHECK(guess.connected());
    CHECK_FALSE(guess.tls_ok());
    CHECK_FALSE(guess.join("far2", "battery staple"));
    RogueNode member(cluster.proxy_port(), other.address, other.address, "correct horse");
    REQUIRE(member.tls_ok());
    auto admitted = member.join("far3", "correct horse");
    REQUIRE(admitted);
    CHECK(admitted->accepted);
  }
  {
    Cluster cluster({.nodes = 0, .proxy_env = {{"PROTECTED_MODE", "off"}}});
    CHECK(cluster.proxy().log_count("PROTECTED_MODE=off without CLUSTER_SECRET") == 1);
    RogueNode far(cluster.proxy_port(), other.address, other.address);
    auto admitted = far.join("far4");
    REQUIRE(admitted);
    CHECK(admitted->accepted);
  }
}

TEST_CASE("security: a node cannot finalize a job it was not given, whatever it claims") {
  const std::string secret = "member-secret";
  Cluster cluster({.nodes = 1,
                   .slots = 1,
                   .proxy_env = {{"CLUSTER_SECRET", secret}},
                   .node_env = {{"CLUSTER_SECRET", secret}}});
  REQUIRE(cluster.wait_nodes_up(1));
  Client c(cluster.node_port(0));
  std::string t = submit_run(c, "run --timeout 20000 sleep 2; echo real");
  REQUIRE(eventually(
      [&] { return c.command("status " + t).find(" RUNNING node=n1 ") != std::string::npos; },
      10s));
  // A member (it knows the secret) that was never given the job.
  RogueNode rogue(cluster.proxy_port(), "127.0.0.1", "", secret);
  REQUIRE(rogue.tls_ok());
  auto w = rogue.join("evil", secret);
  REQUIRE(w);
  REQUIRE(w->accepted);
  protocol::JobReport forged;
  forged.ticket = t;
  forged.state = protocol::JobState::kDone;
  forged.has_result = true;
  forged.result.state = protocol::JobState::kDone;
  forged.result.node = "n1";  // claiming to be the node that holds it
  forged.result.attempt = 1;
  forged.result.is_run = true;
  forged.result.verdict = "ACCEPTED";
  forged.result.text = "forged";
  forged.result.stdout_data = "forged\n";
  REQUIRE(rogue.send(protocol::Result{{forged}}));
  auto ack = rogue.next<protocol::Ack>();
  REQUIRE(ack);
  CHECK(ack->tickets.empty());
  CHECK(ack->superseded == std::vector<std::string>{t});
  CHECK(eventually([&] { return cluster.proxy().log_count("refused result ticket=" + t) == 1; },
                   5s));
  c.send("wait " + t + " 30\n");
  auto r = read_run_result(c, 40s);
  REQUIRE(r.ok);
  CHECK(r.out == "real\n");
  CHECK(r.fact("node") == "n1");
}

TEST_CASE("security: a node id cannot be taken while its holder is connected") {
  Cluster cluster({.nodes = 1, .slots = 1});
  REQUIRE(cluster.wait_nodes_up(1));
  RogueNode rogue(cluster.proxy_port());
  auto w = rogue.join("n1");
  REQUIRE(w);
  CHECK_FALSE(w->accepted);
  // The real n1 is still the one serving.
  Client c(cluster.node_port(0));
  CHECK(!wait_result(c, submit(c, 10), 30s).empty());
}
