// Replicated proxies: how long service stops when the leader dies.
#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

#include "bench/figures.h"
#include "bench/probe.h"
#include "bench/suite.h"

namespace jc::bench {

using namespace std::chrono_literals;

void failover_scenario(const BenchContext& ctx, ScenarioReport& r) {
  constexpr int kRounds = 10;
  auto m = add_measure(
      r,
      fmt::format("failover: kill -9 of the leader of 3 proxies, {} times, under load; from the "
                  "kill to a job submitted after it finished and visible through 2 nodes: "
                  "median / max",
                  kRounds),
      "< 2 s (max)");
  BenchContext three = ctx;
  three.proxies = 3;
  ClusterSpec spec = cluster_spec(three, 3, 2);
  auto cluster = start_cluster(spec, 30s);
  jc::test::Client a(cluster->node_port(0)), b(cluster->node_port(1)), load(cluster->node_port(2));
  std::vector<double> ms;
  std::vector<std::string> tickets;
  for (int round = 0; round < kRounds; ++round) {
    int leader = cluster->leader(15s);
    if (leader < 0) throw std::runtime_error(fmt::format("round {}: no leader", round + 1));
    // Load in flight at the kill: jobs queued and running.
    auto batch = jc::test::submit_many(load, 200, 5);
    tickets.insert(tickets.end(), batch.begin(), batch.end());
    cluster->kill_proxy(static_cast<std::size_t>(leader));
    auto killed = Clock::now();
    std::string t = jc::test::submit(a, 0);
    if (t.empty()) throw std::runtime_error("no ticket after the kill");
    if (jc::test::wait_result(a, t, 30s).empty() || jc::test::wait_result(b, t, 30s).empty()) {
      throw std::runtime_error(fmt::format("round {}: the job after the kill never finished",
                                           round + 1));
    }
    ms.push_back(seconds_since(killed) * 1000);
    tickets.push_back(t);
    cluster->start_proxy(static_cast<std::size_t>(leader));
    // Back in: it applied what the others did.
    bool caught_up = jc::test::eventually(
        [&] {
          long long x = cluster->proxy_applied(0);
          return x > 0 && cluster->proxy_applied(1) == x && cluster->proxy_applied(2) == x;
        },
        30s, 50ms);
    if (!caught_up) throw std::runtime_error("the restarted proxy did not catch up");
  }
  // Nothing lost: every ticket, those in flight at the kills included, has its result.
  for (const auto& t : tickets) {
    if (jc::test::wait_result(b, t, 60s).empty()) {
      throw std::runtime_error("no result for " + t + " after the failovers");
    }
  }
  r.usage = cluster_usage(*cluster);
  std::sort(ms.begin(), ms.end());
  double median = percentile(ms, 0.5);
  double max = ms.back();
  set_measure(r, m, fmt::format("{:.0f} ms / {:.0f} ms", median, max), max < 2000);
  r.figures["failover_median_ms"] = median;
  r.figures["failover_max_ms"] = max;
  std::string each;
  for (double v : ms) each += fmt::format("{}{:.0f}", each.empty() ? "" : ", ", v);
  r.details.push_back("each failover (ms, sorted): " + each);
  r.details.push_back(fmt::format("{} jobs submitted around the kills, every one finished",
                                  grouped(static_cast<double>(tickets.size()))));
}

}  // namespace jc::bench
