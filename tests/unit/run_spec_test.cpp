// Unit tests of client/command.h for run jobs: parsing `run` lines and
// building the job spec from a run line and its here-document body.
#include <doctest/doctest.h>

#include <limits>
#include <string>
#include <string_view>

#include "client/command.h"
#include "protocol/job.h"
#include "tests/unit/command_helpers.h"

namespace jc::client {
namespace {

CmdRun run_of(std::string_view line) {
  Command c = parse_command(line);
  std::string error;
  if (auto* e = std::get_if<CmdError>(&c)) error = e->message;
  INFO("line: ", std::string(line), " error: ", error);
  REQUIRE(std::holds_alternative<CmdRun>(c));
  return std::get<CmdRun>(c);
}

using test::contains;
using test::error_of;

// Builds a spec from a run line and a body; returns the error ("" if none).
std::string build(std::string_view line, std::string_view body, protocol::JobSpec& spec) {
  CmdRun run = run_of(line);
  return build_run_spec(run, body, spec);
}

protocol::JobSpec built(std::string_view line, std::string_view body = "") {
  protocol::JobSpec spec;
  std::string err = build(line, body, spec);
  INFO("body: ", std::string(body));
  CHECK(err == "");
  return spec;
}

std::string build_error(std::string_view line, std::string_view body) {
  protocol::JobSpec spec;
  std::string err = build(line, body, spec);
  INFO("body: ", std::string(body));
  CHECK_FALSE(err.empty());
  return err;
}

}  // namespace

// ---- parse_command: run lines ------------------------------------------------

TEST_CASE("run spec: run with a command is a one-line run job") {
  CmdRun r = run_of("run echo hi");
  CHECK(r.command == "echo hi");
  CHECK(r.heredoc.empty());
  CHECK_FALSE(r.options.timeout_ms);
  CHECK_FALSE(r.options.cpu_ms);
  CHECK_FALSE(r.options.memory_mb);
  CHECK_FALSE(r.options.output_kb);
  CHECK_FALSE(r.options.stdin_data);
  CHECK_FALSE(r.options.expected);
}

TEST_CASE("run spec: --timeout takes a number as the next word") {
  CmdRun r = run_of("run --timeout 500 sleep 1");
  REQUIRE(r.options.timeout_ms);
  CHECK(*r.options.timeout_ms == 500);
  CHECK(r.command == "sleep 1");
}

TEST_CASE("run spec: --timeout=500 takes the number after the equals sign") {
  CmdRun r = run_of("run --timeout=500 sleep 1");
  REQUIRE(r.options.timeout_ms);
  CHECK(*r.options.timeout_ms == 500);
  CHECK(r.command == "sleep 1");
}

TEST_CASE("run spec: --cpu, --memory and --output take numbers") {
  CmdRun r = run_of("run --cpu 250 --memory=64 --output 16 ./prog arg");
  REQUIRE(r.options.cpu_ms);
  REQUIRE(r.options.memory_mb);
  REQUIRE(r.options.output_kb);
  CHECK(*r.options.cpu_ms == 250);
  CHECK(*r.options.memory_mb == 64);
  CHECK(*r.options.output_kb == 16);
  CHECK_FALSE(r.options.timeout_ms);
  CHECK(r.command == "./prog arg");
}

TEST_CASE("run spec: --stdin with a single-quoted value keeps its spaces") {
  CmdRun r = run_of("run --stdin='1 2' python3 sum.py");
  REQUIRE(r.options.stdin_data);
  CHECK(*r.options.stdin_data == "1 2");
  CHECK(r.command == "python3 sum.py");
}

TEST_CASE("run spec: --stdin with a double-quoted value understands escapes") {
  CmdRun r = run_of(R"(run --stdin "a\nb\tc \"q\" \\" cat)");
  REQUIRE(r.options.stdin_data);
  CHECK(*r.options.stdin_data == "a\nb\tc \"q\" \\");
  CHECK(r.command == "cat");
}

TEST_CASE("run spec: single quotes keep backslashes as they are") {
  CmdRun r = run_of(R"(run --stdin 'a\nb' cat)");
  REQUIRE(r.options.stdin_data);
  CHECK(*r.options.stdin_data == R"(a\nb)");
}

TEST_CASE("run spec: --expect=3 sets the expected output") {
  CmdRun r =
      run_of("run --expect=3 --stdin '1 2' python3 -c 'print(sum(map(int,input().split())))'");
  REQUIRE(r.options.expected);
  CHECK(*r.options.expected == "3");
  REQUIRE(r.options.stdin_data);
  CHECK(*r.options.stdin_data == "1 2");
  CHECK(r.command == "python3 -c 'print(sum(map(int,input().split())))'");
}

TEST_CASE("run spec: -- ends the options") {
  CmdRun r = run_of("run -- --weird");
  CHECK(r.command == "--weird");
  CmdRun t = run_of("run --timeout 5 -- --timeout 7");
  REQUIRE(t.options.timeout_ms);
  CHECK(*t.options.timeout_ms == 5);
  CHECK(t.command == "--timeout 7");
}

TEST_CASE("run spec: an unknown option is refused") {
  std::string msg = error_of("run --fast 1 echo hi");
  CHECK(contains(msg, "unknown option --fast"));
  CHECK(contains(msg, "usage: run"));
}

TEST_CASE("run spec: a non-numeric limit is refused") {
  std::string msg = error_of("run --timeout abc echo hi");
  CHECK(contains(msg, "--timeout takes a positive number of milliseconds"));
  CHECK(contains(msg, "abc"));
  CHECK(
      contains(error_of("run --memory=-5 echo"), "--memory takes a positive number of megabytes"));
  CHECK(
      contains(error_of("run --output 1k echo"), "--output takes a positive number of kilobytes"));
  CHECK(contains(error_of("run --cpu 99999999999 echo"), "--cpu takes a positive number"));
}

TEST_CASE("run spec: a zero limit is refused") {
  CHECK(contains(error_of("run --timeout 0 echo hi"), "positive number"));
  CHECK(contains(error_of("run --cpu=0 echo hi"), "positive number"));
}

TEST_CASE("run spec: an option without a value is refused") {
  CHECK(contains(error_of("run --timeout"), "--timeout needs a value"));
  CHECK(contains(error_of("run --stdin="), "--stdin needs a value"));
}

TEST_CASE("run spec: an unterminated quote is refused") {
  CHECK(contains(error_of("run --stdin 'abc echo hi"), "--stdin needs a value"));
  CHECK(contains(error_of("run --expect=\"abc echo hi"), "--expect needs a value"));
}

TEST_CASE("run spec: run alone is refused for a missing command") {
  CHECK(contains(error_of("run"), "missing command"));
  CHECK(contains(error_of("run --timeout 100"), "missing command"));
  CHECK(contains(error_of("run --"), "missing command"));
}

TEST_CASE("run spec: run <<END opens a here-document with no command") {
  CmdRun r = run_of("run <<END");
  CHECK(r.heredoc == "END");
  CHECK(r.command.empty());
}

TEST_CASE("run spec: options and a here-document go together") {
  CmdRun r = run_of("run --timeout 100 <<EOF");
  CHECK(r.heredoc == "EOF");
  REQUIRE(r.options.timeout_ms);
  CHECK(*r.options.timeout_ms == 100);
  CHECK(r.command.empty());
}

TEST_CASE("run spec: a command and a here-document go together") {
  CmdRun r = run_of("run python3 main.py <<END");
  CHECK(r.heredoc == "END");
  CHECK(r.command == "python3 main.py");
}

// ---- build_run_spec: the run line ----------------------------------------------

TEST_CASE("run spec: a one-line job is a run job with the line's command") {
  protocol::JobSpec spec = built("run echo hi");
  CHECK(spec.kind == protocol::JobKind::kRun);
  CHECK(spec.command == "echo hi");
  CHECK(spec.stdin_data.empty());
  CHECK_FALSE(spec.has_expected);
  CHECK(spec.cases.empty());
  CHECK(spec.files.empty());
  CHECK(spec.check.empty());
}

TEST_CASE("run spec: one-line stdin and expect get a trailing newline") {
  protocol::JobSpec spec = built("run --stdin '1 2' --expect=3 cat");
  CHECK(spec.stdin_data == "1 2\n");
  CHECK(spec.has_expected);
  CHECK(spec.expected == "3\n");
}

TEST_CASE("run spec: a value already ending in a newline gets no second one") {
  protocol::JobSpec spec = built(R"(run --stdin "a\nb\n" --expect "x\n" cat)");
  CHECK(spec.stdin_data == "a\nb\n");
  CHECK(spec.expected == "x\n");
}

TEST_CASE("run spec: limits are copied and 0 when not given") {
  protocol::JobSpec spec =
      built("run --timeout 500 --cpu=200 --memory 64 --output 8 --disk 16 true");
  CHECK(spec.limits.timeout_ms == 500);
  CHECK(spec.limits.cpu_ms == 200);
  CHECK(spec.limits.memory_mb == 64);
  CHECK(spec.limits.output_kb == 8);
  CHECK(spec.limits.disk_mb == 16);
  protocol::JobSpec none = built("run --memory 32 true");
  CHECK(none.limits.timeout_ms == 0);
  CHECK(none.limits.cpu_ms == 0);
  CHECK(none.limits.memory_mb == 32);
  CHECK(none.limits.output_kb == 0);
  CHECK(none.limits.disk_mb == 0);
}

TEST_CASE("run spec: --disk takes a positive number of megabytes") {
  CmdRun r = run_of("run --disk=128 ./prog");
  REQUIRE(r.options.disk_mb);
  CHECK(*r.options.disk_mb == 128);
  CHECK(contains(error_of("run --disk 0 true"), "--disk takes a positive number of megabytes"));
  CHECK(contains(error_of("run --disk lots true"), "--disk takes a positive number"));
}

TEST_CASE("run spec: a NUL byte in a script is refused with its place, in files it is fine") {
  protocol::JobSpec spec;
  CHECK(build(std::string("run echo a") + '\0' + "b", "", spec) ==
        "the command holds a NUL byte (at byte 6): a shell cannot run it");
  protocol::JobSpec body;
  CHECK(build("run <<END", std::string("@@ command\n./x\n@@ check\ncc x.c") + '\0' + "\n",
              body) == "the check step holds a NUL byte (at byte 6): a shell cannot run it");
  protocol::JobSpec binary = built(
      "run <<END", std::string("@@ file data.bin\n\x01") + '\0' + "\x02\n@@ command\nod data.bin\n");
  REQUIRE(binary.files.size() == 1);
  CHECK(binary.files[0].content.size() == 4);
}

TEST_CASE("run spec: a script far larger than one argument may hold is kept whole") {
  std::string body;
  while (body.size() < 512 * 1024) body += "echo a line of a long script\n";
  protocol::JobSpec spec = built("run <<END", body);
  CHECK(spec.command == body);
}

// ---- build_run_spec: plain here-documents ----------------------------------------

TEST_CASE("run spec: a plain here-document body is the command") {
  std::string body = "echo one\necho two\n";
  protocol::JobSpec spec = built("run --timeout 100 <<END", body);
  CHECK(spec.command == body);
  CHECK(spec.limits.timeout_ms == 100);
  CHECK(spec.cases.empty());
}

TEST_CASE("run spec: a body mentioning @@ mid-line is still plain") {
  std::string body = "echo '@@ command'\necho x@@ y\n";
  protocol::JobSpec spec = built("run <<END", body);
  CHECK(spec.command == body);
}

TEST_CASE("run spec: a command on the line and as a plain body is refused") {
  std::string err = build_error("run echo hi <<END", "echo there\n");
  CHECK(contains(err, "not both"));
}

TEST_CASE("run spec: an empty plain here-document is refused") {
  CHECK(contains(build_error("run <<END", ""), "empty"));
}

// ---- build_run_spec: sectioned here-documents ------------------------------------

TEST_CASE("run spec: a sectioned body fills files, check, command and cases") {
  std::string body =
      "@@ file main.py\n"
      "a, b = map(int, input().split())\n"
      "print(a + b)\n"
      "@@ check\n"
      "python3 -m py_compile main.py\n"
      "@@ command\n"
      "python3 main.py\n"
      "@@ case one\n"
      "@@ stdin\n"
      "1 2\n"
      "@@ expect\n"
      "3\n"
      "@@ case two\n"
      "@@ stdin\n"
      "10 20\n"
      "@@ expect\n"
      "30\n";
  protocol::JobSpec spec = built("run --timeout 1000 <<END", body);
  REQUIRE(spec.files.size() == 1);
  CHECK(spec.files[0].name == "main.py");
  CHECK(spec.files[0].content == "a, b = map(int, input().split())\nprint(a + b)\n");
  CHECK(spec.check == "python3 -m py_compile main.py\n");
  CHECK(spec.command == "python3 main.py\n");
  REQUIRE(spec.cases.size() == 2);
  CHECK(spec.cases[0].name == "one");
  CHECK(spec.cases[0].stdin_data == "1 2\n");
  CHECK(spec.cases[0].has_expected);
  CHECK(spec.cases[0].expected == "3\n");
  CHECK(spec.cases[1].name == "two");
  CHECK(spec.cases[1].stdin_data == "10 20\n");
  CHECK(spec.cases[1].has_expected);
  CHECK(spec.cases[1].expected == "30\n");
  CHECK(spec.stdin_data.empty());
  CHECK_FALSE(spec.has_expected);
  CHECK(spec.limits.timeout_ms == 1000);
}

TEST_CASE("run spec: a case without an expect section has no expected output") {
  std::string body =
      "@@ command\n"
      "cat\n"
      "@@ case\n"
      "@@ stdin\n"
      "x\n";
  protocol::JobSpec spec = built("run <<END", body);
  REQUIRE(spec.cases.size() == 1);
  CHECK(spec.cases[0].name.empty());
  CHECK(spec.cases[0].stdin_data == "x\n");
  CHECK_FALSE(spec.cases[0].has_expected);
  CHECK(spec.cases[0].expected.empty());
}

TEST_CASE("run spec: an empty expect section still expects empty output") {
  std::string body =
      "@@ command\n"
      "true\n"
      "@@ case quiet\n"
      "@@ expect\n";
  protocol::JobSpec spec = built("run <<END", body);
  REQUIRE(spec.cases.size() == 1);
  CHECK(spec.cases[0].has_expected);
  CHECK(spec.cases[0].expected.empty());
}

TEST_CASE("run spec: several files are kept in order") {
  std::string body =
      "@@ file a.txt\n"
      "A\n"
      "@@ file b_2-x.cfg\n"
      "B\n"
      "@@ command\n"
      "cat a.txt b_2-x.cfg\n";
  protocol::JobSpec spec = built("run <<END", body);
  REQUIRE(spec.files.size() == 2);
  CHECK(spec.files[0].name == "a.txt");
  CHECK(spec.files[0].content == "A\n");
  CHECK(spec.files[1].name == "b_2-x.cfg");
  CHECK(spec.files[1].content == "B\n");
}

TEST_CASE("run spec: a last section line without a newline still ends in one") {
  protocol::JobSpec spec = built("run <<END", "@@ command\necho hi");
  CHECK(spec.command == "echo hi\n");
}

TEST_CASE("run spec: top-level stdin and expect without cases fill the spec") {
  std::string body =
      "@@ command\n"
      "python3 -c 'print(sum(map(int, input().split())))'\n"
      "@@ stdin\n"
      "1 2\n"
      "@@ expect\n"
      "3\n";
  protocol::JobSpec spec = built("run <<END", body);
  CHECK(spec.cases.empty());
  CHECK(spec.stdin_data == "1 2\n");
  CHECK(spec.has_expected);
  CHECK(spec.expected == "3\n");
}

TEST_CASE("run spec: the run line's command is used when the body has no command section") {
  std::string body =
      "@@ file main.py\n"
      "print(input())\n"
      "@@ stdin\n"
      "hello\n";
  protocol::JobSpec spec = built("run python3 main.py <<END", body);
  CHECK(spec.command == "python3 main.py");
  REQUIRE(spec.files.size() == 1);
  CHECK(spec.stdin_data == "hello\n");
}

TEST_CASE("run spec: blank lines before the first section are allowed") {
  protocol::JobSpec spec = built("run <<END", "\n  \n@@ command\necho hi\n");
  CHECK(spec.command == "echo hi\n");
}

TEST_CASE("run spec: text before the first section is refused with its line number") {
  std::string err = build_error("run <<END", "\necho hi\n@@ command\necho there\n");
  CHECK(contains(err, "line 2"));
  CHECK(contains(err, "outside any section"));
}

TEST_CASE("run spec: text right after a case line is refused") {
  std::string err = build_error("run <<END", "@@ command\ncat\n@@ case a\n1 2\n");
  CHECK(contains(err, "line 4"));
}

TEST_CASE("run spec: an unknown section is refused") {
  std::string err = build_error("run <<END", "@@ command\ncat\n@@ input\nx\n");
  CHECK(contains(err, "unknown section"));
  CHECK(contains(err, "input"));
}

TEST_CASE("run spec: a file name with a path is refused") {
  CHECK(contains(build_error("run <<END", "@@ file ../x\nboom\n@@ command\ncat ../x\n"),
                 "bad file name"));
  CHECK(contains(build_error("run <<END", "@@ file a/b\nboom\n@@ command\ncat a/b\n"),
                 "bad file name"));
}

TEST_CASE("run spec: an empty or dot file name is refused") {
  CHECK(contains(build_error("run <<END", "@@ file\nx\n@@ command\ncat\n"), "bad file name"));
  CHECK(contains(build_error("run <<END", "@@ file ..\nx\n@@ command\ncat\n"), "bad file name"));
  CHECK(contains(build_error("run <<END", "@@ file .\nx\n@@ command\ncat\n"), "bad file name"));
}

TEST_CASE("run spec: a sectioned body with no command anywhere is refused") {
  std::string err = build_error("run <<END", "@@ file main.py\nprint(1)\n@@ stdin\nx\n");
  CHECK(contains(err, "no command"));
}

TEST_CASE("run spec: at most kMaxFiles files") {
  std::string body;
  for (std::size_t i = 0; i < kMaxFiles; ++i) body += "@@ file f" + std::to_string(i) + "\nx\n";
  CHECK(built("run <<END", body + "@@ command\ncat f0\n").files.size() == kMaxFiles);
  body += "@@ file one-more\nx\n";
  body += "@@ command\ncat f0\n";
  CHECK(contains(build_error("run <<END", body), "at most"));
}

TEST_CASE("run spec: at most kMaxCases cases") {
  std::string body = "@@ command\ncat\n";
  for (std::size_t i = 0; i < kMaxCases; ++i) body += "@@ case\n@@ stdin\nx\n";
  CHECK(built("run <<END", body).cases.size() == kMaxCases);
  body += "@@ case\n@@ stdin\nx\n";
  CHECK(contains(build_error("run <<END", body), "at most"));
}

// ---- build_run_spec: counted sections ------------------------------------------

namespace {
// "@@ HEADER N\n" then `content`: a counted section.
std::string counted(const std::string& header, const std::string& content) {
  return "@@ " + header + " " + std::to_string(content.size()) + "\n" + content;
}
}  // namespace

TEST_CASE("run spec: a counted section holds exactly its bytes, whatever they are") {
  // A diff, a line that reads as a section, the terminator, CR, NUL, and no
  // final newline: what breaks a section of lines.
  const std::string patch =
      "--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n-old\n+new\n@@ case\n@@ command\nEND\r\n\0tail";
  protocol::JobSpec spec = built("run <<END", counted("file fix.patch", patch) +
                                                 "\n@@ command\ncat fix.patch\n");
  REQUIRE(spec.files.size() == 1);
  CHECK(spec.files[0].name == "fix.patch");
  CHECK(spec.files[0].content == patch);
  CHECK(spec.command == "cat fix.patch\n");
  CHECK(spec.cases.empty());
}

TEST_CASE("run spec: every section but case may be counted, and the next starts right after") {
  std::string body = counted("check", "gcc -o a a.c") + counted("command", "./a") +
                     "@@ case one\n" + counted("stdin", "1 2") + counted("expect", "3\n") +
                     "@@ case two\n" + counted("stdin", "") + "@@ expect\n-1\n";
  protocol::JobSpec spec = built("run <<END", body);
  CHECK(spec.check == "gcc -o a a.c");
  CHECK(spec.command == "./a");
  REQUIRE(spec.cases.size() == 2);
  CHECK(spec.cases[0].name == "one");
  CHECK(spec.cases[0].stdin_data == "1 2");
  CHECK(spec.cases[0].has_expected);
  CHECK(spec.cases[0].expected == "3\n");
  CHECK(spec.cases[1].stdin_data == "");
  CHECK(spec.cases[1].expected == "-1\n");
}

TEST_CASE("run spec: text after a counted section is outside any section, blank lines aside") {
  CHECK(built("run <<END", counted("command", "true") + "\n\n  \n").command == "true");
  std::string err = build_error("run <<END", counted("command", "a\nb") + "\nstray\n");
  CHECK(contains(err, "line 4"));  // counted lines count
  CHECK(contains(err, "outside any section"));
}

TEST_CASE("run spec: a count beyond the body is refused") {
  CHECK(contains(build_error("run <<END", "@@ command 10\nshort"), "has 5 bytes, not 10"));
}

TEST_CASE("run spec: a case named by digits is a case, not a count") {
  protocol::JobSpec spec = built("run cat <<END", "@@ case 12\n@@ stdin\nx\n");
  REQUIRE(spec.cases.size() == 1);
  CHECK(spec.cases[0].name == "12");
  CHECK(spec.cases[0].stdin_data == "x\n");
}

TEST_CASE("run spec: a word after stdin, expect, command or check that is no count is refused") {
  for (const char* kind : {"stdin", "expect", "command", "check"}) {
    std::string err =
        build_error("run <<END", std::string("@@ ") + kind + " please\nx\n@@ command\ncat\n");
    CHECK(contains(err, "takes nothing or a byte count"));
  }
}

TEST_CASE("run spec: no section is silently replaced by a second one") {
  CHECK(contains(build_error("run <<END", "@@ command\necho 1\n@@ command\necho 2\n"),
                 "a second '@@ command'"));
  CHECK(contains(build_error("run <<END", "@@ check\ntrue\n@@ command\nx\n@@ check\nfalse\n"),
                 "a second '@@ check'"));
  CHECK(contains(build_error("run echo <<END", "@@ command\necho 2\n"),
                 "on the run line or in the here-document, not both"));
  CHECK(contains(build_error("run cat <<END", "@@ file a\n1\n@@ file a\n2\n"),
                 "the file 'a' is given twice"));
  CHECK(contains(build_error("run cat <<END", "@@ stdin\n1\n@@ stdin\n2\n"),
                 "a second '@@ stdin'"));
  CHECK(contains(build_error("run --stdin 1 cat <<END", "@@ stdin\n2\n"), "a second '@@ stdin'"));
  CHECK(contains(build_error("run cat <<END", "@@ case\n@@ expect\n1\n@@ expect\n2\n"),
                 "a second '@@ expect' for this case"));
  // Each case has its own.
  protocol::JobSpec spec =
      built("run cat <<END", "@@ case\n@@ stdin\n1\n@@ case\n@@ stdin\n2\n");
  REQUIRE(spec.cases.size() == 2);
  CHECK(spec.cases[1].stdin_data == "2\n");
}

TEST_CASE("run spec: what a student's file says cannot override a grader's sections") {
  // The grader's command and cases first, then the student's file pasted
  // whole as a counted section: its lines stay in the file.
  const std::string student = "print(1)\n@@ command\nrm -rf /box\n@@ case\n@@ expect\n1\n";
  std::string body = "@@ command\npython3 main.py\n@@ case\n@@ expect\n2\n" +
                     counted("file main.py", student);
  protocol::JobSpec spec = built("run <<END", body);
  CHECK(spec.command == "python3 main.py\n");
  REQUIRE(spec.cases.size() == 1);
  CHECK(spec.cases[0].expected == "2\n");
  REQUIRE(spec.files.size() == 1);
  CHECK(spec.files[0].content == student);
}

TEST_CASE("run spec: counted_section_bytes knows counted section lines and nothing else") {
  CHECK(counted_section_bytes("@@ file a.txt 12") == 12u);
  CHECK(counted_section_bytes("@@ stdin 0") == 0u);
  CHECK(counted_section_bytes("@@ expect 5\r") == 5u);
  CHECK(counted_section_bytes("@@ command 7") == 7u);
  CHECK(counted_section_bytes("@@ check 1") == 1u);
  CHECK(counted_section_bytes("@@ stdin 99999999999999999999999") ==
        std::numeric_limits<std::uint64_t>::max());
  CHECK_FALSE(counted_section_bytes("@@ file 12"));  // a file named 12
  CHECK_FALSE(counted_section_bytes("@@ case 12"));
  CHECK_FALSE(counted_section_bytes("@@ stdin"));
  CHECK_FALSE(counted_section_bytes("@@ stdin -1"));
  CHECK_FALSE(counted_section_bytes("@@ stdin 1x"));
  CHECK_FALSE(counted_section_bytes("@@ -1,2 +1,2 @@"));
  CHECK_FALSE(counted_section_bytes("stdin 5"));
}

}  // namespace jc::client
