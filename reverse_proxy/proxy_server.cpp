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
    for (std::string_view prefix : {"a/", "f/"}) {
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
    rc.heartbeat_ms = std::max(10u, config_.election_timeout_ms / 6);
    rc.snapshot_threshold = config_.snapshot_threshold;
    rc.snapshot_trailing = config_.snapshot_trailing;
    raft_ = std::make_unique<replication::RaftLog>(io_, rc, *machine_);
    raft_->on_status = [this](const replication::LogStatus& st) { on_log_status(st); };
    raft_->transport().set_dial(
        [this](const std::string& address, asio::io_context& io,
               std::function<void(std::shared_ptr<net::FrameConnection>, const std::string&)> done) {
          dial_peer(address, io, std::move(done));
        });
  } else {
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

void ProxyServer::start_leading_timers() {
  schedule_periodic();
  arm_delay_timer();
  if (config_.core.retention.enabled()) schedule_sweep(0);
  if (raft_) send_heartbeats();
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
  heartbeat_timer_.cancel();
  upkeep_timer_.cancel();
  flush();
  storage_retry_.cancel();
  for (auto& [id, s] : sessions_) s.conn->close("proxy shutting down");
  sessions_.clear();
  by_node_.clear();
  if (raft_) {
    // What was proposed and not committed is not acknowledged: nodes send it again.
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
  // New jobs, freed slots or jobs handed back by a draining node: a
  // dispatch round in this turn.
  bool kick =
      std::holds_alternative<protocol::Submit>(m) || std::holds_alternative<protocol::Result>(m) ||
      std::holds_alternative<protocol::ResReq>(m) || std::holds_alternative<protocol::Leave>(m);
  core_->on_message(s.node_id, std::move(m), now);
  if (kick) kick_dispatch();
  schedule_flush();
  // Replicated: while every entry slot is taken and the next entry is
  // already large, this node waits (its link is paused, and TCP pushes back
  // on it) rather than the entry growing: every proxy applies an entry in
  // one go, and one that takes longer than an election timeout looks like
  // a dead proxy. The node keeps what it sent durably meanwhile.
  if (raft_ && in_flight_.size() >= kMaxEntriesInFlight &&
      core_->staged().size() >= config_.entry_writes) {
    if (!held_back_) {
      log_->debug("holding node links back: {} log entries in flight, {} writes staged",
                  in_flight_.size(), core_->staged().size());
    }
    s.conn->pause();
    held_back_ = true;
  }
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

// Rounds run as soon as queued jobs meet free slots (coalesced into one round
// per turn of the event loop), and at least every DISPATCH_PERIOD.
void ProxyServer::kick_dispatch() {
  if (dispatch_posted_ || stopping_ || !core_) return;
  dispatch_posted_ = true;
  asio::post(io_, [this] {
    dispatch_posted_ = false;
    run_dispatch();
  });
}

void ProxyServer::run_dispatch() {
  if (stopping_ || !core_) return;
  auto started = std::chrono::steady_clock::now();
  bool more = core_->dispatch(now_ms());
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
  if (!core_) return;
  auto next = core_->next_delayed();
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
  if (core_) history_.record(now_ms(), core_->finished_total(), core_->queue_length());
  history_timer_.expires_after(std::chrono::seconds(1));
  history_timer_.async_wait([this](const error_code& ec) {
    if (!ec && !stopping_) record_history();
  });
}

void ProxyServer::schedule_periodic() {
  exchange_timer_.expires_after(milliseconds(config_.request_result_period_ms));
  exchange_timer_.async_wait([this](const error_code& ec) {
    if (ec || stopping_ || !core_) return;
    TimeMs now = now_ms();
    core_->expire_absent_nodes(now);
    core_->exchange_results(now);
    if (core_->has_dispatchable()) kick_dispatch();
    schedule_flush();
    schedule_periodic();
  });
}

void ProxyServer::schedule_sweep(TimeMs after_ms) {
  sweep_timer_.expires_after(milliseconds(after_ms));
  sweep_timer_.async_wait([this](const error_code& ec) {
    if (ec || stopping_ || !core_) return;
    if (storage_retry_.failing()) {
      // Its removals could not be written: sweep again once they can.
      schedule_sweep(config_.core.retention.sweep_period_ms());
      return;
    }
    SweepOutcome swept = core_->sweep(now_ms());
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
  if (!core_) return;
  if (raft_) {
    // A few entries in flight at once, so that the leader's disk, the
    // followers' and the links overlap; what is staged while they all are
    // goes in the next one (group commit), proposed as the oldest lands.
    if (in_flight_.size() >= kMaxEntriesInFlight) return;
    Change change;
    change.time_ms = now_ms();
    core_->staged().lift(change.writes);
    auto outbox = core_->take_outbox();
    if (change.writes.empty()) {
      // Nothing new to make durable: what these messages say is durable
      // once the entries in flight are, or already is when none is.
      if (in_flight_.empty()) {
        send_outbox(std::move(outbox));
      } else {
        auto& last = in_flight_.back();
        last.insert(last.end(), std::make_move_iterator(outbox.begin()),
                    std::make_move_iterator(outbox.end()));
      }
      return;
    }
    std::string entry = encode_change(change);
    in_flight_.push_back(std::move(outbox));
    std::uint64_t generation = generation_;
    auto index = raft_->propose(entry, [this, generation](bool ok) {
      // Called in log order, once each entry is applied here.
      if (generation != generation_ || !core_) return;
      if (!ok) {
        // It may still be committed by the next leader; nothing of it was
        // acknowledged, and nodes send again what is not.
        step_down("leadership lost with a log entry in flight");
        return;
      }
      if (machine_->behind()) {
        // Committed, but this proxy's store refused it: another proxy
        // serves from a complete store.
        step_down("this proxy's store refuses writes (a full disk?)");
        return;
      }
      core_->staged().landed();
      auto landed = std::move(in_flight_.front());
      in_flight_.pop_front();
      for (const auto& [first, last] :
           compactions_.due(now_ms(), config_.core.retention.compact_period_ms())) {
        store_.compact(first, last);
      }
      send_outbox(std::move(landed));
      flush();
    });
    if (!index) {
      in_flight_.pop_back();
      step_down("the log refused an entry: this proxy no longer leads");
      return;
    }
    // This proxy applies its own entry from these writes, not from the bytes.
    machine_->expect(*index, std::move(entry), std::move(change.writes));
    if (held_back_) {
      held_back_ = false;
      for (auto& [sid, session] : sessions_) session.conn->resume();
    }
    return;
  }
  if (!storage_retry_.should_try()) return;
  if (Status s = core_->staged().commit(); !s.ok()) {
    // Nothing staged may be acknowledged: every message waits for the
    // write, which is retried (StorageRetry).
    storage_retry_.failed(s);
    return;
  }
  storage_retry_.succeeded();
  for (const auto& [first, last] :
       compactions_.due(now_ms(), config_.core.retention.compact_period_ms())) {
    store_.compact(first, last);
  }
  send_outbox(core_->take_outbox());
}

void ProxyServer::send_outbox(std::vector<Outgoing> outbox) {
  for (auto& out : outbox) {
    auto it = by_node_.find(out.node_id);
    if (it == by_node_.end()) continue;
    auto session = sessions_.find(it->second);
    if (session != sessions_.end()) session->second.conn->send(out.message);
  }
}

// -- replicated proxies ------------------------------------------------------

void ProxyServer::on_log_status(const replication::LogStatus& st) {
  if (stopping_) return;
  log_->info("raft role={} term={} leader={}", replication::role_name(st.role), st.term,
             st.leader.empty() ? "-" : st.leader);
  if (st.role == replication::Role::leader) {
    if (term_ == st.term && (core_ || taking_over_)) return;
    if (core_ || taking_over_) step_down("a new term began", false);
    take_over(st.term);
  } else if (core_ || taking_over_) {
    step_down(st.leader.empty() ? "no longer the leader"
                                : "no longer the leader (the leader is " + st.leader + ")");
  }
}

void ProxyServer::take_over(std::uint64_t term) {
  // The core is loaded from the store once every entry of earlier terms is
  // applied here: a barrier commits an entry of this term after them.
  taking_over_ = true;
  term_ = term;
  std::uint64_t generation = ++generation_;
  auto started = std::chrono::steady_clock::now();
  bool ok = raft_->barrier([this, generation, term, started](bool ok) {
    if (generation != generation_) return;
    taking_over_ = false;
    if (!ok) {
      term_ = 0;
      log_->info("lost leadership before taking over term={}", term);
      return;
    }
    if (machine_->behind()) {
      term_ = 0;
      raft_->hand_over("this proxy's store refuses writes (a full disk?)");
      return;
    }
    ProxyOptions options = config_.core;
    // A new id for every leadership: nodes then send again what the
    // previous leader did not acknowledge, and ask again what they wait for.
    options.proxy_id = fmt::format("{}#{}", config_.peers[config_.self - 1], term);
    options.proxies = config_.peers;
    options.heartbeat_ms = config_.node_heartbeat_ms;
    core_ = std::make_unique<ProxyCore>(store_, options);
    core_->replication_stats = [this](protocol::ClusterStats& s) { fill_replication_stats(s); };
    if (Status s = core_->recover(now_ms()); !s.ok()) {
      log_->error("cannot load the job book to lead: {}", s.to_string());
      core_.reset();
      term_ = 0;
      return;
    }
    ++elections_won_;
    auto ms = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - started);
    log_->info("leading term={} (took over in {} ms, applied index {})", term, ms.count(),
               machine_->applied());
    core_->staged().landed();
    start_leading_timers();
    kick_dispatch();
    schedule_flush();
  });
  if (!ok) {
    taking_over_ = false;
    term_ = 0;
  }
}

void ProxyServer::step_down(const std::string& why, bool hand_over) {
  ++generation_;
  bool was_leading = core_ != nullptr;
  taking_over_ = false;
  term_ = 0;
  in_flight_.clear();
  held_back_ = false;
  machine_->forget_expected();
  core_.reset();
  dispatch_timer_.cancel();
  exchange_timer_.cancel();
  delay_timer_.cancel();
  delay_timer_at_ = 0;
  sweep_timer_.cancel();
  heartbeat_timer_.cancel();
  compactions_ = {};
  // Nodes go to the new leader; what they sent here and was not
  // acknowledged they send there.
  std::vector<std::shared_ptr<net::FrameConnection>> closing;
  for (auto& [id, session] : sessions_) closing.push_back(session.conn);
  sessions_.clear();
  by_node_.clear();
  for (auto& conn : closing) conn->close(why);
  if (was_leading) log_->warn("stepped down: {}", why);
  // Still the leader as far as the log goes (a local write failed, the log
  // refused an entry): another proxy must serve, or no one would.
  if (hand_over) raft_->hand_over(why.c_str());
}

// Replicated proxies, every 500 ms: write what the store refused before,
// and hand leadership over if this proxy leads without serving (its core
// could not be loaded) for more than a second.
void ProxyServer::upkeep() {
  if (stopping_ || !raft_) return;
  if (machine_->behind()) machine_->retry();
  auto st = raft_->status();
  bool idle_leader = st.role == replication::Role::leader && !core_ && !taking_over_;
  TimeMs now = now_ms();
  if (!idle_leader) {
    idle_leader_since_ = 0;
  } else if (idle_leader_since_ == 0) {
    idle_leader_since_ = now;
  } else if (now - idle_leader_since_ > 1000) {
    raft_->hand_over("this proxy leads the log but cannot serve");
    idle_leader_since_ = now;
  }
  upkeep_timer_.expires_after(milliseconds(500));
  upkeep_timer_.async_wait([this](const error_code& ec) {
    if (!ec) upkeep();
  });
}

void ProxyServer::send_heartbeats() {
  if (!core_ || stopping_) return;
  protocol::Heartbeat beat{term_};
  for (auto& [id, session] : sessions_) {
    if (!session.node_id.empty()) session.conn->send(beat);
  }
  heartbeat_timer_.expires_after(milliseconds(config_.node_heartbeat_ms));
  heartbeat_timer_.async_wait([this](const error_code& ec) {
    if (!ec) send_heartbeats();
  });
}

std::string ProxyServer::leader_hint() const {
  if (!raft_) return "";
  auto st = raft_->status();
  return st.leader;
}

void ProxyServer::on_peer_hello(std::uint64_t id, protocol::PeerHello& hello) {
  auto it = sessions_.find(id);
  Session& s = it->second;
  std::string why;
  if (hello.version != protocol::kProtocolVersion) {
    why = fmt::format("peer proxy speaks protocol {} (this one {})", hello.version,
                      protocol::kProtocolVersion);
  } else if (loopback_only() && !is_loopback(s.address)) {
    why = "protected mode: peer proxies from loopback addresses only; set the same CLUSTER_SECRET "
          "on every proxy";
  } else if (hello.id == 0 || hello.id > config_.peers.size() ||
             config_.peers[hello.id - 1] != hello.address || hello.id == config_.self) {
    why = fmt::format("peer proxy {} '{}' is not another entry of PROXY_PEERS", hello.id,
                      protocol::escape_sample(hello.address));
  } else if (!config_.core.secret.empty() &&
             !protocol::verify_join_proof(config_.core.secret, s.nonce, "proxy:" + hello.address,
                                          hello.auth)) {
    why = "peer proxy failed to prove CLUSTER_SECRET";
  } else if (!peer_address_matches(hello.id - 1, s.address)) {
    // A node knows the secret (or holds a certificate of the same CA) too:
    // a proxy must also come from the address its PROXY_PEERS entry names.
    why = fmt::format("peer proxy {} connects from {}, not from its PROXY_PEERS address {}",
                      hello.id, s.address, config_.peers[hello.id - 1]);
  }
  if (!why.empty()) {
    log_->warn("refused peer proxy peer={} reason=\"{}\"", s.conn->peer(), why);
    s.conn->close(why);
    return;
  }
  auto conn = s.conn;
  sessions_.erase(it);
  conn->set_max_frame(protocol::kMaxFrameBytes);
  conn->set_idle_timeout(milliseconds(std::max<TimeMs>(5000, 20 * config_.election_timeout_ms)));
  conn->count_partial_frames();
  log_->debug("peer proxy link from {} ({})", hello.address, conn->peer());
  raft_->transport().accept(hello.id, hello.address, std::move(conn));
}

bool ProxyServer::peer_address_matches(std::size_t k, const std::string& ip) {
  auto normal = [](const asio::ip::address& a) {
    if (a.is_v6() && a.to_v6().is_v4_mapped()) {
      return asio::ip::address(asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()));
    }
    return a;
  };
  error_code ec;
  auto from = asio::ip::make_address(ip, ec);
  if (ec) return false;
  from = normal(from);
  std::string host = config_.peers[k].substr(0, config_.peers[k].rfind(':'));
  if (!host.empty() && host.front() == '[') host = host.substr(1, host.size() - 2);
  auto literal = asio::ip::make_address(host, ec);
  if (!ec) return normal(literal) == from || (literal.is_loopback() && from.is_loopback());
  // A name: resolved at most every 10 s (a stranger's PEER_HELLOs must not
  // make the event loop wait on DNS each time).
  auto& cached = peer_ips_[k];
  TimeMs now = now_ms();
  if (cached.first == 0 || now - cached.first > 10'000) {
    cached.first = now;
    cached.second.clear();
    asio::ip::tcp::resolver resolver(io_);
    auto results = resolver.resolve(host, "", ec);
    if (!ec) {
      for (const auto& entry : results) cached.second.push_back(normal(entry.endpoint().address()));
    }
  }
  for (const auto& a : cached.second) {
    if (a == from || (a.is_loopback() && from.is_loopback())) return true;
  }
  return false;
}

// Runs on the peer links' thread (replication::PeerTransport): it reads
// only what does not change after start (config_, the TLS context), and
// creates everything on `io`.
void ProxyServer::dial_peer(
    const std::string& address, asio::io_context& io,
    std::function<void(std::shared_ptr<net::FrameConnection>, const std::string&)> done) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos) {
    done(nullptr, "bad peer address " + address);
    return;
  }
  std::string host = address.substr(0, colon);
  std::string port = address.substr(colon + 1);
  auto resolver = std::make_shared<asio::ip::tcp::resolver>(io);
  auto shared_done = std::make_shared<decltype(done)>(std::move(done));
  resolver->async_resolve(host, port, [this, &io, resolver, host, shared_done](
                                          const error_code& ec,
                                          asio::ip::tcp::resolver::results_type results) {
    if (ec) {
      (*shared_done)(nullptr, "cannot resolve: " + ec.message());
      return;
    }
    auto socket = std::make_shared<asio::ip::tcp::socket>(io);
    // A peer cut off by the network answers no SYN, and the library does
    // not dial again while a connect is pending: give up after a second.
    auto deadline = std::make_shared<asio::steady_timer>(io);
    deadline->expires_after(milliseconds(std::max<unsigned>(1000, config_.election_timeout_ms)));
    deadline->async_wait([socket](const error_code& ec) {
      if (ec) return;
      error_code ignored;
      socket->close(ignored);
    });
    asio::async_connect(*socket, results, [this, socket, deadline, host, shared_done](
                                              const error_code& ec2,
                                              const asio::ip::tcp::endpoint& ep) {
      deadline->cancel();
      if (ec2) {
        (*shared_done)(nullptr, ec2.message());
        return;
      }
      std::string peer = fmt::format("{}:{}", ep.address().to_string(), ep.port());
      error_code ignored;  // no exception on the links' thread
      socket->set_option(asio::ip::tcp::no_delay(true), ignored);
      auto timeout = milliseconds(config_.handshake_timeout_ms);
      auto conn = peer_tls_context_
                      ? std::make_shared<net::FrameConnection>(
                            std::move(*socket), peer, timeout,
                            net::TlsLink{peer_tls_context_, net::TlsRole::client, config_.tls.mode,
                                         host})
                      : std::make_shared<net::FrameConnection>(std::move(*socket), peer, timeout);
      auto answered = std::make_shared<bool>(false);
      std::weak_ptr<net::FrameConnection> weak = conn;
      conn->start(
          [this, weak, shared_done, answered](protocol::Message&& m) {
            auto conn = weak.lock();
            if (!conn || *answered) return;
            auto* challenge = std::get_if<protocol::Challenge>(&m);
            if (challenge == nullptr) {
              conn->close("a peer proxy's first frame was not CHALLENGE");
              return;
            }
            *answered = true;
            protocol::PeerHello hello;
            hello.id = config_.self;
            hello.address = config_.peers[config_.self - 1];
            if (!config_.core.secret.empty()) {
              hello.auth =
                  protocol::join_proof(config_.core.secret, challenge->nonce, "proxy:" + hello.address);
            }
            conn->send(hello);
            conn->set_max_frame(protocol::kMaxFrameBytes);
            conn->set_idle_timeout(
                milliseconds(std::max<TimeMs>(5000, 20 * config_.election_timeout_ms)));
            conn->count_partial_frames();
            (*shared_done)(conn, "");
          },
          [shared_done, answered](const std::string& reason) {
            if (*answered) return;
            *answered = true;
            (*shared_done)(nullptr, reason);
          });
    });
  });
}

void ProxyServer::fill_replication_stats(protocol::ClusterStats& s) const {
  auto info = replication_info();
  s.proxies = info.proxies;
  s.leader = info.leader;
  s.term = info.term;
}

ReplicationInfo ProxyServer::replication_info() const {
  ReplicationInfo info;
  if (!raft_) return info;
  auto st = raft_->status();
  info.self = config_.peers[config_.self - 1];
  info.role = std::string(replication::role_name(st.role));
  info.leader = st.leader;
  info.term = st.term;
  info.last = st.last;
  info.applied = st.applied;
  info.elections_won = elections_won_;
  for (const auto& p : st.peers) {
    protocol::ProxyStatus ps;
    ps.address = p.address;
    if (p.id == config_.self) {
      ps.role = info.role;
    } else if (st.role == replication::Role::leader) {
      ps.role = p.recent ? "follower" : "unreachable";
    } else {
      ps.role = p.address == st.leader ? "leader" : "-";
    }
    ps.match = p.match;
    ps.lag = st.role == replication::Role::leader && st.last > p.match ? st.last - p.match : 0;
    info.proxies.push_back(std::move(ps));
  }
  return info;
}

}  // namespace jc::proxy
