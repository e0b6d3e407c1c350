#include "tests/support/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

namespace jc::test {

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

bool enter(const Network& net, const std::string& host) {
  int fd = open(("/var/run/netns/" + net.ns(host)).c_str(), O_RDONLY);
  if (fd < 0) return false;
  bool ok = setns(fd, CLONE_NEWNET) == 0;
  close(fd);
  return ok;
}

}  // namespace jc::test
