#include "client/replies.h"

#include <algorithm>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "client/command.h"
#include "protocol/job_json.h"
#include "protocol/stats_json.h"

namespace jc::client::replies {

using nlohmann::json;
using protocol::JobState;

namespace {

std::string line(const json& j) {
  // Invalid UTF-8 (job output can hold any bytes) is replaced, never thrown.
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

std::string unknown_message(const std::string& t, bool unreachable) {
  if (unreachable) {
    return fmt::format(
        "cannot check ticket '{}' now: the proxy, or the node it was submitted to, is "
        "unreachable; try again",
        t);
  }
  return fmt::format("unknown ticket '{}'", t);
}

// The same words from r, status, wait and cancel (and the HTTP API).
std::string expired_message(const std::string& t) {
  return fmt::format("ticket '{}' expired: its job ended more than RESULT_TTL ago", t);
}

// A run job's result in text: one header line with every fact and the byte
// counts, then exactly stdout_bytes bytes and a newline, stderr_bytes bytes
// and a newline, then one line per case.
std::string framed_run_result(const protocol::JobReport& r) {
  const auto& res = r.result;
  std::string out = fmt::format(
      "Result: {} {} verdict={} exit={} signal={} wall_ms={} cpu_ms={} peak_kb={} node={} "
      "attempt={} sandbox={} stdout_bytes={} stderr_bytes={} stdout_truncated={} "
      "stderr_truncated={} cases={}",
      r.ticket, protocol::to_string(r.state), res.verdict.empty() ? "-" : res.verdict,
      res.exit_code, res.signal, res.end_ms - res.start_ms, res.cpu_ms, res.peak_kb,
      r.node.empty() ? "-" : r.node, res.attempt, res.sandbox.empty() ? "-" : res.sandbox,
      res.stdout_data.size(), res.stderr_data.size(), res.stdout_truncated ? 1 : 0,
      res.stderr_truncated ? 1 : 0, res.cases.size());
  if (!res.cases.empty()) out += fmt::format(" passed={}", res.passed);
  out += "\n" + res.stdout_data + "\n" + res.stderr_data + "\n";
  for (const auto& c : res.cases) {
    out += fmt::format("case {} {} exit={} signal={} wall_ms={} cpu_ms={} peak_kb={}\n", c.name,
                       c.verdict, c.exit_code, c.signal, c.wall_ms, c.cpu_ms, c.peak_kb);
  }
  return out;
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
  if (r.state == JobState::kUnknown)
    return error(unknown_message(r.ticket, unreachable), json_mode);
  if (r.state == JobState::kExpired) return error(expired_message(r.ticket), json_mode);
  if (json_mode) return line(protocol::job_json(r));
  if (!r.has_result) return "Result has not been executed yet, come back later.\n";
  if (r.result.is_run) return framed_run_result(r);
  std::string text = protocol::shown_text(r.result, r.ticket);
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  if (r.state == JobState::kDone) return "Result: " + text + "\n";
  return fmt::format("Result: {} {}\n", protocol::to_string(r.state), text);
}

std::string status(const protocol::JobReport& r, bool unreachable, bool json_mode) {
  if (r.state == JobState::kUnknown)
    return error(unknown_message(r.ticket, unreachable), json_mode);
  if (r.state == JobState::kExpired) return error(expired_message(r.ticket), json_mode);
  if (json_mode) return line(protocol::job_json(r));
  std::string out =
      fmt::format("Status: {} {} node={} attempt={}", r.ticket, protocol::to_string(r.state),
                  r.node.empty() ? "-" : r.node, r.attempts);
  if (r.queue_position >= 0) out += fmt::format(" queue_position={}", r.queue_position);
  if (r.estimated_wait_ms >= 0) out += fmt::format(" estimated_wait_ms={}", r.estimated_wait_ms);
  if (r.state == JobState::kQueued) {
    out += fmt::format(" priority={}", r.priority);
    if (r.not_before_ms > 0) out += " not_before=" + protocol::iso_time(r.not_before_ms);
    if (!r.waiting_for.empty()) out += " waiting_for=" + r.waiting_for;
  }
  if (unreachable && !protocol::is_final(r.state)) out += " proxy=unreachable";
  return out + "\n";
}

std::string cancelled(const protocol::JobReport& r, bool unreachable, bool json_mode) {
  if (r.state == JobState::kUnknown)
    return error(unknown_message(r.ticket, unreachable), json_mode);
  if (r.state == JobState::kExpired) return error(expired_message(r.ticket), json_mode);
  bool done = r.state == JobState::kCancelled;
  bool finished_before = protocol::is_final(r.state) && !done;
  if (json_mode) {
    if (finished_before) {
      return line({{"error", fmt::format("{} had already finished: {}", r.ticket,
                                         protocol::to_string(r.state))},
                   {"ticket", r.ticket},
                   {"state", std::string(protocol::to_string(r.state))}});
    }
    return line({{"ticket", r.ticket},
                 {"state", std::string(protocol::to_string(r.state))},
                 {"cancelled", done},
                 {"node", r.node.empty() ? json(nullptr) : json(r.node)}});
  }
  if (finished_before) {
    return fmt::format("ERR {} had already finished: {}\n", r.ticket, protocol::to_string(r.state));
  }
  if (done) return fmt::format("OK cancelled {}\n", r.ticket);
  return fmt::format("OK cancelling {}: killing it on node {}\n", r.ticket,
                     r.node.empty() ? "-" : r.node);
}

std::string getall(const std::vector<protocol::GetAllEntry>& jobs, bool json_mode) {
  if (json_mode) {
    json arr = json::array();
    for (const auto& j : jobs) {
      arr.push_back({{"ticket", j.ticket},
                     {"state", std::string(protocol::to_string(j.state))},
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

std::string stats(const protocol::ClusterStats& s, bool proxy_up, bool json_mode,
                  std::int64_t time_ms) {
  if (json_mode) {
    // The same object as the proxy's /api/state, plus whether it answered.
    json j = protocol::cluster_state_json(s, time_ms);
    j["proxy"] = proxy_up ? "up" : "unreachable";
    return line(j);
  }
  std::string out = fmt::format("Stats: {}\n", s.nodes.size() + 1 + s.proxies.size());
  out += fmt::format(
      "proxy={} queue={} running={} submitted={} finished={} redispatched={} nodes_up={}",
      proxy_up ? "up" : "unreachable", s.queue_length, s.running, s.submitted_total,
      s.finished_total, s.redispatched_total, protocol::connected_count(s));
  // Replicated proxies: the leader and its term, then a line per proxy.
  if (!s.proxies.empty()) {
    out += fmt::format(" leader={} term={}", s.leader.empty() ? "-" : s.leader, s.term);
  }
  out += "\n";
  for (const auto& p : s.proxies) {
    out += fmt::format("proxy {} role={} match={} lag={}\n", p.address, p.role, p.match, p.lag);
  }
  for (const auto& n : s.nodes) {
    out += fmt::format(
        "node {} state={} address={} slots={} running={} queued={} held={} finished={} "
        "sandbox={} cpus={}\n",
        n.node_id, n.connected ? "up" : "down", n.address.empty() ? "-" : n.address, n.slots,
        n.running, n.queued, n.assigned, n.finished, n.sandbox.empty() ? "-" : n.sandbox,
        n.cpus.empty() ? "-" : n.cpus);
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

std::string authenticated(const std::string& name, bool json_mode) {
  if (json_mode) return line({{"auth", name}});
  return "OK auth " + name + "\n";
}

}  // namespace jc::client::replies
