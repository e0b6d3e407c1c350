// ProxyCore's handling of nodes coming and going: HELLO and its
// reconciliation, a lost connection, a drain, what the cluster offers and
// admits, and the cluster's stats. The rules of who may join are in
// admission.h; what is known of each node is Membership's.
#include <fmt/format.h>


#include "reverse_proxy/admission.h"
#include "reverse_proxy/proxy_core.h"

namespace jc::proxy {

using protocol::JobEvent;
using protocol::JobReport;
using protocol::JobState;

protocol::Welcome ProxyCore::on_hello(const protocol::Hello& hello, const std::string& peer,
                                      TimeMs now, const std::string& nonce) {
  protocol::Welcome w;
  w.proxy_id = options_.proxy_id;
  clock_ = now;
  auto refuse = [&](std::string reason) {
    log_->warn("refused node={} peer={} reason=\"{}\"", hello.node_id, peer, reason);
    note(fmt::format("refused node {} from {}: {}", hello.node_id, peer, reason));
    w.reason = std::move(reason);
    return w;
  };
  JoinRules rules{options_.secret, options_.max_nodes};
  if (auto refusal = join_refusal(hello, nonce, rules, members_.connected(hello.node_id),
                                  members_.connected_count())) {
    return refuse(std::move(*refusal));
  }
  members_.join(hello, now);
  w.accepted = true;
  w.result_ttl_ms = options_.retention.ttl_ms;
  w.heartbeat_ms = options_.heartbeat_ms;
  w.proxies = options_.proxies;
  reconcile(hello.node_id, hello, w);
  note(fmt::format("node {} joined from {} with {} slots", hello.node_id, peer, hello.slots));
  log_->info("node joined node={} peer={} slots={} held={} finished={} dropped={}", hello.node_id,
             peer, hello.slots, hello.held.size(), hello.finished.size(), w.drop.size());
  // WELCOME is the first message on the new connection: a result the
  // reconciliation just gathered for this node goes with the rest it is
  // owed, after it (all_owed below; owe() has recorded it).
  outbox_.drop_results(hello.node_id);
  send(hello.node_id, w);
  send_offers(hello.node_id);
  // Results its clients have not acknowledged yet.
  protocol::Result r;
  for (const auto& t : notices_.all_owed(hello.node_id)) r.reports.push_back(report_of(t));
  if (!r.reports.empty()) send(hello.node_id, std::move(r));
  return w;
}

void ProxyCore::reconcile(const std::string& node_id, const protocol::Hello& hello,
                          protocol::Welcome& welcome) {
  auto& node = nodes_[node_id];
  TicketSet claimed;
  // Jobs it still holds, and jobs it finished whose results are on the way:
  // both stay with it unless they were given to another node meanwhile.
  auto claim = [&](const std::string& t, bool finished) {
    claimed.emplace(t);
    auto it = book_.find(t);
    bool elsewhere = it != book_.end() && it->second.state == JobState::kRunning &&
                     it->second.node != names_.intern(node_id);
    if (it == book_.end() || elsewhere) {
      // A held copy must stop; a finished one's result is offered anyway
      // (the first final result wins).
      if (!finished) welcome.drop.push_back(t);
      return;
    }
    if (it->second.state == JobState::kQueued) {
      // Given back to the queue while the node was away, and not yet given
      // to anyone else: it stays where it is.
      JobRecord rec;
      if (!book_.load_active(t, rec)) return;
      book_.unqueue(it);
      if (rec.nodes_tried.empty() || rec.nodes_tried.back() != node_id) {
        // Its JOB went out ahead of a commit that never landed (this
        // proxy restarted without it): the node runs the attempt that
        // JOB counted, which the record does not know yet.
        rec.attempts++;
        rec.nodes_tried.push_back(node_id);
      }
      to_node(it, rec, node_id);
    }
    node.held.emplace(t);
  };
  for (const auto& t : hello.held) claim(t, false);
  for (const auto& t : hello.finished) claim(t, true);
  std::vector<std::string> lost;
  for (const auto& t : node.held) {
    // A pinned job (run there while the proxy was away, its result shown)
    // comes back by SUBMIT rather than HELLO, with its result after it.
    auto it = book_.find(t);
    if (!claimed.contains(t) && !(it != book_.end() && it->second.pinned)) {
      lost.push_back(t.str());
    }
  }
  for (const auto& t : lost) requeue(t, "node came back without it");
}

void ProxyCore::on_disconnect(const std::string& node_id, TimeMs now) {
  auto it = nodes_.find(node_id);
  if (it == nodes_.end() || !it->second.connected) return;
  it->second.connected = false;
  it->second.lost_since = now;
  clock_ = now;
  // Results gathered for it go nowhere: a node that comes back is sent
  // every result it is owed (on_hello).
  outbox_.drop_results(node_id);
  note(fmt::format("node {} lost, holding {} jobs", node_id, it->second.held.size()));
  log_->info("node left node={} held={}", node_id, it->second.held.size());
  release_node_jobs(node_id, "node " + node_id + " was lost");
  send_offers();
}

void ProxyCore::release_node_jobs(const std::string& node_id, const std::string& reason) {
  auto& node = nodes_[node_id];
  std::vector<std::string> jobs;
  for (const auto& t : node.held) {
    // Its result, shown to its clients already, is on that node: it waits
    // for the node rather than run again and give a second result.
    if (auto it = book_.find(t); it != book_.end() && it->second.pinned) continue;
    jobs.push_back(t.str());
  }
  for (const auto& t : jobs) requeue(t, reason);
  if (!jobs.empty()) {
    note(fmt::format("{} jobs re-dispatched: {}", jobs.size(), reason));
    log_->info("requeued node={} jobs={} reason=\"{}\"", node_id, jobs.size(), reason);
  }
}

void ProxyCore::on_leave(const std::string& node_id, const protocol::Leave& m) {
  auto& node = nodes_[node_id];
  if (!node.draining) {
    note(fmt::format("node {} draining", node_id));
    log_->info("node draining node={} handed_back={}", node_id, m.handed_back.size());
  }
  node.draining = true;
  send_offers();
  for (const auto& t : m.handed_back) {
    auto it = book_.find(t);
    if (it == book_.end() || it->second.state != JobState::kRunning ||
        it->second.node != names_.intern(node_id)) {
      continue;
    }
    // Never started: back to the queue, and the dispatch does not count as
    // an attempt.
    JobRecord rec;
    if (!book_.load_active(t, rec)) continue;
    if (rec.attempts > 0) --rec.attempts;
    if (!rec.nodes_tried.empty()) rec.nodes_tried.pop_back();
    to_queue(it, rec);
  }
  if (m.done) {
    // Drained, it holds nothing on its way: its prefix names it no more
    // (its next SUBMIT names it again).
    origins_.forget(names_.intern(node_id));
    note(fmt::format("node {} left after draining", node_id));
    log_->info("node left after draining node={} held={}", node_id, node.held.size());
    node.connected = false;
    outbox_.drop_results(node_id);  // as on a lost connection (on_disconnect)
    if (!node.held.empty()) release_node_jobs(node_id, "node " + node_id + " left holding jobs");
  }
}

void ProxyCore::expire_absent_nodes(TimeMs now) {
  clock_ = now;
  for (auto& [id, node] : nodes_) {
    if (node.connected || node.held.empty()) continue;
    if (now - node.lost_since >= options_.node_timeout_ms) {
      release_node_jobs(id, fmt::format("node {} did not come back within NODE_TIMEOUT", id));
    }
  }
}

protocol::ClusterStats ProxyCore::stats(TimeMs now) const {
  protocol::ClusterStats s;
  for (const auto& [id, node] : nodes_) {
    protocol::NodeStats n;
    n.node_id = id;
    n.address = node.address;
    n.sandbox = node.sandbox;
    n.cpus = node.cpus;
    n.api_address = node.api_address;
    n.offers.assign(node.offers.begin(), node.offers.end());
    n.connected = node.connected;
    n.slots = node.slots;
    n.assigned = static_cast<std::uint32_t>(node.held.size());
    n.running = node.info.running;
    n.queued = node.info.queued;
    n.finished = node.finished;
    n.last_heard_ms = node.last_heard;
    n.state = node.state(now, options_.node_timeout_ms);
    // What runs, apart from what a node holds queued (its prefetch).
    s.running += node.connected ? node.info.running : 0;
    s.held += node.connected ? node.held.size() : 0;
    s.nodes.push_back(std::move(n));
  }
  s.queue_length = queue_length();
  s.recent_events.assign(stats_.events.begin(), stats_.events.end());
  s.submitted_total = stats_.submitted;
  s.finished_total = stats_.finished;
  s.redispatched_total = stats_.redispatched;
  if (replication_stats) replication_stats(s);
  return s;
}

void ProxyCore::send_offers(const std::string& to) {
  bool changed = members_.update_offers();
  for (const auto& [id, node] : nodes_) {
    if (node.connected && (changed || id == to)) send(id, members_.offers(options_.max_queue));
  }
}

void ProxyCore::update_admission() {
  const std::uint64_t queued = queue_length();
  if (!members_.update_queue_full(queued, options_.max_queue)) return;
  std::string event = members_.queue_full()
                          ? fmt::format("queue is full ({} jobs, MAX_QUEUE): nodes refuse new ones", queued)
                          : fmt::format("queue has room again ({} jobs)", queued);
  log_->warn("{}", event);
  note(std::move(event));
  for (const auto& [id, node] : nodes_) {
    if (node.connected) send(id, members_.offers(options_.max_queue));
  }
}

}  // namespace jc::proxy
