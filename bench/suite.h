// The suite: every measure of the performance issue's table, each on a fresh
// cluster, filling a ScenarioReport (measures against targets, details,
// process usage). A scenario that fails says why in its report; the others
// still run.
#pragma once

#include <chrono>
#include <string>

#include "bench/report.h"
#include "bench/workloads.h"

namespace jc::bench {

// How long a scenario's cluster may take to come up.
inline constexpr std::chrono::seconds kUpTimeout{30};

struct SuiteSizes {
  int submit_jobs = 100'000;
  int e2e_jobs = 100'000;
  int chart_jobs = 20'000;
  int chart_ms = 2;
  int latency_jobs = 200;
  int balance_jobs = 3'000;
  int balance_ms = 20;
  int run_jobs = 1'000;
  int queued_jobs = 1'000'000;
  int queued_batch = 20'000;    // submits pipelined per batch
  int queued_window = 100'000;  // rate of the first and of the last this many
  int many_nodes = 100;
  int many_e2e_jobs = 100'000;  // as the 3-node end-to-end measure
  // With one slot per node, a node's load is 0 or 1: saturating needs
  // several jobs per node at once, and a 99% figure needs ~100 samples
  // (10 s of 100-ms jobs on 100 slots).
  int many_balance_jobs = 10'000;
  int many_balance_ms = 100;
  // Deadline of one scenario's client work (a hung cluster fails the
  // scenario instead of the whole run).
  std::chrono::seconds timeout{600};
};
SuiteSizes full_sizes();
SuiteSizes quick_sizes();

// The soak, run only when named (--only soak): a steady load for a long
// time with RESULT_TTL set, to see whether memory and data directories level
// off once results start to expire.
struct SoakSpec {
  int seconds = 600;
  int rate = 5000;  // 0-ms jobs offered per second, all clients together
  int result_ttl_ms = 60000;
  int nodes = 3;
  std::string csv;  // default: soak.csv in the output directory
};

struct BenchContext {
  SuiteSizes sizes;
  SoakSpec soak;
  EnvMap proxy_env, node_env;  // the user's --proxy-env / --node-env
  std::size_t window = 10000;
  std::string out_dir;  // where timelines go
  int proxies = 1;      // 3: replicated proxies (the "-3p" measures)
};

// Runs the named measure (one of suite_names()) and returns its report; an
// exception from it (a process that did not start) becomes the report's error.
ScenarioReport run_measure(const std::string& name, const BenchContext& ctx);

// The scenarios, filling `r` (its measures first, with their targets, so a
// failure still shows which rows it leaves unmeasured).
void submit_scenario(const BenchContext& ctx, ScenarioReport& r);
void e2e_scenario(const BenchContext& ctx, ScenarioReport& r);
// A burst (every job submitted at once, as e2e) against the same jobs as a
// steady stream, each on a fresh cluster: issue 21's 0.8 x.
void burst_scenario(const BenchContext& ctx, ScenarioReport& r);
void chart_scenario(const BenchContext& ctx, ScenarioReport& r);
void latency_scenario(const BenchContext& ctx, ScenarioReport& r, int dispatch_period);
void balance_scenario(const BenchContext& ctx, ScenarioReport& r);
void run_true_scenario(const BenchContext& ctx, ScenarioReport& r);
void queued_scenario(const BenchContext& ctx, ScenarioReport& r);
void many_nodes_scenario(const BenchContext& ctx, ScenarioReport& r);
void tls_scenario(const BenchContext& ctx, ScenarioReport& r);
void soak_scenario(const BenchContext& ctx, ScenarioReport& r);
// The judge0-compatible API beside the line protocol (suite_api.cpp).
void api_scenario(const BenchContext& ctx, ScenarioReport& r);
// Its first measure alone: durable POST /submissions against `run` submits.
void api_submit_scenario(const BenchContext& ctx, ScenarioReport& r);
// Replicated proxies: kill -9 of the leader, ten times; from the kill to a
// job submitted after it finished and visible through two nodes.
void failover_scenario(const BenchContext& ctx, ScenarioReport& r);
// ", 3 replicated proxies" or "".
std::string proxies_text(const BenchContext& ctx);

// Helpers the scenario files share.
std::size_t add_measure(ScenarioReport& r, std::string name, std::string target);
void set_measure(ScenarioReport& r, std::size_t index, std::string measured, bool met);
ClusterSpec cluster_spec(const BenchContext& ctx, int nodes, int slots);
// "" when every one of `jobs` ended DONE, else what went wrong.
std::string outcome_error(const E2eRun& run, int jobs);
// "p50=1.20 ms p90=... p99=... max=... (n samples)"
std::string latency_text(const std::vector<double>& ms);
// Writes a timeline CSV into ctx.out_dir; returns a detail line about it.
std::string save_timeline(const BenchContext& ctx, const std::string& file,
                          const std::vector<ClusterSnapshot>& samples);

}  // namespace jc::bench
