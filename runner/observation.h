// What the sandbox observed of one run of a run job (its check step, one
// test case, or its only run). The sandbox fills it and knows nothing of
// verdicts; the judge (judge.h) alone turns it into one.
#pragma once

#include <cstdint>
#include <string>

namespace jc::runner {

struct Observation {
  // How the job's shell ended: its exit code, or the signal that ended it
  // (exit_code is then 128 + signal).
  std::int32_t exit_code = 0;
  std::int32_t signal = 0;
  // What the sandbox did.
  bool killed_at_timeout = false;    // its wall-clock time reached --timeout
  bool killed_at_cpu_limit = false;  // its CPU time reached --cpu
  bool output_exceeded = false;      // a stream went over --output: cut, and the run ended
  bool cancelled = false;
  bool start_failed = false;  // the node could not start it: the node's fault, not the job's
  // Figures of the whole process tree: from its cgroup, or where the node
  // has none, from what job_init reaped (CPU time of every process, the
  // largest single process's peak).
  std::int64_t wall_ms = 0;
  std::int64_t cpu_ms = 0;
  std::int64_t peak_kb = 0;
  std::int64_t oom_kills = 0;  // the cgroup's: the tree went over --memory
  std::string stdout_data;
  std::string stderr_data;
  bool stdout_truncated = false;
  bool stderr_truncated = false;
};

}  // namespace jc::runner
