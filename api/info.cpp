// judge0's read-only endpoints: what the cluster runs (languages,
// statuses, settings) and how it is (workers, statistics, the machine).
#include <sys/sysinfo.h>

#include <algorithm>
#include <fmt/format.h>
#include <thread>

#include "api/call.h"
#include "api/router.h"
#include "api/statuses.h"

namespace jc::api {

namespace {

// judge0's version this API follows (GET /version, /about).
constexpr const char* kJudge0Version = "1.13.1";

std::string compile_cmd_shown(const Language& l) {
  // judge0 writes where the options go as %s.
  std::string c = *l.compile_cmd;
  auto at = c.find("{compiler_options}");
  if (at != std::string::npos) c.replace(at, 18, "%s");
  return c;
}

std::string run_cmd_shown(const Language& l) {
  std::string c = l.run_cmd;
  auto at = c.find(" {args}");
  if (at != std::string::npos) c.erase(at, 7);
  return c;
}

}  // namespace

bool Router::info(const std::shared_ptr<Call>& call) {
  const std::string& path = call->path;
  auto starts = [&](std::string_view prefix) { return path.rfind(prefix, 0) == 0; };
  auto done = [&](HttpResponse r) {
    call->answer(std::move(r));
    return true;
  };
  if (path == "/languages" || starts("/languages/")) {
    languages(call, path.size() > 10 ? path.substr(11) : "");
    return true;
  }
  if (path == "/statuses") {
    Json out = Json::array();
    for (Status s : all_statuses()) {
      out.push_back({{"id", static_cast<int>(s)}, {"description", description(s)}});
    }
    return done(json_response(200, out));
  }
  if (path == "/config_info") return done(json_response(200, config_info()));
  if (path == "/about") {
    return done(json_response(
        200, Json{{"version", kJudge0Version},
                  {"homepage", "https://github.com/jobcluster"},
                  {"source_code", "https://github.com/jobcluster"},
                  {"maintainer", "jobcluster"},
                  {"jobcluster", JOBCLUSTER_VERSION}}));
  }
  if (path == "/version") {
    HttpResponse r;
    r.content_type = "text/plain; charset=utf-8";
    r.body = kJudge0Version;
    return done(std::move(r));
  }
  if (path == "/system_info") {
    struct sysinfo si {};
    ::sysinfo(&si);
    return done(json_response(
        200, Json{{"CPU(s)", std::to_string(std::max(1u, std::thread::hardware_concurrency()))},
                  {"Mem", fmt::format("{}Mi", si.totalram * si.mem_unit >> 20)},
                  {"node", context_.node_id}}));
  }
  if (path == "/workers") {
    workers(call);
    return true;
  }
  if (path == "/statistics") {
    statistics(call);
    return true;
  }
  return false;
}

Json Router::config_info() const {
  const Settings& s = context_.settings;
  auto secs = [](std::uint32_t ms) { return ms / 1000.0; };
  return Json{{"maintenance_mode", false},
              {"enable_wait_result", true},
              {"enable_compiler_options", true},
              {"allowed_languages_for_compile_options", Json::array()},
              {"enable_command_line_arguments", true},
              {"enable_submission_delete", true},
              {"enable_callbacks", true},
              // Retried until answered 2xx or callbacks_retry_seconds pass.
              {"callbacks_max_tries", 0},
              {"callbacks_timeout", 10},
              {"callbacks_retry_seconds", s.callback_retry_s},
              {"enable_additional_files", true},
              {"max_queue_size", backend_.max_queue()},  // the proxy's MAX_QUEUE (0: none)
              {"cpu_time_limit", secs(s.cpu_time_limit_ms)},
              {"max_cpu_time_limit", secs(s.max_cpu_time_limit_ms)},
              {"cpu_extra_time", secs(s.cpu_extra_time_ms)},
              {"max_cpu_extra_time", secs(s.max_cpu_extra_time_ms)},
              {"wall_time_limit", secs(s.wall_time_limit_ms)},
              {"max_wall_time_limit", secs(s.max_wall_time_limit_ms)},
              {"memory_limit", s.memory_limit_kb},
              {"max_memory_limit", s.max_memory_limit_kb},
              {"stack_limit", s.stack_limit_kb},
              {"max_stack_limit", s.max_stack_limit_kb},
              {"max_processes_and_or_threads", s.max_processes_and_or_threads},
              {"max_max_processes_and_or_threads", s.max_max_processes_and_or_threads},
              {"enable_per_process_and_thread_time_limit", false},
              {"allow_enable_per_process_and_thread_time_limit", false},
              {"enable_per_process_and_thread_memory_limit", false},
              {"allow_enable_per_process_and_thread_memory_limit", false},
              {"max_file_size", s.max_file_size_kb},
              {"max_max_file_size", s.max_max_file_size_kb},
              {"number_of_runs", s.number_of_runs},
              {"max_number_of_runs", s.max_number_of_runs},
              {"redirect_stderr_to_stdout", false},
              {"max_extract_size", s.disk_mb * 1024},
              {"enable_batched_submissions", true},
              {"max_submission_batch_size", s.max_batch},
              {"submission_cache_duration", 0},
              {"use_docs_as_homepage", false},
              {"allow_enable_network", s.allow_network},
              {"enable_network", false},
              // jobcluster's own.
              {"max_test_cases", s.max_test_cases},
              {"max_wait_seconds", s.max_wait_s}};
}

void Router::languages(const std::shared_ptr<Call>& call, const std::string& rest) {
  // What some node of the cluster runs now.
  auto has = [&](int id) { return backend_.available(fmt::format("lang:{}", id)); };
  if (rest.empty()) {
    Json out = Json::array();
    for (const auto& l : context_.table) {
      if (has(l.id)) out.push_back({{"id", l.id}, {"name", l.full_name}});
    }
    return call->answer(json_response(200, out));
  }
  if (rest == "all") {
    // Every language of the table; what this node cannot run is archived.
    std::vector<const Language*> all;
    for (const auto& l : context_.table) all.push_back(&l);
    std::sort(all.begin(), all.end(), [](const Language* a, const Language* b) { return a->name < b->name; });
    Json out = Json::array();
    for (const Language* l : all) {
      out.push_back({{"id", l->id}, {"name", l->full_name}, {"is_archived", !has(l->id)}});
    }
    return call->answer(json_response(200, out));
  }
  int id = 0;
  try {
    std::size_t used = 0;
    id = std::stoi(rest, &used);
    if (used != rest.size()) id = 0;
  } catch (...) {
  }
  const Language* found = nullptr;
  for (const auto& l : context_.table) {
    if (l.id == id) found = &l;
  }
  if (found == nullptr) return call->answer(error_response(404, "no language with id " + rest));
  call->answer(json_response(
      200, Json{{"id", found->id},
                {"name", found->full_name},
                {"is_archived", !has(found->id)},
                {"source_file", found->is_project ? Json(nullptr) : Json(found->source_file)},
                {"compile_cmd", found->compile_cmd ? Json(compile_cmd_shown(*found)) : Json(nullptr)},
                {"run_cmd", run_cmd_shown(*found)}}));
}

void Router::workers(const std::shared_ptr<Call>& call) {
  backend_.stats([call](const protocol::ClusterStats& s, bool) {
    // judge0 lists its worker queues; here a node is one.
    Json out = Json::array();
    for (const auto& n : s.nodes) {
      out.push_back({{"queue", n.node_id},
                     {"size", n.queued},
                     {"available", n.slots},
                     {"idle", n.slots > n.running ? n.slots - n.running : 0},
                     {"working", n.running},
                     {"paused", n.state == "draining" ? n.slots : 0},
                     {"failed", 0},
                     {"state", n.state.empty() ? (n.connected ? "up" : "down") : n.state}});
    }
    call->answer(json_response(200, out));
  });
}

void Router::statistics(const std::shared_ptr<Call>& call) {
  backend_.stats([this, call](const protocol::ClusterStats& s, bool) {
    std::string now = iso8601(backend_.now());
    call->answer(json_response(
        200, Json{{"created_at", now},
                  {"cached_until", now},
                  {"submissions",
                   {{"total", s.submitted_total}, {"finished", s.finished_total},
                    {"queued", s.queue_length}, {"running", s.running}}},
                  {"languages", Json::array()},
                  {"statuses", Json::array()},
                  {"database", {{"size_pretty", nullptr}, {"size_in_bytes", nullptr}}}}));
  });
}

}  // namespace jc::api
