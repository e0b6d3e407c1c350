// A local cluster for integration tests: one reverse_proxy (or several,
// replicated) and N cluster nodes started from the built binaries on port 0
// (each logs the port it bound), with data under a fresh temporary
// directory. Replicated proxies must know each other's ports before they
// start: those are free ports picked first. Everything it started is killed
// by PID when it goes out of scope.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/client.h"
#include "tests/support/process.h"

namespace jc::test {

struct ClusterOptions {
  int proxies = 1;  // more than one: replicated (PROXY_PEERS, PROXY_ADDRESSES)
  int nodes = 3;
  int slots = 2;
  std::map<std::string, std::string> proxy_env;
  std::map<std::string, std::string> node_env;
  // Replicated proxies: settings of proxy k only (over proxy_env), e.g. its DATA_DIR.
  std::vector<std::map<std::string, std::string>> proxy_env_each;
  // Replicated proxies: the host their PROXY_PEERS entries name (a name is
  // looked up, as in containers; an IP is taken as it is).
  std::string peer_host = "127.0.0.1";
};

class Cluster {
 public:
  explicit Cluster(ClusterOptions options = {});
  ~Cluster();

  std::uint16_t proxy_port(std::size_t k = 0) const { return proxy_ports_.at(k); }
  std::uint16_t node_port(std::size_t i) const { return node_ports_.at(i); }
  std::size_t size() const { return nodes_.size(); }
  Process& proxy(std::size_t k = 0) { return *proxies_.at(k); }
  std::size_t proxy_count() const { return proxies_.size(); }
  // Replicated proxies: kill -9 one, and start it again (same port, same data).
  void kill_proxy(std::size_t k) { proxies_.at(k)->kill_hard(); }
  void start_proxy(std::size_t k);
  // The proxy that leads, as a node's `stats` names it (-1: none within timeout).
  int leader(std::chrono::milliseconds timeout = 10s);
  // Replicated proxy k's DATA_DIR.
  std::string proxy_data_dir(std::size_t k) { return proxies_.at(k)->env().at("DATA_DIR"); }
  // GET `path` from replicated proxy k's STATUS_PORT: the body ("" on failure).
  std::string proxy_http(std::size_t k, const std::string& path);
  // Replicated proxy k's jobcluster_raft_applied_index (-1 when unreadable).
  long long proxy_applied(std::size_t k);
  // Node i's stats summary line ("proxy=up queue=... leader=... term=..."), or "".
  std::string stats_line(std::size_t i = 0);
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
  std::vector<std::unique_ptr<Process>> proxies_;
  std::vector<std::unique_ptr<Process>> nodes_;
  std::vector<std::uint16_t> proxy_ports_;
  std::vector<std::uint16_t> status_ports_;
  std::string peers_;  // PROXY_PEERS
  std::uint16_t node_proxy_port_ = 0;
  std::vector<std::uint16_t> node_ports_;
};

// `n` distinct ports free on loopback now: for processes that must know each
// other's ports before they start. Every socket stays bound until all `n` are
// read, so the kernel cannot hand the same port out twice.
std::vector<std::uint16_t> free_ports(std::size_t n);

// Submits a sleep job through `client`; returns the ticket ("" on failure).
std::string submit(Client& client, int ms);
// Pipelines `count` sleep jobs; returns their tickets (fewer on failure).
std::vector<std::string> submit_many(Client& client, int count, int ms);
// `wait <ticket>` until a "Result: ..." line (the job is final), or "" on timeout.
std::string wait_result(Client& client, const std::string& ticket,
                        std::chrono::milliseconds timeout = 60s);
// Every ticket reaches a result, and every node shows the same one (doctest
// checks).
void check_all_finished_once(Cluster& cluster, const std::vector<std::string>& tickets);
// The node id at the end of a sleep result ("... on node n2").
std::string result_node(const std::string& result_line);

}  // namespace jc::test
