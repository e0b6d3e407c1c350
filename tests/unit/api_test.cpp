// Unit tests of the judge0-compatible API's pure parts (api/): the language
// table and what a node has, judge0's statuses, a request made a job (with
// judge0's documented requests and error bodies), and a job rendered as
// judge0's response. Pure: no sockets.
#include <doctest/doctest.h>

#include <set>
#include <string>

#include "api/languages.h"
#include "api/statuses.h"
#include "api/submission.h"
#include "protocol/codec.h"

namespace jc::api {
namespace {

using nlohmann::json;

const std::vector<Language>& table() {
  static const std::vector<Language> kTable = [] {
    std::vector<Language> t;
    REQUIRE(parse_languages(builtin_languages_json(), t) == "");
    for (auto& l : t) l.full_name = l.name;
    return t;
  }();
  return kTable;
}

// judge0's own defaults (its config.rb), with wall_time_limit's maximum of
// its documented example (150).
Settings judge0_settings() {
  Settings s;
  s.cpu_time_limit_ms = 5000;
  s.max_cpu_time_limit_ms = 15000;
  s.wall_time_limit_ms = 10000;
  s.max_wall_time_limit_ms = 150000;
  return s;
}

Submission parsed(const std::string& body, bool base64 = false, Settings s = judge0_settings()) {
  static BodyParser parser;
  const auto* root = parser.parse(body);
  REQUIRE(root != nullptr);
  return parse_submission(*root, base64, s, table());
}

std::string errors_of(const std::string& body, Settings s = judge0_settings()) {
  Submission sub = parsed(body, false, s);
  return errors_json(sub.errors).dump();
}

const char* kHelloC =
    R"("#include <stdio.h>\n\nint main(void) {\n  char name[10];\n  scanf(\"%s\", name);\n  printf(\"hello, %s\\n\", name);\n  return 0;\n}")";

protocol::CaseResult run_case(std::string verdict, std::int32_t exit_code = 0, std::int32_t signal = 0) {
  protocol::CaseResult c;
  c.name = "1";
  c.verdict = std::move(verdict);
  c.exit_code = exit_code;
  c.signal = signal;
  c.cpu_ms = 31;
  c.wall_ms = 40;
  c.peak_kb = 3348;
  return c;
}

protocol::JobReport finished(std::vector<protocol::CaseResult> cases, std::string out = "") {
  protocol::JobReport r;
  r.ticket = "t0k3n";
  r.state = protocol::JobState::kDone;
  r.has_result = true;
  r.node = "n1";
  r.result.is_run = true;
  r.result.sandbox = "full";
  r.result.stdout_data = std::move(out);
  r.result.cases = std::move(cases);
  r.result.verdict = r.result.cases.empty() ? "" : r.result.cases.front().verdict;
  r.result.start_ms = 1'700'000'000'000;
  r.result.end_ms = 1'700'000'000'250;
  return r;
}

}  // namespace

// ---- languages -------------------------------------------------------------

TEST_CASE("api languages: the built-in table has judge0's ids for the common languages") {
  std::set<int> ids;
  for (const auto& l : table()) ids.insert(l.id);
  for (int id : {43, 46, 50, 54, 60, 62, 63, 68, 71, 72, 73, 89}) CHECK_MESSAGE(ids.count(id), id);
  for (const auto& l : table()) {
    if (l.id == 54) {
      CHECK(l.source_file == "main.cpp");
      REQUIRE(l.compile_cmd);
      CHECK(l.compile_cmd->find("{compiler_options}") != std::string::npos);
      CHECK(l.run_cmd.find("{args}") != std::string::npos);
    }
    if (l.id == 89) CHECK(l.is_project);
  }
}

TEST_CASE("api languages: a node has those whose files exist, named with their version") {
  Probe probe;
  probe.exists = [](const std::string& p) { return p == "/usr/bin/g++" || p == "/usr/bin/python3"; };
  probe.run = [](const std::vector<std::string>& argv) -> std::optional<std::string> {
    if (argv.front() == "/usr/bin/g++") return "12.2.0\n";
    if (argv.front() == "/usr/bin/python3") return "Python 3.11.2\n";
    return std::nullopt;
  };
  auto have = detect_languages(table(), probe);
  REQUIRE(have.size() == 2);
  CHECK(have[0].id == 54);
  CHECK(have[0].full_name == "C++ (GCC 12.2.0)");
  CHECK(have[1].id == 71);
  CHECK(have[1].full_name == "Python (3.11.2)");
}

TEST_CASE("api languages: LANGUAGES_FILE adds and replaces by id, and a bad one says what is wrong") {
  std::vector<Language> base = table(), extra;
  REQUIRE(parse_languages(R"({"languages": [
      {"id": 71, "name": "Python", "source_file": "main.py", "run_cmd": "/opt/py/bin/python3 main.py {args}",
       "requires": ["/opt/py/bin/python3"]},
      {"id": 1001, "name": "Brainfuck", "source_file": "main.bf", "run_cmd": "/usr/bin/bf main.bf"}]})",
                          extra) == "");
  std::size_t before = base.size();
  merge_languages(base, extra);
  CHECK(base.size() == before + 1);
  for (const auto& l : base) {
    if (l.id == 71) CHECK(l.source_file == "main.py");
  }
  std::vector<Language> bad;
  CHECK(parse_languages("[1]", bad) == "expected an object with a \"languages\" array");
  CHECK(parse_languages(R"({"languages": [{"id": 5, "name": "X", "source_file": "x"}]})", bad) ==
        "languages[0] (id 5): no \"run_cmd\"");
  CHECK(parse_languages(R"({"languages": [{"id": -1}]})", bad).find("positive integer") !=
        std::string::npos);
}

