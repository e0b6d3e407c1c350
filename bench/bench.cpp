// jc_bench: starts a local cluster from the built binaries and drives it as
// clients do over TCP.
//
//   jc_bench [--scenario e2e|latency] [--jobs N] [--nodes K] [--slots S] [--ms MS]
//            [--clients C] [--kind sleep|run] [--prefetch P] [--dispatch-period MS]
//
// Scenario "e2e": C clients, client i on node i % K, each pipelining its
// share of N sleep jobs of MS milliseconds; then every result is awaited
// (pipelined `wait`s). Prints the submit rate, the time until every result is
// visible, jobs/s end to end, and how many jobs each node ran. With
// --kind run the jobs are `run true`, compared with xargs -P 2 in the same run.
// Scenario "latency": one job at a time, submit to result, p50/p90/p99.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "tests/support/cluster.h"

using namespace jc::test;
using Seconds = std::chrono::duration<double>;

namespace {

struct Args {
  int jobs = 2000;
  int nodes = 3;
  int slots = 2;
  int ms = 0;
  int clients = 1;
  bool run = false;   // `run true` jobs instead of sleep jobs
  int prefetch = -1;  // DISPATCH_PREFETCH, when given
  std::string scenario = "e2e";
  int dispatch_period = -1;  // DISPATCH_PERIOD, when given
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    int v = std::atoi(argv[i + 1]);
    if (k == "--jobs")
      a.jobs = v;
    else if (k == "--nodes")
      a.nodes = v;
    else if (k == "--slots")
      a.slots = v;
    else if (k == "--ms")
      a.ms = v;
    else if (k == "--clients")
      a.clients = v;
    else if (k == "--kind")
      a.run = std::string(argv[i + 1]) == "run";
    else if (k == "--prefetch")
      a.prefetch = v;
    else if (k == "--scenario")
      a.scenario = argv[i + 1];
    else if (k == "--dispatch-period")
      a.dispatch_period = v;
    else {
      fmt::print(stderr, "unknown option {}\n", k);
      std::exit(2);
    }
  }
  return a;
}

struct ClientRun {
  std::vector<std::string> tickets;
  std::map<std::string, int> ran;
  bool ok = true;
};

void submit_all(Client& c, int count, int ms, bool run_jobs, ClientRun& run) {
  std::string batch;
  for (int i = 0; i < count; ++i) batch += run_jobs ? "run true\n" : std::to_string(ms) + "\n";
  c.send(batch);
  for (int i = 0; i < count; ++i) {
    auto l = c.line(60s);
    if (!l || l->rfind("Ticket ID: ", 0) != 0) {
      run.ok = false;
      return;
    }
    run.tickets.push_back(l->substr(11));
  }
}

void await_all(Client& c, ClientRun& run) {
  std::string batch;
  for (const auto& t : run.tickets) batch += "wait " + t + " 600\n";
  c.send(batch);
  for (std::size_t i = 0; i < run.tickets.size(); ++i) {
    auto l = c.line(600s);
    if (l && l->rfind("Result: ", 0) == 0 && l->find(" stdout_bytes=") != std::string::npos) {
      // A framed run result: skip its two blocks (empty for `run true`).
      auto pos = l->find(" node=");
      std::string node = l->substr(pos + 6, l->find(' ', pos + 6) - pos - 6);
      c.line(10s);
      c.line(10s);
      run.ran[node]++;
      continue;
    }
    if (!l || l->rfind("Result: ", 0) != 0) {
      fmt::print(stderr, "unexpected reply to wait {}: {}\n", run.tickets[i], l.value_or("(none)"));
      run.ok = false;
      return;
    }
    run.ran[result_node(*l)]++;
  }
}

// CPU seconds used and peak resident memory (MB) of a process, from /proc.
std::pair<double, double> cpu_and_peak(int pid) {
  double cpu = 0, peak_mb = 0;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (std::getline(stat, line)) {
    std::istringstream rest(line.substr(line.rfind(')') + 2));
    std::string field;
    long ticks = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
      if (i == 14 || i == 15) ticks += std::stol(field);
    }
    cpu = static_cast<double>(ticks) / static_cast<double>(sysconf(_SC_CLK_TCK));
  }
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) peak_mb = std::stod(line.substr(6)) / 1024.0;
  }
  return {cpu, peak_mb};
}

void print_processes(Cluster& cluster) {
  auto [pc, pm] = cpu_and_peak(cluster.proxy().pid());
  fmt::print("  reverse_proxy  cpu={:.2f} s peak_rss={:.1f} MB\n", pc, pm);
  for (std::size_t i = 0; i < cluster.size(); ++i) {
    auto [c, m] = cpu_and_peak(cluster.node(i).pid());
    fmt::print("  cluster_node {} cpu={:.2f} s peak_rss={:.1f} MB\n", cluster.node_id(i), c, m);
  }
}

// Samples every 100 ms how many jobs each node runs (its INFO reports) and
// counts the samples where max - min across nodes is at most one.
struct BalanceSampler {
  std::atomic<bool> stop{false};
  int samples = 0, balanced = 0, busy = 0;
  void run(std::uint16_t port) {
    Client c(port);
    while (!stop) {
      std::vector<int> running;
      int queue = 0;
      for (const auto& l : c.multi("stats", 5s)) {
        if (l.rfind("proxy=", 0) == 0) queue = std::stoi(l.substr(l.find("queue=") + 6));
        auto pos = l.find(" running=");
        if (l.rfind("node ", 0) == 0 && pos != std::string::npos)
          running.push_back(std::stoi(l.substr(pos + 9)));
      }
      if (!running.empty() && queue > 0) {  // saturating load only
        ++samples;
        auto [lo, hi] = std::minmax_element(running.begin(), running.end());
        if (*hi - *lo <= 1) ++balanced;
      }
      std::this_thread::sleep_for(100ms);
    }
  }
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * (v.size() - 1))];
}

