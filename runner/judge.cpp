#include "runner/judge.h"

#include <fmt/format.h>

#include <algorithm>

namespace jc::runner {

using protocol::JobState;

namespace {

// Case results keep at most this much of each stream: a summary, not the log.
constexpr std::size_t kCaseOutputBytes = 4096;

std::vector<std::string_view> normalized_lines(std::string_view s) {
  std::vector<std::string_view> lines;
  while (!s.empty()) {
    auto nl = s.find('\n');
    std::string_view line = s.substr(0, nl);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r')) {
      line.remove_suffix(1);
    }
    lines.push_back(line);
    if (nl == std::string_view::npos) break;
    s.remove_prefix(nl + 1);
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

protocol::CaseResult case_result(const Observation& o, std::string name, std::string verdict) {
  protocol::CaseResult c;
  c.name = std::move(name);
  c.verdict = std::move(verdict);
  c.exit_code = o.exit_code;
  c.signal = o.signal;
  c.wall_ms = o.wall_ms;
  c.cpu_ms = o.cpu_ms;
  c.peak_kb = o.peak_kb;
  c.stdout_data = o.stdout_data.substr(0, kCaseOutputBytes);
  c.stderr_data = o.stderr_data.substr(0, kCaseOutputBytes);
  c.stdout_truncated = o.stdout_truncated || o.stdout_data.size() > kCaseOutputBytes;
  c.stderr_truncated = o.stderr_truncated || o.stderr_data.size() > kCaseOutputBytes;
  return c;
}

void copy_process(const Observation& o, protocol::JobResult& r) {
  r.exit_code = o.exit_code;
  r.signal = o.signal;
  r.stdout_data = o.stdout_data;
  r.stderr_data = o.stderr_data;
  r.stdout_truncated = o.stdout_truncated;
  r.stderr_truncated = o.stderr_truncated;
}

JobState state_for(std::string_view verdict, const Observation& o) {
  if (o.cancelled) return JobState::kCancelled;
  if (verdict.empty() || verdict == kAccepted) return JobState::kDone;
  if (verdict == kTimeLimit) return JobState::kTimeout;
  return JobState::kFailed;
}

}  // namespace

bool outputs_match(std::string_view actual, std::string_view expected) {
  return normalized_lines(actual) == normalized_lines(expected);
}

std::string verdict_of(const Observation& o, const std::string* expected,
                       const protocol::Limits& limits) {
  if (o.cancelled) return std::string(kCancelled);
  if (o.killed_at_timeout || o.killed_at_cpu_limit) return std::string(kTimeLimit);
  if (o.oom_kills > 0) return std::string(kMemoryLimit);
  if (limits.cpu_ms > 0 && o.cpu_ms > limits.cpu_ms) return std::string(kTimeLimit);
  if (o.output_exceeded) return std::string(kOutputLimit);
  if (o.exit_code != 0 || o.signal != 0) return std::string(kRuntimeError);
  if (expected == nullptr) return "";
  return std::string(outputs_match(o.stdout_data, *expected) ? kAccepted : kWrongAnswer);
}

bool check_failed(const Observation& check, const protocol::Limits& limits) {
  std::string v = verdict_of(check, nullptr, limits);
  return !v.empty();
}

protocol::JobResult summarize(const Observation* check, const std::vector<Observation>& runs,
                              const protocol::JobSpec& spec, const std::string& sandbox) {
  protocol::JobResult r;
  r.is_run = true;
  r.sandbox = sandbox;
  std::int64_t cpu = 0, peak = 0;
  auto account = [&](const Observation& o) {
    cpu += o.cpu_ms;
    peak = std::max(peak, o.peak_kb);
  };
  if (check != nullptr) {
    account(*check);
    if (check_failed(*check, spec.limits)) {
      std::string v = check->cancelled ? std::string(kCancelled) : std::string(kCompileError);
      std::string why = verdict_of(*check, nullptr, spec.limits);
      r.cases.push_back(case_result(*check, "check", v));
      copy_process(*check, r);
      r.verdict = v;
      r.state = check->cancelled ? JobState::kCancelled : JobState::kFailed;
      r.text = check->cancelled
                   ? "cancelled during the check step"
                   : fmt::format("COMPILE_ERROR: the check step failed ({}, exit {})",
                                 why, check->exit_code);
      r.cpu_ms = cpu;
      r.peak_kb = peak;
      return r;
    }
  }
  bool judged = !spec.cases.empty();
  std::string first_failure;
  std::size_t first_failing = 0;
  const Observation* shown = runs.empty() ? nullptr : &runs.back();
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const Observation& o = runs[i];
    account(o);
    const std::string* expected = nullptr;
    if (judged && spec.cases[i].has_expected) expected = &spec.cases[i].expected;
    if (!judged && spec.has_expected) expected = &spec.expected;
    std::string v = verdict_of(o, expected, spec.limits);
    if (v.empty() || v == kAccepted) {
      ++r.passed;
    } else if (first_failure.empty()) {
      first_failure = v;
      first_failing = i;
      shown = &o;
    }
    if (judged) {
      std::string name = spec.cases[i].name.empty() ? std::to_string(i + 1) : spec.cases[i].name;
      r.cases.push_back(case_result(o, name, v.empty() ? std::string(kAccepted) : v));
    } else {
      r.verdict = v;
    }
  }
  if (shown != nullptr) copy_process(*shown, r);
  r.cpu_ms = cpu;
  r.peak_kb = peak;
  std::size_t total = judged ? spec.cases.size() : 1;
  if (judged) {
    r.verdict = first_failure.empty() ? std::string(kAccepted) : first_failure;
    r.text = first_failure.empty()
                 ? fmt::format("passed {}/{}", r.passed, total)
                 : fmt::format("passed {}/{}, first failing case {} ({})", r.passed, total,
                               r.cases[first_failing].name, first_failure);
  } else {
    r.text = r.verdict.empty() ? fmt::format("exit {}", r.exit_code)
                               : fmt::format("{} (exit {}{})", r.verdict, r.exit_code,
                                             r.signal ? fmt::format(", signal {}", r.signal) : "");
  }
  r.state = shown != nullptr ? state_for(first_failure.empty() ? r.verdict : first_failure, *shown)
                             : JobState::kFailed;
  if (!runs.empty() && runs.size() < total) r.state = JobState::kCancelled;
  return r;
}

}  // namespace jc::runner