// ---- statuses --------------------------------------------------------------

TEST_CASE("api statuses: judge0's fourteen, and its runtime errors by signal") {
  REQUIRE(all_statuses().size() == 14);
  CHECK(description(Status::kInQueue) == "In Queue");
  CHECK(description(Status::kNzec) == "Runtime Error (NZEC)");
  CHECK(description(Status::kExecFormatError) == "Exec Format Error");
  CHECK(runtime_error_for_signal(11) == Status::kSigsegv);
  CHECK(runtime_error_for_signal(25) == Status::kSigxfsz);
  CHECK(runtime_error_for_signal(8) == Status::kSigfpe);
  CHECK(runtime_error_for_signal(6) == Status::kSigabrt);
  CHECK(runtime_error_for_signal(9) == Status::kOther);
}

TEST_CASE("api statuses: each verdict in judge0's terms, what judge0 cannot say in the message") {
  CHECK(outcome_of(run_case("ACCEPTED")).status == Status::kAccepted);
  CHECK(outcome_of(run_case("WRONG_ANSWER")).status == Status::kWrongAnswer);
  Outcome tle = outcome_of(run_case("TIME_LIMIT_EXCEEDED", 137, 9));
  CHECK(tle.status == Status::kTimeLimitExceeded);
  CHECK(tle.exit_signal == 9);
  Outcome nzec = outcome_of(run_case("RUNTIME_ERROR", 3));
  CHECK(nzec.status == Status::kNzec);
  CHECK(nzec.exit_code == 3);
  CHECK(nzec.message == "Exited with error status 3");
  Outcome segv = outcome_of(run_case("RUNTIME_ERROR", 139, 11));
  CHECK(segv.status == Status::kSigsegv);
  CHECK(segv.exit_signal == 11);
  CHECK_FALSE(segv.exit_code);
  Outcome mle = outcome_of(run_case("MEMORY_LIMIT_EXCEEDED", 137, 9));
  CHECK(mle.status == Status::kOther);
  CHECK(mle.message == "Memory limit exceeded");
  Outcome ole = outcome_of(run_case("OUTPUT_LIMIT_EXCEEDED"));
  CHECK(ole.status == Status::kSigxfsz);
  CHECK(ole.message == "Output limit exceeded");
  CHECK(outcome_of(run_case("RUNTIME_ERROR", -1)).status == Status::kInternalError);
}

// ---- requests --------------------------------------------------------------

TEST_CASE("api submission: judge0's documented C request becomes a compiled, judged job") {
  Submission s = parsed(std::string(R"({"source_code": )") + kHelloC +
                        R"(, "language_id": 50, "stdin": "world"})");
  REQUIRE(s.errors.empty());
  const protocol::JobSpec& j = s.spec;
  CHECK(j.is_api);
  REQUIRE(j.files.size() == 1);
  CHECK(j.files[0].name == "main.c");
  CHECK(j.files[0].content.find("scanf") != std::string::npos);
  CHECK(j.check == "/usr/bin/gcc  main.c\n");
  CHECK(j.command == "exec ./a.out\n");
  REQUIRE(j.cases.size() == 1);
  CHECK(j.cases[0].stdin_data == "world");
  CHECK_FALSE(j.cases[0].has_expected);
  CHECK(j.limits.cpu_ms == 5000);
  CHECK(j.limits.timeout_ms == 10000);
  CHECK(j.limits.memory_mb == 125);  // 128000 KB, up to whole MB
  CHECK(j.check_limits.cpu_ms == 15000);  // compiled under the maxima
  CHECK(j.needs == std::vector<std::string>{"lang:50"});
  CHECK(j.api.language_id == 50);
  CHECK(j.api.has_stdin);
}

