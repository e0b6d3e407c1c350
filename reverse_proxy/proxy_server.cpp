// The proxy's lifetime (start, stop) and its node sessions: accepting a
// connection, the handshake, and feeding a node's frames to the core.
#include "reverse_proxy/proxy_server.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <filesystem>

#include "protocol/auth.h"
#include "protocol/codec.h"
#include "replication/peer_transport.h"

namespace jc::proxy {

namespace asio = boost::asio;
using boost::system::error_code;
using std::chrono::milliseconds;

namespace detail {

bool is_loopback(const std::string& address) {
  boost::system::error_code ec;
  auto a = asio::ip::make_address(address, ec);
  if (ec) return false;
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).is_loopback();
  }
  return a.is_loopback();
}

}  // namespace detail

namespace {

using detail::is_loopback;

constexpr std::size_t kMaxPendingHandshakes = 64;
constexpr std::size_t kMaxPendingHandshakesPerAddress = 16;
// Before HELLO is accepted a peer is a stranger: its frames may be smaller.
// A HELLO lists the jobs a node holds or finished while away, about 20 bytes
// each, so this still lets a node back with most of a million of them.
constexpr std::size_t kMaxHandshakeFrameBytes = 16 * 1024 * 1024;
// How long a submission's commit may wait for the results of the jobs it
// dispatched (CommitHold): about two fsyncs here, and longer than the round
// trip of a 0-ms job through a node.
constexpr auto kCommitHold = std::chrono::microseconds(500);
}  // namespace

ProxyServer::ProxyServer(asio::io_context& io, ProxyConfig config, storage::Store& store)
    : io_(io),
      config_(std::move(config)),
      store_(store),
      log_(log::get("proxy")),
      listener_(io, log_),
      http_(io,
            [this](const std::string& method, const std::string& target,
                   const std::string& authorization) {
              std::optional<ReplicationInfo> info;
              if (raft_) info = replication_info();
              return handle_http(method, target, authorization, config_.tokens, core_.get(),
                                 rounds_, history_, now_ms(), info ? &*info : nullptr);
            }),
      history_timer_(io),
      dispatch_timer_(io),
      exchange_timer_(io),
      delay_timer_(io),
      sweep_timer_(io),
      commit_hold_timer_(io),
      storage_retry_(io, log_, [this] { schedule_flush(); }),
      heartbeat_timer_(io),
      upkeep_timer_(io) {
  if (!config_.replicated()) core_ = std::make_unique<ProxyCore>(store_, config_.core);
}

bool ProxyServer::loopback_only() const {
  return config_.protected_mode && config_.core.secret.empty() &&
         config_.tls.mode != net::TlsSettings::Mode::certificates;
}

