// The node as the client conversations' backend (client::Backend):
// submissions, lookups that wait for the proxy's answer, getall, cancel and
// stats.
#include "cluster_node/node_server.h"

namespace jc::node {

namespace asio = boost::asio;
using boost::system::error_code;
using std::chrono::milliseconds;

namespace {
// `r` and `status` of a ticket this node cannot answer wait for the proxy's
// answer: until it comes, until the link drops (then "unreachable"), or, as
// a safety net only, this long. Before its first join the node waits for
// the join as long. An answer never depends on how busy the proxy is.
constexpr milliseconds kProxyAnswerTimeout{client::LookupBook::kProxyAnswerTimeoutMs};
}  // namespace

void NodeServer::submit(protocol::JobSpec spec, std::function<void(const std::string&)> done) {
  std::string ticket = core_.submit(std::move(spec), now_ms());
  after_commit_.push_back([done = std::move(done), ticket] { done(ticket); });
  schedule_flush();
}

TimeMs NodeServer::now() const { return now_ms(); }

client::NodeView NodeServer::view() {
  client::NodeView v;
  v.connected = core_.connected();
  v.ever_joined = ever_joined_;
  TimeMs now = now_ms();
  v.local = [this, now](const std::string& t) { return core_.lookup(t, now); };
  v.unforwarded = [this](const std::string& t) { return core_.unforwarded(t); };
  return v;
}

void NodeServer::apply(const client::LookupBook::Effects& fx) {
  for (auto id : fx.disarm) {
    if (auto it = lookup_timers_.find(id); it != lookup_timers_.end()) {
      it->second->cancel();
      lookup_timers_.erase(it);
    }
  }
  for (const auto& [id, after_ms] : fx.arm) {
    auto timer = std::make_unique<asio::steady_timer>(io_, milliseconds(after_ms));
    timer->async_wait([this, id = id](const error_code& ec) {
      if (ec) return;
      lookup_timers_.erase(id);
      apply(lookups_.on_timeout(id, view()));
    });
    lookup_timers_[id] = std::move(timer);
  }
  if (!fx.ask.empty()) {
    to_request_.insert(to_request_.end(), fx.ask.begin(), fx.ask.end());
    schedule_flush();
  }
}

void NodeServer::answer_lookups(const std::vector<protocol::JobReport>& reports) {
  // Most reports are results nobody waits for: no view is built for them.
  if (lookups_.empty()) return;
  client::NodeView v = view();
  TimeMs now = now_ms();
  for (const auto& r : reports) apply(lookups_.on_report(r, v, now));
}

void NodeServer::lookup(client::LookupRequest request, client::LookupDone done) {
  apply(lookups_.start(std::move(request), std::move(done), view()));
}

void NodeServer::getall(std::function<void(const std::vector<GetAllEntry>&)> done) {
  after_commit_.push_back([this, done = std::move(done)] { done(core_.getall(now_ms())); });
  schedule_flush();
}

void NodeServer::cancel(const std::string& ticket, const std::string& requester,
                        client::LookupDone done) {
  shell_outbox_.push_back(protocol::Cancel{{ticket}, requester});
  schedule_flush();
  // Answered by the proxy's report after it acted on the CANCEL.
  apply(lookups_.start({ticket, false, std::nullopt, true}, std::move(done), view()));
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

}  // namespace jc::node
