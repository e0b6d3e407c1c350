// reverse_proxy [PORT]: reads configuration, opens the store, runs the server
// until SIGTERM or SIGINT.
#include <fmt/format.h>

#include <algorithm>
#include <csignal>
#include <random>

#include "common/config.h"
#include "net/program.h"
#include "net/tls.h"
#include "reverse_proxy/proxy_server.h"

namespace {

constexpr const char* kUsage = R"(usage: reverse_proxy [PORT]

The jobcluster balancer and dispatcher. Listens for cluster nodes on PORT
(default 8080; 0 = any free port).

Environment (defaults in brackets):
  DISPATCH_PERIOD        ms between dispatch rounds at most [50]
  MAX_NUM_JOBS_DISPATCH  most jobs sent in one round [100000]
  DISPATCH_PREFETCH      jobs a node may hold beyond its slots [1]
  DISPATCH_PREFETCH_MS   ... or as many as it finishes in this many ms,
                         when that is more (fast jobs); 0 = off [20]
  REQUEST_RESULT_PERIOD  ms between result exchanges with nodes [1000]
  MAX_NUM_NODES          most nodes connected at once [64]
  NODE_TIMEOUT           ms of silence before a node is presumed dead [5000]
  MAX_ATTEMPTS           most runs of one job before it ends FAILED [5]
  MAX_QUEUE              queued jobs past which nodes refuse new ones ("queue is
                         full", judge0's 503) until it is under nine tenths of
                         it; 0 = no limit [1000000]
  DATA_DIR               LevelDB directory [./data/reverse_proxy]
  CLUSTER_SECRET         nodes must prove they know it to join; without it the proxy
                         admits nodes from loopback addresses only [none]
  TLS_CERT, TLS_KEY, TLS_CA
                         PEM files: node links use TLS with these certificates
                         (all three, or none) instead of a key derived from
                         CLUSTER_SECRET; nodes must show a certificate from TLS_CA
                         [none]
  PROTECTED_MODE         on, or off to admit nodes from anywhere without a secret
                         (not recommended) [on]
  CLIENT_TOKENS          a file of name:token lines (as on the nodes): /api/jobs/<ticket>
                         then needs Authorization: Bearer <token> of its owner [none]
  ADMIN_NAMES            comma-separated names that may read every job [none]
  STATUS_PORT            HTTP port for the dashboard (/), /metrics, /api/state,
                         /api/jobs/<ticket>; 0 = any free port [none: off]
  BIND_ADDRESS           address to listen on [0.0.0.0]
  PROXY_PEERS            replicated proxies: host:port of every proxy's node port,
                         comma-separated, the same list on each (3 for one failure
                         tolerated); unset or one entry: a single proxy [none]
  PROXY_SELF             which PROXY_PEERS entry is this proxy [the one whose port is PORT]
  RAFT_ELECTION_TIMEOUT  ms without a leader's word before a proxy stands for election;
                         failover takes one to two of these [300]
  RAFT_SNAPSHOT_THRESHOLD  log entries between snapshots of the state [8192]
  RAFT_SNAPSHOT_TRAILING   entries kept in the log after a snapshot, so a proxy
                         briefly away catches up without one [4096]
  RAFT_ENTRY_WRITES      writes gathered for the next log entry past which the
                         leader stops reading from a node while four entries
                         are in flight (bounds the time to apply one) [4096]
  LOG_LEVEL              error, warn, info, debug [info]; VERBOSE=true means debug
)";

// PROXY_PEERS and PROXY_SELF: the replicated proxies and which one this is.
void load_peers(jc::proxy::ProxyConfig& c) {
  using jc::config::ConfigError;
  std::string list = jc::config::env_string("PROXY_PEERS", "");
  std::vector<std::string> peers;
  std::size_t start = 0;
  while (start <= list.size() && !list.empty()) {
    std::size_t comma = list.find(',', start);
    std::string entry = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    auto trim = [](std::string v) {
      v.erase(0, v.find_first_not_of(" \t"));
      v.erase(v.find_last_not_of(" \t") + 1);
      return v;
    };
    entry = trim(entry);
    auto colon = entry.rfind(':');
    if (entry.empty() || colon == std::string::npos || colon == 0) {
      throw ConfigError(fmt::format(
          "PROXY_PEERS must be comma-separated host:port entries, got '{}'", list));
    }
    jc::config::parse_port("PROXY_PEERS", entry.substr(colon + 1));
    if (entry.substr(colon + 1) == "0") {
      throw ConfigError(fmt::format("PROXY_PEERS ports must be from 1 to 65535, got '{}'", entry));
    }
    if (std::find(peers.begin(), peers.end(), entry) != peers.end()) {
      throw ConfigError(fmt::format("PROXY_PEERS names '{}' twice", entry));
    }
    peers.push_back(entry);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  std::string self = jc::config::env_string("PROXY_SELF", "");
  if (peers.size() <= 1) {
    if (!self.empty() && !peers.empty() && self != peers[0]) {
      throw ConfigError(fmt::format("PROXY_SELF '{}' is not in PROXY_PEERS '{}'", self, list));
    }
    return;  // a single proxy
  }
  if (peers.size() > 9) {
    throw ConfigError(fmt::format("PROXY_PEERS names {} proxies; at most 9", peers.size()));
  }
  std::size_t index = 0;
  if (!self.empty()) {
    auto it = std::find(peers.begin(), peers.end(), self);
    if (it == peers.end()) {
      throw ConfigError(fmt::format("PROXY_SELF '{}' is not in PROXY_PEERS '{}'", self, list));
    }
    index = static_cast<std::size_t>(it - peers.begin()) + 1;
  } else {
    std::string port = std::to_string(c.port);
    for (std::size_t i = 0; i < peers.size(); ++i) {
      if (peers[i].substr(peers[i].rfind(':') + 1) != port) continue;
      if (index != 0) {
        throw ConfigError(fmt::format(
            "PROXY_SELF must name this proxy's entry: several PROXY_PEERS entries have port {}",
            port));
      }
      index = i + 1;
    }
    if (index == 0) {
      throw ConfigError(fmt::format(
          "PROXY_SELF must name this proxy's entry: no PROXY_PEERS entry has port {}", port));
    }
  }
  c.peers = std::move(peers);
  c.self = index;
  c.election_timeout_ms = static_cast<unsigned>(
      jc::config::env_int("RAFT_ELECTION_TIMEOUT", 300, 50, 60'000, "milliseconds"));
  c.snapshot_threshold = static_cast<unsigned>(
      jc::config::env_int("RAFT_SNAPSHOT_THRESHOLD", 8192, 16, 10'000'000, "log entries"));
  c.snapshot_trailing = static_cast<unsigned>(
      jc::config::env_int("RAFT_SNAPSHOT_TRAILING", 4096, 1, 10'000'000, "log entries"));
  c.entry_writes = static_cast<std::size_t>(
      jc::config::env_int("RAFT_ENTRY_WRITES", 4096, 16, 10'000'000, "writes"));
}

jc::proxy::ProxyConfig load_config(int argc, char** argv) {
  using namespace jc::config;
  jc::proxy::ProxyConfig c;
  if (argc > 2) throw ConfigError("too many arguments: expected at most PORT (see --help)");
  if (argc == 2) c.port = parse_port("PORT", argv[1]);
  c.dispatch_period_ms = env_int("DISPATCH_PERIOD", 50, 1, 3'600'000, "milliseconds");
  c.core.max_dispatch =
      static_cast<std::size_t>(env_int("MAX_NUM_JOBS_DISPATCH", 100'000, 1, 100'000'000, "jobs"));
  c.core.prefetch = static_cast<std::uint32_t>(env_int("DISPATCH_PREFETCH", 1, 0, 10'000, "jobs"));
  c.core.prefetch_ms = env_int("DISPATCH_PREFETCH_MS", 20, 0, 60'000, "milliseconds");
  c.request_result_period_ms = env_int("REQUEST_RESULT_PERIOD", 1000, 1, 3'600'000, "milliseconds");
  c.core.max_nodes = static_cast<std::uint32_t>(env_int("MAX_NUM_NODES", 64, 1, 100'000, "nodes"));
  c.core.max_queue = static_cast<std::uint64_t>(env_int("MAX_QUEUE", 1'000'000, 0, 1'000'000'000, "jobs"));
  c.core.node_timeout_ms = env_int("NODE_TIMEOUT", 5000, 1, 86'400'000, "milliseconds");
  c.core.max_attempts = static_cast<std::uint32_t>(env_int("MAX_ATTEMPTS", 5, 1, 1000, "attempts"));
  c.core.retention.ttl_ms = jc::net::env_result_ttl();
  c.data_dir = env_string("DATA_DIR", "./data/reverse_proxy");
  c.core.secret = env_string("CLUSTER_SECRET", "");
  c.tls = jc::net::env_tls_settings(c.core.secret);
  c.tokens = jc::net::env_client_tokens();
  if (auto mode = env_raw("PROTECTED_MODE"); mode && !mode->empty()) {
    if (*mode == "on" || *mode == "yes" || *mode == "true" || *mode == "1") {
      c.protected_mode = true;
    } else if (*mode == "off" || *mode == "no" || *mode == "false" || *mode == "0") {
      c.protected_mode = false;
    } else {
      throw ConfigError(fmt::format("PROTECTED_MODE must be on or off, got '{}'", *mode));
    }
  }
  c.status_port = env_port("STATUS_PORT");
  c.bind_address = jc::net::env_bind_address();
  std::random_device rd;
  c.core.proxy_id = fmt::format("{:08x}", rd());
  load_peers(c);
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  if (auto code = jc::net::info_flags(argc, argv, "reverse_proxy", kUsage)) return *code;
  auto config = jc::net::load_config_or_report<jc::proxy::ProxyConfig>(
      "reverse_proxy", [&] { return load_config(argc, argv); });
  if (!config) return 2;
  // A peer proxy that goes away must not end this one (libuv writes with write()).
  std::signal(SIGPIPE, SIG_IGN);
  return jc::net::run_server<jc::proxy::ProxyServer>(std::move(*config), "proxy");
}
