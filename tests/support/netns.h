// Separate hosts on one machine for partition tests: a network namespace per
// host, joined through a bridge in a "switch" namespace by veth links; a
// host's switch port taken down drops its traffic without closing any
// connection. Needs root with CAP_SYS_ADMIN and `ip netns`.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/process.h"

namespace jc::test {

inline bool sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0; }

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

// Starts `bin` from the build in host `host`'s namespace, its data in
// dir/host and its log in dir/host.log; nodes and proxies prove a secret,
// since the hosts are not loopback to each other.
std::unique_ptr<Process> start_in(const Network& net, const std::string& host,
                                  const std::string& bin, std::vector<std::string> args,
                                  std::map<std::string, std::string> env, const std::string& dir);

// Enters host `host`'s namespace with the calling thread (a test's client).
bool enter(const Network& net, const std::string& host);

// Runs `body` on a thread of its own (which may enter a namespace) and
// waits for it; a failed REQUIRE there (an exception) ends the body, not
// the process.
template <class F>
void run_in_thread(F& body) {
  std::thread t([&] {
    try {
      body();
    } catch (...) {
    }
  });
  t.join();
}

}  // namespace jc::test