Status ProxyServer::start() {
  if (config_.replicated()) {
    // A store that holds jobs but no Raft log was a single proxy's: its
    // jobs are not in any log, and the other proxies would never learn of
    // them. Refused rather than silently forked.
    std::string raft_dir = config_.data_dir + "/raft";
    bool has_log = std::filesystem::exists(raft_dir);
    bool has_jobs = false;
    for (std::string_view prefix : {"a/", "q/", "h/", "f/"}) {
      store_.scan(prefix, [&](std::string_view, std::string_view) {
        has_jobs = true;
        return false;
      });
    }
    if (has_jobs && !has_log) {
      return Status::InvalidArgument(fmt::format(
          "DATA_DIR={} holds a single proxy's jobs and no replicated log: start a replicated "
          "proxy on an empty DATA_DIR (finish or drain the single proxy's jobs first)",
          config_.data_dir));
    }
    machine_ = std::make_unique<ReplicatedStore>(store_);
    if (Status s = machine_->open(); !s.ok()) return s;
    replication::RaftConfig rc;
    rc.id = config_.self;
    rc.peers = config_.peers;
    rc.dir = raft_dir;
    rc.election_timeout_ms = config_.election_timeout_ms;
    rc.heartbeat_ms = raft_heartbeat_ms();
    rc.snapshot_threshold = config_.snapshot_threshold;
    rc.snapshot_trailing = config_.snapshot_trailing;
    resolvers_ = std::make_unique<net::NameResolvers>(config_.peers.size());
    raft_ = std::make_unique<replication::RaftLog>(io_, rc, *machine_);
    raft_->on_status = [this](const replication::LogStatus& st) { on_log_status(st); };
    LogCommit::Hooks hooks;
    hooks.lost = [this](const std::string& why) { step_down(why); };
    hooks.flush_again = [this] { flush(); };
    hooks.resume = [this] {
      // Node links held back; a peer's link paused for its name's look-up
      // stays paused (resolve_peer).
      for (auto& [sid, session] : sessions_) {
        if (!session.node_id.empty()) session.conn->resume();
      }
    };
    commit_ = std::make_unique<LogCommit>(store_, send_outbox_fn(), compact_period(), *raft_,
                                          *machine_, config_.entry_writes, std::move(hooks), log_);
    raft_->transport().set_dial(
        [this](const std::string& address, asio::io_context& io,
               std::function<void(std::shared_ptr<net::FrameConnection>, const std::string&)> done) {
          dial_peer(address, io, std::move(done));
        });
  } else {
    commit_ = std::make_unique<DiskCommit>(
        store_, send_outbox_fn(), compact_period(), storage_retry_, kCommitHold,
        [this](CommitHold::Clock::duration after) {
          commit_hold_timer_.expires_after(after);
          commit_hold_timer_.async_wait([this](const error_code& ec) {
            if (!ec && !stopping_) schedule_flush();
          });
        },
        DiskCommit::Background{
            [this](std::function<void()> f) { asio::post(io_, std::move(f)); },
            [this] { flush(); }});
    if (Status s = core_->recover(now_ms()); !s.ok()) return s;
  }
  if (!store_.writable()) {
    log_->warn(
        "started read-only: DATA_DIR={} takes no writes ({}); nothing is dispatched or finished "
        "until it does, and nodes keep offering their jobs",
        config_.data_dir, store_.unwritable_reason());
    storage_retry_.failed(Status::IoError(store_.unwritable_reason()));
  }
  if (config_.tls.on()) {
    tls_context_ = net::make_tls_context(config_.tls, net::TlsRole::server);
    if (raft_) peer_tls_context_ = net::make_tls_context(config_.tls, net::TlsRole::client);
  }
  if (auto w = net::weak_secret_warning(config_.core.secret); !w.empty()) log_->warn("{}", w);
  log_->info("node links: {}", config_.tls.on() ? config_.tls.describe()
                                                : "plaintext (no CLUSTER_SECRET, no TLS_*)");
  if (loopback_only()) {
    log_->info(
        "protected mode: nodes{} may join from loopback addresses only; to admit them from other "
        "hosts, give every process the same CLUSTER_SECRET (they prove it to join)",
        raft_ ? " and peer proxies" : "");
  } else if (config_.core.secret.empty() &&
             config_.tls.mode != net::TlsSettings::Mode::certificates) {
    log_->warn(
        "PROTECTED_MODE=off without CLUSTER_SECRET: anyone who reaches the node port may join as a "
        "node, receive jobs with their test data and report results");
  }
  port_ = listener_.listen(
      config_.bind_address, config_.port, "for nodes",
      [this](asio::ip::tcp::socket socket, const std::string& address, const std::string& peer) {
        on_accept(std::move(socket), address, peer);
      });
  if (config_.status_port) {
    http_.listen(config_.bind_address, *config_.status_port);
    record_history();
  }
  if (config_.core.retention.enabled()) {
    log_->info("results kept RESULT_TTL={} ms after their job ends", config_.core.retention.ttl_ms);
  }
  if (raft_) {
    log_->info("replicated proxy {} of {}: self={} peers={} (applied up to index {})", config_.self,
               config_.peers.size(), config_.peers[config_.self - 1],
               fmt::join(config_.peers, ","), machine_->applied());
    if (Status s = raft_->start(); !s.ok()) return s;
    upkeep();
  } else {
    start_leading_timers();
  }
  return Status::Ok();
}

ProxyServer::~ProxyServer() {
  // No look-up answers after this, while raft_'s links' thread may still dial.
  if (resolvers_) resolvers_->stop();
}

void ProxyServer::stop() {
  if (stopping_) return;
  stopping_ = true;
  log_->info("shutting down sessions={}", sessions_.size());
  listener_.close();
  http_.close();
  history_timer_.cancel();
  dispatch_timer_.cancel();
  exchange_timer_.cancel();
  delay_timer_.cancel();
  sweep_timer_.cancel();
  commit_hold_timer_.cancel();
  heartbeat_timer_.cancel();
  upkeep_timer_.cancel();
  flush_scheduled_ = false;
  if (core_ && commit_) commit_->flush_at_stop(*core_);
  storage_retry_.cancel();
  for (auto& [id, s] : sessions_) s.conn->close("proxy shutting down");
  sessions_.clear();
  by_node_.clear();
  // What was proposed and not committed is not acknowledged: nodes send it again.
  if (commit_) commit_->abandon();
  if (raft_) {
    ++generation_;
    raft_->stop();
  }
}

