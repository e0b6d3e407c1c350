// What jc_bench reads from the outside world while a scenario runs: process
// usage from /proc, the cluster's `stats` through a node, a sampler thread
// that takes `stats` every period, and small file and port helpers.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bench/replies.h"
#include "bench/report.h"
#include "tests/support/cluster.h"

namespace jc::bench {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0);

// CPU seconds and memory of a live process (zeros when it is gone).
ProcessUsage usage_of(const std::string& name, pid_t pid);
// VmRSS of a live process in kB, as /proc/<pid>/status gives it; -1 when gone.
std::int64_t rss_kb(pid_t pid);
// The proxy's and every node's.
std::vector<ProcessUsage> cluster_usage(jc::test::Cluster& cluster);
// jc_bench's own (its client threads share the machine's two cores).
ProcessUsage self_usage();

// `stats` through `client`; nullopt when the reply is late or malformed.
std::optional<ClusterSnapshot> query_stats(
    jc::test::Client& client, std::chrono::milliseconds timeout = std::chrono::seconds(10));
// Polls `stats` on a fresh connection to `port` until `done` holds or the
// deadline passes; returns the last snapshot that satisfied it.
std::optional<ClusterSnapshot> poll_stats(
    std::uint16_t port, const std::function<bool(const ClusterSnapshot&)>& done,
    std::chrono::milliseconds timeout,
    std::chrono::milliseconds step = std::chrono::milliseconds(100));

// Takes `stats` through the node on `port` every `period` on its own thread
// and connection, stamping each sample with the seconds since `t0`, until
// stop(). A reply later than the period only delays the next sample.
class Sampler {
 public:
  Sampler(std::uint16_t port, Clock::time_point t0,
          std::chrono::milliseconds period = std::chrono::milliseconds(100));
  ~Sampler();
  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;
  // Stops the thread (it ends within one stats timeout) and returns the samples.
  std::vector<ClusterSnapshot> stop();
  int failures() const { return failures_; }

 private:
  void run(std::uint16_t port);
  Clock::time_point t0_;
  std::chrono::milliseconds period_;
  std::atomic<bool> stop_{false};
  std::atomic<int> failures_{0};
  std::vector<ClusterSnapshot> samples_;
  std::thread thread_;
};

// How long a node keeps a client waiting while other work runs on it: a
// thread that asks `status` of a finished job of its own (which the node
// answers alone, from memory) every period, and times each answer.
class StatusProbe {
 public:
  StatusProbe(std::uint16_t port, std::chrono::milliseconds period = std::chrono::milliseconds(5));
  ~StatusProbe();
  StatusProbe(const StatusProbe&) = delete;
  StatusProbe& operator=(const StatusProbe&) = delete;
  // Stops the thread and returns each answer's time in ms; `error` says
  // why there are none (no ticket, or no answers).
  std::vector<double> stop(std::string& error);

 private:
  void run(std::uint16_t port);
  std::chrono::milliseconds period_;
  std::atomic<bool> stop_{false};
  std::vector<double> ms_;
  std::string error_;
  std::thread thread_;
};

// The absolute path of `name` on PATH, "" when absent.
std::string find_on_path(const std::string& name);
// A loopback port that was free a moment ago (bound to port 0, then closed).
std::uint16_t free_loopback_port();
// The sizes of the regular files under a directory, recursively, in bytes
// (0 when it cannot be read); dir_size_mb in MB.
std::int64_t dir_bytes(const std::string& path);
double dir_size_mb(const std::string& path);
// Writes `text` to `path`, creating its directory; "" or why it failed.
std::string write_file(const std::string& path, const std::string& text);

}  // namespace jc::bench
