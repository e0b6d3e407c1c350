// What a job is, what became of it, and the one job state machine that both
// binaries follow (docs/job-states.md draws it as a table).
//
// These types cross the wire (protocol/archive.h) and are the values stored
// in LevelDB. A decode refuses missing and extra bytes, so a field is only
// ever added at the end of a type, read and written under a new record
// version (kRecordVersion, archive.h), with kProtocolVersion (messages.h)
// bumped too: stored records of older versions still read.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/fields.h"

namespace jc::protocol {

enum class JobState : std::uint8_t {
  kQueued = 0,
  kRunning = 1,
  kDone = 2,
  kFailed = 3,
  kTimeout = 4,
  kCancelled = 5,
  kUnknown = 6,  // only in reports: "this side has never heard of the ticket"
  kExpired = 7,  // only in reports: the job ended longer than RESULT_TTL ago and is gone
};

std::string_view to_string(JobState s);
inline bool is_final(JobState s) {
  return s == JobState::kDone || s == JobState::kFailed || s == JobState::kTimeout ||
         s == JobState::kCancelled;
}

// What can happen to a job. The proxy owns the authoritative state and moves
// it only through next_state(); a node's local view follows the same table.
enum class JobEvent : std::uint8_t {
  kDispatch,  // proxy hands the job to a node
  kFinish,    // a node reports a final result (state in `outcome`)
  kNodeLost,  // the node holding it died or gave it up
  kGiveUp,    // too many attempts: the job ends FAILED
  kCancel,    // a client cancels it
};

// The state after `event`, or nullopt when the event does not apply (for
// instance any event on a final job: the first final result wins).
std::optional<JobState> next_state(JobState current, JobEvent event,
                                   JobState outcome = JobState::kDone);
std::string_view to_string(JobEvent e);
// next_state() as a step of a job: moves `state`, or leaves it and returns
// why the table refuses (for the caller to log as an error).
std::optional<std::string> advance(JobState& state, JobEvent event,
                                   JobState outcome = JobState::kDone);

enum class JobKind : std::uint8_t { kSleep = 0, kRun = 1 };

// Limits of a `run` job; zero means "the node's default".
struct Limits {
  std::uint32_t timeout_ms = 0;
  std::uint32_t cpu_ms = 0;
  std::uint32_t memory_mb = 0;
  std::uint32_t output_kb = 0;
  std::uint32_t disk_mb = 0;  // its working directory and /tmp together
  // Version 6, set by judge0's attributes (api/); zero: the node's way.
  std::uint32_t cpu_extra_ms = 0;  // a run is ended this long past cpu_ms (judged at cpu_ms)
  std::uint32_t processes = 0;     // processes and threads of one run (else JOB_PROCESSES)
  std::uint32_t stack_kb = 0;      // each process's stack (else --memory)
  std::uint32_t file_kb = 0;       // each file it writes (else --disk)
  bool network = false;            // the node's network instead of none (JOB_ALLOW_NETWORK)

  bool operator==(const Limits&) const = default;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    fields(ar, timeout_ms, cpu_ms, memory_mb, output_kb, disk_mb);
    if (ar.version() >= 6) fields(ar, cpu_extra_ms, processes, stack_kb, file_kb, network);
  }
};

// What a submission through the judge0-compatible API asked beyond the job
// itself (version 6), so that any node shows it back as judge0 would. The
// limits are judge0's attributes as given or defaulted (times in ms,
// memory in KB); the job's Limits are what the sandbox applies.
struct ApiRequest {
  std::int32_t language_id = 0;
  // Only in records of earlier builds: the source is now kept once, as its
  // file in JobSpec::files.
  std::string source_code;
  std::string compiler_options;
  std::string command_line_arguments;
  std::string additional_files;  // the zip as sent, decoded from Base64
  std::string callback_url;
  std::uint32_t cpu_time_limit_ms = 0, cpu_extra_time_ms = 0, wall_time_limit_ms = 0;
  std::uint32_t memory_limit_kb = 0, stack_limit_kb = 0, max_file_size_kb = 0;
  std::uint32_t max_processes_and_or_threads = 0;
  std::uint32_t number_of_runs = 1;  // each test case runs this many times (cases in a row)
  std::uint32_t test_cases = 0;      // the `test_cases` given (0: the single stdin)
  bool enable_per_process_and_thread_time_limit = false;
  bool enable_per_process_and_thread_memory_limit = false;
  bool redirect_stderr_to_stdout = false;
  bool enable_network = false;
  bool has_stdin = false, has_expected = false;  // null stays null in responses

