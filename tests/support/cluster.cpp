#include "tests/support/cluster.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <random>
#include <stdexcept>

namespace jc::test {

namespace fs = std::filesystem;

Cluster::Cluster(ClusterOptions options) : options_(std::move(options)) {
  std::string tmpl = (fs::temp_directory_path() / "jc-test-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  try {
    if (options_.proxies <= 1) {
      std::map<std::string, std::string> env = options_.proxy_env;
      env.emplace("DATA_DIR", dir_ + "/proxy");
      env.emplace("LOG_LEVEL", "debug");
      proxies_.push_back(std::make_unique<Process>(std::string(JC_BIN_DIR) + "/reverse_proxy",
                                                   std::vector<std::string>{"0"}, env,
                                                   dir_ + "/proxy.log"));
      proxies_[0]->start();
      proxy_ports_.push_back(proxies_[0]->wait_listening("for nodes"));
      if (proxy_ports_[0] == 0)
        throw std::runtime_error("proxy did not start: " + proxies_[0]->log_since_start());
    } else {
      proxy_ports_ = free_ports(static_cast<std::size_t>(options_.proxies));
      for (int k = 0; k < options_.proxies; ++k) {
        peers_ += (k ? "," : "") + options_.peer_host + ":" + std::to_string(proxy_ports_[k]);
      }
      for (int k = 0; k < options_.proxies; ++k) {
        std::map<std::string, std::string> env = options_.proxy_env;
        if (static_cast<std::size_t>(k) < options_.proxy_env_each.size()) {
          for (const auto& [key, value] : options_.proxy_env_each[k]) env[key] = value;
        }
        std::string name = "proxy" + std::to_string(k + 1);
        env.emplace("DATA_DIR", dir_ + "/" + name);
        env.emplace("LOG_LEVEL", "debug");
        env.emplace("PROXY_PEERS", peers_);
        env.emplace("STATUS_PORT", "0");
        env.emplace("BIND_ADDRESS", "127.0.0.1");
        proxies_.push_back(std::make_unique<Process>(
            std::string(JC_BIN_DIR) + "/reverse_proxy",
            std::vector<std::string>{std::to_string(proxy_ports_[k])}, env,
            dir_ + "/" + name + ".log"));
      }
      for (std::size_t k = 0; k < proxies_.size(); ++k) start_proxy(k);
    }
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
  for (auto& p : proxies_) p->kill_hard();
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
  std::vector<std::string> args{
      "127.0.0.1", std::to_string(node_proxy_port_ != 0 ? node_proxy_port_ : proxy_ports_[0])};
  if (!peers_.empty()) {
    env.emplace("PROXY_ADDRESSES", peers_);
    args.clear();
  }
  nodes_.push_back(std::make_unique<Process>(std::string(JC_BIN_DIR) + "/cluster_node", args, env,
                                             dir_ + "/" + node_id(i) + ".log"));
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
  if (!peers_.empty()) {
    if (kill_first) kill_proxy(0);
    start_proxy(0);
    return;
  }
  auto& proxy = proxies_[0];
  if (kill_first) proxy->kill_hard();
  // The same port, so the nodes find it again.
  proxy = std::make_unique<Process>(
      std::string(JC_BIN_DIR) + "/reverse_proxy",
      std::vector<std::string>{std::to_string(proxy_ports_[0])},
      std::map<std::string, std::string>{{"DATA_DIR", dir_ + "/proxy"}, {"LOG_LEVEL", "debug"}},
      dir_ + "/proxy.log");
  for (auto& [k, v] : options_.proxy_env) proxy->env()[k] = v;
  proxy->start();
  if (proxy->wait_listening("for nodes") != proxy_ports_[0]) {
    throw std::runtime_error("proxy did not restart: " + proxy->log_since_start());
  }
}

void Cluster::start_proxy(std::size_t k) {
  auto& proxy = proxies_.at(k);
  proxy->start();
  if (proxy->wait_listening("for nodes") != proxy_ports_[k]) {
    throw std::runtime_error("proxy " + std::to_string(k + 1) +
                             " did not start: " + proxy->log_since_start());
  }
  if (status_ports_.size() <= k) status_ports_.resize(k + 1);
  status_ports_[k] = proxy->wait_listening("for status");
  // Later restarts keep it.
  proxy->env()["STATUS_PORT"] = std::to_string(status_ports_[k]);
}

std::string Cluster::proxy_http(std::size_t k, const std::string& path) {
  Client c(status_ports_.at(k), 2s);
  if (!c.connected() || !c.send("GET " + path + " HTTP/1.0\r\n\r\n")) return "";
  auto reply = c.until_close(5s);
  if (!reply) return "";
  auto body = reply->find("\r\n\r\n");
  return body == std::string::npos ? "" : reply->substr(body + 4);
}

long long Cluster::proxy_applied(std::size_t k) {
  std::string metrics = proxy_http(k, "/metrics");
  const std::string name = "\njobcluster_raft_applied_index ";
  auto at = metrics.find(name);
  if (at == std::string::npos) return -1;
  return std::atoll(metrics.c_str() + at + name.size());
}

std::string Cluster::stats_line(std::size_t i) {
  Client c(node_port(i), 2s);
  auto lines = c.multi("stats", 3s);
  return lines.size() > 1 ? lines[1] : "";
}

int Cluster::leader(std::chrono::milliseconds timeout) {
  int found = -1;
  eventually(
      [&] {
        for (std::size_t i = 0; i < nodes_.size(); ++i) {
          if (!nodes_[i]->running()) continue;
          std::string line = stats_line(i);
          if (line.find("proxy=up") == std::string::npos) continue;
          for (std::size_t k = 0; k < proxy_ports_.size(); ++k) {
            std::string mark = "leader=" + options_.peer_host + ":" + std::to_string(proxy_ports_[k]) + " ";
            if (line.find(mark) != std::string::npos) {
              found = static_cast<int>(k);
              return true;
            }
          }
        }
        return false;
      },
      timeout, 50ms);
  return found;
}

namespace {
// The lowest of the kernel's ephemeral ports (ip_local_port_range), from
// which every outgoing connection takes its own port.
int ephemeral_low() {
  int low = 32768, high = 0;
  if (FILE* f = std::fopen("/proc/sys/net/ipv4/ip_local_port_range", "r")) {
    if (std::fscanf(f, "%d %d", &low, &high) != 2) low = 32768;
    std::fclose(f);
  }
  return low;
}

// A socket bound to `port` on loopback (port 0: one the kernel picks), or -1.
int bound_socket(std::uint16_t port, std::uint16_t& got) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return -1;
  }
  got = ntohs(addr.sin_port);
  return fd;
}
}  // namespace

