// A partition between real separate hosts: the proxy and three nodes each in
// a network namespace of their own, joined through a bridge in a "switch"
// namespace by veth links this test creates. One node's link is cut for
// longer than NODE_TIMEOUT (its traffic is dropped, no connection is closed),
// then healed. Every accepted job must end with exactly one visible result.
// Needs root and `ip netns`; skips with the reason otherwise.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <thread>

#include "tests/support/cluster.h"
#include "tests/support/netns.h"
#include "tests/support/skip.h"

using namespace jc::test;

namespace {

}  // namespace

TEST_CASE(
    "partition: a node cut off past NODE_TIMEOUT loses its jobs to others, and after healing each "
    "job has one result") {
  if (geteuid() != 0 || !jc::test::has_cap_sys_admin() || !sh("ip netns list")) {
    JC_SKIP("needs root with CAP_SYS_ADMIN and `ip netns` to build separate hosts");
  }
  Network net;
  const std::vector<std::string> hosts{"proxy", "n1", "n2", "n3", "client"};
  if (!net.create(hosts)) JC_SKIP("could not create network namespaces and veth links here");
  std::string dir =
      (std::filesystem::temp_directory_path() / ("jc-partition-" + std::to_string(getpid())))
          .string();
  std::filesystem::create_directories(dir);
  auto proxy = start_in(net, "proxy", "reverse_proxy", {"8080"},
                        {{"NODE_TIMEOUT", "1500"}, {"REQUEST_RESULT_PERIOD", "300"}}, dir);
  REQUIRE(proxy->wait_listening("for nodes") == 8080);
  std::vector<std::unique_ptr<Process>> nodes;
  for (int i = 1; i <= 3; ++i) {
    nodes.push_back(start_in(
        net, "n" + std::to_string(i), "cluster_node", {net.address(0), "8080"},
        {{"NODE_ID", "n" + std::to_string(i)}, {"NODE_SLOTS", "2"}, {"PROXY_GRACE_PERIOD", "0"}},
        dir));
    REQUIRE(nodes.back()->wait_listening("for clients") == 9000);
  }
  // The test's client lives on its own host: this thread enters its namespace.
  bool done = false;
  auto partition_body = [&] {
    int fd = open(("/var/run/netns/" + net.ns("client")).c_str(), O_RDONLY);
    REQUIRE(fd >= 0);
    REQUIRE(setns(fd, CLONE_NEWNET) == 0);
    close(fd);
    auto node_addr = [&](int i) { return net.address(static_cast<std::size_t>(i)); };
    Client n1(9000, 10s, node_addr(1)), n2(9000, 10s, node_addr(2)), n3(9000, 10s, node_addr(3));
    REQUIRE(eventually(
        [&] {
          auto s = n1.multi("stats");
          return s.size() > 1 && s[1].find("nodes_up=3") != std::string::npos;
        },
        15s, 100ms));
    std::vector<std::string> tickets;
    for (int i = 0; i < 24; ++i) tickets.push_back(submit(i % 2 ? n1 : n3, 1500));
    for (const auto& t : tickets) REQUIRE(!t.empty());
    // Wait until n2 runs some of them, then cut it off.
    REQUIRE(eventually(
        [&] { return nodes[1]->log_since_start().find("start ticket=") != std::string::npos; },
        10s));
    REQUIRE(net.cut(2, true));
    CHECK(eventually(
        [&] { return proxy->log_since_start().find("node left node=n2") != std::string::npos; },
        10s));
    CHECK(eventually(
        [&] { return proxy->log_since_start().find("requeued node=n2") != std::string::npos; },
        10s));
    // Jobs submitted during the partition through the healthy side.
    for (int i = 0; i < 6; ++i) tickets.push_back(submit(n3, 100));
    REQUIRE(net.cut(2, false));
    CHECK(eventually(
        [&] {
          auto s = n1.multi("stats");
          return s.size() > 1 && s[1].find("nodes_up=3") != std::string::npos;
        },
        20s, 100ms));
    for (const auto& t : tickets) {
      std::string r = wait_result(n1, t, 60s);
      REQUIRE_MESSAGE(!r.empty(), "no result for " << t);
      CHECK(r.find("Executed Job[" + t + "]") != std::string::npos);
      Client again(9000, 10s, node_addr(2));
      CHECK(wait_result(again, t, 30s) == r);
      CHECK(wait_result(n3, t, 30s) == r);
    }
    done = true;
  };
  run_in_thread(partition_body);
  CHECK(done);
  for (auto& n : nodes) n->kill_hard();
  proxy->kill_hard();
  if (done && std::getenv("JC_KEEP_TEST_DIRS") == nullptr) std::filesystem::remove_all(dir);
}

