#include "runner/judge.h"

#include <fmt/format.h>

#include <algorithm>
#include <optional>

namespace jc::runner {

using protocol::JobState;

namespace {

// Case results keep at most this much of each stream: a summary, not the log.
constexpr std::size_t kCaseOutputBytes = 4096;
// A passing check step's output (warnings) is kept up to this much.
constexpr std::size_t kCheckOutputBytes = 64 * 1024;

// The lines of an output one at a time, each without its trailing spaces,
// tabs and carriage returns; nothing is copied, so comparing two outputs of
// megabytes costs no memory.
class Lines {
 public:
  explicit Lines(std::string_view s) : rest_(s), done_(false) {}
  // The next line, or nullopt after the last (the text after the last
  // newline is a line too, empty when the output ends in one).
  std::optional<std::string_view> next() {
    if (done_) return std::nullopt;
    auto nl = rest_.find('\n');
    std::string_view line = rest_.substr(0, nl);
    if (nl == std::string_view::npos) {
      done_ = true;
    } else {
      rest_.remove_prefix(nl + 1);
    }
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r')) {
      line.remove_suffix(1);
    }
    return line;
  }

 private:
  std::string_view rest_;
  bool done_;
};

// Whether every line left is empty.
bool only_empty_lines(Lines& lines) {
  while (auto line = lines.next()) {
    if (!line->empty()) return false;
  }
  return true;
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

// The shown run's whole output goes into the result (moved, not copied:
// it may be megabytes).
void copy_process(Observation&& o, protocol::JobResult& r) {
  r.exit_code = o.exit_code;
  r.signal = o.signal;
  r.stdout_data = std::move(o.stdout_data);
  r.stderr_data = std::move(o.stderr_data);
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
  // Line by line; once one side ends, what is left of the other must be
  // empty lines (trailing empty lines do not count).
  Lines a(actual), e(expected);
  while (true) {
    auto la = a.next();
    auto le = e.next();
    if (!la) return (!le || le->empty()) && only_empty_lines(e);
    if (!le) return la->empty() && only_empty_lines(a);
    if (*la != *le) return false;
  }
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

JobJudge::JobJudge(const protocol::JobSpec& spec, std::string sandbox) : spec_(spec) {
  result_.is_run = true;
  result_.sandbox = std::move(sandbox);
  if (spec.is_api) result_.api_runs = std::max<std::uint32_t>(1, spec.api.number_of_runs);
}

bool JobJudge::judge_check(Observation check) {
  result_.cpu_ms += check.cpu_ms;
  result_.peak_kb = std::max(result_.peak_kb, check.peak_kb);
  // A compile is judged against its own limits where the job has them.
  const protocol::Limits& limits =
      spec_.check_limits.timeout_ms > 0 ? spec_.check_limits : spec_.limits;
  if (!check_failed(check, limits)) {
    // A compiler's warnings: shown, as judge0 shows compile_output.
    std::string& out = result_.check_output;
    out = check.stdout_data.substr(0, kCheckOutputBytes);
    out += check.stderr_data.substr(0, kCheckOutputBytes - out.size());
    return true;
  }
  check_failed_ = true;
  std::string v = check.cancelled ? std::string(kCancelled) : std::string(kCompileError);
  std::string why = verdict_of(check, nullptr, limits);
  result_.cases.push_back(case_result(check, "check", v));
  result_.verdict = v;
  result_.state = check.cancelled ? JobState::kCancelled : JobState::kFailed;
  result_.text = check.cancelled ? "cancelled during the check step"
                                 : fmt::format("COMPILE_ERROR: the check step failed ({}, exit {})",
                                               why, check.exit_code);
  shown_ = std::move(check);
  return false;
}

void JobJudge::judge_run(Observation o) {
  const std::size_t i = runs_++;
  result_.cpu_ms += o.cpu_ms;
  result_.peak_kb = std::max(result_.peak_kb, o.peak_kb);
  const bool judged = !spec_.cases.empty();
  const std::string* expected = nullptr;
  if (judged && i < spec_.cases.size() && spec_.cases[i].has_expected) {
    expected = &spec_.cases[i].expected;
  }
  if (!judged && spec_.has_expected) expected = &spec_.expected;
  std::string v = verdict_of(o, expected, spec_.limits);
  bool failed = !v.empty() && v != kAccepted;
  if (!failed) ++result_.passed;
  if (judged) {
    std::string name = i < spec_.cases.size() && !spec_.cases[i].name.empty()
                           ? spec_.cases[i].name
                           : std::to_string(i + 1);
    result_.cases.push_back(case_result(o, name, v.empty() ? std::string(kAccepted) : v));
  } else {
    result_.verdict = v;
  }
  // The first failing run stays shown; until there is one, the latest, whose
  // output is kept only if it may be the last: a passing run with more to
  // come is never shown (a later failure or the last run will be).
  const std::size_t total = judged ? spec_.cases.size() : 1;
  if (!failed && i + 1 < total) {
    o.stdout_data = std::string();
    o.stderr_data = std::string();
  }
  if (failed && first_failure_.empty()) {
    first_failure_ = std::move(v);
    first_failing_ = i;
    shown_ = std::move(o);
  } else if (first_failure_.empty()) {
    shown_ = std::move(o);
  }
}

protocol::JobResult JobJudge::finish() {
  protocol::JobResult r = std::move(result_);
  if (shown_) copy_process(std::move(*shown_), r);
  if (check_failed_) return r;
  const bool judged = !spec_.cases.empty();
  const std::size_t total = judged ? spec_.cases.size() : 1;
  if (judged) {
    r.verdict = first_failure_.empty() ? std::string(kAccepted) : first_failure_;
    r.text = first_failure_.empty()
                 ? fmt::format("passed {}/{}", r.passed, total)
                 : fmt::format("passed {}/{}, first failing case {} ({})", r.passed, total,
                               r.cases[first_failing_].name, first_failure_);
  } else {
    r.text = r.verdict.empty() ? fmt::format("exit {}", r.exit_code)
                               : fmt::format("{} (exit {}{})", r.verdict, r.exit_code,
                                             r.signal ? fmt::format(", signal {}", r.signal) : "");
  }
  r.state = shown_ ? state_for(first_failure_.empty() ? r.verdict : first_failure_, *shown_)
                   : JobState::kFailed;
  if (runs_ > 0 && runs_ < total) r.state = JobState::kCancelled;
  shown_.reset();
  return r;
}

protocol::JobResult summarize(const Observation* check, const std::vector<Observation>& runs,
                              const protocol::JobSpec& spec, const std::string& sandbox) {
  JobJudge judge(spec, sandbox);
  if (check != nullptr && !judge.judge_check(*check)) return judge.finish();
  for (const Observation& o : runs) judge.judge_run(o);
  return judge.finish();
}

}  // namespace jc::runner