  bool operator==(const ApiRequest&) const = default;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    fields(ar, language_id, source_code, compiler_options, command_line_arguments,
           additional_files, callback_url, cpu_time_limit_ms, cpu_extra_time_ms,
           wall_time_limit_ms, memory_limit_kb, stack_limit_kb, max_file_size_kb,
           max_processes_and_or_threads, number_of_runs, test_cases,
           enable_per_process_and_thread_time_limit, enable_per_process_and_thread_memory_limit,
           redirect_stderr_to_stdout, enable_network, has_stdin, has_expected);
  }
};

// A file written into a run job's fresh working directory before it starts.
struct FileSpec {
  std::string name;
  std::string content;
  bool operator==(const FileSpec&) const = default;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    fields(ar, name, content);
  }
};

// One test case of a judged run job: its input and, optionally, the output
// it must print.
struct TestCase {
  std::string name;
  std::string stdin_data;
  bool has_expected = false;
  std::string expected;
  bool operator==(const TestCase&) const = default;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    fields(ar, name, stdin_data, has_expected, expected);
  }
};

struct JobSpec {
  std::string ticket;
  JobKind kind = JobKind::kSleep;
  std::uint64_t sleep_ms = 0;
  std::string command;     // run: the shell command
  std::string stdin_data;  // run: standard input
  Limits limits;
  std::string origin;              // node id that accepted it from a client
  std::int64_t submitted_ms = 0;   // wall clock at the origin
  std::int32_t priority = 0;       // -100..100: higher first at the proxy
  std::int64_t not_before_ms = 0;  // wall clock: not dispatched before (0 = at once)
  // run: judging. Without cases the command runs once with stdin_data and,
  // when has_expected, its output is compared with `expected`.
  bool has_expected = false;
  std::string expected;
  std::vector<FileSpec> files;
  std::string check;  // run once before the cases; failing it is COMPILE_ERROR
  std::vector<TestCase> cases;
  // The client name (CLIENT_TOKENS) that submitted it; "" without tokens.
  // Only that name (or one in ADMIN_NAMES) reads, waits for or cancels it.
  std::string owner;
  // Version 6: what a node must offer to run it ("lang:71", "label:gpu",
  // "network"), and the judge0 request it came from (when is_api).
  std::vector<std::string> needs;
  bool is_api = false;
  ApiRequest api;
  // The check step's limits (a compile's); all zero: the job's.
  Limits check_limits;

  bool operator==(const JobSpec&) const = default;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    fields(ar, ticket, kind, sleep_ms, command, stdin_data, limits, origin, submitted_ms, priority,
           not_before_ms, has_expected, expected, files, check, cases, owner);
    if (ar.version() >= 6) {
      fields(ar, needs, is_api, check_limits);
      if (is_api) fields(ar, api);
    }
  }
  // One line a person can read in logs and `getall`.
  std::string describe() const;
};

// What one run of the command (one test case, or the check step) gave.
struct CaseResult {
  std::string name;
  std::string verdict;
  std::int32_t exit_code = 0;
  std::int32_t signal = 0;
  std::int64_t wall_ms = 0;
  std::int64_t cpu_ms = 0;
  std::int64_t peak_kb = 0;
  std::string stdout_data;  // cut at a small size: the full output of a
  std::string stderr_data;  // single run is in JobResult
  bool stdout_truncated = false;
  bool stderr_truncated = false;

  bool operator==(const CaseResult&) const = default;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    fields(ar, name, verdict, exit_code, signal, wall_ms, cpu_ms, peak_kb, stdout_data, stderr_data,
           stdout_truncated, stderr_truncated);
  }
};