TEST_CASE("api submission: judge0's documented 422s, body for body") {
  CHECK(errors_of(std::string(R"({"source_code": )") + kHelloC + "}") ==
        R"({"language_id":["can't be blank"]})");
  CHECK(errors_of(std::string(R"({"source_code": )") + kHelloC +
                  R"(, "language_id": 150000, "stdin": "world", "expected_output": "hello, world"})") ==
        R"({"language_id":["language with id 150000 doesn't exist"]})");
  CHECK(errors_of(std::string(R"({"source_code": )") + kHelloC + R"(, "language_id": 50,
      "number_of_runs": 1, "stdin": "Judge0", "expected_output": "hello, Judge0",
      "cpu_time_limit": 1, "cpu_extra_time": 0.5, "wall_time_limit": 100000,
      "memory_limit": 128000, "stack_limit": 128000,
      "enable_per_process_and_thread_time_limit": false,
      "enable_per_process_and_thread_memory_limit": false, "max_file_size": 1024})") ==
        R"({"wall_time_limit":["must be less than or equal to 150"]})");
}

TEST_CASE("api submission: numbers as strings, Base64 bodies, and unknown attributes ignored") {
  Submission s = parsed(R"({"source_code": "cHJpbnQoaW5wdXQoKSk=", "language_id": "71",
                            "stdin": "SnVkZ2Uw", "input": "ignored"})",
                        true);
  REQUIRE(s.errors.empty());
  CHECK(s.spec.files[0].content == "print(input())");
  CHECK(s.spec.cases[0].stdin_data == "Judge0");
  CHECK(s.spec.check.empty());
  CHECK(s.spec.command == "exec /usr/bin/python3 script.py\n");
}

TEST_CASE("api submission: a name given twice counts as its last, null as absent, numbers as text") {
  Submission s = parsed(R"({"source_code": "a", "language_id": 71, "source_code": "b",
                            "stdin": 12, "expected_output": 2.5})");
  REQUIRE(s.errors.empty());
  CHECK(s.spec.files[0].content == "b");
  CHECK(s.spec.cases[0].stdin_data == "12");
  CHECK(s.spec.cases[0].expected == "2.5");
  CHECK(errors_of(R"({"source_code": "a", "language_id": 71, "source_code": null})") ==
        R"({"source_code":["can't be blank"]})");
  CHECK(errors_of(R"({"source_code": null, "language_id": 71, "source_code": "a"})") == "{}");
}

TEST_CASE("api submission: options and arguments reach the program as words, never as shell text") {
  Submission s = parsed(R"j({"source_code": "int main(){}", "language_id": 54,
      "compiler_options": "-O2 -DNAME='a b' $(reboot)", "command_line_arguments": "x; rm -rf / \"y z\""})j");
  REQUIRE(s.errors.empty());
  CHECK(s.spec.check == "/usr/bin/g++ '-O2' '-DNAME=a b' '$(reboot)' main.cpp\n");
  CHECK(s.spec.command == "exec ./a.out 'x;' 'rm' '-rf' '/' 'y z'\n");
  CHECK(shell_quote("it's") == "'it'\\''s'");
}

TEST_CASE("api submission: each limit checked against this node's maxima, in judge0's words") {
  std::string e = errors_of(R"({"source_code": "x", "language_id": 71, "cpu_time_limit": -1,
      "memory_limit": 1000, "number_of_runs": 0, "max_processes_and_or_threads": "many",
      "compiler_options": "-O2", "enable_per_process_and_thread_memory_limit": true,
      "enable_network": true})");
  CHECK(e == R"({"number_of_runs":["must be greater than 0"],)"
             R"("cpu_time_limit":["must be greater than or equal to 0"],)"
             R"("memory_limit":["must be greater than or equal to 2048"],)"
             R"("max_processes_and_or_threads":["is not a number"],)"
             R"("enable_per_process_and_thread_memory_limit":["this option cannot be enabled"],)"
             R"("compiler_options":["setting compiler options is only allowed for compiled languages"],)"
             R"("enable_network":["enabling network is not allowed"]})");
  std::string long_options(513, 'x');
  CHECK(errors_of(R"({"source_code": "x", "language_id": 54, "compiler_options": ")" +
                  long_options + "\"}") ==
        R"j({"compiler_options":["is too long (maximum is 512 characters)"]})j");
  CHECK(errors_of("[1, 2]") == R"({"submission":["must be a JSON object"]})");
}

