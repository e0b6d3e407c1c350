// The node's lifetime (start, stop, drain), its client acceptor, the link to
// the proxy, the jobs it runs, and the group commit with what waits for it.
#include "cluster_node/node_server.h"

#include <fmt/format.h>

#include "cluster_node/client_session.h"
#include "client/replies.h"
#include "protocol/auth.h"

namespace jc::node {

namespace asio = boost::asio;
using boost::system::error_code;
using std::chrono::milliseconds;

namespace {
runner::SandboxConfig sandbox_config(const NodeConfig& c) {
  runner::SandboxConfig s;
  s.node_id = c.core.node_id;
  s.identity = c.identity;
  s.slot_cpus = c.slot_cpus;
  s.allow_network = c.allow_network;
  s.processes = c.job_processes;
  s.isolation.slots = c.core.slots;
  s.isolation.uid_base = c.job_uid_base;
  s.isolation.job_user = c.job_user;
  s.isolation.readonly_paths = c.readonly_paths;
  s.isolation.work_root = c.work_dir;
  return s;
}

std::vector<ProxyLink::Address> proxy_addresses(
    const std::vector<std::pair<std::string, std::string>>& proxies) {
  std::vector<ProxyLink::Address> out;
  for (const auto& [host, port] : proxies) out.push_back({host, port});
  return out;
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
      core_(store,
            [this] {
              NodeOptions o = config_.core;
              o.secret = config_.secret;
              return o;
            }()),
      log_(log::get("node")),
      listener_(io, log_),
      info_timer_(io),
      request_timer_(io),
      ack_sync_timer_(io),
      results_timer_(io),
      sweep_timer_(io),
      link_(io, proxy_addresses(config_.proxies),
            ProxyLink::Handlers{[] {},  // the proxy speaks first: HELLO answers its CHALLENGE
                                [this](protocol::Message&& m) { on_proxy_message(std::move(m)); },
                                [this] { on_proxy_closed(); }},
            link_tls(config_.tls)),
      executor_(io, config_.core.node_id, sandbox_config(config_), config_.core.slots,
                [this](const std::string& t, protocol::JobResult r) {
                  on_job_done(t, std::move(r));
                }),
      writer_(std::make_unique<storage::BackgroundWrite>(
          [&io](std::function<void()> f) { asio::post(io, std::move(f)); })),
      storage_retry_(io, log_, [this] { schedule_flush(); }),
      callback_timer_(io) {
  core_.set_sandbox(executor_.sandbox_description(), executor_.cpus_description());
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
  const bool synced = core_.staged().commit_syncs();
  if (Status s = core_.staged().commit(); !s.ok()) {
    storage_retry_.failed(s);
  } else {
    core_.committed(synced);
  }
  port_ =
      listener_.listen(config_.bind_address, config_.client_port,
                       fmt::format("for clients node={} slots={}", core_.node_id(), core_.slots()),
                       [this](asio::ip::tcp::socket socket, const std::string& address,
                              const std::string& peer) {
                         on_accept(std::move(socket), address, peer);
                       });
  config_.core.client_address = fmt::format("{}:{}", config_.advertise_host, port_);
  if (config_.api_port) {
    api::ApiContext context;
    context.node_id = core_.node_id();
    context.settings = config_.api_settings;
    context.table = config_.language_table;
    context.languages = config_.languages;
    context.cors_origins = config_.api_cors_origins;
    context.playground = std::string(api::playground_page());
    context.spec_of = [this](const std::string& ticket) { return core_.origin_spec(ticket); };
    api_router_ = std::make_unique<api::Router>(*this, std::move(context));
    api_server_ = std::make_unique<api::HttpServer>(io_, *api_router_, config_.api_max_body_bytes);
    api_port_ = api_server_->listen(config_.bind_address, *config_.api_port);
    core_.set_api_address(fmt::format("{}:{}", config_.advertise_host, api_port_));
    log_->info("judge0-compatible API on http://{}:{}/ languages={}", config_.advertise_host,
               api_port_, config_.languages.size());
  }
  if (config_.api_port || core_.callbacks().size() > 0) {
    // Never to this node's own ports on its own host.
    callback_sender_ = std::make_unique<api::CallbackSender>(
        io_, config_.api_settings.callback_allow, std::set<std::uint16_t>{port_, api_port_});
    if (core_.callbacks().size() > 0) {
      log_->info("callbacks owed from before the restart count={}", core_.callbacks().size());
    }
    schedule_callbacks();
  }
  core_.set_client_address(config_.core.client_address);
  link_.start();
  schedule_info();
  schedule_requests();
  schedule_sweep(0);  // looks again every minute while RESULT_TTL is 0 (the proxy may set one)
  start_jobs();
  schedule_flush();
  return Status::Ok();
}

void NodeServer::schedule_sweep(TimeMs after_ms) {
  sweep_timer_.expires_after(milliseconds(after_ms));
  sweep_timer_.async_wait([this](const error_code& ec) {
    if (ec || stopping_) return;
    const protocol::Retention& retention = core_.retention();
    if (!retention.enabled()) {
      schedule_sweep(protocol::kMaxSweepPeriodMs);
      return;
    }
    if (storage_retry_.failing()) {
      // Its removals could not be written: sweep again once they can.
      schedule_sweep(retention.sweep_period_ms());
      return;
    }
    protocol::SweepOutcome swept = core_.sweep(now_ms());
    if (swept.removed > 0) {
      log_->info("removed expired jobs count={}{}", swept.removed, swept.more ? " (more follow)" : "");
    }
    compactions_.add(std::move(swept.compact));
    schedule_flush();  // commits the removal, then compacts what is due
    schedule_sweep(swept.more ? 10 : retention.sweep_period_ms());
  });
}

void NodeServer::stop() {
  if (stopping_) return;
  stopping_ = true;
  callback_timer_.cancel();
  log_->info("shutting down node={}", core_.node_id());
  listener_.close();
  if (api_server_) api_server_->close();
  info_timer_.cancel();
  request_timer_.cancel();
  ack_sync_timer_.cancel();
  results_timer_.cancel();
  sweep_timer_.cancel();
  storage_retry_.cancel();
  executor_.stop_all();
  core_.on_stop();
  writer_->finish();
  // A synced last commit: results stored unsynced are acknowledged in it.
  core_.staged().require_barrier();
  flush();
  link_.stop();
  for (auto& w : sessions_) {
    if (auto s = w.lock()) s->close();
  }
  sessions_.clear();
  for (auto& [id, timer] : lookup_timers_) timer->cancel();
  lookup_timers_.clear();
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
    session->refuse(client::replies::error(why, false));
    return;
  }
  sessions_.push_back(session);
  session->start();
}

void NodeServer::on_proxy_message(protocol::Message&& m) {
  // The core's switch reads every message; the shell carries out what it says.
  LinkActions act = core_.on_message(std::move(m), now_ms());
  if (act.idle) return;
  if (act.hello) {
    link_.send(*act.hello);
    return;
  }
  if (act.stats) {
    auto it = stats_waiters_.find(act.stats->id);
    if (it != stats_waiters_.end()) {
      auto cb = std::move(it->second.first);
      it->second.second->cancel();
      stats_waiters_.erase(it);
      cb(act.stats->stats, true);
    }
    return;
  }
  if (const auto& w = act.welcome; w && !w->accepted) {
    if (!w->proxies.empty()) {
      // A replicated proxy that does not lead: on to the leader.
      log_->info("proxy {} does not lead; {}", link_.current(),
                 w->leader.empty() ? std::string("no leader yet, trying the next one")
                                   : "going to the leader " + w->leader);
      link_.follow(w->leader);
      return;
    }
    log_->error("proxy refused this node reason=\"{}\"", w->reason);
    link_.refused();
    return;
  } else if (w) {
    log_->info("joined proxy={} dropped={}", w->proxy_id, w->drop.size());
    ever_joined_ = true;
    link_.joined(w->heartbeat_ms);
    // Lookups made while the proxy was away ask again.
    for (auto& t : lookups_.tickets()) to_request_.push_back(std::move(t));
  }
  for (const auto& t : act.cancel) {
    if (!executor_.cancel(t)) core_.cancel_queued(t, now_ms());
  }
  schedule_flush();
}

void NodeServer::on_proxy_closed() {
  core_.on_disconnected();
  ++link_epoch_;
  unsent_.clear();
  schedule_flush();  // what it wrote for the node to go on alone (ExecBook), and its barrier
  proxy_lost_at_ = now_ms();
  // `r` and `status` waiting for the proxy's answer will not get it from
  // this connection: they answer from what this node knows, saying so.
  // Before the first join they wait for it.
  apply(lookups_.on_proxy_lost(view()));
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
    core_.age_records();
    // Lookups of tickets the proxy did not know yet ask again.
    for (auto& t : lookups_.asking_again()) to_request_.push_back(std::move(t));
    schedule_flush();
    schedule_requests();
  });
}

void NodeServer::schedule_flush() {
  if (flush_scheduled_) return;
  flush_scheduled_ = true;
  asio::post(io_, [this] { flush(); });
}

}  // namespace jc::node
