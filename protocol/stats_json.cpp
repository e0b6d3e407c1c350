#include "protocol/stats_json.h"

#include <algorithm>

namespace jc::protocol {

std::size_t connected_count(const ClusterStats& s) {
  return static_cast<std::size_t>(std::count_if(s.nodes.begin(), s.nodes.end(),
                                                [](const NodeStats& n) { return n.connected; }));
}

nlohmann::json cluster_state_json(const ClusterStats& s, std::int64_t time_ms) {
  nlohmann::json nodes = nlohmann::json::array();
  for (const auto& n : s.nodes) {
    nodes.push_back({{"id", n.node_id},
                     {"address", n.address},
                     {"state", n.state.empty() ? (n.connected ? "up" : "down") : n.state},
                     {"slots", n.slots},
                     {"running", n.running},
                     {"queued", n.queued},
                     {"held", n.assigned},
                     {"finished", n.finished},
                     {"sandbox", n.sandbox.empty() ? "-" : n.sandbox},
                     {"cpus", n.cpus.empty() ? "-" : n.cpus},
                     {"api", n.api_address},
                     {"last_heard_ms", n.last_heard_ms}});
  }
  nlohmann::json proxies = nlohmann::json::array();
  for (const auto& p : s.proxies) {
    proxies.push_back(
        {{"address", p.address}, {"role", p.role}, {"match", p.match}, {"lag", p.lag}});
  }
  return {{"queue_length", s.queue_length},
          {"proxies", proxies},
          {"leader", s.leader},
          {"term", s.term},
          {"running", s.running},
          {"held", s.held},
          {"submitted", s.submitted_total},
          {"finished", s.finished_total},
          {"redispatched", s.redispatched_total},
          {"nodes_up", connected_count(s)},
          {"nodes", nodes},
          {"recent_events", s.recent_events},
          {"time_ms", time_ms}};
}

}  // namespace jc::protocol
