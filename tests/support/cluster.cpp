#include "tests/support/cluster.h"

#include <stdlib.h>

#include <filesystem>
#include <stdexcept>

namespace jc::test {

namespace fs = std::filesystem;

Cluster::Cluster(ClusterOptions options) : options_(std::move(options)) {
  std::string tmpl = (fs::temp_directory_path() / "jc-test-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  try {
    std::map<std::string, std::string> env = options_.proxy_env;
    env.emplace("DATA_DIR", dir_ + "/proxy");
    env.emplace("LOG_LEVEL", "debug");
    proxy_ = std::make_unique<Process>(std::string(JC_BIN_DIR) + "/reverse_proxy",
                                       std::vector<std::string>{"0"}, env, dir_ + "/proxy.log");
    proxy_->start();
    proxy_port_ = proxy_->wait_listening("for nodes");
    if (proxy_port_ == 0)
      throw std::runtime_error("proxy did not start: " + proxy_->log_since_start());
    for (int i = 0; i < options_.nodes; ++i) add_node();
  } catch (...) {
    // No destructor runs for a half-built cluster: stop what started and
    // remove its directory here (the exception carries the log).
    stop_and_clean();
    throw;
  }
}

Cluster::~Cluster() { stop_and_clean(); }

void Cluster::stop_and_clean() {
  for (auto& n : nodes_) n->kill_hard();
  if (proxy_) proxy_->kill_hard();
  // JC_KEEP_TEST_DIRS=1 keeps data and logs for a person to read.
  if (std::getenv("JC_KEEP_TEST_DIRS") == nullptr) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

std::size_t Cluster::add_node(std::map<std::string, std::string> extra_env) {
  std::size_t i = nodes_.size();
  std::map<std::string, std::string> env = options_.node_env;
  for (auto& [k, v] : extra_env) env[k] = v;
  env.emplace("NODE_ID", node_id(i));
  env.emplace("NODE_SLOTS", std::to_string(options_.slots));
  env.emplace("DATA_DIR", dir_ + "/" + node_id(i));
  env.emplace("CLIENT_PORT", "0");
  env.emplace("LOG_LEVEL", "debug");
  nodes_.push_back(
      std::make_unique<Process>(std::string(JC_BIN_DIR) + "/cluster_node",
                                std::vector<std::string>{"127.0.0.1",
                                                         std::to_string(node_proxy_port_ != 0
                                                                            ? node_proxy_port_
                                                                            : proxy_port_)},
                                env, dir_ + "/" + node_id(i) + ".log"));
  node_ports_.push_back(0);
  start_node(i);
  return i;
}

void Cluster::start_node(std::size_t i) {
  nodes_[i]->start();
  node_ports_[i] = nodes_[i]->wait_listening("for clients");
  if (node_ports_[i] == 0) {
    throw std::runtime_error("node did not start: " + nodes_[i]->log_since_start());
  }
  // Later restarts keep the port clients know.
  nodes_[i]->env()["CLIENT_PORT"] = std::to_string(node_ports_[i]);
}

void Cluster::restart_node(std::size_t i, bool kill_first) {
  if (kill_first) nodes_[i]->kill_hard();
  start_node(i);
}

void Cluster::restart_proxy(bool kill_first) {
  if (kill_first) proxy_->kill_hard();
  // The same port, so the nodes find it again.
  proxy_ = std::make_unique<Process>(
      std::string(JC_BIN_DIR) + "/reverse_proxy",
      std::vector<std::string>{std::to_string(proxy_port_)},
      std::map<std::string, std::string>{{"DATA_DIR", dir_ + "/proxy"}, {"LOG_LEVEL", "debug"}},
      dir_ + "/proxy.log");
  for (auto& [k, v] : options_.proxy_env) proxy_->env()[k] = v;
  proxy_->start();
  if (proxy_->wait_listening("for nodes") != proxy_port_) {
    throw std::runtime_error("proxy did not restart: " + proxy_->log_since_start());
  }
}

bool Cluster::wait_nodes_up(std::size_t n, std::chrono::milliseconds timeout) {
  return eventually(
      [&] {
        Client c(node_port(0), 2s);
        auto lines = c.multi("stats", 3s);
        return lines.size() > 1 &&
               lines[1].find("nodes_up=" + std::to_string(n)) != std::string::npos &&
               lines[1].find("proxy=up") != std::string::npos;
      },
      timeout, 50ms);
}

std::string submit(Client& client, int ms) {
  std::string reply = client.command(std::to_string(ms));
  const std::string prefix = "Ticket ID: ";
  if (reply.rfind(prefix, 0) != 0) return "";
  return reply.substr(prefix.size());
}

std::vector<std::string> submit_many(Client& client, int count, int ms) {
  std::string batch;
  for (int i = 0; i < count; ++i) batch += std::to_string(ms) + "\n";
  std::vector<std::string> tickets;
  if (!client.send(batch)) return tickets;
  for (int i = 0; i < count; ++i) {
    auto l = client.line();
    if (!l || l->rfind("Ticket ID: ", 0) != 0) break;
    tickets.push_back(l->substr(11));
  }
  return tickets;
}

std::string wait_result(Client& client, const std::string& ticket,
                        std::chrono::milliseconds timeout) {
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(timeout).count();
  std::string reply = client.command("wait " + ticket + " " + std::to_string(secs), timeout + 5s);
  return reply.rfind("Result: ", 0) == 0 ? reply : "";
}

std::string result_node(const std::string& result_line) {
  auto pos = result_line.rfind(" on node ");
  return pos == std::string::npos ? "" : result_line.substr(pos + 9);
}

}  // namespace jc::test
