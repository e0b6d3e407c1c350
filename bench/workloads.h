// The client workloads jc_bench drives against a running cluster: pipelined
// submits, end to end (submit then wait for every result, C clients), one
// job at a time for latency, and the start of a cluster with the bench's
// environment. Each returns its figures, or an error saying why it stopped.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bench/pipeline.h"
#include "bench/replies.h"
#include "tests/support/cluster.h"

namespace jc::bench {

using EnvMap = std::map<std::string, std::string>;

// A cluster for one scenario: the scenario's environment, then the user's
// --proxy-env/--node-env on top; `pinned` entries (what the scenario is
// about, e.g. DISPATCH_PERIOD=10) win over both.
struct ClusterSpec {
  int proxies = 1;  // 3: replicated (PROXY_PEERS)
  int nodes = 3;
  int slots = 2;
  EnvMap proxy_env, node_env;
  EnvMap user_proxy_env, user_node_env;
  EnvMap pinned_proxy_env, pinned_node_env;
};
// Starts it and waits (with a deadline) until every node is up; throws
// std::runtime_error saying what did not start.
std::unique_ptr<jc::test::Cluster> start_cluster(const ClusterSpec& spec,
                                                 std::chrono::milliseconds up_timeout);

struct E2eSpec {
  int jobs = 2000;
  int clients = 1;  // client i talks to node i % nodes
  std::string job_line = "0";
  std::size_t window = 10000;
  std::chrono::seconds timeout{600};
  bool sample = false;  // take `stats` every 100 ms during the run
  // 0: each client submits all its jobs, then waits for them (a burst).
  // Otherwise a steady stream: each client submits `chunk` jobs, and keeps
  // the next chunk in the cluster while it waits for the results of one.
  std::size_t chunk = 0;
};

struct E2eRun {
  double submit_s = 0;  // first submit to the last ticket of the slowest client
  double total_s = 0;   // first submit to the last result visible
  Outcomes outcomes;
  std::vector<ClusterSnapshot> samples;
  std::string error;
  double jobs_per_s(int jobs) const;
};
E2eRun run_e2e(jc::test::Cluster& cluster, const E2eSpec& spec);

// Submits through node 0 only, one client pipelining; tickets per second.
struct SubmitRun {
  double seconds = 0;
  std::string error;
};
SubmitRun run_submits(jc::test::Cluster& cluster, int jobs, const std::string& job_line,
                      std::size_t window, std::chrono::seconds timeout);

// One job at a time through node 0: submit, then `wait`, timed end to end.
struct LatencyRun {
  std::vector<double> ms;
  std::string error;
};
LatencyRun run_latency(jc::test::Cluster& cluster, int jobs, int job_ms,
                       std::chrono::seconds timeout);

// `seq N | xargs -P 2 -n 1 COMMAND`: the machine's own rate of starting
// processes two at a time (COMMAND `true`), or of starting them in
// bubblewrap with the isolation run jobs get (kBwrapTrue): the references
// for `run true` jobs.
struct XargsRun {
  std::string command;
  double seconds = 0;
  std::string error;
};
XargsRun run_xargs(int jobs, std::chrono::seconds timeout, const std::string& command = "true");
// `true` in a bubblewrap sandbox like a run job's: new mount, PID, IPC, UTS
// and network namespaces, a read-only /usr with the merged-/usr links, the
// loader's cache and /etc/alternatives, its own /proc and /dev, tmpfs /box
// and /tmp, and `sh -c` as run jobs use it.
extern const char* const kBwrapTrue;

// The line of a sleep job of `ms` milliseconds.
std::string sleep_line(int ms);
// "n1=1683 n2=1687 n3=1630" and the states when not all DONE.
std::string outcome_text(const Outcomes& outcomes);

}  // namespace jc::bench
