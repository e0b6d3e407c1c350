#include "reverse_proxy/proxy_server.h"

#include <fmt/format.h>

#include "protocol/auth.h"
#include "protocol/codec.h"

namespace jc::proxy {

namespace asio = boost::asio;
using boost::system::error_code;
using std::chrono::milliseconds;

namespace {

bool is_loopback(const std::string& address) {
  boost::system::error_code ec;
  auto a = asio::ip::make_address(address, ec);
  if (ec) return false;
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).is_loopback();
  }
  return a.is_loopback();
}

constexpr std::size_t kMaxPendingHandshakes = 64;
constexpr std::size_t kMaxPendingHandshakesPerAddress = 16;
// Before HELLO is accepted a peer is a stranger: its frames may be smaller.
// A HELLO lists the jobs a node holds or finished while away, about 20 bytes
// each, so this still lets a node back with most of a million of them.
constexpr std::size_t kMaxHandshakeFrameBytes = 16 * 1024 * 1024;
}  // namespace

ProxyServer::ProxyServer(asio::io_context& io, ProxyConfig config, storage::Store& store)
    : io_(io),
      config_(std::move(config)),
      core_(store, config_.core),
      log_(log::get("proxy")),
      listener_(io, log_),
      http_(io,
            [this](const std::string& method, const std::string& target,
                   const std::string& authorization) {
              return handle_http(method, target, authorization, config_.tokens, core_, rounds_,
                                 history_, now_ms());
            }),
      history_timer_(io),
      dispatch_timer_(io),
      exchange_timer_(io),
      delay_timer_(io),
      sweep_timer_(io),
      storage_retry_(io, log_, [this] { schedule_flush(); }) {}

bool ProxyServer::loopback_only() const {
  return config_.protected_mode && config_.core.secret.empty() &&
         config_.tls.mode != net::TlsSettings::Mode::certificates;
}

Status ProxyServer::start() {
  if (Status s = core_.recover(now_ms()); !s.ok()) return s;
  if (!core_.staged().store().writable()) {
    log_->warn(
        "started read-only: DATA_DIR={} takes no writes ({}); nothing is dispatched or finished "
        "until it does, and nodes keep offering their jobs",
        config_.data_dir, core_.staged().store().unwritable_reason());
    storage_retry_.failed(Status::IoError(core_.staged().store().unwritable_reason()));
  }
  if (config_.tls.on()) tls_context_ = net::make_tls_context(config_.tls, net::TlsRole::server);
  if (auto w = net::weak_secret_warning(config_.core.secret); !w.empty()) log_->warn("{}", w);
  log_->info("node links: {}", config_.tls.on() ? config_.tls.describe()
                                                : "plaintext (no CLUSTER_SECRET, no TLS_*)");
  if (loopback_only()) {
    log_->info(
        "protected mode: nodes may join from loopback addresses only; to admit nodes from other "
        "hosts, give the proxy and every node the same CLUSTER_SECRET (they prove it to join)");
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
  schedule_periodic();
  arm_delay_timer();
  if (config_.core.retention.enabled()) {
    log_->info("results kept RESULT_TTL={} ms after their job ends", config_.core.retention.ttl_ms);
    schedule_sweep(0);
  }
  return Status::Ok();
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
  flush();
  storage_retry_.cancel();
  for (auto& [id, s] : sessions_) s.conn->close("proxy shutting down");
  sessions_.clear();
  by_node_.clear();
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
    protocol::Welcome w = core_.on_hello(*hello, s.conn->peer(), now, s.nonce);
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
    kick_dispatch();
    schedule_flush();
    return;
  }
  // New jobs, freed slots or jobs handed back by a draining node: a
  // dispatch round in this turn.
  bool kick =
      std::holds_alternative<protocol::Submit>(m) || std::holds_alternative<protocol::Result>(m) ||
      std::holds_alternative<protocol::ResReq>(m) || std::holds_alternative<protocol::Leave>(m);
  core_.on_message(s.node_id, std::move(m), now);
  if (kick) kick_dispatch();
  schedule_flush();
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
  core_.on_disconnect(node, now_ms());
  kick_dispatch();
  schedule_flush();
}

