// jc_bench: starts a local cluster from the built binaries and drives it as
// clients do over TCP; `jc_bench --help` lists the scenarios and options.
//
// Without suite options it runs one scenario (e2e or latency) with the
// sizes given. With --suite full or --quick it runs every measure of the
// performance issue's table in sequence, each on a fresh cluster, and ends
// with one markdown table (measure | target | measured | met?) and the
// details of each scenario; --compare adds beanstalkd measured in the same
// run. --only soak runs the soak, which no suite runs unless named (it
// takes ten minutes). Pure parts live in replies/figures/report/soak/options;
// I/O in probe/pipeline/workloads/suite/beanstalk.
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "bench/beanstalk.h"
#include "bench/redis.h"
#include "bench/figures.h"
#include "bench/options.h"
#include "bench/probe.h"
#include "bench/report.h"
#include "bench/suite.h"
#include "bench/workloads.h"

using namespace jc::bench;
using namespace std::chrono_literals;

namespace {

void say(const std::string& text) {
  std::fputs(text.c_str(), stdout);
  std::fflush(stdout);
}

ClusterSpec single_spec(const Options& o) {
  ClusterSpec spec;
  spec.nodes = o.nodes;
  spec.slots = o.slots;
  // Fresh load reports, so the balance samples see current running counts.
  spec.node_env = {{"INFO_PERIOD", "50"}};
  spec.user_proxy_env = o.proxy_env;
  spec.user_node_env = o.node_env;
  if (o.prefetch >= 0) spec.pinned_proxy_env["DISPATCH_PREFETCH"] = std::to_string(o.prefetch);
  if (o.dispatch_period > 0) {
    spec.pinned_proxy_env["DISPATCH_PERIOD"] = std::to_string(o.dispatch_period);
  }
  return spec;
}

void print_usage(const std::vector<ProcessUsage>& usage) {
  for (const auto& l : usage_lines(usage)) say(l + "\n");
}

int single_latency(jc::test::Cluster& cluster, const Options& o) {
  LatencyRun run = run_latency(cluster, o.jobs, o.ms, 600s);
  if (!run.error.empty()) {
    say("ERROR: " + run.error + "\n");
    return 1;
  }
  say(fmt::format(
      "latency submit-to-result over {} jobs of {} ms (DISPATCH_PERIOD={}): {}\n", o.jobs, o.ms,
      o.dispatch_period > 0 ? std::to_string(o.dispatch_period) : "default", latency_text(run.ms)));
  print_usage(cluster_usage(cluster));
  return 0;
}

// The local limit of starting processes, for --kind run.
void print_xargs_reference(int jobs, double jobcluster_rate) {
  XargsRun x = run_xargs(jobs, 600s);
  double rate = safe_rate(jobs, x.seconds);
  say(fmt::format("reference `{}`: {:.3f} s ({} processes/s){}; jobcluster/xargs = {:.2f}\n",
                  x.command, x.seconds, grouped(rate), x.error.empty() ? "" : " (failed)",
                  rate > 0 ? jobcluster_rate / rate : 0));
}

int single_e2e(jc::test::Cluster& cluster, const Options& o) {
  E2eRun run = run_e2e(cluster, {.jobs = o.jobs,
                                 .clients = o.clients,
                                 .job_line = o.run_jobs ? "run true" : sleep_line(o.ms),
                                 .window = o.window,
                                 .timeout = 600s,
                                 .sample = true});
  say(fmt::format("jobs={} kind={} ms={} nodes={} slots={} clients={}\n", o.jobs,
                  o.run_jobs ? "run true" : "sleep", o.ms, o.nodes, o.slots, o.clients));
  say(fmt::format("submit: {:.3f} s ({} tickets/s, each after a synced write)\n", run.submit_s,
                  grouped(safe_rate(o.jobs, run.submit_s))));
  say(fmt::format("all results visible after {:.3f} s: {} jobs/s end to end\n", run.total_s,
                  grouped(run.jobs_per_s(o.jobs))));
  say("jobs per node: " + outcome_text(run.outcomes) + "\n");
  Balance b = balance_of(run.samples);
  if (b.samples > 0) {
    say(fmt::format(
        "balance: max-min running <= 1 in {}/{} samples under saturating load ({:.1f}%)\n",
        b.balanced, b.samples, 100 * b.balanced_fraction()));
  }
  if (!o.timeline.empty()) {
    std::string error = write_file(o.timeline, timeline_csv(run.samples));
    say(error.empty() ? fmt::format("timeline: {} ({} samples)\n", o.timeline, run.samples.size())
                      : "ERROR: " + error + "\n");
  }
  print_usage(cluster_usage(cluster));
  if (o.run_jobs) print_xargs_reference(o.jobs, run.jobs_per_s(o.jobs));
  if (std::string error = outcome_error(run, o.jobs); !error.empty()) {
    say("ERROR: " + error + "\n");
    return 1;
  }
  return 0;
}

int run_single(const Options& o) {
  try {
    auto cluster = start_cluster(single_spec(o), 30s);
    return o.scenario == "latency" ? single_latency(*cluster, o) : single_e2e(*cluster, o);
  } catch (const std::exception& e) {
    say(std::string("ERROR: ") + e.what() + "\n");
    return 1;
  }
}

std::vector<std::string> selected(const Options& o) {
  std::vector<std::string> names;
  for (const auto& n : suite_names()) {
    if (o.only.empty() || std::find(o.only.begin(), o.only.end(), n) != o.only.end()) {
      names.push_back(n);
    }
  }
  for (const auto& n : on_request_names()) {
    if (std::find(o.only.begin(), o.only.end(), n) != o.only.end()) names.push_back(n);
  }
  return names;
}

SoakSpec soak_spec(const Options& o, const std::string& out_dir) {
  return {.seconds = o.soak_seconds >= 0 ? o.soak_seconds : (o.quick ? 60 : 600),
          .rate = o.soak_rate,
          .result_ttl_ms = o.soak_ttl,
          .nodes = o.nodes,
          .csv = !o.soak_csv.empty() ? o.soak_csv : out_dir + "/soak.csv"};
}

bool ran(const std::vector<ScenarioReport>& reports, const std::string& name) {
  return std::any_of(reports.begin(), reports.end(),
                     [&](const ScenarioReport& r) { return r.name == name && r.error.empty(); });
}

int run_suite(const Options& o) {
  BenchContext ctx;
  ctx.sizes = o.quick ? quick_sizes() : full_sizes();
  ctx.proxy_env = o.proxy_env;
  ctx.node_env = o.node_env;
  ctx.window = o.window;
  ctx.out_dir = !o.out_dir.empty()
                    ? o.out_dir
                    : (std::filesystem::path(JC_BIN_DIR).parent_path() / "bench").string();
  ctx.soak = soak_spec(o, ctx.out_dir);
  auto names = selected(o);
  say(fmt::format("jc_bench suite ({} sizes): {}; binaries in {}\n", o.quick ? "quick" : "full",
                  fmt::join(names, ", "), JC_BIN_DIR));
  int failed = 0;
  std::vector<ScenarioReport> reports;
  for (const auto& name : names) {
    say(fmt::format("running {} ...\n", name));
    reports.push_back(run_measure(name, ctx));
    const auto& r = reports.back();
    say(r.error.empty() ? fmt::format("  done in {:.1f} s\n", r.seconds)
                        : fmt::format("  FAILED after {:.1f} s: {}\n", r.seconds, r.error));
    failed += r.error.empty() ? 0 : 1;
  }
  std::optional<BeanstalkRun> beanstalk;
  if (o.compare) {
    say("running beanstalkd comparison ...\n");
    beanstalk = run_beanstalk({.puts = ctx.sizes.submit_jobs,
                               .jobs = ctx.sizes.e2e_jobs,
                               .window = ctx.window,
                               .timeout = ctx.sizes.timeout});
    if (beanstalk->skipped) {
      say("  comparison skipped: " + beanstalk->why_skipped + "\n");
    } else if (!beanstalk->report.error.empty()) {
      say("  FAILED: " + beanstalk->report.error + "\n");
      ++failed;
    } else {
      say(fmt::format("  done in {:.1f} s\n", beanstalk->report.seconds));
    }
  }

  std::optional<RedisRun> redis;
  if (o.compare) {
    say("running redis comparison ...\n");
    redis = run_redis({.pushes = ctx.sizes.submit_jobs,
                       .jobs = ctx.sizes.e2e_jobs,
                       .latency_jobs = ctx.sizes.latency_jobs,
                       .window = ctx.window,
                       .timeout = ctx.sizes.timeout});
    if (redis->skipped) {
      say("  comparison skipped: " + redis->why_skipped + "\n");
    } else if (!redis->report.error.empty()) {
      say("  FAILED: " + redis->report.error + "\n");
      ++failed;
    } else {
      say(fmt::format("  done in {:.1f} s\n", redis->report.seconds));
    }
  }

  say("\n## Results\n\n" + summary_table(reports));
  if (beanstalk && !beanstalk->skipped) {
    std::map<std::string, double> ours;
    for (const auto& r : reports) ours.insert(r.figures.begin(), r.figures.end());
    say("\n## jobcluster / beanstalkd (same machine, same run)\n\n" +
        comparison_table(ours, beanstalk->report.figures, ctx.sizes.submit_jobs,
                         ctx.sizes.e2e_jobs));
  } else if (beanstalk) {
    say("\nbeanstalkd comparison skipped: " + beanstalk->why_skipped + "\n");
  }
  if (redis && !redis->skipped) {
    std::map<std::string, double> ours;
    for (const auto& r : reports) ours.insert(r.figures.begin(), r.figures.end());
    say("\n## jobcluster / redis (same machine, same run)\n\n" +
        redis_table(ours, redis->report.figures, ctx.sizes.submit_jobs, ctx.sizes.e2e_jobs));
  } else if (redis) {
    say("\nredis comparison skipped: " + redis->why_skipped + "\n");
  }
  say("\n## Details\n\n");
  for (const auto& r : reports) say(scenario_details(r));
  if (beanstalk && !beanstalk->skipped) say(scenario_details(beanstalk->report));
  if (redis && !redis->skipped) say(scenario_details(redis->report));
  if (ran(reports, "chart")) {
    say(fmt::format(
        "\nchart: scripts/bench-chart {}/e2e-2ms-timeline.csv docs/benchmarks-e2e.png\n",
        ctx.out_dir));
  }
  if (ran(reports, "soak")) {
    say(fmt::format("\nsoak chart: scripts/bench-chart --soak {} docs/benchmarks-soak.png\n",
                    ctx.soak.csv));
  }
  if (failed > 0) say(fmt::format("{} scenario(s) failed; see above\n", failed));
  return failed > 0 ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  ParseResult parsed = parse_options(std::vector<std::string>(argv + 1, argv + argc));
  if (!parsed.error.empty()) {
    std::fprintf(stderr, "jc_bench: %s\n", parsed.error.c_str());
    return 2;
  }
  Options o = parsed.options;
  if (o.help) {
    say(usage_text());
    return 0;
  }
  // --compare alone: the two measures it compares.
  if (o.compare && !o.suite) {
    o.suite = true;
    o.only = {"submit", "e2e", "latency"};
  }
  return o.suite ? run_suite(o) : run_single(o);
}
