// A judge0 submission as jobcluster runs it, both ways: the request's
// attributes (judge0 CE 1.13.1's 20, and the added `test_cases`) checked
// against this node's settings and languages and made a job; and a job, as
// a node reports it, rendered as judge0's response attributes (its names,
// types and units: `time` a decimal string in seconds, `memory` an integer
// in KB, `status` {id, description}, dates in ISO 8601), only the `fields`
// asked for, Base64 where asked (api/response.cpp). Pure: no sockets, no
// clock, no node.
//
// How a submission runs: the source goes into /box under its language's
// file name, the zip of `additional_files` beside it; the language's
// compile command is the job's check step (run once, under compile limits of
// its own, whatever follows); its run command runs once per test case and
// run (`number_of_runs` in a row for each); compiler options and arguments
// reach the compiler and the program as words, never as shell text.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/callbacks.h"
#include "api/languages.h"
#include "api/text.h"
#include "protocol/job.h"

namespace simdjson::dom {
class element;
class parser;
}  // namespace simdjson::dom

namespace jc::api {

using Json = nlohmann::ordered_json;

// The node's judge0 configuration (GET /config_info): each request
// attribute's default and maximum, from the node's JOB_* settings.
struct Settings {
  std::uint32_t cpu_time_limit_ms = 5000, max_cpu_time_limit_ms = 15000;
  std::uint32_t cpu_extra_time_ms = 1000, max_cpu_extra_time_ms = 5000;
  std::uint32_t wall_time_limit_ms = 10000, max_wall_time_limit_ms = 20000;
  std::uint32_t memory_limit_kb = 128000, max_memory_limit_kb = 512000;
  std::uint32_t stack_limit_kb = 64000, max_stack_limit_kb = 128000;
  std::uint32_t max_processes_and_or_threads = 60, max_max_processes_and_or_threads = 120;
  std::uint32_t max_file_size_kb = 1024, max_max_file_size_kb = 4096;
  std::uint32_t number_of_runs = 1, max_number_of_runs = 20;
  std::uint32_t max_test_cases = 200;
  std::uint32_t max_archive_entries = 1000;  // entries of additional_files
  std::vector<Cidr> callback_allow;          // CALLBACK_ALLOW
  std::uint32_t callback_retry_s = 3600;     // CALLBACK_RETRY_S
  std::uint32_t max_batch = 20;        // MAX_SUBMISSION_BATCH_SIZE
  std::uint32_t max_wait_s = 60;       // how long wait=true may block
  bool allow_network = false;          // some node offers it (JOB_ALLOW_NETWORK)
  // What every submission's runs get besides (JOB_OUTPUT_KB, JOB_DISK_MB).
  std::uint32_t output_kb = 1024;
  std::uint32_t disk_mb = 64;
};

// judge0's 422 body: attribute -> messages, in the order found.
using Errors = std::vector<std::pair<std::string, std::vector<std::string>>>;
Json errors_json(const Errors& errors);

struct Submission {
  protocol::JobSpec spec;  // a run job, its ticket and owner still to be set
  Errors errors;           // non-empty: refused (422), `spec` meaningless
};

// Reads request bodies as JSON (simdjson's DOM: strict JSON, UTF-8
// checked), reusing its buffers from one body to the next.
class BodyParser {
 public:
  BodyParser();
  ~BodyParser();
  BodyParser(const BodyParser&) = delete;
  BodyParser& operator=(const BodyParser&) = delete;
  // The body's root value; nullptr when it is not JSON. Valid until the
  // next parse.
  const simdjson::dom::element* parse(std::string_view text);

 private:
  std::unique_ptr<simdjson::dom::parser> parser_;
  std::unique_ptr<simdjson::dom::element> root_;
};

// One submission of a request body (a JSON value; not an object is an
// error of its own). `base64`: source_code, stdin and expected_output (and
// test cases') come Base64-encoded. `languages`: the table; `offered`:
// whether some node of the cluster offers a need ("lang:71", "network"):
// a language no node runs is refused, as one that does not exist.
Submission parse_submission(const simdjson::dom::element& body, bool base64, const Settings& settings,
                            const std::vector<Language>& languages,
                            const std::function<bool(const std::string&)>& offered = {});

// The `fields` query parameter: the attributes asked for ("" gives judge0's
// default eight, "*" all), or the unknown names (a 400 in judge0's words).
struct Fields {
  std::vector<std::string> names;
  std::vector<std::string> invalid;
};
Fields parse_fields(std::string_view param);
// Every attribute a submission response may have, in judge0's order, then
// jobcluster's (verdict, node, sandbox, test_cases).
const std::vector<std::string>& all_fields();

// A job (a report as the node gives it; `spec` when known) as judge0's
// response. Returns nullopt when a text attribute is not UTF-8 and `base64`
// is false (judge0 then answers 400 asking for base64_encoded=true).
std::optional<Json> render_submission(const protocol::JobReport& report,
                                      const protocol::JobSpec* spec, const Fields& fields,
                                      bool base64, const std::vector<Language>& languages);

}  // namespace jc::api
