// The reverse proxy's I/O shell: accepts node connections, feeds their frames
// to ProxyCore, runs the dispatch and result-exchange timers, and performs
// the group commit (LevelDB write, then the sends that depend on it).
// Everything runs on one io_context thread.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "net/asio.h"
#include "net/frame_connection.h"
#include "net/listener.h"
#include "net/storage_retry.h"
#include "reverse_proxy/http_server.h"
#include "reverse_proxy/proxy_core.h"

namespace jc::proxy {

struct ProxyConfig {
  std::string bind_address = "0.0.0.0";
  std::uint16_t port = 8080;
  std::string data_dir = "./data/reverse_proxy";
  TimeMs dispatch_period_ms = 50;
  TimeMs request_result_period_ms = 1000;
  TimeMs handshake_timeout_ms = 5000;
  std::optional<std::uint16_t> status_port;  // STATUS_PORT: HTTP dashboard, /metrics, /api
  // PROTECTED_MODE: without CLUSTER_SECRET, nodes from loopback addresses
  // only (redis' protected mode). Off, or a secret, admits them from anywhere.
  bool protected_mode = true;
  // TLS on the node links: a key derived from CLUSTER_SECRET, or TLS_CERT /
  // TLS_KEY / TLS_CA. Off only without either.
  net::TlsSettings tls;
  // CLIENT_TOKENS / ADMIN_NAMES: who may read a job on the HTTP API.
  protocol::ClientTokens tokens;
  ProxyOptions core;
};

class ProxyServer {
 public:
  ProxyServer(boost::asio::io_context& io, ProxyConfig config, storage::Store& store);
  // Recovers state and starts listening. Throws on a bind failure.
  Status start();
  // Stops accepting, commits what is staged and closes every connection.
  void stop();
  std::uint16_t port() const { return port_; }

 private:
  // Protected mode without a secret or certificates: nodes from loopback only.
  bool loopback_only() const;
  struct Session {
    std::shared_ptr<net::FrameConnection> conn;
    std::string node_id;  // empty until the handshake is accepted
    std::string nonce;    // the challenge sent to it
    std::string address;  // the peer's IP, for the per-address handshake limit
  };

  void on_accept(boost::asio::ip::tcp::socket socket, const std::string& address,
                 const std::string& peer);
  void on_frame(std::uint64_t id, protocol::Message&& m);
  void on_session_closed(std::uint64_t id, const std::string& reason);
  void kick_dispatch();
  void run_dispatch();
  void schedule_periodic();
  void schedule_sweep(TimeMs after_ms);
  void schedule_flush();
  void flush();

  boost::asio::io_context& io_;
  ProxyConfig config_;
  ProxyCore core_;
  std::shared_ptr<spdlog::logger> log_;
  std::shared_ptr<boost::asio::ssl::context> tls_context_;  // null: plaintext links
  net::Listener listener_;
  HttpServer http_;
  RoundHistogram rounds_;
  History history_;
  boost::asio::steady_timer history_timer_;
  void record_history();
  boost::asio::steady_timer dispatch_timer_;
  boost::asio::steady_timer exchange_timer_;
  // A dispatch round when the next delayed job's time comes.
  boost::asio::steady_timer delay_timer_;
  // Removes expired jobs (RESULT_TTL) every retention.sweep_period_ms().
  boost::asio::steady_timer sweep_timer_;
  // Ranges a sweep emptied, compacted once its removal is committed.
  protocol::CompactionPlan compactions_;
  TimeMs delay_timer_at_ = 0;  // 0: not armed
  void arm_delay_timer();
  std::unordered_map<std::uint64_t, Session> sessions_;
  std::unordered_map<std::string, std::uint64_t> by_node_;
  std::uint64_t next_session_ = 1;
  std::uint16_t port_ = 0;
  bool flush_scheduled_ = false;
  net::StorageRetry storage_retry_;
  bool dispatch_posted_ = false;
  bool stopping_ = false;
};

}  // namespace jc::proxy
