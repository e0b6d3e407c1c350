// A local cluster for integration tests: one reverse_proxy and N cluster
// nodes started from the built binaries on port 0 (each logs the port it
// bound), with data under a fresh temporary directory. Everything it
// started is killed by PID when it goes out of scope.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/client.h"
#include "tests/support/process.h"

namespace jc::test {

struct ClusterOptions {
  int nodes = 3;
  int slots = 2;
  std::map<std::string, std::string> proxy_env;
  std::map<std::string, std::string> node_env;
};

class Cluster {
 public:
  explicit Cluster(ClusterOptions options = {});
  ~Cluster();

  std::uint16_t proxy_port() const { return proxy_port_; }
  std::uint16_t node_port(std::size_t i) const { return node_ports_.at(i); }
  std::size_t size() const { return nodes_.size(); }
  Process& proxy() { return *proxy_; }
  Process& node(std::size_t i) { return *nodes_.at(i); }
  std::string node_id(std::size_t i) const { return "n" + std::to_string(i + 1); }
  const std::string& dir() const { return dir_; }

  // Nodes started from now on dial this port instead of the proxy's (a
  // relay in between).
  void set_node_proxy_port(std::uint16_t port) { node_proxy_port_ = port; }
  // Starts one more node; returns its index.
  std::size_t add_node(std::map<std::string, std::string> extra_env = {});
  // kill -9 then start again on the same port with the same data.
  void restart_node(std::size_t i, bool kill_first = true);
  void restart_proxy(bool kill_first = true);
  // Waits until the proxy reports `n` nodes up (through node 0's `stats`).
  bool wait_nodes_up(std::size_t n, std::chrono::milliseconds timeout = 15s);

 private:
  void start_node(std::size_t i);
  void stop_and_clean();
  ClusterOptions options_;
  std::string dir_;
  std::unique_ptr<Process> proxy_;
  std::vector<std::unique_ptr<Process>> nodes_;
  std::uint16_t proxy_port_ = 0;
  std::uint16_t node_proxy_port_ = 0;
  std::vector<std::uint16_t> node_ports_;
};

// Submits a sleep job through `client`; returns the ticket ("" on failure).
std::string submit(Client& client, int ms);
// Pipelines `count` sleep jobs; returns their tickets (fewer on failure).
std::vector<std::string> submit_many(Client& client, int count, int ms);
// `wait <ticket>` until a "Result: ..." line (the job is final), or "" on timeout.
std::string wait_result(Client& client, const std::string& ticket,
                        std::chrono::milliseconds timeout = 60s);
// The node id at the end of a sleep result ("... on node n2").
std::string result_node(const std::string& result_line);

}  // namespace jc::test