TEST_CASE("api submission: a multi-file program takes no source and needs its files") {
  CHECK(errors_of(R"({"language_id": 89, "source_code": "x"})") ==
        R"({"source_code":["must be blank"],"additional_files":["can't be blank"]})");
  // What is not a zip is refused before anything is queued.
  CHECK(errors_of(R"({"language_id": 71, "source_code": "x", "additional_files": "bm90IGEgemlw"})") ==
        R"({"additional_files":["is not a zip archive"]})");
}

TEST_CASE("api submission: test cases run behind one compile, each number_of_runs times") {
  Submission s = parsed(R"({"source_code": "x", "language_id": 54, "number_of_runs": 2,
      "test_cases": [{"stdin": "1 2", "expected_output": "3"}, {"stdin": "2 2"}]})");
  REQUIRE(s.errors.empty());
  REQUIRE(s.spec.cases.size() == 4);
  CHECK(s.spec.cases[0].name == "1.1");
  CHECK(s.spec.cases[1].name == "1.2");
  CHECK(s.spec.cases[1].expected == "3");
  CHECK(s.spec.cases[3].name == "2.2");
  CHECK_FALSE(s.spec.cases[3].has_expected);
  CHECK(s.spec.api.test_cases == 2);
  CHECK(errors_of(R"({"source_code": "x", "language_id": 54, "stdin": "1",
      "test_cases": [{"stdin": "1"}]})") ==
        R"({"test_cases":["give stdin and expected_output in the test cases, not beside them"]})");
}

// ---- responses -------------------------------------------------------------

TEST_CASE("api response: judge0's default eight attributes of an accepted run") {
  protocol::JobReport r = finished({run_case("ACCEPTED")}, "hello, Judge0\n");
  Fields f = parse_fields("");
  auto out = render_submission(r, nullptr, f, false, table());
  REQUIRE(out);
  CHECK(out->dump() ==
        R"({"token":"t0k3n","time":"0.031","memory":3348,"stdout":"hello, Judge0\n",)"
        R"("stderr":null,"compile_output":null,"message":null,)"
        R"("status":{"id":3,"description":"Accepted"}})");
  auto b64 = render_submission(r, nullptr, f, true, table());
  CHECK((*b64)["stdout"] == "aGVsbG8sIEp1ZGdlMAo=\n");
}

TEST_CASE("api response: a sleep job's sentence is its stdout, made from its result") {
  protocol::JobReport r;
  r.ticket = "p1-7-AbCdEfGhIjK";
  r.state = protocol::JobState::kDone;
  r.has_result = true;
  r.result.state = protocol::JobState::kDone;
  r.result.node = "n1";
  r.result.sleep_ms = 20;  // no text: it is made where it is shown
  r.result.start_ms = 1796640000000;
  r.result.end_ms = 1796640000021;
  auto out = render_submission(r, nullptr, parse_fields("status,stdout"), false, table());
  REQUIRE(out);
  CHECK(out->dump() ==
        R"({"status":{"id":3,"description":"Accepted"},"stdout":"Executed Job[p1-7-AbCdEfGhIjK] )"
        R"(for 20 milliseconds from 2026-12-07 10:40:00.000 to 2026-12-07 10:40:00.021 on node n1"})");
}

