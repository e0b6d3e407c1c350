// beanstalkd measured on the same machine in the same run, for the figures
// that compare: durable puts (binlog with an fsync on every write, `-f 0`)
// and put-reserve-delete end to end. Spoken over raw sockets in the
// beanstalk text protocol; each measure gets a fresh server on a free
// loopback port with a fresh binlog directory, stopped by its PID.
#pragma once

#include <chrono>
#include <string>

#include "bench/report.h"

namespace jc::bench {

struct BeanstalkSpec {
  int puts = 100'000;  // one client pipelining puts
  int jobs = 100'000;  // end to end
  int producers = 3;   // pipelining puts
  int workers = 3;     // reserve, delete, one job at a time each
  std::size_t window = 10000;
  std::chrono::seconds timeout{600};
};

struct BeanstalkRun {
  bool skipped = false;  // beanstalkd is not installed
  std::string why_skipped;
  // figures "put_rate" and "e2e_rate"; error when a measure failed.
  ScenarioReport report;
};
BeanstalkRun run_beanstalk(const BeanstalkSpec& spec);

}  // namespace jc::bench
