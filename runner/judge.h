// Judging a run job: the verdict of what the sandbox observed of each run,
// the comparison of outputs, and the job's result from its check step and
// its runs. Pure functions: no processes, no clock.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/job.h"
#include "runner/observation.h"

namespace jc::runner {

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

// The verdict of one run, from what the sandbox observed and never from the
// shell's exit code alone: CANCELLED; TIME_LIMIT_EXCEEDED when the sandbox
// ended it at a time limit; MEMORY_LIMIT_EXCEEDED when its cgroup counted an
// OOM kill; TIME_LIMIT_EXCEEDED when its CPU time went over `limits.cpu_ms`;
// OUTPUT_LIMIT_EXCEEDED; RUNTIME_ERROR for a non-zero exit or a signal; then
// (with an expected output) ACCEPTED or WRONG_ANSWER; "" for a plain success.
std::string verdict_of(const Observation& o, const std::string* expected,
                       const protocol::Limits& limits);

// Whether a check step (compile, syntax check) failed.
bool check_failed(const Observation& check, const protocol::Limits& limits);

// Judges a run job as its runs end, one at a time, and keeps only what the
// result shows: each case's verdict and figures (its output cut to a few
// KiB), and the whole output of the one run the result shows (the first
// failing case, else the last run). A job of many cases that print much
// thus costs the node the output of two runs at most (the one being read
// and the one kept), whatever the number of cases.
class JobJudge {
 public:
  // `spec` must outlive the judge. `sandbox` names the protections that
  // applied.
  JobJudge(const protocol::JobSpec& spec, std::string sandbox);

  // The check step (compile, syntax check). False when it failed: the
  // result is then final and no case runs.
  bool judge_check(Observation check);
  // The next run: test case number runs_judged(), or the only run.
  void judge_run(Observation run);
  std::size_t runs_judged() const { return runs_; }
  // The job's result; once, at the end.
  protocol::JobResult finish();

 private:
  const protocol::JobSpec& spec_;
  protocol::JobResult result_;
  std::optional<Observation> shown_;  // the run whose output the result shows
  std::string first_failure_;
  std::size_t first_failing_ = 0;
  std::size_t runs_ = 0;
  bool check_failed_ = false;
};

// The job's result from its check step (may be null) and its runs, in order
// (one per test case, or one): JobJudge fed with each in turn.
protocol::JobResult summarize(const Observation* check, const std::vector<Observation>& runs,
                              const protocol::JobSpec& spec, const std::string& sandbox);

}  // namespace jc::runner