TEST_CASE(
    "partition: the leader of three proxies cut off, the other two elect another, it steps down, "
    "and every job has one result") {
  if (geteuid() != 0 || !jc::test::has_cap_sys_admin() || !sh("ip netns list")) {
    JC_SKIP("needs root with CAP_SYS_ADMIN and `ip netns` to build separate hosts");
  }
  Network net;
  const std::vector<std::string> hosts{"p1", "p2", "p3", "n1", "n2", "client"};
  if (!net.create(hosts)) JC_SKIP("could not create network namespaces and veth links here");
  std::string dir =
      (std::filesystem::temp_directory_path() / ("jc-partition3-" + std::to_string(getpid())))
          .string();
  std::filesystem::create_directories(dir);
  std::string peers;
  for (std::size_t k = 0; k < 3; ++k) peers += (k ? "," : "") + net.address(k) + ":8080";
  std::vector<std::unique_ptr<Process>> proxies;
  for (std::size_t k = 0; k < 3; ++k) {
    proxies.push_back(start_in(net, hosts[k], "reverse_proxy", {"8080"},
                               {{"PROXY_PEERS", peers},
                                {"PROXY_SELF", net.address(k) + ":8080"},
                                {"NODE_TIMEOUT", "3000"},
                                {"RESULT_TTL", "0"}},
                               dir));
  }
  for (auto& p : proxies) REQUIRE(p->wait_listening("for nodes") == 8080);
  std::vector<std::unique_ptr<Process>> nodes;
  for (int i = 1; i <= 2; ++i) {
    nodes.push_back(start_in(net, "n" + std::to_string(i), "cluster_node", {},
                             {{"NODE_ID", "n" + std::to_string(i)},
                              {"NODE_SLOTS", "2"},
                              {"PROXY_ADDRESSES", peers},
                              {"PROXY_GRACE_PERIOD", "600000"}},
                             dir));
    REQUIRE(nodes.back()->wait_listening("for clients") == 9000);
  }
  bool done = false;
  auto body_fn = [&] {
    REQUIRE(enter(net, "client"));
    Client n1(9000, 10s, net.address(3)), n2(9000, 10s, net.address(4));
    auto leader_of = [&](Client& c) -> int {
      auto s = c.multi("stats", 3s);
      if (s.size() < 2 || s[1].find("proxy=up") == std::string::npos) return -1;
      for (int k = 0; k < 3; ++k) {
        if (s[1].find("leader=" + net.address(k) + ":8080 ") != std::string::npos) return k;
      }
      return -1;
    };
    int leader = -1;
    REQUIRE(eventually(
        [&] {
          auto s = n1.multi("stats", 3s);
          leader = leader_of(n1);
          return leader >= 0 && s[1].find("nodes_up=2 ") != std::string::npos;
        },
        20s, 100ms));
    std::vector<std::string> tickets;
    for (int i = 0; i < 20; ++i) tickets.push_back(submit(i % 2 ? n1 : n2, 300));
    for (const auto& t : tickets) REQUIRE(!t.empty());
    auto cut_at = Clock::now();
    REQUIRE(net.cut(static_cast<std::size_t>(leader), true));
    // The two others elect a new leader; the nodes find it.
    int next = -1;
    REQUIRE(eventually(
        [&] {
          next = leader_of(n1);
          return next >= 0 && next != leader;
        },
        20s, 50ms));
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - cut_at).count();
    MESSAGE("a node reached the new leader " << ms << " ms after the cut");
    // The old leader, without a majority, steps down by itself.
    CHECK(eventually(
        [&] {
          return proxies[static_cast<std::size_t>(leader)]->log_since_start().find(
                     "stepped down") != std::string::npos;
        },
        10s));
    // Jobs submitted during the partition are served by the majority side.
    std::vector<std::string> during;
    for (int i = 0; i < 10; ++i) during.push_back(submit(i % 2 ? n1 : n2, 10));
    for (const auto& t : during) {
      REQUIRE(!t.empty());
      CHECK_MESSAGE(!wait_result(n1, t, 30s).empty(), "no result during the partition for " << t);
    }
    tickets.insert(tickets.end(), during.begin(), during.end());
    REQUIRE(net.cut(static_cast<std::size_t>(leader), false));
    // Healed: every job one result, the same through both nodes.
    for (const auto& t : tickets) {
      std::string r = wait_result(n1, t, 60s);
      REQUIRE_MESSAGE(!r.empty(), "no result for " << t);
      CHECK(r.find("Executed Job[" + t + "]") != std::string::npos);
      CHECK(wait_result(n2, t, 30s) == r);
    }
    // The old leader rejoined as a follower: the leader's stats show it caught up.
    CHECK(eventually(
        [&] {
          auto s = n2.multi("stats", 3s);
          int caught = 0;
          for (const auto& l : s) {
            if (l.rfind("proxy ", 0) == 0 && l.find(" lag=0") != std::string::npos &&
                l.find("role=unreachable") == std::string::npos) {
              ++caught;
            }
          }
          return caught == 3;
        },
        20s, 100ms));
    done = true;
  };
  run_in_thread(body_fn);
  CHECK(done);
  for (auto& n : nodes) n->kill_hard();
  for (auto& p : proxies) p->kill_hard();
  if (done && std::getenv("JC_KEEP_TEST_DIRS") == nullptr) std::filesystem::remove_all(dir);
}
