#include "bench/workloads.h"

#include <fmt/format.h>

#include <stdexcept>
#include <thread>

#include "bench/figures.h"
#include "bench/probe.h"

namespace jc::bench {

using jc::test::Client;
using jc::test::Cluster;

std::unique_ptr<Cluster> start_cluster(const ClusterSpec& spec,
                                       std::chrono::milliseconds up_timeout) {
  auto merge = [](EnvMap base, const EnvMap& user, const EnvMap& pinned) {
    base.emplace("LOG_LEVEL", "info");
    for (const auto& [k, v] : user) base[k] = v;
    for (const auto& [k, v] : pinned) base[k] = v;
    return base;
  };
  auto cluster = std::make_unique<Cluster>(jc::test::ClusterOptions{
      .proxies = spec.proxies,
      .nodes = spec.nodes,
      .slots = spec.slots,
      .proxy_env = merge(spec.proxy_env, spec.user_proxy_env, spec.pinned_proxy_env),
      .node_env = merge(spec.node_env, spec.user_node_env, spec.pinned_node_env)});
  if (spec.nodes > 0 && !cluster->wait_nodes_up(static_cast<std::size_t>(spec.nodes), up_timeout)) {
    throw std::runtime_error(
        fmt::format("{} nodes were not all up within {} ms", spec.nodes, up_timeout.count()));
  }
  return cluster;
}

double E2eRun::jobs_per_s(int jobs) const { return safe_rate(jobs, total_s); }

E2eRun run_e2e(Cluster& cluster, const E2eSpec& spec) {
  E2eRun run;
  auto clients = static_cast<std::size_t>(std::max(1, spec.clients));
  std::vector<std::unique_ptr<Client>> conns;
  for (std::size_t i = 0; i < clients; ++i) {
    conns.push_back(std::make_unique<Client>(cluster.node_port(i % cluster.size())));
    if (!conns.back()->connected()) {
      run.error = fmt::format("client {} could not connect", i);
      return run;
    }
  }
  struct PerClient {
    std::vector<std::string> tickets;
    Outcomes outcomes;
    double submitted_at = 0, done_at = 0;
    std::string error;
  };
  std::vector<PerClient> per(clients);
  auto t0 = Clock::now();
  Deadline deadline = t0 + spec.timeout;
  std::unique_ptr<Sampler> sampler;
  if (spec.sample) sampler = std::make_unique<Sampler>(cluster.node_port(0), t0);
  {
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < clients; ++i) {
      std::size_t share = static_cast<std::size_t>(spec.jobs) / clients +
                          (i < static_cast<std::size_t>(spec.jobs) % clients ? 1 : 0);
      threads.emplace_back([&, i, share] {
        PerClient& p = per[i];
        if (spec.chunk == 0) {
          p.error = submit_jobs(*conns[i], share, spec.job_line, spec.window, deadline, p.tickets);
          p.submitted_at = seconds_since(t0);
          if (p.error.empty()) {
            p.error = await_jobs(*conns[i], p.tickets, spec.window, deadline, p.outcomes);
          }
        } else {
          // Two chunks at most in the cluster: the one waited for, and the next.
          std::size_t unsent = share;
          std::vector<std::string> waited, next;
          auto submit_chunk = [&](std::vector<std::string>& into) {
            std::size_t n = std::min(spec.chunk, unsent);
            unsent -= n;
            into.clear();
            std::string error =
                n == 0 ? "" : submit_jobs(*conns[i], n, spec.job_line, spec.window, deadline, into);
            if (unsent == 0 && p.submitted_at == 0) p.submitted_at = seconds_since(t0);
            return error;
          };
          p.error = submit_chunk(waited);
          while (p.error.empty() && !waited.empty()) {
            if (p.error = submit_chunk(next); !p.error.empty()) break;
            p.error = await_jobs(*conns[i], waited, spec.window, deadline, p.outcomes);
            std::swap(waited, next);
          }
        }
        p.done_at = seconds_since(t0);
      });
    }
    for (auto& t : threads) t.join();
  }
  if (sampler) run.samples = sampler->stop();
  for (std::size_t i = 0; i < clients; ++i) {
    const PerClient& p = per[i];
    run.submit_s = std::max(run.submit_s, p.submitted_at);
    run.total_s = std::max(run.total_s, p.done_at);
    for (const auto& [n, c] : p.outcomes.by_node) run.outcomes.by_node[n] += c;
    for (const auto& [s, c] : p.outcomes.by_state) run.outcomes.by_state[s] += c;
    if (run.error.empty() && !p.error.empty()) run.error = fmt::format("client {}: {}", i, p.error);
  }
  return run;
}

SubmitRun run_submits(Cluster& cluster, int jobs, const std::string& job_line, std::size_t window,
                      std::chrono::seconds timeout) {
  SubmitRun run;
  Client client(cluster.node_port(0));
  std::vector<std::string> tickets;
  auto t0 = Clock::now();
  run.error =
      submit_jobs(client, static_cast<std::size_t>(jobs), job_line, window, t0 + timeout, tickets);
  run.seconds = seconds_since(t0);
  return run;
}

LatencyRun run_latency(Cluster& cluster, int jobs, int job_ms, std::chrono::seconds timeout) {
  LatencyRun run;
  Client client(cluster.node_port(0));
  Deadline deadline = Clock::now() + timeout;
  for (int i = 0; i < jobs; ++i) {
    auto t0 = Clock::now();
    std::string ticket = jc::test::submit(client, job_ms);
    if (ticket.empty()) {
      run.error = fmt::format("submit {} got no ticket", i + 1);
      return run;
    }
    if (jc::test::wait_result(client, ticket, left(deadline)).empty()) {
      run.error = fmt::format("no result for {} (job {}) before the deadline", ticket, i + 1);
      return run;
    }
    run.ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  return run;
}

const char* const kBwrapTrue =
    "bwrap --unshare-all --die-with-parent --new-session --ro-bind /usr /usr "
    "--symlink usr/bin /bin --symlink usr/lib /lib --symlink usr/lib64 /lib64 "
    "--symlink usr/sbin /sbin --ro-bind /etc/ld.so.cache /etc/ld.so.cache "
    "--ro-bind /etc/alternatives /etc/alternatives --proc /proc --dev /dev --tmpfs /tmp "
    "--tmpfs /box --chdir /box /bin/sh -c true";

XargsRun run_xargs(int jobs, std::chrono::seconds timeout, const std::string& command) {
  XargsRun run;
  run.command = fmt::format("seq {} | xargs -P 2 -n 1 {}", jobs, command);
  jc::test::Process xargs("/bin/sh", {"-c", run.command}, {}, "/dev/null");
  auto t0 = Clock::now();
  xargs.start();
  int rc = xargs.wait_exit(std::chrono::duration_cast<std::chrono::milliseconds>(timeout));
  run.seconds = seconds_since(t0);
  if (rc != 0) run.error = fmt::format("`{}` exited {}", run.command, rc);
  return run;
}

std::string sleep_line(int ms) { return std::to_string(ms); }

std::string outcome_text(const Outcomes& outcomes) {
  std::string out;
  for (const auto& [node, count] : outcomes.by_node) {
    out += fmt::format("{}{}={}", out.empty() ? "" : " ", node, count);
  }
  bool all_done = outcomes.by_state.size() == 1 && outcomes.by_state.count("DONE") == 1;
  if (!all_done && !outcomes.by_state.empty()) {
    out += "; states:";
    for (const auto& [state, count] : outcomes.by_state) out += fmt::format(" {}={}", state, count);
  }
  return out;
}

}  // namespace jc::bench
