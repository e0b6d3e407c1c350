#include "cluster_node/judge.h"

#include <fmt/format.h>

#include <algorithm>

namespace jc::node {

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

bool looks_like_memory_failure(const ProcessOutcome& o, std::int64_t memory_mb) {
  if (memory_mb > 0 && o.peak_kb >= memory_mb * 1024 * 9 / 10) return true;
  std::string err = o.stderr_data;
  std::transform(err.begin(), err.end(), err.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (std::string_view needle :
       {"memoryerror", "cannot allocate", "bad_alloc", "out of memory", "memory exhausted"}) {
    if (err.find(needle) != std::string::npos) return true;
  }
  return false;
}

protocol::CaseResult case_result(const ProcessOutcome& o, std::string name, std::string verdict) {
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

void copy_process(const ProcessOutcome& o, protocol::JobResult& r) {
  r.exit_code = o.exit_code;
  r.signal = o.signal;
  r.stdout_data = o.stdout_data;
  r.stderr_data = o.stderr_data;
  r.stdout_truncated = o.stdout_truncated;
  r.stderr_truncated = o.stderr_truncated;
}

JobState state_for(std::string_view verdict, const ProcessOutcome& o) {
  if (o.cancelled) return JobState::kCancelled;
  if (verdict.empty() || verdict == kAccepted) return JobState::kDone;
  if (verdict == kTimeLimit) return JobState::kTimeout;
  return JobState::kFailed;
}

}  // namespace

bool outputs_match(std::string_view actual, std::string_view expected) {
  return normalized_lines(actual) == normalized_lines(expected);
}

std::string verdict_of(const ProcessOutcome& o, const std::string* expected,
                       std::int64_t memory_mb) {
  if (o.cancelled) return std::string(kCancelled);
  if (o.timed_out || o.cpu_exceeded) return std::string(kTimeLimit);
  if (o.output_exceeded) return std::string(kOutputLimit);
  if (o.exit_code != 0 || o.signal != 0) {
    return std::string(looks_like_memory_failure(o, memory_mb) ? kMemoryLimit : kRuntimeError);
  }
  if (expected == nullptr) return "";
  return std::string(outputs_match(o.stdout_data, *expected) ? kAccepted : kWrongAnswer);
}

protocol::JobResult summarize(const ProcessOutcome* check, const std::vector<ProcessOutcome>& runs,
                              const protocol::JobSpec& spec, std::int64_t memory_mb) {
  protocol::JobResult r;
  r.is_run = true;
  std::int64_t cpu = 0, peak = 0;
  auto account = [&](const ProcessOutcome& o) {
    cpu += o.cpu_ms;
    peak = std::max(peak, o.peak_kb);
  };
  if (check != nullptr) {
    account(*check);
    if (check->cancelled || check->exit_code != 0 || check->signal != 0 || check->timed_out) {
      std::string v = check->cancelled ? std::string(kCancelled) : std::string(kCompileError);
      r.cases.push_back(case_result(*check, "check", v));
      copy_process(*check, r);
      r.verdict = v;
      r.state = check->cancelled ? JobState::kCancelled : JobState::kFailed;
      r.text = check->cancelled ? "cancelled during the check step"
                                : fmt::format("COMPILE_ERROR: the check step failed (exit {})",
                                              check->exit_code);
      r.cpu_ms = cpu;
      r.peak_kb = peak;
      return r;
    }
  }
  bool judged = !spec.cases.empty();
  std::string first_failure;
  std::size_t first_failing = 0;
  const ProcessOutcome* shown = runs.empty() ? nullptr : &runs.back();
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const ProcessOutcome& o = runs[i];
    account(o);
    const std::string* expected = nullptr;
    if (judged && spec.cases[i].has_expected) expected = &spec.cases[i].expected;
    if (!judged && spec.has_expected) expected = &spec.expected;
    std::string v = verdict_of(o, expected, memory_mb);
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

}  // namespace jc::node