TEST_CASE("api response: queued, compile errors, signals, and what judge0 cannot say") {
  protocol::JobReport q;
  q.ticket = "t";
  q.state = protocol::JobState::kQueued;
  auto queued = render_submission(q, nullptr, parse_fields("status,time,finished_at"), false, table());
  CHECK(queued->dump() == R"({"status":{"id":1,"description":"In Queue"},"time":null,"finished_at":null})");
  // What a queued job waits for, beside judge0's attributes.
  q.waiting_for = "network";
  auto waiting = render_submission(q, nullptr, parse_fields("status,waiting_for"), false, table());
  CHECK(waiting->dump() == R"({"status":{"id":1,"description":"In Queue"},"waiting_for":"network"})");

  protocol::JobReport ce = finished({run_case("COMPILE_ERROR", 1)}, "main.c:1: error\n");
  ce.result.cases[0].name = "check";
  ce.result.verdict = "COMPILE_ERROR";
  auto c = render_submission(ce, nullptr, parse_fields("status,compile_output,stdout"), false, table());
  CHECK(c->dump() == R"({"status":{"id":6,"description":"Compilation Error"},)"
                     R"("compile_output":"main.c:1: error\n","stdout":null})");

  auto segv = render_submission(finished({run_case("RUNTIME_ERROR", 139, 11)}), nullptr,
                                parse_fields("status,exit_code,exit_signal,message"), false, table());
  CHECK(segv->dump() == R"j({"status":{"id":7,"description":"Runtime Error (SIGSEGV)"},)j"
                        R"("exit_code":null,"exit_signal":11,"message":"Caught fatal signal 11"})");

  protocol::JobReport mle = finished({run_case("MEMORY_LIMIT_EXCEEDED", 137, 9)});
  auto m = render_submission(mle, nullptr, parse_fields("status,message,verdict,node,sandbox"), false,
                             table());
  CHECK(m->dump() == R"j({"status":{"id":12,"description":"Runtime Error (Other)"},)j"
                     R"("message":"Memory limit exceeded","verdict":"MEMORY_LIMIT_EXCEEDED",)"
                     R"("node":"n1","sandbox":"full"})");
}

TEST_CASE("api response: output that is not UTF-8 needs base64_encoded=true") {
  protocol::JobReport r = finished({run_case("ACCEPTED")}, std::string("\xfe\xff", 2));
  CHECK_FALSE(render_submission(r, nullptr, parse_fields(""), false, table()));
  auto b = render_submission(r, nullptr, parse_fields(""), true, table());
  REQUIRE(b);
  CHECK((*b)["stdout"] == "/v8=\n");
}

TEST_CASE("api response: the request's attributes as judge0 stores them, and averaged runs") {
  Submission s = parsed(R"j({"source_code": "print(1)", "language_id": 71, "stdin": "x",
      "cpu_time_limit": 1.5, "number_of_runs": 2})j");
  REQUIRE(s.errors.empty());
  s.spec.submitted_ms = 1'700'000'000'123;
  protocol::CaseResult a = run_case("ACCEPTED"), b = run_case("ACCEPTED");
  a.cpu_ms = 10;
  b.cpu_ms = 30;
  protocol::JobReport r = finished({a, b}, "1\n");
  r.result.api_runs = 2;
  auto out = render_submission(
      r, &s.spec,
      parse_fields("time,language,language_id,stdin,expected_output,cpu_time_limit,number_of_runs,"
                   "created_at,source_code"),
      false, table());
  REQUIRE(out);
  CHECK(out->dump() == R"({"time":"0.020","language":{"id":71,"name":"Python"},"language_id":71,)"
                       R"("stdin":"x","expected_output":null,"cpu_time_limit":"1.5",)"
                       R"("number_of_runs":2,"created_at":"2023-11-14T22:13:20.123Z",)"
                       R"j("source_code":"print(1)"})j");
}

TEST_CASE("api records: the source is kept once, and an earlier build's copy still answers") {
  Submission s = parsed(R"j({"source_code": "print(42)", "language_id": 71})j");
  REQUIRE(s.errors.empty());
  CHECK(s.spec.api.source_code.empty());
  REQUIRE(s.spec.files.size() == 1);
  CHECK(s.spec.files[0].name == "script.py");
  CHECK(s.spec.files[0].content == "print(42)");
  protocol::JobReport r;
  r.ticket = "t1";
  r.state = protocol::JobState::kQueued;
  auto out = render_submission(r, &s.spec, parse_fields("source_code"), false, table());
  REQUIRE(out);
  CHECK(out->dump() == R"j({"source_code":"print(42)"})j");
  // A record of an earlier build has it in the request as well.
  s.spec.api.source_code = "print(42)";
  s.spec.files[0].content = "print(42)";
  auto old = render_submission(r, &s.spec, parse_fields("source_code"), true, table());
  REQUIRE(old);
  CHECK(old->dump() == R"({"source_code":"cHJpbnQoNDIp\n"})");
}

TEST_CASE("api fields: judge0's default, all with *, and unknown names reported") {
  CHECK(parse_fields("").names ==
        std::vector<std::string>{"token", "time", "memory", "stdout", "stderr", "compile_output",
                                 "message", "status"});
  CHECK(parse_fields("*").names == all_fields());
  Fields f = parse_fields("stdout,nope,status_id,bad");
  CHECK(f.names == std::vector<std::string>{"stdout", "status_id"});
  CHECK(f.invalid == std::vector<std::string>{"nope", "bad"});
}