std::vector<std::uint16_t> free_ports(std::size_t n) {
  // Below the ephemeral range when there is room: a port found free and
  // closed again is then not taken, before its proxy binds it, as the
  // source port of a connection another test opens meanwhile.
  const int low = ephemeral_low();
  const int first = 10000;
  std::vector<int> fds;
  std::vector<std::uint16_t> ports;
  std::mt19937 pick(std::random_device{}());
  for (int tries = 0; ports.size() < n && tries < 1000; ++tries) {
    std::uint16_t want = 0;
    if (low - first > 1000) {
      want = static_cast<std::uint16_t>(std::uniform_int_distribution<int>(first, low - 1)(pick));
    }
    std::uint16_t got = 0;
    int fd = bound_socket(want, got);
    if (fd < 0) continue;
    fds.push_back(fd);
    ports.push_back(got);
  }
  for (int fd : fds) ::close(fd);
  if (ports.size() != n) throw std::runtime_error("no free port");
  return ports;
}

bool Cluster::wait_nodes_up(std::size_t n, std::chrono::milliseconds timeout) {
  return eventually(
      [&] {
        Client c(node_port(0), 2s);
        auto lines = c.multi("stats", 3s);
        return lines.size() > 1 &&
               lines[1].find("nodes_up=" + std::to_string(n) + (peers_.empty() ? "" : " ")) !=
                   std::string::npos &&
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