// One job at a time on an idle cluster: submit through node 0, `wait` for it
// there, and time submit-to-result; --jobs samples.
int latency(Cluster& cluster, const Args& a) {
  Client c(cluster.node_port(0));
  std::vector<double> ms;
  for (int i = 0; i < a.jobs; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    std::string t = submit(c, a.ms);
    if (t.empty() || wait_result(c, t, 60s).empty()) {
      fmt::print(stderr, "job {} failed\n", i);
      return 1;
    }
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  fmt::print(
      "latency submit-to-result over {} jobs of {} ms (DISPATCH_PERIOD={}): p50={:.2f} ms "
      "p90={:.2f} ms p99={:.2f} ms\n",
      a.jobs, a.ms, a.dispatch_period > 0 ? std::to_string(a.dispatch_period) : "default",
      percentile(ms, 0.5), percentile(ms, 0.9), percentile(ms, 0.99));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a = parse(argc, argv);
  std::map<std::string, std::string> proxy_env{{"LOG_LEVEL", "info"}};
  if (a.prefetch >= 0) proxy_env["DISPATCH_PREFETCH"] = std::to_string(a.prefetch);
  if (a.dispatch_period > 0) proxy_env["DISPATCH_PERIOD"] = std::to_string(a.dispatch_period);
  // Frequent INFO reports, so the balance samples see fresh running counts.
  Cluster cluster({.nodes = a.nodes,
                   .slots = a.slots,
                   .proxy_env = proxy_env,
                   .node_env = {{"LOG_LEVEL", "info"}, {"INFO_PERIOD", "50"}}});
  if (!cluster.wait_nodes_up(static_cast<std::size_t>(a.nodes))) {
    fmt::print(stderr, "nodes did not come up\n");
    return 1;
  }
  if (a.scenario == "latency") return latency(cluster, a);
  std::vector<std::unique_ptr<Client>> clients;
  std::vector<ClientRun> runs(static_cast<std::size_t>(a.clients));
  for (int i = 0; i < a.clients; ++i) {
    clients.push_back(
        std::make_unique<Client>(cluster.node_port(static_cast<std::size_t>(i % a.nodes))));
  }
  BalanceSampler sampler;
  std::thread sampling([&] { sampler.run(cluster.node_port(0)); });
  auto t0 = std::chrono::steady_clock::now();
  {
    std::vector<std::thread> threads;
    for (int i = 0; i < a.clients; ++i) {
      int share = a.jobs / a.clients + (i < a.jobs % a.clients ? 1 : 0);
      threads.emplace_back([&, i, share] { submit_all(*clients[i], share, a.ms, a.run, runs[i]); });
    }
    for (auto& t : threads) t.join();
  }
  auto t1 = std::chrono::steady_clock::now();
  {
    std::vector<std::thread> threads;
    for (int i = 0; i < a.clients; ++i) {
      threads.emplace_back([&, i] { await_all(*clients[i], runs[i]); });
    }
    for (auto& t : threads) t.join();
  }
  auto t2 = std::chrono::steady_clock::now();
  sampler.stop = true;
  sampling.join();
  std::map<std::string, int> ran;
  bool ok = true;
  for (auto& r : runs) {
    ok = ok && r.ok;
    for (auto& [n, c] : r.ran) ran[n] += c;
  }
  double submit_s = Seconds(t1 - t0).count();
  double total_s = Seconds(t2 - t0).count();
  fmt::print("jobs={} kind={} ms={} nodes={} slots={} clients={}\n", a.jobs,
             a.run ? "run true" : "sleep", a.ms, a.nodes, a.slots, a.clients);
  fmt::print("submit: {:.3f} s ({:.0f} tickets/s, each after a synced write)\n", submit_s,
             a.jobs / submit_s);
  fmt::print("all results visible after {:.3f} s: {:.0f} jobs/s end to end\n", total_s,
             a.jobs / total_s);
  for (auto& [n, c] : ran) fmt::print("  node {} ran {}\n", n, c);
  if (sampler.samples > 0) {
    fmt::print("balance: max-min running <= 1 in {}/{} samples under saturating load ({:.1f}%)\n",
               sampler.balanced, sampler.samples, 100.0 * sampler.balanced / sampler.samples);
  }
  print_processes(cluster);
  if (a.run) {
    // The local limit of starting processes, measured in the same run.
    auto x0 = std::chrono::steady_clock::now();
    std::string cmd = fmt::format("seq {} | xargs -P 2 -n 1 true", a.jobs);
    int rc = std::system(cmd.c_str());
    double xs = Seconds(std::chrono::steady_clock::now() - x0).count();
    fmt::print("reference `{}`: {:.3f} s ({:.0f} processes/s){}; jobcluster/xargs = {:.2f}\n", cmd,
               xs, a.jobs / xs, rc == 0 ? "" : " (failed)", (a.jobs / total_s) / (a.jobs / xs));
  }
  if (!ok) {
    fmt::print("ERROR: some replies were missing or wrong\n");
    return 1;
  }
  return 0;
}
