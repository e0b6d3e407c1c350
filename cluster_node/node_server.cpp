#include "cluster_node/node_server.h"

#include <fmt/format.h>

#include "cluster_node/client_session.h"
#include "cluster_node/replies.h"
#include "protocol/auth.h"

namespace jc::node {

namespace asio = boost::asio;
using boost::system::error_code;
using std::chrono::milliseconds;

namespace {
// `r` and `status` of a ticket this node cannot answer wait for the proxy's
// answer: until it comes, until the link drops (then "unreachable"), or, as
// a safety net only, this long. Before its first join the node waits for
// the join as long. An answer never depends on how busy the proxy is.
constexpr milliseconds kProxyAnswerTimeout{30000};
// How long `wait` keeps asking about a ticket nobody knows before it says so.
constexpr milliseconds kUnknownGrace{5000};

runner::SandboxConfig sandbox_config(const NodeConfig& c) {
  runner::SandboxConfig s;
  s.node_id = c.core.node_id;
  s.processes = c.job_processes;
  s.isolation.slots = c.core.slots;
  s.isolation.uid_base = c.job_uid_base;
  s.isolation.job_user = c.job_user;
  s.isolation.readonly_paths = c.readonly_paths;
  s.isolation.work_root = c.work_dir;
  return s;
}

std::optional<net::TlsLink> link_tls(const net::TlsSettings& tls) {
  if (!tls.on()) return std::nullopt;
  return net::TlsLink{net::make_tls_context(tls, net::TlsRole::client), net::TlsRole::client,
                      tls.mode, ""};
}
}  // namespace

NodeServer::NodeServer(asio::io_context& io, NodeConfig config, storage::Store& store)
    : io_(io),
      config_(std::move(config)),
      core_(store, config_.core),
      log_(log::get("node")),
      listener_(io, log_),
      info_timer_(io),
      request_timer_(io),
      sweep_timer_(io),
      link_(io, config_.proxy_host, config_.proxy_port,
            ProxyLink::Handlers{[] {},  // the proxy speaks first: HELLO answers its CHALLENGE
                                [this](protocol::Message&& m) { on_proxy_message(std::move(m)); },
                                [this] { on_proxy_closed(); }},
            link_tls(config_.tls)),
      executor_(io, config_.core.node_id, sandbox_config(config_), config_.core.slots,
                [this](const std::string& t, protocol::JobResult r) {
                  on_job_done(t, std::move(r));
                }),
      storage_retry_(io, log_, [this] { schedule_flush(); }) {
  core_.set_sandbox(executor_.sandbox_description());
}

Status NodeServer::start() {
  if (Status s = core_.recover(); !s.ok()) return s;
  log_->info("proxy link: {}", config_.tls.on() ? config_.tls.describe()
                                                : "plaintext (no CLUSTER_SECRET, no TLS_*)");
  if (auto w = net::weak_secret_warning(config_.secret); !w.empty()) log_->warn("{}", w);
  if (config_.tokens.enabled()) {
    log_->info("clients: auth required, {} names from CLIENT_TOKENS", config_.tokens.size());
  } else {
    log_->info(
        "clients: no CLIENT_TOKENS, so anyone who reaches the client port may submit; a ticket "
        "(66 random bits) is what reads or cancels its job");
  }
  proxy_lost_at_ = now_ms();
  if (!core_.staged().store().writable()) {
    log_->warn(
        "started read-only: DATA_DIR={} takes no writes ({}); jobs are refused with ERR storage "
        "full until it does, reads go on",
        config_.data_dir, core_.staged().store().unwritable_reason());
  }
  if (Status s = core_.staged().commit(); !s.ok()) storage_retry_.failed(s);
  port_ =
      listener_.listen(config_.bind_address, config_.client_port,
                       fmt::format("for clients node={} slots={}", core_.node_id(), core_.slots()),
                       [this](asio::ip::tcp::socket socket, const std::string& address,
                              const std::string& peer) {
                         on_accept(std::move(socket), address, peer);
                       });
  config_.core.client_address = fmt::format("{}:{}", config_.advertise_host, port_);
  core_.set_client_address(config_.core.client_address);
  link_.start();
  schedule_info();
  schedule_requests();
  if (config_.core.retention.enabled()) schedule_sweep(0);
  start_jobs();
  schedule_flush();
  return Status::Ok();
}

void NodeServer::schedule_sweep(TimeMs after_ms) {
  sweep_timer_.expires_after(milliseconds(after_ms));
  sweep_timer_.async_wait([this](const error_code& ec) {
    if (ec || stopping_) return;
    protocol::SweepOutcome swept = core_.sweep(now_ms());
    if (swept.removed > 0) {
      log_->info("removed expired jobs count={}{}", swept.removed, swept.more ? " (more follow)" : "");
    }
    compactions_.add(std::move(swept.compact));
    schedule_flush();  // commits the removal, then compacts what is due
    schedule_sweep(swept.more ? 10 : config_.core.retention.sweep_period_ms());
  });
}

void NodeServer::stop() {
  if (stopping_) return;
  stopping_ = true;
  log_->info("shutting down node={}", core_.node_id());
  listener_.close();
  info_timer_.cancel();
  request_timer_.cancel();
  sweep_timer_.cancel();
  storage_retry_.cancel();
  executor_.stop_all();
  flush();
  link_.stop();
  for (auto& w : sessions_) {
    if (auto s = w.lock()) s->close();
  }
  sessions_.clear();
  lookups_.clear();
  stats_waiters_.clear();
}

void NodeServer::drain(std::function<void()> done) {
  if (core_.draining()) return;
  log_->info("draining node={} (a second signal stops at once)", core_.node_id());
  core_.start_drain();
  schedule_flush();
  TimeMs deadline = now_ms() + config_.drain_timeout_ms;
  drain_timer_ = std::make_unique<asio::steady_timer>(io_);
  auto check = std::make_shared<std::function<void()>>();
  *check = [this, deadline, done = std::move(done), check] {
    drain_timer_->expires_after(milliseconds(20));
    drain_timer_->async_wait([this, deadline, done, check](const error_code& ec) {
      if (ec || stopping_) return;
      bool timed_out = now_ms() >= deadline;
      if (!core_.drained() && !timed_out) {
        (*check)();
        return;
      }
      if (timed_out) {
        log_->warn("drain timed out after DRAIN_TIMEOUT={} ms running={}", config_.drain_timeout_ms,
                   core_.running());
      } else {
        log_->info("drained node={}", core_.node_id());
        core_.finish_drain();
      }
      stop();
      done();
      // Asked by a client (`drain`), nobody else ends the loop.
      io_.stop();
    });
  };
  (*check)();
}

void NodeServer::on_accept(asio::ip::tcp::socket socket, const std::string& address,
                           const std::string& peer) {
  if (stopping_) return;
  std::erase_if(sessions_, [](const auto& w) { return w.expired(); });
  auto it = address_counts_->find(address);
  std::size_t from_address = it == address_counts_->end() ? 0 : it->second;
  std::string why;
  if (from_address >= config_.max_clients_per_address) {
    why = fmt::format("too many connections from your address ({} open, MAX_CLIENTS_PER_ADDRESS)",
                      from_address);
  } else if (sessions_.size() >= config_.max_clients) {
    why = fmt::format("too many connections ({} open); try again later", sessions_.size());
  }
  auto session = std::make_shared<ClientSession>(std::move(socket), *this, peer, address,
                                                 address_counts_,
                                                 milliseconds(config_.client_idle_timeout_ms));
  if (!why.empty()) {
    // One line a second at most: a flood must not flood the log too.
    ++refused_since_log_;
    TimeMs now = now_ms();
    if (now - refused_logged_at_ >= 1000) {
      log_->warn("client refused peer={} reason=\"{}\" refused_since_last_line={}", peer, why,
                 refused_since_log_);
      refused_logged_at_ = now;
      refused_since_log_ = 0;
    }
    session->refuse(replies::error(why, false));
    return;
  }
  sessions_.push_back(session);
  session->start();
}

void NodeServer::submit(protocol::JobSpec spec, std::function<void(const std::string&)> done) {
  std::string ticket = core_.submit(std::move(spec), now_ms());
  after_commit_.push_back([done = std::move(done), ticket] { done(ticket); });
  schedule_flush();
}

void NodeServer::lookup(const std::string& ticket, bool wait, std::optional<double> seconds,
                        LookupDone done) {
  start_lookup(ticket, wait, seconds, false, std::move(done));
}

void NodeServer::start_lookup(const std::string& ticket, bool wait, std::optional<double> seconds,
                              bool cancelling, LookupDone done) {
  protocol::JobReport local = core_.lookup(ticket, now_ms());
  if ((local.has_result && !cancelling) || local.state == protocol::JobState::kExpired) {
    done(local, false);
    return;
  }
  bool up = core_.connected();
  // Before its first join the node cannot know other nodes' tickets yet:
  // `r` and `status` of a ticket it does not know wait for the join (at
  // most kProxyAnswerTimeout) rather than answer "unknown" because the
  // client came a moment too early. Its own tickets it answers at once.
  bool known_here = local.state != protocol::JobState::kUnknown;
  if (!up && !wait && (ever_joined_ || known_here)) {
    done(without_proxy(std::move(local)), true);
    return;
  }
  auto pending = std::make_unique<PendingLookup>();
  pending->wait = wait;
  pending->patient = wait || (!cancelling && NodeCore::issued_shape(ticket));
  pending->done = std::move(done);
  std::optional<milliseconds> timeout;
  if (!wait) timeout = kProxyAnswerTimeout;
  if (wait && seconds) timeout = milliseconds(static_cast<std::int64_t>(*seconds * 1000));
  if (timeout) {
    pending->timer = std::make_unique<asio::steady_timer>(io_, *timeout);
    pending->timer->async_wait([this, ticket, p = pending.get()](const error_code& ec) {
      if (!ec) expire_lookup(ticket, p);
    });
  }
  auto& list = lookups_[ticket];
  bool first = list.empty();
  list.push_back(std::move(pending));
  if (first && up && !cancelling) {
    to_request_.push_back(ticket);
    schedule_flush();
  }
}

void NodeServer::expire_lookup(const std::string& ticket, PendingLookup* which) {
  auto it = lookups_.find(ticket);
  if (it == lookups_.end()) return;
  auto& list = it->second;
  for (auto p = list.begin(); p != list.end(); ++p) {
    if (p->get() != which) continue;
    auto pending = std::move(*p);
    list.erase(p);
    if (list.empty()) lookups_.erase(it);
    protocol::JobReport local = core_.lookup(ticket, now_ms());
    if (local.state == protocol::JobState::kUnknown && pending->last_known) {
      // A wait whose seconds ran out: as `r` would answer now.
      pending->done(*pending->last_known, false);
    } else {
      // Unknown here and no answer from the proxy: say it could not be checked.
      bool unchecked = local.state == protocol::JobState::kUnknown && !pending->proxy_answered;
      bool unreachable = unchecked || !core_.connected();
      pending->done(core_.connected() ? local : without_proxy(std::move(local)), unreachable);
    }
    return;
  }
}

void NodeServer::answer_lookups(const protocol::JobReport& report) {
  auto it = lookups_.find(report.ticket);
  if (it == lookups_.end()) return;
  bool final = (protocol::is_final(report.state) && report.has_result) ||
               report.state == protocol::JobState::kExpired;
  // The proxy has never heard of a ticket that is still on its way to it:
  // then this node's own record is the better answer (read only then).
  std::optional<protocol::JobReport> local;
  if (report.state == protocol::JobState::kUnknown) local = core_.lookup(report.ticket, now_ms());
  // Nobody knows it. A ticket just given by another node may still be on its
  // way to the proxy, so a wait asks again (each REQUEST_RESULT_PERIOD) and
  // answers "unknown" only when that lasts kUnknownGrace; it never hangs.
  bool unknown = local && local->state == protocol::JobState::kUnknown;
  TimeMs now = now_ms();
  std::vector<std::unique_ptr<PendingLookup>> ready;
  auto& list = it->second;
  for (auto p = list.begin(); p != list.end();) {
    bool give_up = false;
    bool asking_again = false;
    if (unknown && (*p)->patient) {
      if ((*p)->unknown_since == 0) (*p)->unknown_since = now;
      give_up = now - (*p)->unknown_since >= kUnknownGrace.count();
      asking_again = !give_up;
    } else {
      (*p)->unknown_since = 0;
    }
    if (!asking_again && (!(*p)->wait || final || give_up)) {
      ready.push_back(std::move(*p));
      p = list.erase(p);
    } else {
      if (report.state != protocol::JobState::kUnknown) (*p)->last_known = report;
      (*p)->proxy_answered = true;
      ++p;
    }
  }
  if (list.empty()) lookups_.erase(it);
  const protocol::JobReport& best = local && !unknown ? *local : report;
  for (auto& p : ready) {
    if (p->timer) p->timer->cancel();
    p->done(best, false);
  }
}

protocol::JobReport NodeServer::without_proxy(protocol::JobReport local) const {
  bool final = (protocol::is_final(local.state) && local.has_result) ||
               local.state == protocol::JobState::kExpired;
  if (final || local.state == protocol::JobState::kUnknown || core_.unforwarded(local.ticket)) {
    return local;
  }
  protocol::JobReport unknown;
  unknown.ticket = local.ticket;
  unknown.owner = local.owner;  // still only its owner learns even that much
  return unknown;
}

void NodeServer::getall(std::function<void(const std::vector<GetAllEntry>&)> done) {
  after_commit_.push_back([this, done = std::move(done)] { done(core_.getall(now_ms())); });
  schedule_flush();
}

std::string NodeServer::apply_limits(protocol::JobSpec& spec) const {
  const auto& d = config_.job_limits.defaults;
  const auto& m = config_.job_limits.maxima;
  auto& l = spec.limits;
  struct Field {
    std::uint32_t& value;
    std::uint32_t fallback, max;
    const char *name, *unit, *variable;
  };
  for (Field f :
       {Field{l.timeout_ms, d.timeout_ms, m.timeout_ms, "timeout", "ms", "JOB_MAX_TIMEOUT"},
        Field{l.cpu_ms, 0, m.cpu_ms, "cpu", "ms", "JOB_MAX_TIMEOUT"},
        Field{l.memory_mb, d.memory_mb, m.memory_mb, "memory", "MB", "JOB_MAX_MEMORY_MB"},
        Field{l.output_kb, d.output_kb, m.output_kb, "output", "KB", "JOB_MAX_OUTPUT_KB"},
        Field{l.disk_mb, d.disk_mb, m.disk_mb, "disk", "MB", "JOB_MAX_DISK_MB"}}) {
    if (f.value > f.max) {
      return fmt::format("--{} {} {} is above this node's maximum of {} {} ({})", f.name, f.value,
                         f.unit, f.max, f.unit, f.variable);
    }
    if (f.value == 0) f.value = f.fallback;
  }
  // CPU time defaults to the wall-clock timeout.
  if (l.cpu_ms == 0) l.cpu_ms = l.timeout_ms;
  return "";
}

void NodeServer::cancel(const std::string& ticket, const std::optional<std::string>& requester,
                        bool json, std::function<void(const std::string&)> done) {
  if (!core_.connected()) {
    done(replies::error("cannot cancel now: the proxy is unreachable; try again", json));
    return;
  }
  shell_outbox_.push_back(protocol::Cancel{{ticket}, requester.value_or("")});
  schedule_flush();
  start_lookup(ticket, false, std::nullopt, true,
               [json, requester, done = std::move(done)](const protocol::JobReport& r,
                                                         bool unreachable) {
                 if (requester && r.owner != *requester) {
                   protocol::JobReport unknown;
                   unknown.ticket = r.ticket;
                   done(replies::cancelled(unknown, unreachable, json));
                   return;
                 }
                 done(replies::cancelled(r, unreachable, json));
               });
}

void NodeServer::stats(StatsDone done) {
  if (!core_.connected()) {
    protocol::ClusterStats local;
    protocol::NodeStats me;
    me.node_id = core_.node_id();
    me.address = config_.core.client_address;
    me.slots = core_.slots();
    auto info = core_.info();
    me.running = info.running;
    me.queued = info.queued;
    local.nodes.push_back(me);
    done(local, false);
    return;
  }
  std::uint64_t id = next_stats_id_++;
  auto timer = std::make_unique<asio::steady_timer>(io_, kProxyAnswerTimeout);
  timer->async_wait([this, id](const error_code& ec) {
    if (ec) return;
    auto it = stats_waiters_.find(id);
    if (it == stats_waiters_.end()) return;
    auto cb = std::move(it->second.first);
    stats_waiters_.erase(it);
    cb(protocol::ClusterStats{}, false);
  });
  stats_waiters_[id] = {std::move(done), std::move(timer)};
  shell_outbox_.push_back(protocol::StatsRequest{id});
  schedule_flush();
}

void NodeServer::on_proxy_message(protocol::Message&& m) {
  if (auto* w = std::get_if<protocol::Welcome>(&m)) {
    if (!w->accepted) {
      log_->error("proxy refused this node reason=\"{}\"", w->reason);
      link_.refused();
      return;
    }
    log_->info("joined proxy={} dropped={}", w->proxy_id, w->drop.size());
    ever_joined_ = true;
    link_.reset_backoff();
    core_.on_message(std::move(m));
    // Lookups made while the proxy was away ask again.
    for (const auto& [t, list] : lookups_) to_request_.push_back(t);
  } else if (auto* ch = std::get_if<protocol::Challenge>(&m)) {
    protocol::Hello hello = core_.hello();
    if (!config_.secret.empty()) {
      hello.auth = protocol::join_proof(config_.secret, ch->nonce, hello.node_id);
    }
    link_.send(hello);
    return;
  } else if (auto* c = std::get_if<protocol::Cancel>(&m)) {
    for (const auto& t : c->tickets) {
      if (!executor_.cancel(t)) core_.cancel_queued(t, now_ms());
    }
  } else if (auto* reply = std::get_if<protocol::StatsReply>(&m)) {
    auto it = stats_waiters_.find(reply->id);
    if (it != stats_waiters_.end()) {
      auto cb = std::move(it->second.first);
      it->second.second->cancel();
      stats_waiters_.erase(it);
      cb(reply->stats, true);
    }
    return;
  } else {
    core_.on_message(std::move(m));
  }
  schedule_flush();
}

void NodeServer::on_proxy_closed() {
  core_.on_disconnected();
  proxy_lost_at_ = now_ms();
  // `r` and `status` waiting for the proxy's answer will not get it from
  // this connection: they answer from what this node knows, saying so.
  // Before the first join they wait for it (start_lookup).
  if (ever_joined_) {
    std::vector<std::pair<std::string, std::unique_ptr<PendingLookup>>> ready;
    for (auto it = lookups_.begin(); it != lookups_.end();) {
      auto& list = it->second;
      for (auto p = list.begin(); p != list.end();) {
        if ((*p)->wait) {
          ++p;
          continue;
        }
        ready.emplace_back(it->first, std::move(*p));
        p = list.erase(p);
      }
      it = list.empty() ? lookups_.erase(it) : std::next(it);
    }
    for (auto& [ticket, p] : ready) {
      if (p->timer) p->timer->cancel();
      p->done(without_proxy(core_.lookup(ticket, now_ms())), true);
    }
  }
  // Stats questions in flight will not be answered by this connection.
  for (auto& [id, waiter] : stats_waiters_) waiter.second->cancel();
  auto waiters = std::move(stats_waiters_);
  stats_waiters_.clear();
  for (auto& [id, waiter] : waiters) {
    asio::post(io_, [this, cb = std::move(waiter.first)] { stats(cb); });
  }
}

void NodeServer::start_jobs() {
  while (auto job = core_.next_job()) {
    if (log_->should_log(spdlog::level::debug)) {  // describe() formats: only when it shows
      log_->debug("start ticket={} attempt={} job=\"{}\"", job->spec.ticket, job->attempt,
                  job->spec.describe());
    }
    executor_.start(std::move(*job));
  }
}

void NodeServer::on_job_done(const std::string& ticket, protocol::JobResult result) {
  core_.job_finished(ticket, std::move(result));
  start_jobs();
  schedule_flush();
}

void NodeServer::schedule_info() {
  info_timer_.expires_after(milliseconds(config_.info_period_ms));
  info_timer_.async_wait([this](const error_code& ec) {
    if (ec || stopping_) return;
    if (core_.connected()) {
      link_.send(core_.info());
    } else if (config_.proxy_grace_ms > 0 && !core_.local_mode() &&
               now_ms() - proxy_lost_at_ >= config_.proxy_grace_ms) {
      core_.set_local_mode(true);
      schedule_flush();
    }
    schedule_info();
  });
}

void NodeServer::schedule_requests() {
  request_timer_.expires_after(milliseconds(config_.request_result_period_ms));
  request_timer_.async_wait([this](const error_code& ec) {
    if (ec || stopping_) return;
    core_.resend_undelivered();
    // Waits for tickets the proxy did not know yet ask again.
    for (const auto& [t, list] : lookups_) {
      for (const auto& p : list) {
        if (p->unknown_since != 0) {
          to_request_.push_back(t);
          break;
        }
      }
    }
    schedule_flush();
    schedule_requests();
  });
}

void NodeServer::schedule_flush() {
  if (flush_scheduled_) return;
  flush_scheduled_ = true;
  asio::post(io_, [this] { flush(); });
}

void NodeServer::flush() {
  flush_scheduled_ = false;
  NodeEvents events = core_.take_events();
  for (const auto& t : events.stop) executor_.stop(t);
  if (events.work) start_jobs();
  Status s = storage_retry_.should_try() ? core_.staged().commit()
                                         : Status::IoError("waiting for the next retry");
  if (!s.ok()) {
    if (storage_retry_.should_try()) storage_retry_.failed(s);
    // What depends on the write (tickets, acknowledgements, the core's
    // messages) waits for it. Reads go on: questions to the proxy, stats,
    // and answers from what is known.
    if (!to_request_.empty() && core_.connected()) {
      link_.send(protocol::RequestOfRes{std::exchange(to_request_, {})});
    }
    to_request_.clear();
    for (auto& m : std::exchange(shell_outbox_, {})) link_.send(m);
    for (const auto& r : events.reports) answer_lookups(r);
    return;
  }
  storage_retry_.succeeded();
  for (const auto& [first, last] :
       compactions_.due(now_ms(), config_.core.retention.compact_period_ms())) {
    core_.staged().store().compact(first, last);
  }
  for (auto& cb : std::exchange(after_commit_, {})) cb();
  // Submissions first, so that a question about a ticket just submitted
  // reaches the proxy after the ticket itself.
  for (auto& m : core_.take_outbox()) link_.send(m);
  if (!to_request_.empty() && core_.connected()) {
    link_.send(protocol::RequestOfRes{std::exchange(to_request_, {})});
  }
  to_request_.clear();
  for (auto& m : std::exchange(shell_outbox_, {})) link_.send(m);
  for (const auto& r : events.reports) answer_lookups(r);
}

}  // namespace jc::node
