#include "reverse_proxy/http_api.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "protocol/job_json.h"
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

std::string replication_metrics(const ReplicationInfo& r) {
  std::string out;
  auto family = [&](const char* name, const char* type, const char* help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  family("jobcluster_proxy_leader", "gauge", "1 on the replicated proxy that leads, else 0.");
  out += fmt::format("jobcluster_proxy_leader{{proxy=\"{}\"}} {}\n", label(r.self),
                     r.role == "leader" ? 1 : 0);
  family("jobcluster_raft_term", "gauge", "The Raft term this proxy is in.");
  out += fmt::format("jobcluster_raft_term {}\n", r.term);
  family("jobcluster_raft_last_index", "gauge", "The last index of this proxy's log.");
  out += fmt::format("jobcluster_raft_last_index {}\n", r.last);
  family("jobcluster_raft_applied_index", "gauge", "The last log index applied to its store.");
  out += fmt::format("jobcluster_raft_applied_index {}\n", r.applied);
  family("jobcluster_raft_leaderships_total", "counter",
         "Times this proxy took over as leader since it started.");
  out += fmt::format("jobcluster_raft_leaderships_total {}\n", r.elections_won);
  if (!r.proxies.empty()) {
    family("jobcluster_proxy_replication_lag", "gauge",
           "Log entries a proxy is behind the leader (on the leader).");
    for (const auto& p : r.proxies) {
      out += fmt::format("jobcluster_proxy_replication_lag{{proxy=\"{}\"}} {}\n", label(p.address),
                         p.lag);
    }
  }
  return out;
}

std::string metrics(const ProxyCore& core, const RoundHistogram& rounds, TimeMs now) {
  auto s = core.stats(now);
  std::string out;
  auto family = [&](const char* name, const char* type, const char* help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  family("jobcluster_jobs_submitted_total", "counter",
         "Jobs stored by the proxy since it started.");
  out += fmt::format("jobcluster_jobs_submitted_total {}\n", s.submitted_total);
  family("jobcluster_jobs_dispatched_total", "counter",
         "Jobs sent to nodes since the proxy started.");
  out += fmt::format("jobcluster_jobs_dispatched_total {}\n", core.dispatched_total());
  family("jobcluster_jobs_redispatched_total", "counter",
         "Jobs taken back from a lost node and queued again.");
  out += fmt::format("jobcluster_jobs_redispatched_total {}\n", s.redispatched_total);
  family("jobcluster_jobs_finished_total", "counter", "Jobs that reached a final state, by state.");
  for (auto st : {protocol::JobState::kDone, protocol::JobState::kFailed,
                  protocol::JobState::kTimeout, protocol::JobState::kCancelled}) {
    auto it = core.finished_by_state().find(st);
    out +=
        fmt::format("jobcluster_jobs_finished_total{{state=\"{}\"}} {}\n", protocol::to_string(st),
                    it == core.finished_by_state().end() ? 0 : it->second);
  }
  family("jobcluster_jobs_expired_total", "counter",
         "Final jobs removed after RESULT_TTL since the proxy started.");
  out += fmt::format("jobcluster_jobs_expired_total {}\n", core.expired_total());
  family("jobcluster_queue_length", "gauge", "Jobs waiting at the proxy for a node.");
  out += fmt::format("jobcluster_queue_length {}\n", s.queue_length);
  family("jobcluster_nodes_connected", "gauge", "Nodes connected to the proxy.");
  out += fmt::format("jobcluster_nodes_connected {}\n", protocol::connected_count(s));
  family("jobcluster_node_slots", "gauge", "Jobs a node runs at the same time.");
  for (const auto& n : s.nodes) {
    out += fmt::format("jobcluster_node_slots{{node=\"{}\"}} {}\n", label(n.node_id), n.slots);
  }
  family("jobcluster_node_running_jobs", "gauge", "Jobs a node runs, from its last INFO.");
  for (const auto& n : s.nodes) {
    out += fmt::format("jobcluster_node_running_jobs{{node=\"{}\"}} {}\n", label(n.node_id),
                       n.running);
  }
  family("jobcluster_node_held_jobs", "gauge", "Jobs dispatched to a node and not finished.");
  for (const auto& n : s.nodes) {
    out +=
        fmt::format("jobcluster_node_held_jobs{{node=\"{}\"}} {}\n", label(n.node_id), n.assigned);
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

json state_json(const ProxyCore* core, const History& history, TimeMs now,
                const ReplicationInfo* replication) {
  protocol::ClusterStats stats;
  if (core != nullptr) {
    stats = core->stats(now);
  } else if (replication != nullptr) {
    stats.leader = replication->leader;
    stats.term = replication->term;
    stats.proxies = replication->proxies;
    stats.recent_events.push_back(
        replication->leader.empty()
            ? std::string("this proxy does not lead, and no leader is known yet (an election)")
            : "this proxy does not lead: the cluster is shown by the leader at " +
                  replication->leader);
  }
  json j = protocol::cluster_state_json(stats, now);
  if (replication != nullptr) {
    j["self"] = replication->self;
    j["role"] = replication->role;
    j["applied_index"] = replication->applied;
    j["last_index"] = replication->last;
  }
  if (core == nullptr) {
    j["history"] = json::array();
    return j;
  }
  json samples = json::array();
  const History::Sample* prev = nullptr;
  for (const auto& s : history.samples) {
    if (prev != nullptr && s.at > prev->at) {
      double rate = static_cast<double>(s.finished - prev->finished) * 1000.0 /
                    static_cast<double>(s.at - prev->at);
      samples.push_back({{"t", s.at}, {"finished_per_s", rate}, {"queue", s.queue}});
    }
    prev = &s;
  }
  j["history"] = samples;
  return j;
}

// The shape the nodes' JSON replies give (protocol/job_json.h), plus what
// only the proxy records.
json job_json(const JobRecord& rec) {
  protocol::JobReport r;
  r.ticket = rec.spec.ticket;
  r.state = rec.state;
  r.node = rec.node;
  r.attempts = rec.attempts;
  r.priority = rec.spec.priority;
  if (rec.state == protocol::JobState::kQueued) r.not_before_ms = rec.spec.not_before_ms;
  r.has_result = protocol::is_final(rec.state);
  if (r.has_result) r.result = rec.result;
  json j = protocol::job_json(r);
  j["nodes_tried"] = rec.nodes_tried;
  j["origin"] = rec.spec.origin;
  j["submitted_ms"] = rec.spec.submitted_ms;
  j["job"] = rec.spec.describe();
  return j;
}

constexpr const char* kPage = R"page(<!doctype html>
<html><head><meta charset="utf-8"><title>jobcluster</title>
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:20px;margin:0 0 .5em}
.cards{display:flex;gap:1em;margin-bottom:1em}
.card{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;min-width:8em}
.card b{display:block;font-size:22px}
table{border-collapse:collapse;margin-bottom:1em}
td,th{border:1px solid #ddd;padding:4px 10px;text-align:right}th{background:#f4f4f4}
td:first-child,td:nth-child(2),td:nth-child(3){text-align:left}
.up{color:#080}.suspect{color:#c80}.draining{color:#06c}.dead{color:#b00}.left{color:#777}
svg{border:1px solid #ddd;border-radius:6px;background:#fcfcfc}
#events{font-family:monospace;font-size:12px;white-space:pre;color:#444}
</style></head>
<body><h1>jobcluster</h1>
<div class="cards">
<div class="card">nodes up<b id="nodes_up">-</b></div>
<div class="card">queue<b id="queue">-</b></div>
<div class="card">running<b id="running">-</b></div>
<div class="card">held<b id="held">-</b></div>
<div class="card">finished<b id="finished">-</b></div>
<div class="card">re-dispatched<b id="redispatched">-</b></div>
</div>
<div id="replication"></div>
<table><thead><tr><th>node</th><th>address</th><th>state</th><th>slots</th><th>running</th>
<th>queued</th><th>held</th><th>done</th><th>sandbox</th><th>cpus</th><th>API</th><th>last heard</th></tr></thead><tbody id="nodes"></tbody></table>
<div>throughput (jobs/s, last 5 min) <span id="rate"></span></div>
<svg id="chart" width="600" height="90"></svg>
<div>queue length</div>
<svg id="qchart" width="600" height="60"></svg>
<h3>recent jobs</h3>
<table><thead><tr><th>ticket</th><th>state</th><th>verdict</th><th>language</th><th>node</th><th>time</th><th>memory</th></tr></thead><tbody id="jobs"></tbody></table>
<div id="jobs_note"></div>
<div id="token_form" style="display:none">admin token <input id="token" type="password" size="30">
<button id="token_use">show jobs</button></div>
<pre id="job"></pre>
<h3>recent events</h3><div id="events"></div>
<script>
function spark(id, values, color) {
  const svg = document.getElementById(id), w = +svg.getAttribute('width'), h = +svg.getAttribute('height');
  const max = Math.max(1, ...values);
  const pts = values.map((v, i) => `${(i / Math.max(1, values.length - 1)) * w},${h - 4 - (v / max) * (h - 8)}`);
  svg.innerHTML = `<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.join(' ')}"/>` +
    `<text x="4" y="12" font-size="10" fill="#888">max ${max.toFixed(0)}</text>`;
}
// Text from nodes goes into the page as text, never as markup.
function esc(v) {
  return String(v).replace(/[&<>"']/g, c => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'})[c]);
}
// With CLIENT_TOKENS the jobs are an admin's to see: the token typed here
// stays in this tab (sessionStorage) and goes as a Bearer header.
function auth() {
  const t = sessionStorage.getItem('jc_token');
  return t ? {headers: {Authorization: `Bearer ${t}`}} : {};
}
document.getElementById('token_use').onclick = () => {
  sessionStorage.setItem('jc_token', document.getElementById('token').value); refresh();
};
async function openJob(ev, ticket) {
  if (!sessionStorage.getItem('jc_token')) return true;  // the plain link
  ev.preventDefault();
  const r = await fetch(`/api/jobs/${encodeURIComponent(ticket)}`, auth());
  document.getElementById('job').textContent = await r.text();
  return false;
}
async function refresh() {
  try {
    const s = await (await fetch('/api/state', auth())).json();
    const up = s.nodes.filter(n => n.state === 'up' || n.state === 'suspect').length;
    document.getElementById('nodes_up').textContent = `${up}/${s.nodes.length}`;
    for (const k of ['queue_length', 'running', 'held', 'finished', 'redispatched'])
      document.getElementById(k === 'queue_length' ? 'queue' : k).textContent = s[k];
    document.getElementById('nodes').innerHTML = s.nodes.map(n =>
      `<tr><td>${esc(n.id)}</td><td>${esc(n.address)}</td><td class="${esc(n.state)}">${esc(n.state)}</td>` +
      `<td>${n.slots}</td><td>${n.running}</td><td>${n.queued}</td><td>${n.held}</td>` +
      `<td>${n.finished}</td><td>${esc(n.sandbox)}</td><td>${esc(n.cpus)}</td>` +
      `<td>${n.api ? `<a href="http://${esc(n.api)}/">playground</a>` : '-'}</td>` +
      `<td>${((s.time_ms - n.last_heard_ms) / 1000).toFixed(1)} s ago</td></tr>`).join('');
    const rates = s.history.map(x => x.finished_per_s);
    spark('chart', rates, '#2a7');
    spark('qchart', s.history.map(x => x.queue), '#27c');
    document.getElementById('rate').textContent = rates.length ? `now ${rates[rates.length - 1].toFixed(0)}` : '';
    document.getElementById('events').textContent = s.recent_events.slice().reverse().join('\n');
    // Newest first; each opens the job's record.
    const jobs = s.recent_jobs || [];
    document.getElementById('jobs').innerHTML = jobs.slice().reverse().map(j =>
      `<tr><td><a href="/api/jobs/${encodeURIComponent(j.ticket)}" ` +
      `onclick="return openJob(event, '${esc(j.ticket)}')">${esc(j.ticket)}</a></td>` +
      `<td>${esc(j.state)}</td><td>${esc(j.verdict || '-')}</td><td>${j.language_id || '-'}</td>` +
      `<td>${esc(j.node || '-')}</td><td>${j.cpu_ms} ms</td><td>${j.peak_kb} KB</td></tr>`).join('');
    document.getElementById('jobs_note').textContent = s.recent_jobs ? '' :
      'recent jobs are shown to admins: give the token of a name in ADMIN_NAMES';
    document.getElementById('token_form').style.display = s.recent_jobs ? 'none' : 'block';
    // Replicated proxies: who leads, in which term, and how far each is behind.
    const rep = document.getElementById('replication');
    rep.innerHTML = s.proxies && s.proxies.length ?
      `<table><thead><tr><th>proxy</th><th>role</th><th>log index</th><th>lag</th></tr></thead><tbody>` +
      s.proxies.map(p => `<tr><td>${esc(p.address)}${p.address === s.self ? ' (this one)' : ''}</td>` +
        `<td>${esc(p.role)}</td><td>${p.match}</td><td>${p.lag}</td></tr>`).join('') +
      `</tbody></table><div>leader ${esc(s.leader || 'none yet')}, term ${s.term}</div>` : '';
  } catch (e) { document.getElementById('nodes_up').textContent = 'proxy unreachable'; }
}
refresh(); setInterval(refresh, 1000);
</script></body></html>
)page";

}  // namespace

void RoundHistogram::observe(double seconds) {
  for (std::size_t i = 0; i < kBounds.size(); ++i) {
    if (seconds <= kBounds[i]) ++counts[i];
  }
  ++count;
  sum += seconds;
}

HttpReply handle_http(const std::string& method, const std::string& target,
                      const std::string& authorization, const protocol::ClientTokens& tokens,
                      const ProxyCore* core, const RoundHistogram& rounds, const History& history,
                      TimeMs now, const ReplicationInfo* replication) {
  if (method != "GET") return {405, "text/plain; charset=utf-8", "only GET is served\n"};
  std::string path = target.substr(0, target.find('?'));
  if (path == "/metrics") {
    std::string body = core != nullptr ? metrics(*core, rounds, now) : "";
    if (replication != nullptr) body += replication_metrics(*replication);
    return {200, "text/plain; version=0.0.4; charset=utf-8", body};
  }
  if (path == "/api/state") {
    json state = state_json(core, history, now, replication);
    // The recent jobs name tickets and owners: with CLIENT_TOKENS, for admins only.
    bool admin = !tokens.enabled();
    if (!admin && authorization.rfind("Bearer ", 0) == 0) {
      auto name = tokens.authenticate(authorization.substr(7));
      admin = name && tokens.is_admin(*name);
    }
    if (admin && core != nullptr) {
      json jobs = json::array();
      for (const auto& j : core->recent_jobs()) {
        if (!core->result_durable(j.ticket)) continue;  // listed once durable (as above)
        jobs.push_back({{"ticket", j.ticket}, {"state", j.state}, {"verdict", j.verdict},
                        {"language_id", j.language_id}, {"node", j.node}, {"owner", j.owner},
                        {"cpu_ms", j.cpu_ms}, {"peak_kb", j.peak_kb}, {"wall_ms", j.wall_ms},
                        {"finished_ms", j.finished_ms}});
      }
      state["recent_jobs"] = std::move(jobs);
    }
    return {200, "application/json",
            state.dump(-1, ' ', false, json::error_handler_t::replace) + "\n"};
  }
  constexpr std::string_view kJobs = "/api/jobs/";
  if (path.rfind(kJobs, 0) == 0) {
    std::string ticket = path.substr(kJobs.size());
    if (!protocol::is_valid_ticket(ticket)) {
      return {400, "application/json", json{{"error", "malformed ticket"}}.dump() + "\n"};
    }
    std::optional<std::string> name;
    if (tokens.enabled()) {
      constexpr std::string_view kBearer = "Bearer ";
      if (authorization.rfind(kBearer, 0) == 0) {
        name = tokens.authenticate(authorization.substr(kBearer.size()));
      }
      if (!name) {
        HttpReply r{401, "application/json",
                    json{{"error", "send Authorization: Bearer <token> (CLIENT_TOKENS)"}}.dump() +
                        "\n"};
        r.ask_for_token = true;
        return r;
      }
    }
    if (core == nullptr) {
      std::string leader = replication != nullptr ? replication->leader : "";
      return {503, "application/json",
              json{{"error", leader.empty()
                                 ? std::string("this proxy does not lead and no leader is known "
                                               "yet; ask again in a moment")
                                 : "this proxy does not lead; ask the leader at " + leader},
                   {"leader", leader}}
                      .dump() +
                  "\n"};
    }
    auto rec = core->find_job(ticket, now);
    if (rec && !protocol::may_access(tokens, name, rec->spec.owner)) rec.reset();
    if (rec && protocol::is_final(rec->state) && !core->result_durable(ticket)) {
      // Its result is still being written. Shown once durable: a proxy that
      // died first would run the job again, and a read may never show a
      // result that a later one does not (INTERFACE section 4).
      rec->state = protocol::JobState::kRunning;
      rec->result = {};
    }
    if (!rec && core->expired(ticket, now)) {
      return {410, "application/json",
              json{{"error", "ticket '" + ticket + "' expired: its job ended more than RESULT_TTL ago"}}
                      .dump() +
                  "\n"};
    }
    if (!rec) {
      return {404, "application/json",
              json{{"error", "unknown ticket '" + ticket + "'"}}.dump() + "\n"};
    }
    return {200, "application/json",
            job_json(*rec).dump(-1, ' ', false, json::error_handler_t::replace) + "\n"};
  }
  if (path == "/") return {200, "text/html; charset=utf-8", kPage};
  return {404, "text/plain; charset=utf-8",
          "not found: try /, /metrics, /api/state, /api/jobs/<ticket>\n"};
}

}  // namespace jc::proxy
