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
#include "tests/support/skip.h"

using namespace jc::test;

namespace {

bool sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0; }

class Network {
 public:
  Network()
      : tag_("jcp" + std::to_string(getpid() % 100000)),
        subnet_(std::to_string(getpid() % 200 + 20)) {}
  ~Network() {
    for (const auto& h : hosts_) sh("ip netns del " + ns(h));
    sh("ip netns del " + ns("sw"));
  }
  std::string ns(const std::string& host) const { return tag_ + "-" + host; }
  std::string address(std::size_t i) const {
    return "10.250." + subnet_ + "." + std::to_string(i + 1);
  }
  bool create(const std::vector<std::string>& hosts) {
    if (!sh("ip netns add " + ns("sw")) || !sh("ip -n " + ns("sw") + " link add br0 type bridge") ||
        !sh("ip -n " + ns("sw") + " link set br0 up")) {
      return false;
    }
    for (std::size_t i = 0; i < hosts.size(); ++i) {
      hosts_.push_back(hosts[i]);
      std::string host = ns(hosts[i]);
      std::string port = "b" + std::to_string(i);
      bool ok = sh("ip netns add " + host) && sh("ip -n " + host + " link set lo up") &&
                sh("ip -n " + host + " link add eth0 type veth peer name " + port + " netns " +
                   ns("sw")) &&
                sh("ip -n " + host + " addr add " + address(i) + "/24 dev eth0") &&
                sh("ip -n " + host + " link set eth0 up") &&
                sh("ip -n " + ns("sw") + " link set " + port + " master br0") &&
                sh("ip -n " + ns("sw") + " link set " + port + " up");
      if (!ok) return false;
    }
    return true;
  }
  // Drops all traffic of host i (its switch port goes down), or restores it.
  bool cut(std::size_t i, bool down) {
    return sh("ip -n " + ns("sw") + " link set b" + std::to_string(i) + (down ? " down" : " up"));
  }

 private:
  std::string tag_, subnet_;
  std::vector<std::string> hosts_;
};

std::unique_ptr<Process> start_in(const Network& net, const std::string& host,
                                  const std::string& bin, std::vector<std::string> args,
                                  std::map<std::string, std::string> env, const std::string& dir) {
  std::vector<std::string> full{"netns", "exec", net.ns(host), std::string(JC_BIN_DIR) + "/" + bin};
  full.insert(full.end(), args.begin(), args.end());
  env["DATA_DIR"] = dir + "/" + host;
  env["LOG_LEVEL"] = "debug";
  // The hosts are not loopback to each other: without a secret the proxy's
  // protected mode would refuse the nodes.
  env["CLUSTER_SECRET"] = "partition-test-secret";
  auto p = std::make_unique<Process>("/usr/sbin/ip", full, env, dir + "/" + host + ".log");
  p->start();
  return p;
}

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
  // REQUIRE throws: keep a failure in this thread from ending the process.
  std::thread body([&] {
    try {
      partition_body();
    } catch (...) {
    }
  });
  body.join();
  CHECK(done);
  for (auto& n : nodes) n->kill_hard();
  proxy->kill_hard();
  if (done && std::getenv("JC_KEEP_TEST_DIRS") == nullptr) std::filesystem::remove_all(dir);
}
