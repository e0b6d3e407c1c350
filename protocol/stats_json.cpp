#include "protocol/stats_json.h"

namespace jc::protocol {

nlohmann::json cluster_state_json(const ClusterStats& s, std::int64_t time_ms) {
  nlohmann::json nodes = nlohmann::json::array();
  std::size_t up = 0;
  for (const auto& n : s.nodes) {
    up += n.connected ? 1 : 0;
    nodes.push_back({{"id", n.node_id},
                     {"address", n.address},
                     {"state", n.state.empty() ? (n.connected ? "up" : "down") : n.state},
                     {"slots", n.slots},
                     {"running", n.running},
                     {"queued", n.queued},
                     {"held", n.assigned},
                     {"finished", n.finished},
                     {"last_heard_ms", n.last_heard_ms}});
  }
  return {{"queue_length", s.queue_length}, {"running", s.running},
          {"submitted", s.submitted_total}, {"finished", s.finished_total},
          {"redispatched", s.redispatched_total}, {"nodes_up", up},
          {"nodes", nodes}, {"recent_events", s.recent_events}, {"time_ms", time_ms}};
}

}  // namespace jc::protocol
