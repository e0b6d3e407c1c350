#include "bench/beanstalk.h"

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

namespace {

using jc::test::Client;

// A tiny body, as a jobcluster sleep job "0" is one byte.
constexpr std::string_view kPut = "put 0 0 60 1\r\n0\r\n";

// One beanstalkd with its binlog (an fsync on every write) in a fresh
// directory; it logs nothing when it listens, so it is up once it accepts.
PeerServer start_beanstalkd(const std::string& binary) {
  return PeerServer(
      binary, "beanstalkd",
      [](std::uint16_t port, const std::string& dir) {
        std::filesystem::create_directories(dir + "/binlog");
        return std::vector<std::string>{"-l", "127.0.0.1", "-p", std::to_string(port),
                                        "-b", dir + "/binlog", "-f", "0"};
      },
      [](std::uint16_t port) { return Client(port, std::chrono::milliseconds(100)).connected(); });
}

std::string put_many(Client& client, std::size_t count, std::size_t window, Deadline deadline) {
  return pipeline(
      client, count, window, deadline, [](std::size_t) { return std::string(kPut); },
      [&](std::size_t i) -> std::string {
        auto l = client.line(left(deadline));
        if (!l) return fmt::format("no reply to put {} before the deadline", i + 1);
        if (l->rfind("INSERTED ", 0) != 0) return fmt::format("put {} answered '{}'", i + 1, *l);
        return "";
      });
}

// A worker: reserve, delete, and the next reserve sent with the delete (as
// pipelining allows), until `total` jobs are deleted by all workers. The one
// that deletes the last job stamps `done_at`; `abort` (a producer failed)
// ends them at their next empty reserve.
std::string work(Client& client, int total, std::atomic<int>& deleted,
                 const std::atomic<bool>& abort, Clock::time_point t0, std::atomic<double>& done_at,
                 Deadline deadline) {
  constexpr std::string_view kReserve = "reserve-with-timeout 1\r\n";
  if (!client.send_within(kReserve, left(deadline))) return "worker could not send";
  while (true) {
    auto l = client.line(left(deadline));
    if (!l) return "worker: no reply to reserve before the deadline";
    if (*l == "TIMED_OUT") {
      if (deleted.load() >= total || abort) return "";
      if (!client.send_within(kReserve, left(deadline))) return "worker could not send";
      continue;
    }
    if (l->rfind("RESERVED ", 0) != 0) return "reserve answered '" + *l + "'";
    std::string id = l->substr(9, l->find(' ', 9) - 9);
    if (!client.line(left(deadline))) return "worker: no job body";
    if (!client.send_within(fmt::format("delete {}\r\n{}", id, kReserve), left(deadline)))
      return "worker could not send";
    auto d = client.line(left(deadline));
    if (!d || *d != "DELETED") return "delete answered '" + d.value_or("(nothing)") + "'";
    if (deleted.fetch_add(1) + 1 == total) done_at = seconds_since(t0);
  }
}

void measure_puts(const std::string& binary, const BeanstalkSpec& spec, ScenarioReport& r) {
  PeerServer server = start_beanstalkd(binary);
  Client client(server.port());
  auto t0 = Clock::now();
  std::string error =
      put_many(client, static_cast<std::size_t>(spec.puts), spec.window, t0 + spec.timeout);
  double seconds = seconds_since(t0);
  r.usage.push_back(server.usage("beanstalkd (puts)"));
  if (!error.empty()) throw std::runtime_error("puts: " + error);
  double rate = safe_rate(spec.puts, seconds);
  r.figures["put_rate"] = rate;
  r.details.push_back(fmt::format(
      "durable puts: {} in {:.3f} s, {} puts/s (1 client pipelining, fsync on every write)",
      grouped(spec.puts), seconds, grouped(rate)));
}

void measure_e2e(const std::string& binary, const BeanstalkSpec& spec, ScenarioReport& r) {
  PeerServer server = start_beanstalkd(binary);
  std::vector<std::unique_ptr<Client>> workers, producers;
  for (int i = 0; i < spec.workers; ++i) workers.push_back(std::make_unique<Client>(server.port()));
  for (int i = 0; i < spec.producers; ++i) {
    producers.push_back(std::make_unique<Client>(server.port()));
  }
  std::atomic<int> deleted{0};
  std::atomic<double> done_at{0};
  std::atomic<bool> abort{false};
  std::vector<std::string> errors(workers.size() + producers.size());
  auto t0 = Clock::now();
  Deadline deadline = t0 + spec.timeout;
  {
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < workers.size(); ++i) {
      threads.emplace_back([&, i] {
        errors[i] = work(*workers[i], spec.jobs, deleted, abort, t0, done_at, deadline);
      });
    }
    auto np = producers.size();
    for (std::size_t i = 0; i < np; ++i) {
      std::size_t share = static_cast<std::size_t>(spec.jobs) / np +
                          (i < static_cast<std::size_t>(spec.jobs) % np ? 1 : 0);
      threads.emplace_back([&, i, share] {
        errors[workers.size() + i] = put_many(*producers[i], share, spec.window, deadline);
        if (!errors[workers.size() + i].empty()) abort = true;
      });
    }
    for (auto& t : threads) t.join();
  }
  r.usage.push_back(server.usage("beanstalkd (e2e)"));
  for (const auto& e : errors) {
    if (!e.empty()) throw std::runtime_error("end to end: " + e);
  }
  double rate = safe_rate(spec.jobs, done_at);
  r.figures["e2e_rate"] = rate;
  r.details.push_back(fmt::format(
      "put-reserve-delete: {} jobs, {} producers pipelining, {} workers: all deleted after "
      "{:.3f} s, {} jobs/s",
      grouped(spec.jobs), spec.producers, spec.workers, done_at.load(), grouped(rate)));
}

}  // namespace

BeanstalkRun run_beanstalk(const BeanstalkSpec& spec) {
  BeanstalkRun run;
  run.report.name = "beanstalkd";
  std::string binary = find_on_path("beanstalkd");
  if (binary.empty()) {
    run.skipped = true;
    run.why_skipped = "beanstalkd is not on PATH (scripts/install-deps --bench installs it)";
    return run;
  }
  auto t0 = Clock::now();
  ProcessUsage self_before = self_usage();
  try {
    measure_puts(binary, spec, run.report);
    measure_e2e(binary, spec, run.report);
  } catch (const std::exception& e) {
    run.report.error = e.what();
  }
  ProcessUsage self = self_usage();
  self.cpu_s -= self_before.cpu_s;
  run.report.usage.push_back(self);
  run.report.details.insert(run.report.details.begin(),
                            binary + " -l 127.0.0.1 -p PORT -b DIR -f 0");
  run.report.seconds = seconds_since(t0);
  return run;
}

}  // namespace jc::bench
