// The cost of TLS on the node-proxy links: the same end-to-end run and the
// same latency run on a plaintext cluster and on one with CLUSTER_SECRET
// (TLS 1.3 keyed by it), alternated so that both see the same machine.
#include <fmt/format.h>

#include <algorithm>

#include "bench/figures.h"
#include "bench/probe.h"
#include "bench/suite.h"

namespace jc::bench {

namespace {

constexpr std::chrono::seconds kTlsUpTimeout{60};

ClusterSpec spec_for(const BenchContext& ctx, bool tls) {
  ClusterSpec spec = cluster_spec(ctx, 3, 2);
  if (tls) {
    spec.pinned_proxy_env["CLUSTER_SECRET"] = "jc-bench-link-secret";
    spec.pinned_node_env["CLUSTER_SECRET"] = "jc-bench-link-secret";
  } else {
    // Plaintext links: no secret, loopback nodes (protected mode admits them).
    spec.pinned_proxy_env["CLUSTER_SECRET"] = "";
    spec.pinned_node_env["CLUSTER_SECRET"] = "";
  }
  return spec;
}

double median(std::vector<double> v) { return percentile(std::move(v), 0.5); }

}  // namespace

void tls_scenario(const BenchContext& ctx, ScenarioReport& r) {
  const int n = ctx.sizes.e2e_jobs;
  const int rounds = 3;
  auto rate_row = add_measure(
      r,
      fmt::format("TLS links: end to end, {} 0-ms jobs, 3 clients, 3 nodes{}; median of {} "
                  "alternated runs, TLS / plaintext",
                  grouped(n), proxies_text(ctx), rounds),
      ">= 80%");
  auto latency_row = add_measure(
      r,
      fmt::format("TLS links: latency submit to result, {} jobs one at a time{}; median, TLS "
                  "against plaintext",
                  ctx.sizes.latency_jobs, proxies_text(ctx)),
      "-");
  std::vector<double> rates[2];
  std::vector<double> latencies[2];
  for (int round = 0; round < rounds; ++round) {
    for (int tls = 0; tls < 2; ++tls) {
      auto cluster = start_cluster(spec_for(ctx, tls == 1), kTlsUpTimeout);
      E2eRun run = run_e2e(*cluster, {.jobs = n,
                                      .clients = 3,
                                      .job_line = "0",
                                      .window = ctx.window,
                                      .timeout = ctx.sizes.timeout});
      if (r.error = outcome_error(run, n); !r.error.empty()) return;
      rates[tls].push_back(run.jobs_per_s(n));
      if (round == 0) r.usage = cluster_usage(*cluster);
      if (round == 0) {
        LatencyRun lat = run_latency(*cluster, ctx.sizes.latency_jobs, 0, ctx.sizes.timeout);
        if (!lat.error.empty()) {
          r.error = lat.error;
          return;
        }
        latencies[tls] = lat.ms;
      }
    }
  }
  double plain = median(rates[0]), tls = median(rates[1]);
  double ratio = plain > 0 ? tls / plain : 0;
  set_measure(r, rate_row,
              fmt::format("{:.0f}% ({} against {} jobs/s)", ratio * 100, grouped(tls),
                          grouped(plain)),
              ratio >= 0.8);
  double lat_plain = percentile(latencies[0], 0.5), lat_tls = percentile(latencies[1], 0.5);
  set_measure(r, latency_row, fmt::format("{:.2f} ms against {:.2f} ms", lat_tls, lat_plain),
              true);
  r.figures["tls_e2e_rate"] = tls;
  r.figures["plain_e2e_rate"] = plain;
  r.figures["tls_ratio"] = ratio;
  auto runs = [](const std::vector<double>& v) {
    std::string s;
    for (double x : v) s += (s.empty() ? "" : ", ") + grouped(x);
    return s;
  };
  r.details.push_back("plaintext runs (jobs/s): " + runs(rates[0]));
  r.details.push_back("TLS runs (jobs/s): " + runs(rates[1]));
  r.details.push_back("latency plaintext: " + latency_text(latencies[0]));
  r.details.push_back("latency TLS: " + latency_text(latencies[1]));
}

}  // namespace jc::bench
