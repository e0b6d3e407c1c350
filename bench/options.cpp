#include "bench/options.h"

#include <algorithm>
#include <charconv>
#include <functional>
#include <sstream>

namespace jc::bench {

namespace {

bool to_int(const std::string& s, int& out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size() && out >= 0;
}

bool split_env(const std::string& kv, std::string& key, std::string& value) {
  auto eq = kv.find('=');
  if (eq == std::string::npos || eq == 0) return false;
  key = kv.substr(0, eq);
  value = kv.substr(eq + 1);
  return true;
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

}  // namespace

const std::vector<std::string>& suite_names() {
  static const std::vector<std::string> kNames{"submit",   "e2e",       "chart",
                                               "latency",  "latency10", "balance",
                                               "run-true", "queued",    "nodes100",
                                               "tls",      "submit-3p", "e2e-3p",
                                               "latency-3p", "api"};
  return kNames;
}

const std::vector<std::string>& on_request_names() {
  static const std::vector<std::string> kNames{"failover", "tls-3p", "soak", "api-submit",
                                               "burst"};
  return kNames;
}

ParseResult parse_options(const std::vector<std::string>& args) {
  ParseResult r;
  Options& o = r.options;
  auto fail = [&](std::string why) {
    r.error = std::move(why);
    return r;
  };
  // Options that take an integer, and where it goes.
  const std::map<std::string, int*> ints{{"--jobs", &o.jobs},
                                         {"--nodes", &o.nodes},
                                         {"--slots", &o.slots},
                                         {"--ms", &o.ms},
                                         {"--clients", &o.clients},
                                         {"--prefetch", &o.prefetch},
                                         {"--dispatch-period", &o.dispatch_period},
                                         {"--soak-seconds", &o.soak_seconds},
                                         {"--soak-rate", &o.soak_rate},
                                         {"--soak-ttl", &o.soak_ttl}};
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& k = args[i];
    if (k == "--help" || k == "-h") {
      o.help = true;
      continue;
    }
    if (k == "--quick") {
      o.quick = o.suite = true;
      continue;
    }
    if (k == "--compare") {
      o.compare = true;
      continue;
    }
    static const std::vector<std::string> kWithValue{
        "--window",  "--kind",      "--scenario", "--suite", "--only",    "--timeline",
        "--out-dir", "--proxy-env", "--node-env", "--env",   "--soak-csv"};
    if (!ints.count(k) && std::find(kWithValue.begin(), kWithValue.end(), k) == kWithValue.end()) {
      return fail("unknown option " + k + "; see --help");
    }
    if (i + 1 >= args.size()) return fail(k + " needs a value; see --help");
    const std::string& v = args[++i];
    if (auto it = ints.find(k); it != ints.end()) {
      if (!to_int(v, *it->second))
        return fail(k + " expects a non-negative integer, not '" + v + "'");
    } else if (k == "--window") {
      int w = 0;
      if (!to_int(v, w) || w < 1 || w > 20000) return fail("--window expects 1 to 20000");
      o.window = static_cast<std::size_t>(w);
    } else if (k == "--kind") {
      if (v != "sleep" && v != "run") return fail("--kind expects sleep or run");
      o.run_jobs = v == "run";
    } else if (k == "--scenario") {
      if (v != "e2e" && v != "latency") return fail("--scenario expects e2e or latency");
      o.scenario = v;
    } else if (k == "--suite") {
      if (v != "full") return fail("--suite expects full (or use --quick)");
      o.suite = true;
    } else if (k == "--only") {
      o.only = split_list(v);
      o.suite = true;
      for (const auto& name : o.only) {
        const auto& names = suite_names();
        const auto& extra = on_request_names();
        if (std::find(names.begin(), names.end(), name) == names.end() &&
            std::find(extra.begin(), extra.end(), name) == extra.end()) {
          return fail("--only: unknown measure '" + name + "'; see --help for the names");
        }
      }
    } else if (k == "--timeline") {
      o.timeline = v;
    } else if (k == "--out-dir") {
      o.out_dir = v;
    } else if (k == "--soak-csv") {
      o.soak_csv = v;
    } else if (k == "--proxy-env" || k == "--node-env" || k == "--env") {
      std::string key, value;
      if (!split_env(v, key, value)) return fail(k + " expects KEY=VALUE, not '" + v + "'");
      if (k != "--node-env") o.proxy_env[key] = value;
      if (k != "--proxy-env") o.node_env[key] = value;
    }
  }
  if (o.clients < 1) return fail("--clients must be at least 1");
  if (o.nodes < 1) return fail("--nodes must be at least 1");
  // Under 5 s, the base of the growth (20% of the run) would be the sample
  // taken before the first job.
  if (o.soak_seconds >= 0 && o.soak_seconds < 5) return fail("--soak-seconds must be at least 5");
  if (o.soak_rate < 1) return fail("--soak-rate must be at least 1");
  return r;
}

std::string usage_text() {
  return R"(jc_bench: starts a local cluster from the built binaries (build/bin) and
drives it as clients do, over TCP on loopback.

Single scenario (the default):
  jc_bench [--scenario e2e|latency] [--jobs N] [--nodes K] [--slots S] [--ms MS]
           [--clients C] [--kind sleep|run] [--prefetch P] [--dispatch-period MS]
           [--timeline FILE]
  e2e: C clients, client i on node i % K, each pipelining its share of N jobs
  (sleep jobs of MS ms, or `run true` with --kind run, then compared with
  `xargs -P 2` in the same run), then waiting for every result. --timeline
  writes a CSV row every 100 ms (seconds, submitted, finished, queue, running
  per node). latency: one job at a time, submit to result, p50/p90/p99.

Suite (every measure of the issue's table, each on a fresh cluster):
  jc_bench --suite full | --quick  [--only NAME[,NAME...]] [--compare] [--out-dir DIR]
  --quick uses small sizes (under a minute). Names, in order:
    submit     durable submits, one client pipelining into one node of 3
    e2e        0-ms jobs from 3 clients through 3 nodes until every result is visible
    chart      2-ms jobs, 3 clients, 3 nodes: the timeline scripts/bench-chart draws
    latency    one job at a time on an idle cluster, default DISPATCH_PERIOD
    latency10  the same with DISPATCH_PERIOD=10
    balance    20-ms jobs under saturating load, running per node every 100 ms
    run-true   `run true` jobs through 3 nodes against `xargs -P 2 -n 1 true`
               (and a client's `status` on node 1 every 5 ms meanwhile),
               and pinned slots (the default) against SLOT_CPUS=off
    queued     1,000,000 1-hour jobs queued at the proxy: its memory, submit rate
    nodes100   100 nodes of 1 slot: memory per node connection, throughput, balance
    tls        end to end and latency with TLS links (CLUSTER_SECRET) against
               plaintext, alternated in one run
    submit-3p, e2e-3p, latency-3p
               submit, e2e and latency with three replicated proxies
    api        the judge0-compatible API beside the line protocol: pipelined POST
               /submissions over keep-alive vs `run` submits, Python print(1) end
               to end (wait=true) vs `run python3`, a C++ hello compiled per
               submission, and the latency of wait=true
  Only when named (--only):
    failover   kill -9 of the leader of three proxies, 10 times under load: the
               time until a job submitted after the kill has its result
    tls-3p     tls with three replicated proxies (their own links TLS too)
    api-submit api's first measure alone: POST /submissions against `run` submits
    burst      e2e's jobs all at once (every ticket in about a second, then the
               results) against the same jobs as a steady stream (each client
               keeps 2 chunks of 1,000 in the cluster), each on a fresh cluster
  Timelines go to DIR (default build/bench): e2e-timeline.csv, e2e-2ms-timeline.csv,
  balance-timeline.csv.
  --compare: also measures beanstalkd and redis (each when on PATH) in the same
  run: beanstalkd's durable puts and put-reserve-delete end to end; redis with
  appendfsync always: LPUSH, LPUSH with BLMOVE + LREM workers end to end, idle
  latency and memory. Prints jobcluster / beanstalkd and jobcluster / redis.
  Alone (without --suite/--quick/--only) it runs the measures submit, e2e and
  latency.

Soak (only when named: jc_bench --only soak, alone or with other names):
  jc_bench --only soak [--soak-seconds N] [--soak-rate R] [--soak-ttl MS]
           [--soak-csv FILE] [--nodes K]
  A proxy and K nodes (default 3) of 2 slots with RESULT_TTL=MS (default 60000)
  in the environment of every process; one client per node (at most 8) offers
  0-ms jobs at R jobs/s in all (default 5000), pipelined in 100-ms ticks, for
  N s (default 600; 60 with --quick), and reads back the result of every
  100th job with `r<ticket>`. Every second it writes a CSV row to FILE
  (default DIR/soak.csv): seconds,submitted,finished, then for the proxy and
  each node rss_<name>_kb (VmRSS) and disk_<name>_bytes (files under its
  DATA_DIR). It ends with each process's RSS and data dir at 2, 5 and 10
  minutes (20%, 50% and 100% of a run under 10 minutes) and the growth from
  the first of these to the end; target: neither grows by more than 10%.
  scripts/bench-chart --soak FILE PNG draws the CSV.

Both:
  --proxy-env K=V, --node-env K=V, --env K=V (both): environment of the processes
  (repeatable; a scenario's own setting, e.g. DISPATCH_PERIOD=10, wins)
  --window N: commands a client pipelines ahead of replies (default 10000, at most 20000)

Exit code: 0 when every scenario ran (targets met or not: see the table), 1 when
one failed (it says why; the others still run), 2 for a bad command line.
)";
}

}  // namespace jc::bench