void ProxyServer::on_accept(asio::ip::tcp::socket socket, const std::string& address,
                            const std::string& peer) {
  if (stopping_) return;
  // A stranger on the node port must not use up memory or slots: few
  // handshakes at a time, fewer still from one address, each with a deadline.
  std::size_t pending = 0, from_address = 0;
  for (const auto& [sid, s] : sessions_) {
    if (!s.node_id.empty()) continue;
    ++pending;
    if (s.address == address) ++from_address;
  }
  if (pending >= kMaxPendingHandshakes || from_address >= kMaxPendingHandshakesPerAddress) {
    log_->warn("refused connection peer={} reason=\"{} handshakes pending ({} from this address)\"",
               peer, pending, from_address);
    error_code ignored;
    socket.close(ignored);
    return;
  }
  std::uint64_t id = next_session_++;
  auto conn = tls_context_ ? std::make_shared<net::FrameConnection>(
                                 std::move(socket), peer, milliseconds(config_.handshake_timeout_ms),
                                 net::TlsLink{tls_context_, net::TlsRole::server, config_.tls.mode, ""})
                           : std::make_shared<net::FrameConnection>(
                                 std::move(socket), peer, milliseconds(config_.handshake_timeout_ms));
  std::string nonce = protocol::random_nonce();
  conn->set_max_frame(kMaxHandshakeFrameBytes);
  sessions_[id] = Session{conn, "", nonce, address};
  conn->start([this, id](protocol::Message&& m) { on_frame(id, std::move(m)); },
              [this, id](const std::string& reason) { on_session_closed(id, reason); });
  conn->send(protocol::Challenge{nonce});
}

void ProxyServer::on_frame(std::uint64_t id, protocol::Message&& m) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  Session& s = it->second;
  TimeMs now = now_ms();
  if (s.node_id.empty()) {
    if (auto* peer = std::get_if<protocol::PeerHello>(&m); peer != nullptr && raft_) {
      on_peer_hello(id, *peer);
      return;
    }
    auto* hello = std::get_if<protocol::Hello>(&m);
    if (hello == nullptr) {
      log_->warn("handshake expected peer={} got={}", s.conn->peer(), protocol::message_name(m));
      s.conn->close("first message was not HELLO");
      return;
    }
    if (loopback_only() && !is_loopback(s.address)) {
      std::string why =
          "protected mode: this proxy admits nodes from loopback addresses only; set the same "
          "CLUSTER_SECRET on the proxy and the nodes to join from other hosts";
      log_->warn("refused node node={} peer={} reason=\"{}\"",
                 protocol::escape_sample(hello->node_id), s.conn->peer(), why);
      s.conn->send(protocol::Welcome{false, why, {}, {}});
      s.conn->close_after_flush();
      return;
    }
    if (!core_) {
      // A replicated proxy that does not lead (or not yet): the node goes
      // to the leader, or tries the next proxy while an election runs.
      protocol::Welcome w;
      w.reason = taking_over_ ? "this proxy is taking over as leader; try again"
                              : "this proxy does not lead";
      w.leader = taking_over_ ? config_.peers[config_.self - 1] : leader_hint();
      w.proxies = config_.peers;
      s.conn->send(w);
      s.conn->close_after_flush();
      return;
    }
    protocol::Welcome w = core_->on_hello(*hello, s.conn->peer(), now, s.nonce);
    if (!w.accepted) {
      s.conn->send(w);
      s.conn->close_after_flush();
      return;
    }
    s.node_id = hello->node_id;
    by_node_[s.node_id] = id;
    s.conn->set_idle_timeout(milliseconds(config_.core.node_timeout_ms));
    s.conn->set_max_frame(protocol::kMaxFrameBytes);
    s.conn->count_partial_frames();
    // Replicated: the peer links' bytes (heartbeats and their answers) go
    // through this event loop too, and must not wait behind a node's
    // burst: each turn takes a node's frames for about 2 ms (at least one).
    if (raft_) s.conn->set_turn_budget(kNodeTurnBudget);
    kick_dispatch();
    schedule_flush();
    return;
  }
  if (core_->on_message(s.node_id, std::move(m), now)) kick_dispatch();
  schedule_flush();
  // Replicated, with every log entry slot taken: this node waits
  // (LogCommit::hold_back).
  if (commit_->hold_back(*core_)) s.conn->pause();
  // Last: the library's callbacks may run in it (`s` is not used after).
  if (raft_) raft_->pump_if_late();
}

void ProxyServer::on_session_closed(std::uint64_t id, const std::string& reason) {
  if (stopping_) return;
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  std::string node = it->second.node_id;
  // A failed handshake is someone who could not prove membership: warn.
  bool refused = node.empty() && reason.find("TLS") != std::string::npos;
  log_->log(refused ? spdlog::level::warn : spdlog::level::info,
            "connection closed peer={} node={} reason=\"{}\"", it->second.conn->peer(),
            node.empty() ? "-" : node, reason);
  sessions_.erase(it);
  if (node.empty()) return;
  by_node_.erase(node);
  if (!core_) return;
  core_->on_disconnect(node, now_ms());
  kick_dispatch();
  schedule_flush();
}

}  // namespace jc::proxy
