#include "bench/redis.h"

#include <fmt/format.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <thread>

#include "bench/figures.h"
#include "bench/pipeline.h"
#include "bench/probe.h"
#include "bench/peer_server.h"

namespace jc::bench {

using jc::test::Client;

std::string resp_command(const std::vector<std::string>& words) {
  std::string out = fmt::format("*{}\r\n", words.size());
  for (const auto& w : words) out += fmt::format("${}\r\n{}\r\n", w.size(), w);
  return out;
}

namespace {

// A job's body is one byte, as a jobcluster sleep job "0" is.
const std::string& push_command() {
  static const std::string c = resp_command({"LPUSH", "jobs", "0"});
  return c;
}

// One redis-server with its append-only file (synced on every write) in a
// fresh directory, up once it answers PING.
PeerServer start_redis(const std::string& binary) {
  return PeerServer(
      binary, "redis",
      [](std::uint16_t port, const std::string& dir) {
        return std::vector<std::string>{"--bind", "127.0.0.1", "--port", std::to_string(port),
                                        "--dir", dir, "--appendonly", "yes", "--appendfsync",
                                        "always", "--save", "", "--daemonize", "no",
                                        "--protected-mode", "no"};
      },
      [](std::uint16_t port) {
        Client c(port, std::chrono::milliseconds(100));
        return c.connected() && c.send(resp_command({"PING"})) &&
               c.line(std::chrono::milliseconds(500)) == std::optional<std::string>("+PONG");
      });
}

std::string push_many(Client& client, std::size_t count, std::size_t window, Deadline deadline) {
  return pipeline(
      client, count, window, deadline, [](std::size_t) { return push_command(); },
      [&](std::size_t i) -> std::string {
        auto l = client.line(left(deadline));
        if (!l) return fmt::format("no reply to LPUSH {} before the deadline", i + 1);
        if (l->rfind(':', 0) != 0) return fmt::format("LPUSH {} answered '{}'", i + 1, *l);
        return "";
      });
}

// One BLMOVE's reply: true with a job, false when it timed out; an error
// otherwise.
std::string read_moved(Client& client, Deadline deadline, bool& got) {
  got = false;
  auto l = client.line(left(deadline));
  if (!l) return "no reply to BLMOVE before the deadline";
  if (*l == "*-1" || *l == "$-1") return "";  // nothing within its timeout
  if (l->rfind('$', 0) != 0) return "BLMOVE answered '" + *l + "'";
  if (!client.line(left(deadline))) return "no job body after BLMOVE";
  got = true;
  return "";
}

// A worker of the reliable-queue pattern: `batch` BLMOVEs of jobs into a
// processing list of its own, pipelined; then one LREM for each job it got,
// pipelined; until it has removed `share`. The worker whose LREM removes the
// last of `total` stamps `done_at`; `abort` (a producer failed) ends it at
// its next empty batch.
std::string work(Client& client, int index, std::size_t share, std::size_t batch, int total,
                 std::atomic<int>& removed, const std::atomic<bool>& abort,
                 Clock::time_point t0, std::atomic<double>& done_at, Deadline deadline) {
  const std::string processing = fmt::format("processing:{}", index);
  const std::string move = resp_command({"BLMOVE", "jobs", processing, "RIGHT", "LEFT", "1"});
  const std::string remove = resp_command({"LREM", processing, "1", "0"});
  std::size_t done = 0;
  std::string out;
  while (done < share) {
    std::size_t k = std::min(std::max<std::size_t>(batch, 1), share - done);
    out.clear();
    for (std::size_t i = 0; i < k; ++i) out += move;
    if (!client.send_within(out, left(deadline))) return "worker could not send";
    std::size_t got = 0;
    for (std::size_t i = 0; i < k; ++i) {
      bool one = false;
      if (auto e = read_moved(client, deadline, one); !e.empty()) return "worker: " + e;
      got += one ? 1 : 0;
    }
    if (got == 0) {
      if (abort) return "";
      continue;
    }
    out.clear();
    for (std::size_t i = 0; i < got; ++i) out += remove;
    if (!client.send_within(out, left(deadline))) return "worker could not send";
    for (std::size_t i = 0; i < got; ++i) {
      auto l = client.line(left(deadline));
      if (!l || *l != ":1") return "LREM answered '" + l.value_or("(nothing)") + "'";
    }
    done += got;
    int now = removed.fetch_add(static_cast<int>(got)) + static_cast<int>(got);
    if (now == total) done_at = seconds_since(t0);
  }
  return "";
}

void measure_pushes(const std::string& binary, const RedisSpec& spec, ScenarioReport& r) {
  PeerServer server = start_redis(binary);
  Client client(server.port());
  auto t0 = Clock::now();
  std::string error =
      push_many(client, static_cast<std::size_t>(spec.pushes), spec.window, t0 + spec.timeout);
  double seconds = seconds_since(t0);
  r.usage.push_back(server.usage("redis-server (pushes)"));
  if (!error.empty()) throw std::runtime_error("pushes: " + error);
  double rate = safe_rate(spec.pushes, seconds);
  r.figures["push_rate"] = rate;
  r.details.push_back(fmt::format(
      "durable LPUSH: {} in {:.3f} s, {} pushes/s (1 client pipelining, appendfsync always)",
      grouped(spec.pushes), seconds, grouped(rate)));
}

void measure_e2e(const std::string& binary, const RedisSpec& spec, ScenarioReport& r) {
  PeerServer server = start_redis(binary);
  std::vector<std::unique_ptr<Client>> workers, producers;
  for (int i = 0; i < spec.workers; ++i) workers.push_back(std::make_unique<Client>(server.port()));
  for (int i = 0; i < spec.producers; ++i) {
    producers.push_back(std::make_unique<Client>(server.port()));
  }
  std::atomic<int> removed{0};
  std::atomic<double> done_at{0};
  std::atomic<bool> abort{false};
  std::vector<std::string> errors(workers.size() + producers.size());
  auto share = [](int total, std::size_t n, std::size_t i) {
    return static_cast<std::size_t>(total) / n + (i < static_cast<std::size_t>(total) % n ? 1 : 0);
  };
  auto t0 = Clock::now();
  Deadline deadline = t0 + spec.timeout;
  {
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < workers.size(); ++i) {
      threads.emplace_back([&, i] {
        errors[i] = work(*workers[i], static_cast<int>(i), share(spec.jobs, workers.size(), i),
                         spec.window, spec.jobs, removed, abort, t0, done_at, deadline);
        if (!errors[i].empty()) abort = true;
      });
    }
    for (std::size_t i = 0; i < producers.size(); ++i) {
      threads.emplace_back([&, i] {
        auto& e = errors[workers.size() + i];
        e = push_many(*producers[i], share(spec.jobs, producers.size(), i), spec.window, deadline);
        if (!e.empty()) abort = true;
      });
    }
    for (auto& t : threads) t.join();
  }
  ProcessUsage u = server.usage("redis-server (e2e)");
  r.usage.push_back(u);
  for (const auto& e : errors) {
    if (!e.empty()) throw std::runtime_error("end to end: " + e);
  }
  double rate = safe_rate(spec.jobs, done_at);
  r.figures["e2e_rate"] = rate;
  r.figures["e2e_rss_mb"] = u.peak_mb;
  r.details.push_back(fmt::format(
      "LPUSH, BLMOVE + LREM: {} jobs, {} producers pipelining, {} workers in batches of up to "
      "{}: all removed after {:.3f} s, {} jobs/s",
      grouped(spec.jobs), spec.producers, spec.workers, spec.window, done_at.load(),
      grouped(rate)));
}

void measure_latency(const std::string& binary, const RedisSpec& spec, ScenarioReport& r) {
  PeerServer server = start_redis(binary);
  Client worker(server.port()), producer(server.port());
  const std::string move = resp_command({"BLMOVE", "jobs", "processing", "RIGHT", "LEFT", "5"});
  const std::string remove = resp_command({"LREM", "processing", "1", "0"});
  Deadline deadline = Clock::now() + spec.timeout;
  std::vector<double> ms;
  for (int i = 0; i < spec.latency_jobs; ++i) {
    // The worker waits first, as an idle worker does.
    if (!worker.send_within(move, left(deadline))) throw std::runtime_error("latency: send failed");
    auto t0 = Clock::now();
    if (!producer.send_within(push_command(), left(deadline))) {
      throw std::runtime_error("latency: send failed");
    }
    auto pushed = producer.line(left(deadline));
    if (!pushed || pushed->rfind(':', 0) != 0) {
      throw std::runtime_error("latency: LPUSH answered '" + pushed.value_or("(nothing)") + "'");
    }
    bool got = false;
    if (auto e = read_moved(worker, deadline, got); !e.empty() || !got) {
      throw std::runtime_error("latency: " + (e.empty() ? "BLMOVE timed out" : e));
    }
    if (!worker.send_within(remove, left(deadline))) throw std::runtime_error("latency: send failed");
    auto l = worker.line(left(deadline));
    if (!l || *l != ":1") throw std::runtime_error("latency: LREM answered '" + l.value_or("") + "'");
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  Percentiles p = percentiles(ms);
  r.figures["latency_p50_ms"] = p.p50;
  r.figures["latency_p99_ms"] = p.p99;
  r.details.push_back(fmt::format(
      "idle latency, {} jobs one at a time, LPUSH until the waiting worker's LREM is answered: "
      "p50 {:.2f} ms, p99 {:.2f} ms",
      spec.latency_jobs, p.p50, p.p99));
}

}  // namespace

RedisRun run_redis(const RedisSpec& spec) {
  RedisRun run;
  run.report.name = "redis";
  std::string binary = find_on_path("redis-server");
  if (binary.empty()) {
    run.skipped = true;
    run.why_skipped = "redis-server is not on PATH (scripts/install-deps --bench installs it)";
    return run;
  }
  auto t0 = Clock::now();
  ProcessUsage self_before = self_usage();
  try {
    measure_pushes(binary, spec, run.report);
    measure_e2e(binary, spec, run.report);
    measure_latency(binary, spec, run.report);
  } catch (const std::exception& e) {
    run.report.error = e.what();
  }
  ProcessUsage self = self_usage();
  self.cpu_s -= self_before.cpu_s;
  run.report.usage.push_back(self);
  run.report.details.insert(run.report.details.begin(),
                            binary +
                                " --bind 127.0.0.1 --port PORT --dir DIR --appendonly yes "
                                "--appendfsync always --save ''");
  run.report.seconds = seconds_since(t0);
  return run;
}

}  // namespace jc::bench