// Rounds run as soon as queued jobs meet free slots (coalesced into one round
// per turn of the event loop), and at least every DISPATCH_PERIOD.
void ProxyServer::kick_dispatch() {
  if (dispatch_posted_ || stopping_) return;
  dispatch_posted_ = true;
  asio::post(io_, [this] {
    dispatch_posted_ = false;
    run_dispatch();
  });
}

void ProxyServer::run_dispatch() {
  if (stopping_) return;
  auto started = std::chrono::steady_clock::now();
  bool more = core_.dispatch(now_ms());
  rounds_.observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  schedule_flush();
  arm_delay_timer();
  if (more) {
    // Cut by MAX_NUM_JOBS_DISPATCH: the next round waits one period.
    dispatch_timer_.expires_after(milliseconds(config_.dispatch_period_ms));
    dispatch_timer_.async_wait([this](const error_code& ec) {
      if (!ec) run_dispatch();
    });
  }
}

void ProxyServer::arm_delay_timer() {
  auto next = core_.next_delayed();
  if (!next || (delay_timer_at_ != 0 && delay_timer_at_ <= *next)) return;
  delay_timer_at_ = *next;
  delay_timer_.expires_after(milliseconds(std::max<TimeMs>(0, *next - now_ms())));
  delay_timer_.async_wait([this](const error_code& ec) {
    if (ec) return;
    delay_timer_at_ = 0;
    kick_dispatch();  // the round promotes the job and arms the timer again
  });
}

void ProxyServer::record_history() {
  history_.record(now_ms(), core_.finished_total(), core_.queue_length());
  history_timer_.expires_after(std::chrono::seconds(1));
  history_timer_.async_wait([this](const error_code& ec) {
    if (!ec && !stopping_) record_history();
  });
}

void ProxyServer::schedule_periodic() {
  exchange_timer_.expires_after(milliseconds(config_.request_result_period_ms));
  exchange_timer_.async_wait([this](const error_code& ec) {
    if (ec || stopping_) return;
    TimeMs now = now_ms();
    core_.expire_absent_nodes(now);
    core_.exchange_results(now);
    if (core_.has_dispatchable()) kick_dispatch();
    schedule_flush();
    schedule_periodic();
  });
}

void ProxyServer::schedule_sweep(TimeMs after_ms) {
  sweep_timer_.expires_after(milliseconds(after_ms));
  sweep_timer_.async_wait([this](const error_code& ec) {
    if (ec || stopping_) return;
    if (storage_retry_.failing()) {
      // Its removals could not be written: sweep again once they can.
      schedule_sweep(config_.core.retention.sweep_period_ms());
      return;
    }
    SweepOutcome swept = core_.sweep(now_ms());
    if (swept.removed > 0) {
      log_->info("removed expired jobs count={}{}", swept.removed, swept.more ? " (more follow)" : "");
      compactions_.add(std::move(swept.compact));
    }
    schedule_flush();  // commits the removal, then compacts what is due
    // A large backlog goes in batches, with the event loop free between them.
    schedule_sweep(swept.more ? 10 : config_.core.retention.sweep_period_ms());
  });
}

void ProxyServer::schedule_flush() {
  if (flush_scheduled_) return;
  flush_scheduled_ = true;
  asio::post(io_, [this] { flush(); });
}

void ProxyServer::flush() {
  flush_scheduled_ = false;
  if (!storage_retry_.should_try()) return;
  if (Status s = core_.staged().commit(); !s.ok()) {
    // Nothing staged may be acknowledged: every message waits for the
    // write, which is retried (StorageRetry).
    storage_retry_.failed(s);
    return;
  }
  storage_retry_.succeeded();
  for (const auto& [first, last] :
       compactions_.due(now_ms(), config_.core.retention.compact_period_ms())) {
    core_.staged().store().compact(first, last);
  }
  for (auto& out : core_.take_outbox()) {
    auto it = by_node_.find(out.node_id);
    if (it == by_node_.end()) continue;
    auto session = sessions_.find(it->second);
    if (session != sessions_.end()) session->second.conn->send(out.message);
  }
}

}  // namespace jc::proxy
