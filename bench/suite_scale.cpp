// The suite's scale scenarios: a million jobs queued at the proxy, and a
// hundred nodes on one proxy.
#include <fmt/format.h>

#include <algorithm>

#include "bench/figures.h"
#include "bench/probe.h"
#include "bench/suite.h"

namespace jc::bench {

using namespace std::chrono_literals;

namespace {

// "min 280, median 300, max 320 jobs over 100 nodes (0 idle)"
std::string spread_text(const Outcomes& outcomes, int nodes) {
  std::vector<int> counts;
  for (const auto& [node, count] : outcomes.by_node) counts.push_back(count);
  int idle = std::max(0, nodes - static_cast<int>(counts.size()));
  counts.resize(static_cast<std::size_t>(std::max(nodes, static_cast<int>(counts.size()))), 0);
  std::sort(counts.begin(), counts.end());
  return fmt::format("jobs per node: min {}, median {}, max {} over {} nodes ({} ran none)",
                     counts.front(), counts[counts.size() / 2], counts.back(), counts.size(), idle);
}

}  // namespace

// One node with one slot, jobs of an hour: all but two stay queued at the
// proxy. One client pipelines them in batches; the node's ticket rate of the
// first and the last batches says whether a long queue slows submits down.
void queued_scenario(const BenchContext& ctx, ScenarioReport& r) {
  const SuiteSizes& z = ctx.sizes;
  int n = z.queued_jobs;
  auto rss = add_measure(
      r,
      fmt::format("{} 1-hour jobs queued at the proxy (1 node, 1 slot): proxy VmRSS", grouped(n)),
      "< 300 MB");
  auto rate = add_measure(r,
                          fmt::format("{} queued: submit rate of the last {} vs the first {} "
                                      "(batches of {}, 1 client)",
                                      grouped(n), grouped(z.queued_window),
                                      grouped(z.queued_window), grouped(z.queued_batch)),
                          "falls <= 20%");
  auto cluster = start_cluster(cluster_spec(ctx, 1, 1), 30s);
  jc::test::Client client(cluster->node_port(0));
  auto t0 = Clock::now();
  Deadline deadline = t0 + z.timeout;
  Sampler sampler(cluster->node_port(0), t0);
  std::vector<double> batch_s;
  std::vector<std::string> tickets;
  for (int sent = 0; sent < n && r.error.empty(); sent += z.queued_batch) {
    auto count = static_cast<std::size_t>(std::min(z.queued_batch, n - sent));
    tickets.clear();
    auto b0 = Clock::now();
    // The whole batch goes out at once (window = batch), then its tickets.
    std::string error = submit_jobs(client, count, sleep_line(3'600'000), count, deadline, tickets);
    batch_s.push_back(seconds_since(b0));
    if (!error.empty()) r.error = fmt::format("batch {}: {}", batch_s.size(), error);
  }
  double client_s = seconds_since(t0);
  // The node forwards what it stored; the proxy's memory counts once it has all.
  auto all = poll_stats(
      cluster->node_port(0), [&](const ClusterSnapshot& s) { return s.submitted >= n; },
      std::chrono::duration_cast<std::chrono::milliseconds>(left(deadline)));
  double proxy_s = seconds_since(t0);
  std::vector<ClusterSnapshot> samples = sampler.stop();
  if (all) {
    // The sampler may have stopped just short of the last job; the poll's
    // snapshot closes the timeline.
    all->seconds = proxy_s;
    samples.push_back(*all);
  }
  r.usage = cluster_usage(*cluster);
  if (!r.error.empty()) return;
  if (!all) {
    r.error = fmt::format("the proxy did not report {} submitted jobs before the deadline", n);
    return;
  }
  ProcessUsage proxy = r.usage.front();
  set_measure(r, rss, fmt::format("{:.1f} MB (peak {:.1f} MB)", proxy.rss_mb, proxy.peak_mb),
              proxy.rss_mb < 300);
  FirstLast fl = first_last_rates(batch_s, z.queued_batch, z.queued_window);
  set_measure(r, rate,
              fmt::format("{} -> {} tickets/s ({:+.0f}%)", grouped(fl.first), grouped(fl.last),
                          100 * (fl.ratio() - 1)),
              fl.ratio() >= 0.8);
  r.details.push_back(fmt::format(
      "{} tickets in {:.2f} s ({} tickets/s); the proxy had them all after {:.2f} s "
      "(queue={}, running={})",
      grouped(n), client_s, grouped(safe_rate(n, client_s)), proxy_s, all->queue, all->running));
  double first_at = time_submitted_reached(samples, z.queued_window);
  double from_at = time_submitted_reached(samples, n - z.queued_window);
  double last_at = time_submitted_reached(samples, n);
  if (first_at <= 0 || from_at <= 0 || last_at <= from_at) {
    r.details.push_back(
        fmt::format("at the proxy: too few stats samples ({}) to time the first "
                    "and the last {}",
                    samples.size(), grouped(z.queued_window)));
  } else {
    r.details.push_back(fmt::format(
        "at the proxy (from stats every 100 ms): first {} stored at {} jobs/s, last {} at {} "
        "jobs/s",
        grouped(z.queued_window), grouped(safe_rate(z.queued_window, first_at)),
        grouped(z.queued_window), grouped(safe_rate(z.queued_window, last_at - from_at))));
  }
  auto worst = std::max_element(batch_s.begin(), batch_s.end());
  r.details.push_back(fmt::format("slowest batch: {:.3f} s (batch {} of {})", *worst,
                                  worst - batch_s.begin() + 1, batch_s.size()));
  r.details.push_back(fmt::format("data on disk: proxy {:.0f} MB, node {:.0f} MB",
                                  dir_size_mb(cluster->dir() + "/proxy"),
                                  dir_size_mb(cluster->dir() + "/" + cluster->node_id(0))));
}

// Many nodes of one slot each on one proxy: what a node connection costs the
// proxy, and whether throughput and balance hold with that many peers on
// two cores. MAX_NUM_NODES (default 64) is raised for it.
void many_nodes_scenario(const BenchContext& ctx, ScenarioReport& r) {
  const SuiteSizes& z = ctx.sizes;
  int k = z.many_nodes;
  auto mem = add_measure(r, fmt::format("{} nodes of 1 slot: proxy memory per node connection", k),
                         "stated");
  auto thr = add_measure(
      r, fmt::format("{} nodes: end to end, {} 0-ms jobs, 3 clients", k, grouped(z.many_e2e_jobs)),
      ">= 20,000 jobs/s");
  auto bal = add_measure(r,
                         fmt::format("{} nodes: balance, {} {}-ms jobs, 3 clients, saturating", k,
                                     grouped(z.many_balance_jobs), z.many_balance_ms),
                         "max-min running <= 1 in >= 99% of samples");
  ClusterSpec spec = cluster_spec(ctx, 0, 1);
  // Fresh load reports for the balance samples; 100 ms (not 50) because a
  // hundred nodes share two cores with everything else.
  spec.node_env = {{"INFO_PERIOD", "100"}};
  spec.pinned_proxy_env["MAX_NUM_NODES"] = std::to_string(k + 16);
  auto cluster = start_cluster(spec, 30s);
  double before_mb = usage_of("proxy", cluster->proxy().pid()).rss_mb;
  auto s0 = Clock::now();
  for (int i = 0; i < k; ++i) cluster->add_node();
  auto up = poll_stats(
      cluster->node_port(0), [&](const ClusterSnapshot& s) { return s.nodes_up == k; }, 120s);
  if (!up) {
    r.usage = cluster_usage(*cluster);
    r.error = fmt::format("{} nodes were not all up within 120 s", k);
    return;
  }
  double after_mb = usage_of("proxy", cluster->proxy().pid()).rss_mb;
  double per_kb = (after_mb - before_mb) * 1024 / k;
  set_measure(r, mem,
              fmt::format("{:.0f} KB (proxy VmRSS {:.1f} MB alone, {:.1f} MB with {} nodes)",
                          per_kb, before_mb, after_mb, k),
              true);
  r.details.push_back(fmt::format("{} nodes started and joined in {:.1f} s", k, seconds_since(s0)));

  E2eRun e2e = run_e2e(*cluster, {.jobs = z.many_e2e_jobs,
                                  .clients = 3,
                                  .job_line = sleep_line(0),
                                  .window = ctx.window,
                                  .timeout = z.timeout});
  if (r.error = outcome_error(e2e, z.many_e2e_jobs); !r.error.empty()) {
    r.usage = cluster_usage(*cluster);
    return;
  }
  double rate = e2e.jobs_per_s(z.many_e2e_jobs);
  set_measure(r, thr, grouped(rate) + " jobs/s", rate >= 20'000);
  r.details.push_back("end to end: " + spread_text(e2e.outcomes, k));

  E2eRun run = run_e2e(*cluster, {.jobs = z.many_balance_jobs,
                                  .clients = 3,
                                  .job_line = sleep_line(z.many_balance_ms),
                                  .window = ctx.window,
                                  .timeout = z.timeout,
                                  .sample = true});
  r.usage = cluster_usage(*cluster);
  if (r.error = outcome_error(run, z.many_balance_jobs); !r.error.empty()) return;
  Balance b = balance_of(run.samples);
  r.details.push_back(fmt::format(
      "balance run: {} samples under saturating load; max-min running <= 1 in {:.1f}% (with one "
      "slot per node this only fails if a node reports more than it has), every slot busy in "
      "{:.1f}%, worst spread {}",
      b.samples, 100 * b.balanced_fraction(), 100 * b.busy_fraction(), b.worst_spread));
  r.details.push_back("balance run: " + spread_text(run.outcomes, k));
  if (b.samples < 10) {
    r.error = fmt::format("only {} samples under saturating load; too few to judge", b.samples);
    return;
  }
  set_measure(r, bal,
              fmt::format("{:.1f}% ({}/{}); all slots busy in {:.1f}%", 100 * b.balanced_fraction(),
                          b.balanced, b.samples, 100 * b.busy_fraction()),
              b.balanced_fraction() >= 0.99);
}

}  // namespace jc::bench
