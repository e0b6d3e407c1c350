// Unit tests of runner/judge.h: output comparison, the verdict of one run
// from what the sandbox observed, and the summary of a run job. Pure:
// observations are built by hand.
#include "runner/judge.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "protocol/job.h"

namespace jc::runner {
namespace {

using protocol::JobState;

// A process that exited 0 and printed `out`.
Observation ok(std::string out = "", std::int64_t cpu_ms = 0, std::int64_t peak_kb = 0) {
  Observation o;
  o.stdout_data = std::move(out);
  o.cpu_ms = cpu_ms;
  o.peak_kb = peak_kb;
  return o;
}

Observation exited(std::int32_t code, std::string err = "") {
  Observation o;
  o.exit_code = code;
  o.stderr_data = std::move(err);
  return o;
}

protocol::TestCase test_case(std::string name, std::string expected) {
  protocol::TestCase c;
  c.name = std::move(name);
  c.has_expected = true;
  c.expected = std::move(expected);
  return c;
}

// Limits of 1000 ms of CPU time, 64 MB.
protocol::Limits limits(std::uint32_t cpu_ms = 1000) {
  protocol::Limits l;
  l.timeout_ms = 2000;
  l.cpu_ms = cpu_ms;
  l.memory_mb = 64;
  l.output_kb = 64;
  l.disk_mb = 64;
  return l;
}

std::string verdict(const Observation& o, const std::string* expected = nullptr) {
  return verdict_of(o, expected, limits());
}

// A spec whose limits are those above.
protocol::JobSpec spec_with_limits() {
  protocol::JobSpec spec;
  spec.limits = limits();
  return spec;
}

}  // namespace

// ---- outputs_match ---------------------------------------------------------

TEST_CASE("judge: identical outputs match") {
  CHECK(outputs_match("1 2 3\nfoo\n", "1 2 3\nfoo\n"));
  CHECK(outputs_match("", ""));
}

TEST_CASE("judge: trailing spaces, tabs and carriage returns at line ends are ignored") {
  CHECK(outputs_match("a  \nb\t\nc\r\n", "a\nb\nc\n"));
  CHECK(outputs_match("a\r\nb\r\n", "a\nb\n"));
  CHECK(outputs_match("x \t\r \n", "x\n"));
}

TEST_CASE("judge: trailing empty lines are ignored") {
  CHECK(outputs_match("a\nb\n\n\n", "a\nb\n"));
  CHECK(outputs_match("a\n", "a\n\n  \n\t\n"));
}

TEST_CASE("judge: a missing final newline is fine") {
  CHECK(outputs_match("42", "42\n"));
  CHECK(outputs_match("a\nb\n", "a\nb"));
}

TEST_CASE("judge: empty output equals output of only newlines") {
  CHECK(outputs_match("", "\n\n"));
  CHECK(outputs_match("\n", ""));
}

TEST_CASE("judge: a different line does not match") {
  CHECK_FALSE(outputs_match("1\n2\n", "1\n3\n"));
  CHECK_FALSE(outputs_match("abc\n", "abd\n"));
}

TEST_CASE("judge: an extra non-empty line does not match") {
  CHECK_FALSE(outputs_match("a\nb\n", "a\n"));
  CHECK_FALSE(outputs_match("a\n", "a\nb\n"));
  CHECK_FALSE(outputs_match("", "x\n"));
}

TEST_CASE("judge: leading white space differences do not match") {
  CHECK_FALSE(outputs_match(" a\n", "a\n"));
  CHECK_FALSE(outputs_match("a\n\tb\n", "a\nb\n"));
}

TEST_CASE("judge: an empty line in the middle is significant") {
  CHECK_FALSE(outputs_match("a\n\nb\n", "a\nb\n"));
}

// ---- verdict_of ------------------------------------------------------------

TEST_CASE("judge: a cancelled run is CANCELLED, before anything else") {
  Observation o = exited(1);
  o.cancelled = true;
  o.killed_at_timeout = true;
  o.oom_kills = 1;
  o.signal = 9;
  CHECK(verdict(o) == kCancelled);
}

TEST_CASE("judge: a run the sandbox ended at --timeout is TIME_LIMIT_EXCEEDED") {
  Observation o = ok();
  o.killed_at_timeout = true;
  CHECK(verdict(o) == kTimeLimit);
}

TEST_CASE("judge: a run the sandbox ended at --cpu is TIME_LIMIT_EXCEEDED") {
  Observation o = ok();
  o.killed_at_cpu_limit = true;
  CHECK(verdict(o) == kTimeLimit);
}

TEST_CASE("judge: CPU time over the limit is TIME_LIMIT_EXCEEDED whatever the shell's exit code") {
  // The CPU rlimit killed the shell's child: the shell exits 128+24, which
  // alone would read as a runtime error.
  Observation o = exited(152);
  o.cpu_ms = 1001;
  CHECK(verdict(o) == kTimeLimit);
  Observation clean = ok("3\n");
  clean.cpu_ms = 1500;
  std::string expected = "3\n";
  CHECK(verdict_of(clean, &expected, limits(1000)) == kTimeLimit);
  clean.cpu_ms = 1000;  // at the limit, not over it
  CHECK(verdict_of(clean, &expected, limits(1000)) == kAccepted);
}

TEST_CASE("judge: a time limit takes precedence over a non-zero exit or signal") {
  Observation o = exited(137);
  o.signal = 9;
  o.killed_at_timeout = true;
  CHECK(verdict(o) == kTimeLimit);
  Observation c = exited(1);
  c.killed_at_cpu_limit = true;
  CHECK(verdict(c) == kTimeLimit);
}

TEST_CASE("judge: an OOM kill in the run's cgroup is MEMORY_LIMIT_EXCEEDED whatever the exit code") {
  Observation killed = exited(137);
  killed.signal = 9;
  killed.oom_kills = 1;
  CHECK(verdict(killed) == kMemoryLimit);
  // The shell went on after its child was killed, and exited 0.
  Observation went_on = ok("done\n");
  went_on.oom_kills = 3;
  std::string expected = "done\n";
  CHECK(verdict(went_on, &expected) == kMemoryLimit);
}

TEST_CASE("judge: words on stderr never make a memory verdict") {
  CHECK(verdict(exited(1, "Traceback ...\nMemoryError\n")) == kRuntimeError);
  Observation o = exited(134, "terminate called after throwing an instance of 'std::bad_alloc'\n");
  o.signal = 6;
  CHECK(verdict(o) == kRuntimeError);
  CHECK(verdict(exited(1, "sh: fork: Cannot allocate memory\n")) == kRuntimeError);
  Observation printed = ok("out of memory\n");
  printed.stderr_data = "MemoryError";
  CHECK(verdict(printed) == "");
}

TEST_CASE("judge: a high peak without an OOM kill is no memory verdict") {
  Observation o = exited(1);
  o.peak_kb = 64 * 1024;
  CHECK(verdict(o) == kRuntimeError);
  Observation fine = ok();
  fine.peak_kb = 64 * 1024;
  CHECK(verdict(fine) == "");
}

TEST_CASE("judge: an OOM kill comes before CPU time over the limit and output") {
  Observation o = exited(137);
  o.oom_kills = 1;
  o.cpu_ms = 5000;
  o.output_exceeded = true;
  CHECK(verdict(o) == kMemoryLimit);
}

TEST_CASE("judge: exceeding the output limit is OUTPUT_LIMIT_EXCEEDED") {
  Observation o = ok("lots");
  o.output_exceeded = true;
  CHECK(verdict(o) == kOutputLimit);
  Observation killed = exited(0);
  killed.signal = 25;
  killed.output_exceeded = true;
  CHECK(verdict(killed) == kOutputLimit);
}

TEST_CASE("judge: a non-zero exit is RUNTIME_ERROR") {
  CHECK(verdict(exited(1)) == kRuntimeError);
  CHECK(verdict(exited(2, "Traceback: ZeroDivisionError\n")) == kRuntimeError);
}

TEST_CASE("judge: death by a signal is RUNTIME_ERROR") {
  Observation o = ok();
  o.signal = 11;
  CHECK(verdict(o) == kRuntimeError);
}

TEST_CASE("judge: a runtime error with an expected output is still RUNTIME_ERROR") {
  std::string expected = "x\n";
  Observation o = exited(1);
  o.stdout_data = "x\n";
  CHECK(verdict(o, &expected) == kRuntimeError);
}

TEST_CASE("judge: without a CPU limit CPU time makes no verdict") {
  Observation o = ok();
  o.cpu_ms = 1'000'000;
  CHECK(verdict_of(o, nullptr, limits(0)) == "");
}

TEST_CASE("judge: success with the expected output is ACCEPTED") {
  std::string expected = "3\n";
  CHECK(verdict(ok("3\n"), &expected) == kAccepted);
  CHECK(verdict(ok("3  \r\n\n"), &expected) == kAccepted);
}

TEST_CASE("judge: success with another output is WRONG_ANSWER") {
  std::string expected = "3\n";
  CHECK(verdict(ok("4\n"), &expected) == kWrongAnswer);
  CHECK(verdict(ok(""), &expected) == kWrongAnswer);
}

TEST_CASE("judge: success without an expected output has no verdict") {
  CHECK(verdict(ok("anything\n")) == "");
  CHECK(verdict(ok()) == "");
}

// ---- summarize: a single run -------------------------------------------------

TEST_CASE("judge: summarize a single run without expected output") {
  protocol::JobSpec spec;
  std::vector<Observation> runs{ok("hello\n", 12, 3000)};
  runs[0].stderr_data = "warn\n";
  auto r = summarize(nullptr, runs, spec, "full");
  CHECK(r.is_run);
  CHECK(r.state == JobState::kDone);
  CHECK(r.verdict == "");
  CHECK(r.text == "exit 0");
  CHECK(r.exit_code == 0);
  CHECK(r.stdout_data == "hello\n");
  CHECK(r.stderr_data == "warn\n");
  CHECK(r.cpu_ms == 12);
  CHECK(r.peak_kb == 3000);
  CHECK(r.cases.empty());
}

TEST_CASE("judge: summarize a single run with a wrong expected output") {
  protocol::JobSpec spec;
  spec.has_expected = true;
  spec.expected = "3\n";
  std::vector<Observation> runs{ok("4\n")};
  auto r = summarize(nullptr, runs, spec, "full");
  CHECK(r.is_run);
  CHECK(r.state == JobState::kFailed);
  CHECK(r.verdict == kWrongAnswer);
  CHECK(r.text == "WRONG_ANSWER (exit 0)");
  CHECK(r.stdout_data == "4\n");
  CHECK(r.cases.empty());
}

TEST_CASE("judge: summarize a single run with the right expected output") {
  protocol::JobSpec spec;
  spec.has_expected = true;
  spec.expected = "3\n";
  std::vector<Observation> runs{ok("3\n")};
  auto r = summarize(nullptr, runs, spec, "full");
  CHECK(r.state == JobState::kDone);
  CHECK(r.verdict == kAccepted);
  CHECK(r.passed == 1);
}

TEST_CASE("judge: summarize a single run that timed out") {
  protocol::JobSpec spec;
  Observation o = ok("partial");
  o.killed_at_timeout = true;
  o.signal = 9;
  auto r = summarize(nullptr, {o}, spec, "full");
  CHECK(r.state == JobState::kTimeout);
  CHECK(r.verdict == kTimeLimit);
  CHECK(r.signal == 9);
  CHECK(r.stdout_data == "partial");
  CHECK(r.text == "TIME_LIMIT_EXCEEDED (exit 0, signal 9)");
}

TEST_CASE("judge: summarize a single run that crashed") {
  protocol::JobSpec spec;
  auto r = summarize(nullptr, {exited(3, "boom\n")}, spec, "full");
  CHECK(r.state == JobState::kFailed);
  CHECK(r.verdict == kRuntimeError);
  CHECK(r.exit_code == 3);
  CHECK(r.stderr_data == "boom\n");
  CHECK(r.text == "RUNTIME_ERROR (exit 3)");
}

TEST_CASE("judge: summarize a cancelled single run") {
  protocol::JobSpec spec;
  Observation o = ok();
  o.cancelled = true;
  o.signal = 9;
  auto r = summarize(nullptr, {o}, spec, "full");
  CHECK(r.state == JobState::kCancelled);
  CHECK(r.verdict == kCancelled);
}

TEST_CASE("judge: summarize names the protections that applied") {
  protocol::JobSpec spec;
  CHECK(summarize(nullptr, {ok()}, spec, "full").sandbox == "full");
  CHECK(summarize(nullptr, {ok()}, spec, "user,cgroup").sandbox == "user,cgroup");
}

TEST_CASE("judge: summarize judges CPU time against the job's own limit") {
  protocol::JobSpec spec = spec_with_limits();
  Observation o = exited(152);
  o.cpu_ms = 1200;
  auto r = summarize(nullptr, {o}, spec, "full");
  CHECK(r.verdict == kTimeLimit);
  CHECK(r.state == JobState::kTimeout);
}

// ---- summarize: the check step -------------------------------------------------

TEST_CASE("judge: a failing check step is COMPILE_ERROR with one case named check") {
  protocol::JobSpec spec;
  spec.check = "g++ main.cpp\n";
  spec.command = "./a.out\n";
  spec.cases = {test_case("one", "1\n"), test_case("two", "2\n")};
  Observation check = exited(1, "main.cpp:1: error: expected ';'\n");
  check.stdout_data = "compiler says\n";
  check.cpu_ms = 40;
  check.peak_kb = 5000;
  auto r = summarize(&check, {}, spec, "full");
  CHECK(r.is_run);
  CHECK(r.state == JobState::kFailed);
  CHECK(r.verdict == kCompileError);
  REQUIRE(r.cases.size() == 1);
  CHECK(r.cases[0].name == "check");
  CHECK(r.cases[0].verdict == kCompileError);
  CHECK(r.cases[0].exit_code == 1);
  CHECK(r.exit_code == 1);
  CHECK(r.stderr_data == "main.cpp:1: error: expected ';'\n");
  CHECK(r.stdout_data == "compiler says\n");
  CHECK(r.text == "COMPILE_ERROR: the check step failed (RUNTIME_ERROR, exit 1)");
  CHECK(r.cpu_ms == 40);
  CHECK(r.peak_kb == 5000);
  CHECK(r.passed == 0);
}

TEST_CASE("judge: a check step killed by a signal or timed out is COMPILE_ERROR") {
  protocol::JobSpec spec;
  spec.check = "make\n";
  Observation sig = ok();
  sig.signal = 11;
  CHECK(summarize(&sig, {}, spec, "full").verdict == kCompileError);
  Observation slow = ok();
  slow.killed_at_timeout = true;
  CHECK(summarize(&slow, {}, spec, "full").verdict == kCompileError);
}

TEST_CASE("judge: a cancelled check step is CANCELLED") {
  protocol::JobSpec spec;
  spec.check = "make\n";
  Observation check = ok();
  check.cancelled = true;
  auto r = summarize(&check, {}, spec, "full");
  CHECK(r.state == JobState::kCancelled);
  CHECK(r.verdict == kCancelled);
  REQUIRE(r.cases.size() == 1);
  CHECK(r.cases[0].name == "check");
  CHECK(r.cases[0].verdict == kCancelled);
}

TEST_CASE("judge: a passing check step is not a case and counts in cpu and peak") {
  protocol::JobSpec spec;
  spec.check = "make\n";
  Observation check = ok("built\n", 100, 9000);
  std::vector<Observation> runs{ok("hi\n", 5, 2000)};
  auto r = summarize(&check, runs, spec, "full");
  CHECK(r.state == JobState::kDone);
  CHECK(r.verdict == "");
  CHECK(r.cases.empty());
  CHECK(r.stdout_data == "hi\n");
  CHECK(r.cpu_ms == 105);
  CHECK(r.peak_kb == 9000);
}

// ---- summarize: test cases ------------------------------------------------------

TEST_CASE("judge: cases some passing some not give per-case verdicts and the first failure") {
  protocol::JobSpec spec;
  spec.cases = {test_case("one", "1\n"), test_case("two", "2\n"), test_case("three", "3\n")};
  std::vector<Observation> runs{ok("1\n"), ok("22\n"), exited(1, "crash\n")};
  auto r = summarize(nullptr, runs, spec, "full");
  CHECK(r.is_run);
  REQUIRE(r.cases.size() == 3);
  CHECK(r.cases[0].name == "one");
  CHECK(r.cases[0].verdict == kAccepted);
  CHECK(r.cases[1].name == "two");
  CHECK(r.cases[1].verdict == kWrongAnswer);
  CHECK(r.cases[2].name == "three");
  CHECK(r.cases[2].verdict == kRuntimeError);
  CHECK(r.cases[2].exit_code == 1);
  CHECK(r.passed == 1);
  CHECK(r.verdict == kWrongAnswer);
  CHECK(r.state == JobState::kFailed);
  CHECK(r.text == "passed 1/3, first failing case two (WRONG_ANSWER)");
}

TEST_CASE("judge: the shown output of a judged job is the first failing case's") {
  protocol::JobSpec spec;
  spec.cases = {test_case("a", "1\n"), test_case("b", "2\n"), test_case("c", "3\n")};
  std::vector<Observation> runs{ok("1\n"), exited(7, "first\n"), exited(8, "second\n")};
  runs[1].stdout_data = "out-b\n";
  runs[2].stdout_data = "out-c\n";
  auto r = summarize(nullptr, runs, spec, "full");
  CHECK(r.exit_code == 7);
  CHECK(r.stdout_data == "out-b\n");
  CHECK(r.stderr_data == "first\n");
  CHECK(r.verdict == kRuntimeError);
  CHECK(r.text == "passed 1/3, first failing case b (RUNTIME_ERROR)");
}

TEST_CASE("judge: a timed out case makes the judged job TIMEOUT") {
  protocol::JobSpec spec;
  spec.cases = {test_case("a", "1\n"), test_case("b", "2\n")};
  Observation slow = ok();
  slow.killed_at_timeout = true;
  auto r = summarize(nullptr, {ok("1\n"), slow}, spec, "full");
  CHECK(r.verdict == kTimeLimit);
  CHECK(r.state == JobState::kTimeout);
  CHECK(r.text == "passed 1/2, first failing case b (TIME_LIMIT_EXCEEDED)");
}

TEST_CASE("judge: all cases passing is DONE and ACCEPTED") {
  protocol::JobSpec spec;
  spec.cases = {test_case("one", "1\n"), test_case("two", "2\n"), test_case("three", "3\n")};
  std::vector<Observation> runs{ok("1\n"), ok("2\n"), ok("3\n")};
  runs[2].stdout_data = "3 \n";
  auto r = summarize(nullptr, runs, spec, "full");
  CHECK(r.state == JobState::kDone);
  CHECK(r.verdict == kAccepted);
  CHECK(r.passed == 3);
  CHECK(r.text == "passed 3/3");
  REQUIRE(r.cases.size() == 3);
  for (const auto& c : r.cases) CHECK(c.verdict == kAccepted);
  CHECK(r.stdout_data == "3 \n");  // the last run is shown when none fails
}

TEST_CASE("judge: unnamed cases are numbered from 1") {
  protocol::JobSpec spec;
  spec.cases = {test_case("", "1\n"), test_case("named", "2\n"), test_case("", "3\n")};
  auto r = summarize(nullptr, {ok("1\n"), ok("2\n"), ok("x\n")}, spec, "full");
  REQUIRE(r.cases.size() == 3);
  CHECK(r.cases[0].name == "1");
  CHECK(r.cases[1].name == "named");
  CHECK(r.cases[2].name == "3");
  CHECK(r.text == "passed 2/3, first failing case 3 (WRONG_ANSWER)");
}

TEST_CASE("judge: a case without an expected output passes when it succeeds") {
  protocol::JobSpec spec;
  protocol::TestCase free_case;
  free_case.name = "free";
  spec.cases = {free_case, test_case("strict", "ok\n")};
  auto r = summarize(nullptr, {ok("whatever\n"), ok("ok\n")}, spec, "full");
  REQUIRE(r.cases.size() == 2);
  CHECK(r.cases[0].verdict == kAccepted);
  CHECK(r.cases[1].verdict == kAccepted);
  CHECK(r.passed == 2);
  CHECK(r.verdict == kAccepted);
}

TEST_CASE("judge: cpu is summed and peak is the maximum over check and runs") {
  protocol::JobSpec spec;
  spec.check = "make\n";
  spec.cases = {test_case("a", "1\n"), test_case("b", "2\n"), test_case("c", "3\n")};
  Observation check = ok("", 30, 4000);
  std::vector<Observation> runs{ok("1\n", 10, 1000), ok("0\n", 20, 7000), ok("3\n", 5, 2000)};
  auto r = summarize(&check, runs, spec, "full");
  CHECK(r.cpu_ms == 65);
  CHECK(r.peak_kb == 7000);
  REQUIRE(r.cases.size() == 3);
  CHECK(r.cases[1].cpu_ms == 20);
  CHECK(r.cases[1].peak_kb == 7000);
}

TEST_CASE("judge: case outputs are cut to 4096 bytes and flagged truncated") {
  protocol::JobSpec spec;
  spec.cases = {test_case("big", "x\n"), test_case("small", "y\n")};
  Observation big = ok(std::string(5000, 'a'));
  big.stderr_data = std::string(4097, 'e');
  Observation small = ok("y\n");
  small.stderr_data = std::string(4096, 'e');
  auto r = summarize(nullptr, {big, small}, spec, "full");
  REQUIRE(r.cases.size() == 2);
  CHECK(r.cases[0].stdout_data == std::string(4096, 'a'));
  CHECK(r.cases[0].stdout_truncated);
  CHECK(r.cases[0].stderr_data.size() == 4096);
  CHECK(r.cases[0].stderr_truncated);
  CHECK(r.cases[1].stdout_data == "y\n");
  CHECK_FALSE(r.cases[1].stdout_truncated);
  CHECK(r.cases[1].stderr_data.size() == 4096);
  CHECK_FALSE(r.cases[1].stderr_truncated);
  // The shown (first failing) process keeps its whole output.
  CHECK(r.stdout_data.size() == 5000);
}

TEST_CASE("judge: a case already truncated by the sandbox stays flagged") {
  protocol::JobSpec spec;
  spec.cases = {test_case("a", "x\n")};
  Observation o = ok("x\n");
  o.stdout_truncated = true;
  auto r = summarize(nullptr, {o}, spec, "full");
  REQUIRE(r.cases.size() == 1);
  CHECK(r.cases[0].stdout_truncated);
  CHECK(r.stdout_truncated);
}

TEST_CASE("judge: fewer runs than cases makes the job CANCELLED") {
  protocol::JobSpec spec;
  spec.cases = {test_case("a", "1\n"), test_case("b", "2\n"), test_case("c", "3\n")};
  Observation killed = ok();
  killed.cancelled = true;
  killed.signal = 9;
  auto r = summarize(nullptr, {ok("1\n"), killed}, spec, "full");
  CHECK(r.state == JobState::kCancelled);
  CHECK(r.verdict == kCancelled);
  CHECK(r.cases.size() == 2);
  CHECK(r.passed == 1);
}

}  // namespace jc::runner
