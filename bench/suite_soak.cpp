// The soak: a steady load of 0-ms jobs for a long time (10 minutes by
// default) with RESULT_TTL set on the proxy and every node, and every
// second each process's VmRSS and the size of its DATA_DIR. Once results
// expire as fast as new ones arrive, both should level off: the target is
// that neither grows by more than 10% after the first two minutes (20% of a
// shorter run). Not part of --suite full: it runs when named (--only soak).
//
// Threads: one per client connection, each pacing its share of the rate in
// 100-ms ticks; the calling thread samples every second and owns the cluster.
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "bench/figures.h"
#include "bench/probe.h"
#include "bench/soak.h"
#include "bench/suite.h"

namespace jc::bench {

using namespace std::chrono_literals;
using jc::test::Client;

namespace {

constexpr auto kTick = 100ms;
// One job in this many is read back with `r<ticket>` on the next tick, so
// reads of results (and of expired ones, were the TTL short) are exercised.
constexpr std::int64_t kReadEvery = 100;
// A tick whose replies take this long means the cluster stopped answering.
constexpr auto kTickDeadline = 30s;
// Client connections: one per node, up to this many (threads on two cores).
constexpr int kMaxClients = 8;
// How long the jobs still queued when the load stops may take to finish.
constexpr auto kDrainTimeout = 30s;
// The offered rate counts as carried when this much of it finished.
constexpr double kCarried = 0.95;

// What the clients did so far; the sampler reads it while they run.
struct LoadCounters {
  std::atomic<std::int64_t> submitted{0};  // tickets received
  std::atomic<std::int64_t> reads{0};      // `r` replies received
  std::atomic<std::int64_t> read_errors{0};
  std::atomic<bool> failed{false};  // a client stopped: end the run
};

std::string read_reply(Client& client, Deadline deadline, LoadCounters& counters) {
  auto l = client.line(left(deadline));
  if (!l) return "no reply to `r` before the deadline";
  counters.reads.fetch_add(1, std::memory_order_relaxed);
  // What a read answers does not matter here, except an error.
  if (l->rfind("ERR", 0) == 0) counters.read_errors.fetch_add(1, std::memory_order_relaxed);
  ResultHeader r = parse_result(*l);
  if (!r.framed) return "";
  if (!client.bytes(r.stdout_bytes + 1 + r.stderr_bytes + 1, left(deadline)))
    return "truncated run result";
  for (std::size_t c = 0; c < r.cases; ++c) {
    if (!client.line(left(deadline))) return "truncated run result";
  }
  return "";
}

// One client's share of the load: every tick, the submits due by then (a
// late tick catches up, so the offered rate holds while the cluster can
// take it) and the reads of the tickets kept on the previous tick, as one
// pipelined batch; then every reply. Returns "" or why it stopped.
std::string drive(Client& client, double rate, Clock::time_point t0, Clock::time_point end,
                  std::size_t window, std::stop_token stop, LoadCounters& counters) {
  constexpr std::string_view kTicket = "Ticket ID: ";
  std::vector<std::string> reads;
  std::int64_t sent = 0;
  for (std::int64_t tick = 1; !stop.stop_requested(); ++tick) {
    auto at = t0 + tick * kTick;
    if (at > end) break;
    std::this_thread::sleep_until(at);
    auto due_total = std::llround(rate * std::chrono::duration<double>(tick * kTick).count());
    auto due = static_cast<std::size_t>(std::max<std::int64_t>(0, due_total - sent));
    std::vector<std::string> next_reads;
    Deadline deadline = Clock::now() + kTickDeadline;
    std::string error = pipeline(
        client, due + reads.size(), window, deadline,
        [&](std::size_t i) { return i < due ? std::string("0\n") : "r" + reads[i - due] + "\n"; },
        [&](std::size_t i) -> std::string {
          if (i >= due) return read_reply(client, deadline, counters);
          auto l = client.line(left(deadline));
          if (!l) return "no reply to a submit before the deadline";
          if (l->rfind(kTicket, 0) != 0) return fmt::format("a submit answered '{}'", *l);
          if ((sent + static_cast<std::int64_t>(i)) % kReadEvery == 0) {
            next_reads.push_back(l->substr(kTicket.size()));
          }
          counters.submitted.fetch_add(1, std::memory_order_relaxed);
          return "";
        });
    if (!error.empty()) return fmt::format("after {:.1f} s: {}", seconds_since(t0), error);
    sent += static_cast<std::int64_t>(due);
    reads = std::move(next_reads);
  }
  return "";
}

// The proxy's count of finished jobs, through `stats` on a node. A late
// reply keeps the last count and takes a fresh connection, so that replies
// stay in step; the sampler's tick is not held up for more than a moment.
class FinishedCount {
 public:
  explicit FinishedCount(std::uint16_t port) : port_(port), client_(connect()) {}
  std::int64_t read() {
    if (auto s = query_stats(*client_, 800ms)) {
      last_ = s->finished;
    } else {
      client_ = connect();
    }
    return last_;
  }