TEST_CASE("api base64: Ruby's lines of 60, and a lenient decoder") {
  CHECK(base64_encode("") == "");
  CHECK(base64_encode("hello, Judge0\n") == "aGVsbG8sIEp1ZGdlMAo=\n");
  std::string long_text(100, 'a');
  std::string enc = base64_encode(long_text);
  CHECK(enc.find('\n') == 60);
  CHECK(base64_decode(enc) == long_text);
  CHECK(base64_decode("aGVs\nbG8=") == "hello");
  CHECK(base64_decode("aGVsbG8") == "hello");  // padding left out
  CHECK(base64_decode("SnVkZ2Uw") == "Judge0");
}

TEST_CASE("api records: a job with its judge0 request round-trips, and version 5 still reads") {
  Submission s = parsed(R"j({"source_code": "print(1)", "language_id": 71, "stdin": "x",
      "redirect_stderr_to_stdout": true, "memory_limit": 65536})j");
  REQUIRE(s.errors.empty());
  s.spec.ticket = "t1";
  std::string bytes = protocol::to_record(s.spec);
  protocol::JobSpec back;
  REQUIRE(protocol::from_record(bytes, back));
  CHECK(back == s.spec);
  CHECK(back.api.redirect_stderr_to_stdout);
  CHECK(back.limits.memory_mb == 64);
  // The same job as version 5 wrote it: the new fields default.
  std::string v5 = std::string(1, protocol::kRecordMarker) + std::string(1, '\x05') +
                   protocol::to_bytes_at(s.spec, 5);
  protocol::JobSpec old;
  REQUIRE(protocol::from_record(v5, old));
  CHECK(old.command == s.spec.command);
  CHECK_FALSE(old.is_api);
  CHECK(old.needs.empty());
  CHECK(old.limits.processes == 0);
}

// ---- callbacks -------------------------------------------------------------

TEST_CASE("api callbacks: URLs, ranges, and which addresses a callback may reach") {
  auto u = parse_url("https://judge.example:8443/hooks/done?x=1#frag");
  REQUIRE(u);
  CHECK(u->tls);
  CHECK(u->host == "judge.example");
  CHECK(u->port == "8443");
  CHECK(u->target == "/hooks/done?x=1");
  CHECK(parse_url("http://[::1]:9/")->host == "::1");
  CHECK(parse_url("http://h")->target == "/");
  for (const char* bad : {"ftp://x/", "http://", "http://user:pw@x/", "http://x:0/", "http://x:99999/",
                          "http://x y/", "javascript:alert(1)"}) {
    CHECK_MESSAGE(!parse_url(bad), bad);
  }
  auto allow = parse_cidrs("127.0.0.0/8, fd00::/8");
  REQUIRE(allow);
  CHECK_FALSE(parse_cidrs("10.0.0.0/33"));
  CHECK_FALSE(parse_cidrs("nope"));
  using boost::asio::ip::make_address;
  for (const char* inner : {"127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
                            "100.64.0.1", "0.0.0.0", "::1", "fe80::1", "fd12::1", "::ffff:10.0.0.1",
                            "224.0.0.1"}) {
    CHECK_MESSAGE(!reachable(make_address(inner), {}), inner);
  }
  CHECK(reachable(make_address("93.184.216.34"), {}));
  CHECK(reachable(make_address("2606:2800:220:1::1"), {}));
  CHECK(reachable(make_address("127.0.0.1"), *allow));
  CHECK(reachable(make_address("fd12::1"), *allow));
  CHECK_FALSE(reachable(make_address("10.1.2.3"), *allow));
  CHECK(check_callback_url("http://169.254.169.254/latest/meta-data", {}).find("may not reach") == 0);
  CHECK(check_callback_url("http://localhost:9000/", {}).find("may not reach") == 0);
  CHECK(check_callback_url("http://localhost:9000/", *allow) == "");
  CHECK(check_callback_url("https://judge.example/cb", {}) == "");
  CHECK(check_callback_url("gopher://x", {}).find("must be an http") == 0);
  CHECK(errors_of(R"({"source_code": "x", "language_id": 71, "callback_url": "http://10.0.0.5/cb"})") ==
        R"j({"callback_url":["may not reach a loopback, link-local or private address (unless CALLBACK_ALLOW names it)"]})j");
}

}  // namespace jc::api