struct JobResult {
  JobState state = JobState::kDone;
  std::string node;
  std::uint32_t attempt = 0;
  std::string text;  // sleep: the sentence of the original system; run: a summary
  std::int32_t exit_code = 0;
  std::int32_t signal = 0;
  std::string stdout_data;
  std::string stderr_data;
  bool stdout_truncated = false;
  bool stderr_truncated = false;
  std::int64_t start_ms = 0;
  std::int64_t end_ms = 0;
  std::int64_t cpu_ms = 0;
  std::int64_t peak_kb = 0;
  std::string verdict;
  std::vector<CaseResult> cases;  // judged jobs with test cases
  std::uint32_t passed = 0;       // cases ACCEPTED
  bool is_run = false;            // a run job's result (framed with its output)
  // Run jobs: the protections that applied ("full", or the list; see
  // runner/protections.h), so a weak sandbox is never mistaken for a strong one.
  std::string sandbox;
  // Version 5: the proxy's wall clock when this became the job's one
  // result; RESULT_TTL counts from it (0: not known yet, see final_time()).
  std::int64_t final_ms = 0;
  // Version 6: what a check step that passed printed (stdout, then stderr;
  // a compiler's warnings), cut at kCheckOutputBytes. A failing one's is
  // the result's stdout and stderr, as before.
  std::string check_output;
  // Version 6: a judge0 submission's runs of each test case (its
  // number_of_runs: `cases` hold them in a row); 0 for other jobs.
  std::uint32_t api_runs = 0;
  // Version 9: a finished sleep's milliseconds as asked (-1 for any other
  // result). Such a result carries no text: its sentence is made where it
  // is shown (shown_text), from this, the ticket, its times and its node,
  // the same on every node (the times in UTC). It was the largest field of
  // the three records and two messages that carry a result.
  std::int64_t sleep_ms = -1;

  bool operator==(const JobResult&) const = default;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    fields(ar, state, node, attempt, text, exit_code, signal, stdout_data, stderr_data,
           stdout_truncated, stderr_truncated, start_ms, end_ms, cpu_ms, peak_kb, verdict, cases,
           passed, is_run, sandbox);
    if (ar.version() >= 5) fields(ar, final_ms);
    if (ar.version() >= 6) fields(ar, check_output, api_runs);
    if (ar.version() >= 9) fields(ar, sleep_ms);
  }
  // When the job counts as ended for RESULT_TTL: final_ms, or for a result
  // from before version 5 (or one the proxy has not accepted yet) its end.
  std::int64_t final_time() const { return final_ms != 0 ? final_ms : end_ms; }
};

// The sentence a result shows for the job `ticket`: its text, or for a
// finished sleep (JobResult::sleep_ms) the original system's sentence,
// "Executed Job[<ticket>] for <ms> milliseconds from <start> to <end> on
// node <node>".
std::string shown_text(const JobResult& r, std::string_view ticket);

// What one side knows of a ticket: sent in RESULT messages. A report with a
// final state carries the result.
struct JobReport {
  std::string ticket;
  JobState state = JobState::kUnknown;
  // The node that holds or ran it. In the proxy's kUnknown report: the node
  // whose tickets carry its prefix, when that node is away (the job may be
  // on its way from there); empty otherwise.
  std::string node;
  std::uint32_t attempts = 0;
  std::int64_t queue_position = -1;     // 0-based, while queued at the proxy
  std::int64_t estimated_wait_ms = -1;  // while queued, when the proxy can tell
  bool has_result = false;
  JobResult result;
  std::string owner;  // JobSpec::owner, so any node can answer only its owner
  std::int32_t priority = 0;       // JobSpec::priority
  std::int64_t not_before_ms = 0;  // JobSpec::not_before_ms, while queued
  // While queued and no node up can run it: what it waits for, the needs no
  // up node has ("label:gpu,lang:71"), or "node" when no node is up at all.
  std::string waiting_for;

  bool operator==(const JobReport&) const = default;
  template <class Archive>
  void serialize(Archive& ar, unsigned) {
    fields(ar, ticket, state, node, attempts, queue_position, estimated_wait_ms, has_result,
           result, owner, priority, not_before_ms, waiting_for);
  }
};

// One line of `getall`: a job submitted through a node, as that node knows it.
struct GetAllEntry {
  std::string ticket;
  JobState state;
  std::string job;    // JobSpec::describe()
  std::string owner;  // JobSpec::owner
};

// The result of a job cancelled while it waited (at the proxy or on a node).
JobResult cancelled_before_run(JobKind kind);

// Tickets: [A-Za-z0-9_-], 1..32 characters (INTERFACE.md section 3).
constexpr std::size_t kMaxTicketLength = 32;
bool is_valid_ticket(std::string_view t);
// Node ids: [A-Za-z0-9._-], 1..64 characters (NODE_ID, HELLO).
bool is_valid_node_id(std::string_view id);

}  // namespace jc::protocol
