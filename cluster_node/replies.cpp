#include "cluster_node/replies.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "cluster_node/command.h"

namespace jc::node::replies {

using nlohmann::json;
using protocol::JobState;

namespace {

std::string line(const json& j) {
  // Invalid UTF-8 (job output can hold any bytes) is replaced, never thrown.
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

std::string unknown_message(const std::string& t, bool unreachable) {
  std::string m = fmt::format("unknown ticket '{}'", t);
  if (unreachable) m += " (the proxy is unreachable, so other nodes' tickets cannot be checked now)";
  return m;
}

json facts(const protocol::JobReport& r) {
  json j = {{"ticket", r.ticket},
            {"state", std::string(protocol::to_string(r.state))},
            {"node", r.node.empty() ? json(nullptr) : json(r.node)},
            {"attempts", r.attempts}};
  if (r.queue_position >= 0) j["queue_position"] = r.queue_position;
  if (r.estimated_wait_ms >= 0) j["estimated_wait_ms"] = r.estimated_wait_ms;
  if (r.has_result) {
    j["result"] = r.result.text;
    if (r.result.start_ms > 0) j["wall_ms"] = r.result.end_ms - r.result.start_ms;
  }
  return j;
}

}  // namespace

std::string ticket(const std::string& t, bool json_mode) {
  if (json_mode) return line({{"ticket", t}});
  return "Ticket ID: " + t + "\n";
}

std::string error(const std::string& message, bool json_mode) {
  if (json_mode) return line({{"error", message}});
  return "ERR " + message + "\n";
}

std::string result(const protocol::JobReport& r, bool unreachable, bool json_mode) {
  if (r.state == JobState::kUnknown) return error(unknown_message(r.ticket, unreachable), json_mode);
  if (json_mode) return line(facts(r));
  if (!r.has_result) return "Result has not been executed yet, come back later.\n";
  std::string text = r.result.text;
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  if (r.state == JobState::kDone) return "Result: " + text + "\n";
  return fmt::format("Result: {} {}\n", protocol::to_string(r.state), text);
}

std::string status(const protocol::JobReport& r, bool unreachable, bool json_mode) {
  if (r.state == JobState::kUnknown) return error(unknown_message(r.ticket, unreachable), json_mode);
  if (json_mode) return line(facts(r));
  std::string out = fmt::format("Status: {} {} node={} attempt={}", r.ticket,
                                protocol::to_string(r.state), r.node.empty() ? "-" : r.node,
                                r.attempts);
  if (r.queue_position >= 0) out += fmt::format(" queue_position={}", r.queue_position);
  if (r.estimated_wait_ms >= 0) out += fmt::format(" estimated_wait_ms={}", r.estimated_wait_ms);
  if (unreachable && !protocol::is_final(r.state)) out += " proxy=unreachable";
  return out + "\n";
}

std::string getall(const std::vector<GetAllEntry>& jobs, bool json_mode) {
  if (json_mode) {
    json arr = json::array();
    for (const auto& j : jobs) {
      arr.push_back({{"ticket", j.ticket}, {"state", std::string(protocol::to_string(j.state))},
                     {"job", j.job}});
    }
    return line({{"jobs", arr}});
  }
  std::string out = fmt::format("Jobs: {}\n", jobs.size());
  for (const auto& j : jobs) {
    out += fmt::format("{} {} {}\n", j.ticket, protocol::to_string(j.state), j.job);
  }
  return out;
}

std::string stats(const protocol::ClusterStats& s, bool proxy_up, bool json_mode) {
  std::size_t up = 0;
  for (const auto& n : s.nodes) up += n.connected ? 1 : 0;
  if (json_mode) {
    json nodes = json::array();
    for (const auto& n : s.nodes) {
      nodes.push_back({{"id", n.node_id}, {"address", n.address},
                       {"state", n.connected ? "up" : "down"}, {"slots", n.slots},
                       {"running", n.running}, {"queued", n.queued}, {"held", n.assigned},
                       {"finished", n.finished}});
    }
    return line({{"proxy", proxy_up ? "up" : "unreachable"}, {"queue_length", s.queue_length},
                 {"running", s.running}, {"submitted", s.submitted_total},
                 {"finished", s.finished_total}, {"redispatched", s.redispatched_total},
                 {"nodes_up", up}, {"nodes", nodes}});
  }
  std::string out = fmt::format("Stats: {}\n", s.nodes.size() + 1);
  out += fmt::format("proxy={} queue={} running={} submitted={} finished={} redispatched={} nodes_up={}\n",
                     proxy_up ? "up" : "unreachable", s.queue_length, s.running, s.submitted_total,
                     s.finished_total, s.redispatched_total, up);
  for (const auto& n : s.nodes) {
    out += fmt::format("node {} state={} address={} slots={} running={} queued={} held={} finished={}\n",
                       n.node_id, n.connected ? "up" : "down", n.address.empty() ? "-" : n.address,
                       n.slots, n.running, n.queued, n.assigned, n.finished);
  }
  return out;
}

std::string help(bool json_mode) {
  const auto& lines = help_lines();
  if (json_mode) return line({{"commands", lines}});
  std::string out = fmt::format("Help: {}\n", lines.size());
  for (const auto& l : lines) out += l + "\n";
  return out;
}

std::string goodbye(bool json_mode) {
  constexpr const char* kText = "Come back later to check your results.";
  if (json_mode) return line({{"goodbye", kText}});
  return std::string(kText) + "\n";
}

std::string format_switched(bool json_mode) {
  return json_mode ? "OK format json\n" : "OK format text\n";
}

}  // namespace jc::node::replies
