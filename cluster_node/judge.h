// Judging a run job: how one process ended, the verdict that gives, and the
// comparison of outputs. Pure functions; the sandbox only measures.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/job.h"

namespace jc::node {

// How one process of a run job ended, as the sandbox measured it.
struct ProcessOutcome {
  std::int32_t exit_code = 0;
  std::int32_t signal = 0;  // the signal that ended it, 0 if it exited
  bool timed_out = false;   // wall clock limit
  bool cpu_exceeded = false;
  bool output_exceeded = false;
  bool cancelled = false;
  bool start_failed = false;  // fork/exec or set-up failed: a node problem, not the job's
  std::int64_t wall_ms = 0;
  std::int64_t cpu_ms = 0;
  std::int64_t peak_kb = 0;
  std::string stdout_data;
  std::string stderr_data;
  bool stdout_truncated = false;
  bool stderr_truncated = false;
};

constexpr std::string_view kAccepted = "ACCEPTED";
constexpr std::string_view kWrongAnswer = "WRONG_ANSWER";
constexpr std::string_view kTimeLimit = "TIME_LIMIT_EXCEEDED";
constexpr std::string_view kMemoryLimit = "MEMORY_LIMIT_EXCEEDED";
constexpr std::string_view kOutputLimit = "OUTPUT_LIMIT_EXCEEDED";
constexpr std::string_view kRuntimeError = "RUNTIME_ERROR";
constexpr std::string_view kCompileError = "COMPILE_ERROR";
constexpr std::string_view kCancelled = "CANCELLED";

// Equal once trailing white space is removed from every line and trailing
// empty lines are dropped, as judges compare.
bool outputs_match(std::string_view actual, std::string_view expected);

// The verdict of one process: a limit or a crash first, then (when an
// expected output is given) the comparison; "" for a plain success.
std::string verdict_of(const ProcessOutcome& o, const std::string* expected,
                       std::int64_t memory_mb);

// The job's result from its check step (may be null) and its cases (or its
// single run), in order. `expected` gives each case's expected output or null.
protocol::JobResult summarize(const ProcessOutcome* check, const std::vector<ProcessOutcome>& runs,
                              const protocol::JobSpec& spec, std::int64_t memory_mb);

}  // namespace jc::node
