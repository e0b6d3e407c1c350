// redis measured on the same machine in the same run, for the figures that
// compare (issue 21's table): a queue whose every write is durable before
// its reply (`appendonly yes`, `appendfsync always`), used the way reliable
// queues use it.
//   - durable pushes: one client pipelining LPUSH;
//   - end to end: producers pipelining LPUSH, and workers each moving jobs
//     to a processing list of their own (BLMOVE) and removing them once
//     done (LREM), pipelined in batches, until every job is removed;
//   - idle latency: one job at a time, from its LPUSH until its worker's
//     LREM is answered.
// Spoken over raw sockets in RESP; each measure gets a fresh server on a
// free loopback port with a fresh directory, stopped by its PID.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "bench/report.h"

namespace jc::bench {

struct RedisSpec {
  int pushes = 100'000;  // one client pipelining LPUSH
  int jobs = 100'000;    // end to end
  int producers = 3;     // pipelining LPUSH
  int workers = 3;       // BLMOVE + LREM, pipelined in batches
  int latency_jobs = 200;
  std::size_t window = 10000;
  std::chrono::seconds timeout{600};
};

struct RedisRun {
  bool skipped = false;  // redis-server is not installed
  std::string why_skipped;
  // figures "push_rate", "e2e_rate", "latency_p50_ms", "latency_p99_ms",
  // "e2e_rss_mb"; error when a measure failed.
  ScenarioReport report;
};
RedisRun run_redis(const RedisSpec& spec);

// One command in RESP, as redis-cli sends it: an array of bulk strings.
std::string resp_command(const std::vector<std::string>& words);

}  // namespace jc::bench
