// ProxyCore's dispatch: which queued jobs go to which node in a round
// (the plan is balancer.h's), and the periodic exchange of results and
// heartbeats with every node.
#include "reverse_proxy/balancer.h"
#include "reverse_proxy/proxy_core.h"

namespace jc::proxy {

bool ProxyCore::has_dispatchable() const {
  if (book_.ready() == 0) return false;
  for (const auto& [id, node] : nodes_) {
    if (node.connected && !node.draining &&
        node.held.size() < node.slots + std::max(options_.prefetch, node.rate.prefetch(options_.prefetch_ms))) {
      return true;
    }
  }
  return false;
}

bool ProxyCore::dispatch(TimeMs now) {
  clock_ = now;
  book_.promote_due(now);
  if (book_.ready() == 0) {
    update_admission();
    return false;
  }
  std::vector<std::string> ids;
  std::vector<NodeLoad> loads;
  for (auto& [id, node] : nodes_) {
    if (!node.connected || node.draining) continue;
    node.rate.update(node.finished, now);
    ids.push_back(id);
    loads.push_back({node.slots, static_cast<std::uint32_t>(node.held.size()), node.rate.prefetch(options_.prefetch_ms)});
  }
  auto plan =
      plan_dispatch(loads, book_.ready(), options_.max_dispatch, options_.prefetch, rotation_++);
  std::size_t total = 0;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    NodeEntry& node = nodes_[ids[i]];
    const std::size_t base_cap = node.slots + options_.prefetch;
    protocol::Job job;
    job.jobs.reserve(plan[i]);  // an Assignment is a spec: not moved again as the vector grows
    while (job.jobs.size() < plan[i]) {
      const InlineKey* next =
          book_.pop_for([&](std::uint32_t needs) { return can_run(node, needs); });
      if (next == nullptr) break;
      auto it = book_.find(*next);
      if (it == book_.end()) continue;
      JobRecord rec;
      std::string spec_bytes;  // sent as stored, not encoded again
      if (!book_.load_queued(it, rec, spec_bytes)) continue;
      std::size_t held_after = node.held.size() + 1;
      if (held_after > base_cap &&
          !fits_adaptive_prefetch(static_cast<std::uint32_t>(held_after - base_cap),
                                  rec.spec.kind == protocol::JobKind::kSleep, rec.spec.sleep_ms,
                                  node.slots, options_.prefetch_ms)) {
        book_.put_back(it);  // back, for a node with room
        break;
      }
      rec.attempts++;
      rec.nodes_tried.push_back(ids[i]);
      if (!to_node(it, rec, ids[i])) {
        book_.put_back(it);  // refused and logged: left where it was
        break;
      }
      job.jobs.push_back({std::move(rec.spec), rec.attempts, std::move(spec_bytes)});
    }
    if (job.jobs.empty()) continue;
    total += job.jobs.size();
    stats_.dispatched += job.jobs.size();
    log_->debug("dispatch node={} jobs={}", ids[i], job.jobs.size());
    send(ids[i], std::move(job));
  }
  if (total > 0) log_->debug("dispatch round jobs={} queued={}", total, book_.ready());
  update_admission();
  return total >= options_.max_dispatch && has_dispatchable();
}

void ProxyCore::exchange_results(TimeMs now) {
  clock_ = now;
  constexpr std::size_t kMaxPerExchange = 1000;
  for (const auto& [id, node] : nodes_) {
    if (!node.connected) continue;
    protocol::ResReq m;
    for (const auto& t : notices_.due(id, kMaxPerExchange)) m.reports.push_back(report_of(t));
    for (const auto& t : node.held) {
      if (m.requests.size() >= kMaxPerExchange) break;
      m.requests.push_back(t.str());
    }
    // Sent even when empty: it doubles as the heartbeat a node watches for.
    send(id, std::move(m));
  }
}

}  // namespace jc::proxy