 private:
  std::unique_ptr<Client> connect() const { return std::make_unique<Client>(port_, 2s); }
  std::uint16_t port_;
  std::unique_ptr<Client> client_;
  std::int64_t last_ = 0;
};

// A process the soak watches: its name in the CSV, the process and its DATA_DIR.
struct Watched {
  std::string name;
  jc::test::Process* process;
  std::string data_dir;
};

std::vector<Watched> watched(jc::test::Cluster& cluster) {
  std::vector<Watched> out{{"proxy", &cluster.proxy(), cluster.dir() + "/proxy"}};
  for (std::size_t i = 0; i < cluster.size(); ++i) {
    out.push_back({cluster.node_id(i), &cluster.node(i), cluster.dir() + "/" + cluster.node_id(i)});
  }
  return out;
}

std::string log_tail(const jc::test::Process& p) {
  std::string log = p.log_since_start();
  return log.size() > 400 ? "..." + log.substr(log.size() - 400) : log;
}

// Samples at 0, 1, ... `seconds` s after t0 until the load ends, a client
// fails or a process exits (then `error` says which).
std::vector<SoakSample> sample_every_second(jc::test::Cluster& cluster,
                                            const LoadCounters& counters, Clock::time_point t0,
                                            int seconds, std::string& error) {
  std::vector<Watched> processes = watched(cluster);
  FinishedCount finished(cluster.node_port(0));
  std::vector<SoakSample> samples;
  for (int k = 0; k <= seconds && !counters.failed; ++k) {
    std::this_thread::sleep_until(t0 + k * 1s);
    SoakSample s;
    s.seconds = seconds_since(t0);
    s.submitted = counters.submitted.load(std::memory_order_relaxed);
    for (const auto& w : processes) {
      if (error.empty() && !w.process->running()) {
        error =
            fmt::format("{} exited after {:.0f} s: {}", w.name, s.seconds, log_tail(*w.process));
      }
      s.processes.push_back({rss_kb(w.process->pid()), dir_bytes(w.data_dir)});
    }
    s.finished = finished.read();
    samples.push_back(std::move(s));
    if (!error.empty()) break;
  }
  return samples;
}

std::vector<std::string> process_names(int nodes) {
  std::vector<std::string> names{"proxy"};
  for (int i = 0; i < nodes; ++i) names.push_back("n" + std::to_string(i + 1));
  return names;
}

struct LoadRun {
  std::vector<SoakSample> samples;
  std::int64_t tickets = 0, reads = 0, read_errors = 0;
  std::string error;
};

// The load on a started cluster, sampled every second until it ends.
LoadRun run_load(jc::test::Cluster& cluster, const SoakSpec& z, int clients, std::size_t window) {
  std::vector<std::unique_ptr<Client>> conns;
  for (int i = 0; i < clients; ++i) {
    conns.push_back(std::make_unique<Client>(cluster.node_port(i % z.nodes)));
    if (!conns.back()->connected())
      throw std::runtime_error(fmt::format("client {} could not connect", i));
  }
  LoadRun run;
  LoadCounters counters;
  std::vector<std::string> errors(clients);
  auto t0 = Clock::now();
  auto end = t0 + std::chrono::seconds(z.seconds);
  {
    // Declared after what they use: on the way out each is asked to stop and joined.
    std::vector<std::jthread> threads;
    // The clients' shares add up to the rate.
    double share = static_cast<double>(z.rate) / clients;
    for (int i = 0; i < clients; ++i) {
      threads.emplace_back([&, i](std::stop_token stop) {
        errors[i] = drive(*conns[i], share, t0, end, window, stop, counters);
        if (!errors[i].empty()) counters.failed = true;
      });
    }
    run.samples = sample_every_second(cluster, counters, t0, z.seconds, run.error);
    for (auto& t : threads) t.request_stop();
  }
  for (int i = 0; i < clients && run.error.empty(); ++i) {
    if (!errors[i].empty()) run.error = fmt::format("client {}: {}", i, errors[i]);
  }
  run.tickets = counters.submitted;
  run.reads = counters.reads;
  run.read_errors = counters.read_errors;
  return run;
}

// Waits for the jobs still queued when the load stopped; says how it went.
std::string drain_detail(jc::test::Cluster& cluster, std::int64_t tickets) {
  auto t0 = Clock::now();
  auto drained = poll_stats(
      cluster.node_port(0), [&](const ClusterSnapshot& s) { return s.finished >= tickets; },
      kDrainTimeout);
  if (drained) {
    return fmt::format("all {} jobs finished {:.1f} s after the load stopped", grouped(tickets),
                       seconds_since(t0));
  }
  Client client(cluster.node_port(0), 2s);
  auto now = query_stats(client);
  return fmt::format("{} of {} jobs finished {} s after the load stopped",
                     now ? grouped(static_cast<double>(now->finished)) : "?", grouped(tickets),
                     kDrainTimeout.count());
}

void load_details(const LoadRun& run, int rate, ScenarioReport& r) {
  const SoakSample& last = run.samples.back();
  r.details.push_back(fmt::format(
      "load: {} tickets in {:.1f} s ({} jobs/s submitted, {} offered); {} finished by then ({} "
      "jobs/s)",
      grouped(last.submitted), last.seconds, grouped(safe_rate(last.submitted, last.seconds)),
      grouped(rate), grouped(last.finished), grouped(safe_rate(last.finished, last.seconds))));
  r.details.push_back(fmt::format("reads: {} `r` of every {}th ticket, {} answered ERR",
                                  grouped(run.reads), kReadEvery, grouped(run.read_errors)));
}

}  // namespace

void soak_scenario(const BenchContext& ctx, ScenarioReport& r) {
  const SoakSpec& z = ctx.soak;
  const int clients = std::min(z.nodes, kMaxClients);
  const std::vector<std::string> names = process_names(z.nodes);
  auto rate_row = add_measure(
      r,
      fmt::format("soak: {} s of 0-ms jobs offered at {} jobs/s, {} clients, {} nodes, "
                  "RESULT_TTL={} ms: jobs finished per second",
                  grouped(z.seconds), grouped(z.rate), clients, z.nodes, z.result_ttl_ms),
      fmt::format(">= {:.0f}% of {}", kCarried * 100, grouped(z.rate)));
  std::vector<std::size_t> growth_rows;
  for (const auto& n : names) {
    growth_rows.push_back(
        add_measure(r,
                    fmt::format("soak: {} VmRSS and data dir, growth of the peak after {}", n,
                                soak_checkpoints(z.seconds).front().label),
                    "<= 10% each"));
  }

  ClusterSpec spec = cluster_spec(ctx, z.nodes, 2);
  spec.pinned_proxy_env["RESULT_TTL"] = std::to_string(z.result_ttl_ms);
  spec.pinned_node_env["RESULT_TTL"] = std::to_string(z.result_ttl_ms);
  auto cluster = start_cluster(spec, kUpTimeout);
  LoadRun run = run_load(*cluster, z, clients, ctx.window);
  r.error = run.error;
  std::string drained = r.error.empty() ? drain_detail(*cluster, run.tickets) : "";
  r.usage = cluster_usage(*cluster);

  std::string csv = z.csv.empty() ? ctx.out_dir + "/soak.csv" : z.csv;
  std::string written = write_file(csv, soak_csv(names, run.samples));
  r.details.push_back(
      written.empty() ? fmt::format("samples: {} ({} rows, one a second)", csv, run.samples.size())
                      : "samples not written: " + written);
  if (run.samples.empty()) return;
  load_details(run, z.rate, r);
  if (!drained.empty()) r.details.push_back(drained);
  SoakSummary summary = summarize_soak(names, run.samples, z.seconds);
  std::istringstream table(soak_table(summary));
  for (std::string line; std::getline(table, line);) r.details.push_back(line);
  for (const auto& line : soak_verdicts(summary)) r.details.push_back(line);
  // A run cut short judges nothing: its rows stay unmeasured.
  if (!r.error.empty()) return;
  const SoakSample& last = run.samples.back();
  double finish_rate = safe_rate(last.finished, last.seconds);
  set_measure(r, rate_row,
              fmt::format("{} jobs/s ({} submitted/s)", grouped(finish_rate),
                          grouped(safe_rate(last.submitted, last.seconds))),
              finish_rate >= kCarried * z.rate);
  for (std::size_t i = 0; i < names.size(); ++i) {
    const ProcessGrowth& p = summary.processes[i];
    set_measure(
        r, growth_rows[i],
        fmt::format("RSS {}, disk {}", growth_text(p.rss_growth), growth_text(p.disk_growth)),
        p.met);
  }
  r.figures["soak_rate"] = finish_rate;
}

}  // namespace jc::bench
