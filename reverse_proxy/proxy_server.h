// The reverse proxy's I/O shell: accepts node connections, feeds their frames
// to ProxyCore, runs the dispatch and result-exchange timers, and performs
// the group commit (LevelDB write, then the sends that depend on it).
// Everything runs on one io_context thread.
#pragma once

#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "net/asio.h"
#include "net/frame_connection.h"
#include "net/listener.h"
#include "net/storage_retry.h"
#include "replication/raft_log.h"
#include "reverse_proxy/commit_path.h"
#include "reverse_proxy/http_server.h"
#include "reverse_proxy/peer_addresses.h"
#include "net/name_resolvers.h"
#include "reverse_proxy/proxy_core.h"
#include "reverse_proxy/replicated_store.h"

namespace jc::proxy {

namespace detail {
// Whether `address` (an IP, v4-mapped or not) is a loopback one: nodes and
// peer proxies in protected mode (proxy_server.cpp, proxy_replication.cpp).
bool is_loopback(const std::string& address);
}  // namespace detail

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
  // Replicated proxies (PROXY_PEERS with more than one entry): every
  // proxy's node port, and which of them is this one (1-based).
  std::vector<std::string> peers;
  std::size_t self = 0;
  unsigned election_timeout_ms = 300;  // RAFT_ELECTION_TIMEOUT; the heartbeat is a sixth of it
  unsigned snapshot_threshold = 8192;  // RAFT_SNAPSHOT_THRESHOLD: entries between snapshots
  unsigned snapshot_trailing = 4096;   // RAFT_SNAPSHOT_TRAILING: entries kept after one
  // RAFT_ENTRY_WRITES: writes staged for the next entry past which nodes
  // wait (their links paused) while every entry slot is taken.
  std::size_t entry_writes = 4096;
  TimeMs node_heartbeat_ms = 250;      // HEARTBEAT to nodes while leading
  bool replicated() const { return peers.size() > 1; }
};

// With one proxy, the core commits its stage to LevelDB (synced) and then
// sends. With replicated proxies (PROXY_PEERS), the stage of each group
// commit becomes a log entry instead (reverse_proxy/replicated_store.h):
// only the leader has a core, and it sends what depends on an entry once
// the entry is on a majority's disk and applied here. Both are a
// CommitPath (commit_path.h), chosen at start. Followers apply entries to
// their stores and refuse nodes, naming the leader.
class ProxyServer {
 public:
  ProxyServer(boost::asio::io_context& io, ProxyConfig config, storage::Store& store);
  ~ProxyServer();
  ProxyServer(const ProxyServer&) = delete;
  ProxyServer& operator=(const ProxyServer&) = delete;
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
  void run_posted_dispatch();
  void run_dispatch();
  void schedule_periodic();
  void schedule_sweep(TimeMs after_ms);
  void schedule_flush();
  void flush();
  void send_outbox(std::vector<Outgoing> outbox);
  CommitPath::Send send_outbox_fn() {
    return [this](std::vector<Outgoing> out) { send_outbox(std::move(out)); };
  }
  // Emptied key ranges are compacted at most this often (RESULT_TTL-bound).
  TimeMs compact_period() const { return config_.core.retention.compact_period_ms(); }

  // Replicated proxies.
  void on_log_status(const replication::LogStatus& status);
  void take_over(std::uint64_t term);
  // hand_over: also ask another proxy to lead when the log still says this one does.
  void step_down(const std::string& why, bool hand_over = true);
  void start_leading_timers();
  void send_heartbeats();
  void upkeep();
  void on_peer_hello(std::uint64_t id, protocol::PeerHello& hello);
  // Whether the peer's IP is one of those of PROXY_PEERS entry k's host;
  // kResolve: the session waits for a look-up, done asynchronously (DNS
  // must never hold the event loop: a peer's container that just died can
  // leave its name unanswered for many seconds), and its PEER_HELLO is
  // taken again when the answer is in.
  PeerAddresses::Verdict peer_address_check(std::size_t k, const std::string& ip);
  void resolve_peer(std::size_t k);
  PeerAddresses peer_ips_;
  static constexpr std::chrono::milliseconds kPeerLookupPatience{30'000};
  TimeMs peer_names_refreshed_ = 0;
  // The IPs of each peer's last look-up, for dials on the links' thread.
  std::mutex dial_ips_mu_;
  std::map<std::size_t, std::vector<boost::asio::ip::address>> dial_ips_;
  // PEER_HELLOs waiting for their entry's look-up, by entry.
  std::map<std::size_t, std::vector<std::pair<std::uint64_t, protocol::PeerHello>>> parked_hellos_;
  void dial_peer(const std::string& address, boost::asio::io_context& io,
                 std::function<void(std::shared_ptr<net::FrameConnection>, const std::string&)> done);
  ReplicationInfo replication_info() const;
  void fill_replication_stats(protocol::ClusterStats& s) const;
  std::string leader_hint() const;
  // How often a replicated leader's Raft heartbeats go out.
  unsigned raft_heartbeat_ms() const { return std::max(10u, config_.election_timeout_ms / 6); }

  boost::asio::io_context& io_;
  ProxyConfig config_;
  storage::Store& store_;
  // The core: always with one proxy; with replicated proxies only while
  // this one leads (loaded from the store when it takes over).
  std::unique_ptr<ProxyCore> core_;
  std::unique_ptr<ReplicatedStore> machine_;
  // Dialling other proxies; declared before raft_, whose peer links' thread
  // reads it until raft_ is destroyed.
  std::shared_ptr<boost::asio::ssl::context> peer_tls_context_;
  // Look-ups of the peers' names, one thread each (stopped by ~ProxyServer
  // before raft_'s links' thread ends, destroyed after it).
  std::unique_ptr<net::NameResolvers> resolvers_;
  std::unique_ptr<replication::RaftLog> raft_;
  bool taking_over_ = false;
  // How staged writes become durable: LevelDB, or the log (commit_path.h).
  std::unique_ptr<CommitPath> commit_;
  static constexpr std::chrono::microseconds kNodeTurnBudget{2000};
  std::uint64_t generation_ = 0;  // a new one at every take-over and step-down
  std::uint64_t elections_won_ = 0;
  std::uint64_t term_ = 0;    // the term this proxy leads in (0: not leading)
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
  // Ends a hold of the commit (CommitHold).
  boost::asio::steady_timer commit_hold_timer_;
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
  boost::asio::steady_timer heartbeat_timer_;
  boost::asio::steady_timer upkeep_timer_;
  TimeMs idle_leader_since_ = 0;
};

}  // namespace jc::proxy
