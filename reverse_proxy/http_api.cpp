#include "reverse_proxy/http_api.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "protocol/stats_json.h"

namespace jc::proxy {

using nlohmann::json;

namespace {

std::string label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

std::string metrics(const ProxyCore& core, const RoundHistogram& rounds, TimeMs now) {
  auto s = core.stats(now);
  std::string out;
  auto family = [&](const char* name, const char* type, const char* help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  family("jobcluster_jobs_submitted_total", "counter", "Jobs stored by the proxy since it started.");
  out += fmt::format("jobcluster_jobs_submitted_total {}\n", s.submitted_total);
  family("jobcluster_jobs_dispatched_total", "counter", "Jobs sent to nodes since the proxy started.");
  out += fmt::format("jobcluster_jobs_dispatched_total {}\n", core.dispatched_total());
  family("jobcluster_jobs_redispatched_total", "counter",
         "Jobs taken back from a lost node and queued again.");
  out += fmt::format("jobcluster_jobs_redispatched_total {}\n", s.redispatched_total);
  family("jobcluster_jobs_finished_total", "counter", "Jobs that reached a final state, by state.");
  for (auto st : {protocol::JobState::kDone, protocol::JobState::kFailed,
                  protocol::JobState::kTimeout, protocol::JobState::kCancelled}) {
    auto it = core.finished_by_state().find(st);
    out += fmt::format("jobcluster_jobs_finished_total{{state=\"{}\"}} {}\n", protocol::to_string(st),
                       it == core.finished_by_state().end() ? 0 : it->second);
  }
  family("jobcluster_queue_length", "gauge", "Jobs waiting at the proxy for a node.");
  out += fmt::format("jobcluster_queue_length {}\n", s.queue_length);
  std::size_t up = 0;
  for (const auto& n : s.nodes) up += n.connected ? 1 : 0;
  family("jobcluster_nodes_connected", "gauge", "Nodes connected to the proxy.");
  out += fmt::format("jobcluster_nodes_connected {}\n", up);
  family("jobcluster_node_slots", "gauge", "Jobs a node runs at the same time.");
  for (const auto& n : s.nodes) {
    out += fmt::format("jobcluster_node_slots{{node=\"{}\"}} {}\n", label(n.node_id), n.slots);
  }
  family("jobcluster_node_running_jobs", "gauge", "Jobs a node runs, from its last INFO.");
  for (const auto& n : s.nodes) {
    out += fmt::format("jobcluster_node_running_jobs{{node=\"{}\"}} {}\n", label(n.node_id), n.running);
  }
  family("jobcluster_node_held_jobs", "gauge", "Jobs dispatched to a node and not finished.");
  for (const auto& n : s.nodes) {
    out += fmt::format("jobcluster_node_held_jobs{{node=\"{}\"}} {}\n", label(n.node_id), n.assigned);
  }
  family("jobcluster_dispatch_round_duration_seconds", "histogram",
         "Time the proxy spends in one dispatch round.");
  for (std::size_t i = 0; i < RoundHistogram::kBounds.size(); ++i) {
    out += fmt::format("jobcluster_dispatch_round_duration_seconds_bucket{{le=\"{}\"}} {}\n",
                       RoundHistogram::kBounds[i], rounds.counts[i]);
  }
  out += fmt::format("jobcluster_dispatch_round_duration_seconds_bucket{{le=\"+Inf\"}} {}\n",
                     rounds.count);
  out += fmt::format("jobcluster_dispatch_round_duration_seconds_sum {}\n", rounds.sum);
  out += fmt::format("jobcluster_dispatch_round_duration_seconds_count {}\n", rounds.count);
  return out;
}

json state_json(const ProxyCore& core, TimeMs now) {
  return protocol::cluster_state_json(core.stats(now), now);
}

json job_json(const JobRecord& rec) {
  json j = {{"ticket", rec.spec.ticket},
            {"state", std::string(protocol::to_string(rec.state))},
            {"node", rec.node},
            {"attempts", rec.attempts},
            {"nodes_tried", rec.nodes_tried},
            {"origin", rec.spec.origin},
            {"submitted_ms", rec.spec.submitted_ms},
            {"job", rec.spec.describe()}};
  if (protocol::is_final(rec.state)) {
    j["result"] = rec.result.text;
    j["exit_code"] = rec.result.exit_code;
    j["verdict"] = rec.result.verdict;
    j["wall_ms"] = rec.result.end_ms - rec.result.start_ms;
  }
  return j;
}

constexpr const char* kPage = R"(<!doctype html>
<html><head><meta charset="utf-8"><title>jobcluster</title>
<style>body{font:14px sans-serif;margin:2em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#eee}
.up{color:#080}.down{color:#b00}</style></head>
<body><h1>jobcluster</h1><p id="summary">loading...</p>
<table><thead><tr><th>node</th><th>address</th><th>state</th><th>slots</th><th>running</th>
<th>queued</th><th>held</th><th>finished</th><th>last heard</th></tr></thead><tbody id="nodes"></tbody></table>
<script>
async function refresh() {
  try {
    const s = await (await fetch('/api/state')).json();
    const up = s.nodes.filter(n => n.state === 'up').length;
    document.getElementById('summary').textContent =
      `nodes up ${up}/${s.nodes.length} · queue ${s.queue_length} · running ${s.running} · ` +
      `submitted ${s.submitted} · finished ${s.finished} · re-dispatched ${s.redispatched}`;
    document.getElementById('nodes').innerHTML = s.nodes.map(n =>
      `<tr><td>${n.id}</td><td>${n.address}</td><td class="${n.state}">${n.state}</td>` +
      `<td>${n.slots}</td><td>${n.running}</td><td>${n.queued}</td><td>${n.held}</td>` +
      `<td>${n.finished}</td><td>${((s.time_ms - n.last_heard_ms) / 1000).toFixed(1)} s ago</td></tr>`).join('');
  } catch (e) { document.getElementById('summary').textContent = 'proxy unreachable'; }
}
refresh(); setInterval(refresh, 1000);
</script></body></html>
)";

}  // namespace

void RoundHistogram::observe(double seconds) {
  for (std::size_t i = 0; i < kBounds.size(); ++i) {
    if (seconds <= kBounds[i]) ++counts[i];
  }
  ++count;
  sum += seconds;
}

HttpReply handle_http(const std::string& method, const std::string& target, const ProxyCore& core,
                      const RoundHistogram& rounds, TimeMs now) {
  if (method != "GET") return {405, "text/plain; charset=utf-8", "only GET is served\n"};
  std::string path = target.substr(0, target.find('?'));
  if (path == "/metrics") return {200, "text/plain; version=0.0.4; charset=utf-8", metrics(core, rounds, now)};
  if (path == "/api/state") return {200, "application/json", state_json(core, now).dump() + "\n"};
  constexpr std::string_view kJobs = "/api/jobs/";
  if (path.rfind(kJobs, 0) == 0) {
    std::string ticket = path.substr(kJobs.size());
    if (!protocol::is_valid_ticket(ticket)) {
      return {400, "application/json", json{{"error", "malformed ticket"}}.dump() + "\n"};
    }
    auto rec = core.find_job(ticket);
    if (!rec) {
      return {404, "application/json", json{{"error", "unknown ticket '" + ticket + "'"}}.dump() + "\n"};
    }
    return {200, "application/json",
            job_json(*rec).dump(-1, ' ', false, json::error_handler_t::replace) + "\n"};
  }
  if (path == "/") return {200, "text/html; charset=utf-8", kPage};
  return {404, "text/plain; charset=utf-8", "not found: try /, /metrics, /api/state, /api/jobs/<ticket>\n"};
}

}  // namespace jc::proxy
