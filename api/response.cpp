// The answer half of api/submission.h: the `fields` judge0 takes, and a job
// as a node reports it rendered as judge0's response attributes. Pure: no
// sockets, no clock, no node.
#include <algorithm>
#include <cmath>
#include <fmt/format.h>

#include "api/statuses.h"
#include "api/submission.h"

namespace jc::api {

// ---- fields ---------------------------------------------------------------

const std::vector<std::string>& all_fields() {
  static const std::vector<std::string> kAll = {
      "source_code", "language_id", "stdin", "expected_output", "stdout", "status_id",
      "created_at", "finished_at", "time", "memory", "stderr", "token", "number_of_runs",
      "cpu_time_limit", "cpu_extra_time", "wall_time_limit", "memory_limit", "stack_limit",
      "max_processes_and_or_threads", "enable_per_process_and_thread_time_limit",
      "enable_per_process_and_thread_memory_limit", "max_file_size", "compile_output",
      "exit_code", "exit_signal", "message", "wall_time", "compiler_options",
      "command_line_arguments", "redirect_stderr_to_stdout", "callback_url", "additional_files",
      "enable_network", "status", "language",
      // jobcluster's additions.
      "verdict", "node", "sandbox", "test_cases", "waiting_for"};
  return kAll;
}

Fields parse_fields(std::string_view param) {
  static const std::vector<std::string> kDefault = {"token",  "time",           "memory",
                                                    "stdout", "stderr",         "compile_output",
                                                    "message", "status"};
  Fields f;
  bool all = false;
  std::size_t at = 0;
  while (at <= param.size() && !param.empty()) {
    std::size_t comma = std::min(param.find(',', at), param.size());
    std::string name(param.substr(at, comma - at));
    at = comma + 1;
    if (name.empty()) continue;
    if (name == "*") {
      all = true;
      continue;
    }
    const auto& known = all_fields();
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      f.invalid.push_back(name);
    } else if (std::find(f.names.begin(), f.names.end(), name) == f.names.end()) {
      f.names.push_back(name);
    }
    if (comma == param.size()) break;
  }
  if (all) f.names = all_fields();
  if (f.names.empty()) f.names = kDefault;
  return f;
}

// ---- rendering --------------------------------------------------------------

namespace {

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    if (c < 0x80) {
      n = 0;
    } else if ((c >> 5) == 0x6) {
      n = 1;
    } else if ((c >> 4) == 0xE) {
      n = 2;
    } else if ((c >> 3) == 0x1E) {
      n = 3;
    } else {
      return false;
    }
    if (n > 0 && i + n >= s.size()) return false;
    for (std::size_t k = 1; k <= n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return false;
    }
    i += n + 1;
  }
  return true;
}

std::string decimal_seconds(std::int64_t ms) {
  // judge0's `time` is a decimal column: "0.001".
  return fmt::format("{}.{:03d}", ms / 1000, static_cast<int>(ms % 1000));
}

std::string limit_seconds(std::uint32_t ms) {
  // As judge0 stores a limit given in seconds: "5.0", "1.5".
  std::string s = fmt::format("{}.{:03d}", ms / 1000, ms % 1000);
  while (s.back() == '0' && s[s.size() - 2] != '.') s.pop_back();
  return s;
}

struct Figures {
  std::int64_t cpu_ms = 0, wall_ms = 0, peak_kb = 0;
};

// A test case's figures: the average of its runs (judge0's number_of_runs).
Figures average(const std::vector<protocol::CaseResult>& cases, std::size_t first, std::size_t n) {
  Figures f;
  if (n == 0) return f;
  for (std::size_t i = first; i < first + n && i < cases.size(); ++i) {
    f.cpu_ms += cases[i].cpu_ms;
    f.wall_ms += cases[i].wall_ms;
    f.peak_kb += cases[i].peak_kb;
  }
  auto k = static_cast<std::int64_t>(n);
  return {f.cpu_ms / k, f.wall_ms / k, f.peak_kb / k};
}

// The first failing run among the cases, else the last.
const protocol::CaseResult* shown_run(const std::vector<protocol::CaseResult>& cases) {
  for (const auto& c : cases) {
    if (c.verdict != "ACCEPTED") return &c;
  }
  return cases.empty() ? nullptr : &cases.back();
}

}  // namespace

std::optional<Json> render_submission(const protocol::JobReport& report,
                                      const protocol::JobSpec* spec, const Fields& fields,
                                      bool base64, const std::vector<Language>& languages) {
  const bool api = spec != nullptr && spec->is_api;
  const protocol::ApiRequest* a = api ? &spec->api : nullptr;
  const bool final = protocol::is_final(report.state) && report.has_result;
  const protocol::JobResult* r = final ? &report.result : nullptr;

  // The outcome, from the result's judged runs.
  Outcome outcome;
  std::optional<Figures> top;
  std::optional<std::string> stdout_text, stderr_text, compile_output;
  std::vector<Json> cases_json;
  if (report.state == protocol::JobState::kQueued) outcome.status = Status::kInQueue;
  if (report.state == protocol::JobState::kRunning) outcome.status = Status::kProcessing;
  if (r != nullptr) {
    bool compile_failed = !r->cases.empty() && r->cases.front().name == "check" &&
                          r->verdict == "COMPILE_ERROR";
    if (compile_failed) {
      outcome.status = Status::kCompilationError;
      compile_output = r->stdout_data + r->stderr_data;
    } else if (!r->is_run) {
      // A sleep job: done is accepted, its sentence is its output.
      outcome.status = r->state == protocol::JobState::kDone ? Status::kAccepted
                                                               : Status::kInternalError;
      stdout_text = protocol::shown_text(*r, report.ticket);
    } else if (r->cases.empty() || r->cases.front().name != "check") {
      // A run job without test cases (the line protocol's) is one run: its
      // result is that run's.
      std::vector<protocol::CaseResult> single;
      const std::vector<protocol::CaseResult>* cases = &r->cases;
      if (r->cases.empty()) {
        protocol::CaseResult c;
        c.name = "1";
        c.verdict = r->verdict.empty() ? "ACCEPTED" : r->verdict;
        c.exit_code = r->exit_code;
        c.signal = r->signal;
        c.cpu_ms = r->cpu_ms;
        c.wall_ms = r->end_ms - r->start_ms;
        c.peak_kb = r->peak_kb;
        c.stderr_data = r->stderr_data.substr(0, 4096);
        single.push_back(std::move(c));
        cases = &single;
      }
      outcome = outcome_of(*shown_run(*cases));
      stdout_text = r->stdout_data;
      stderr_text = r->stderr_data;
      if (!r->check_output.empty()) compile_output = r->check_output;
      // Per test case (each `number_of_runs` runs in a row): the average.
      std::size_t runs = std::max<std::uint32_t>(1, r->api_runs);
      for (std::size_t i = 0; i < (*cases).size(); i += runs) {
        Figures f = average((*cases), i, std::min(runs, (*cases).size() - i));
        if (!top || f.cpu_ms > top->cpu_ms) top = f;
        const protocol::CaseResult* failing = nullptr;
        for (std::size_t k = i; k < i + runs && k < (*cases).size(); ++k) {
          if ((*cases)[k].verdict != "ACCEPTED" && failing == nullptr) failing = &(*cases)[k];
        }
        Outcome co = outcome_of(failing ? *failing : (*cases)[std::min(i + runs, (*cases).size()) - 1]);
        Json cj = Json::object();
        cj["status"] = {{"id", static_cast<int>(co.status)}, {"description", description(co.status)}};
        cj["time"] = decimal_seconds(f.cpu_ms);
        cj["wall_time"] = decimal_seconds(f.wall_ms);
        cj["memory"] = f.peak_kb;
        cj["exit_code"] = co.exit_code ? Json(*co.exit_code) : Json(nullptr);
        cj["exit_signal"] = co.exit_signal ? Json(*co.exit_signal) : Json(nullptr);
        cj["message"] = co.message.empty() ? Json(nullptr) : Json(co.message);
        cases_json.push_back(std::move(cj));
      }
      if (r->state == protocol::JobState::kCancelled) {
        outcome.status = Status::kInternalError;
        outcome.message = "Cancelled";
      }
    } else {
      // A check step that ended otherwise than failing (cancelled during it).
      outcome.status = Status::kInternalError;
      outcome.message = r->text;
      stdout_text = r->stdout_data;
      stderr_text = r->stderr_data;
    }
    // judge0 gives no figures for a failed compile.
    if (!top && r->is_run && outcome.status != Status::kCompilationError) {
      top = Figures{r->cpu_ms, r->end_ms - r->start_ms, r->peak_kb};
    }
  }
  if (stdout_text && stdout_text->empty()) stdout_text.reset();
  if (stderr_text && stderr_text->empty()) stderr_text.reset();
  if (compile_output && compile_output->empty()) compile_output.reset();

  // Text attributes: as they are, or Base64; not UTF-8 without Base64 fails.
  bool convertible = true;
  auto text = [&](const std::optional<std::string>& v) -> Json {
    if (!v) return nullptr;
    if (base64) return base64_encode(*v);
    if (!valid_utf8(*v)) convertible = false;
    return *v;
  };
  std::string language_name;
  const std::string* source = nullptr;  // as given; in records of earlier builds, in `a`
  if (a != nullptr) {
    for (const auto& l : languages) {
      if (l.id != a->language_id) continue;
      language_name = l.full_name;
      for (const auto& f : spec->files) {
        if (!l.is_project && f.name == l.source_file) source = &f.content;
      }
    }
    if (!a->source_code.empty()) source = &a->source_code;
  }
  Json out = Json::object();
  for (const auto& name : fields.names) {
    if (name == "token") {
      out[name] = report.ticket;
    } else if (name == "status") {
      out[name] = {{"id", static_cast<int>(outcome.status)}, {"description", description(outcome.status)}};
    } else if (name == "status_id") {
      out[name] = static_cast<int>(outcome.status);
    } else if (name == "stdout") {
      out[name] = text(stdout_text);
    } else if (name == "stderr") {
      out[name] = text(stderr_text);
    } else if (name == "compile_output") {
      out[name] = text(compile_output);
    } else if (name == "message") {
      out[name] = text(outcome.message.empty() ? std::nullopt : std::optional<std::string>(outcome.message));
    } else if (name == "time") {
      out[name] = top ? Json(decimal_seconds(top->cpu_ms)) : Json(nullptr);
    } else if (name == "wall_time") {
      out[name] = top ? Json(decimal_seconds(top->wall_ms)) : Json(nullptr);
    } else if (name == "memory") {
      out[name] = top ? Json(top->peak_kb) : Json(nullptr);
    } else if (name == "exit_code") {
      out[name] = r != nullptr && outcome.exit_code ? Json(*outcome.exit_code) : Json(nullptr);
    } else if (name == "exit_signal") {
      out[name] = r != nullptr && outcome.exit_signal ? Json(*outcome.exit_signal) : Json(nullptr);
    } else if (name == "created_at") {
      out[name] = spec != nullptr && spec->submitted_ms > 0 ? Json(iso8601(spec->submitted_ms))
                                                            : Json(nullptr);
    } else if (name == "finished_at") {
      out[name] = r != nullptr && r->end_ms > 0 ? Json(iso8601(r->end_ms)) : Json(nullptr);
    } else if (name == "source_code") {
      out[name] = text(a ? std::optional<std::string>(source ? *source : "") : std::nullopt);
    } else if (name == "language_id") {
      out[name] = a ? Json(a->language_id) : Json(nullptr);
    } else if (name == "language") {
      out[name] = a ? Json{{"id", a->language_id}, {"name", language_name}} : Json(nullptr);
    } else if (name == "stdin") {
      bool has = a && a->has_stdin && a->test_cases == 0 && !spec->cases.empty();
      out[name] = text(has ? std::optional<std::string>(spec->cases.front().stdin_data) : std::nullopt);
    } else if (name == "expected_output") {
      bool has = a && a->has_expected && a->test_cases == 0 && !spec->cases.empty();
      out[name] = text(has ? std::optional<std::string>(spec->cases.front().expected) : std::nullopt);
    } else if (name == "number_of_runs") {
      out[name] = a ? Json(a->number_of_runs) : Json(nullptr);
    } else if (name == "cpu_time_limit") {
      out[name] = a ? Json(limit_seconds(a->cpu_time_limit_ms)) : Json(nullptr);
    } else if (name == "cpu_extra_time") {
      out[name] = a ? Json(limit_seconds(a->cpu_extra_time_ms)) : Json(nullptr);
    } else if (name == "wall_time_limit") {
      out[name] = a ? Json(limit_seconds(a->wall_time_limit_ms)) : Json(nullptr);
    } else if (name == "memory_limit") {
      out[name] = a ? Json(a->memory_limit_kb) : Json(nullptr);
    } else if (name == "stack_limit") {
      out[name] = a ? Json(a->stack_limit_kb) : Json(nullptr);
    } else if (name == "max_processes_and_or_threads") {
      out[name] = a ? Json(a->max_processes_and_or_threads) : Json(nullptr);
    } else if (name == "enable_per_process_and_thread_time_limit") {
      out[name] = a ? Json(a->enable_per_process_and_thread_time_limit) : Json(nullptr);
    } else if (name == "enable_per_process_and_thread_memory_limit") {
      out[name] = a ? Json(a->enable_per_process_and_thread_memory_limit) : Json(nullptr);
    } else if (name == "max_file_size") {
      out[name] = a ? Json(a->max_file_size_kb) : Json(nullptr);
    } else if (name == "compiler_options") {
      out[name] = a && !a->compiler_options.empty() ? Json(a->compiler_options) : Json(nullptr);
    } else if (name == "command_line_arguments") {
      out[name] = a && !a->command_line_arguments.empty() ? Json(a->command_line_arguments)
                                                          : Json(nullptr);
    } else if (name == "redirect_stderr_to_stdout") {
      out[name] = a ? Json(a->redirect_stderr_to_stdout) : Json(nullptr);
    } else if (name == "callback_url") {
      out[name] = a && !a->callback_url.empty() ? Json(a->callback_url) : Json(nullptr);
    } else if (name == "additional_files") {
      // judge0 always gives them Base64-encoded.
      out[name] = a && !a->additional_files.empty() ? Json(base64_encode(a->additional_files))
                                                    : Json(nullptr);
    } else if (name == "enable_network") {
      out[name] = a ? Json(a->enable_network) : Json(nullptr);
    } else if (name == "verdict") {
      out[name] = r != nullptr && !r->verdict.empty() ? Json(r->verdict) : Json(nullptr);
    } else if (name == "node") {
      out[name] = report.node.empty() ? Json(nullptr) : Json(report.node);
    } else if (name == "waiting_for") {
      out[name] = report.waiting_for.empty() ? Json(nullptr) : Json(report.waiting_for);
    } else if (name == "sandbox") {
      out[name] = r != nullptr && !r->sandbox.empty() ? Json(r->sandbox) : Json(nullptr);
    } else if (name == "test_cases") {
      // Given with the request, or (known only from the result) more than one.
      bool given = a ? a->test_cases > 0 : cases_json.size() > 1;
      out[name] = given && r != nullptr ? Json(cases_json) : Json(nullptr);
    }
  }
  if (!convertible) return std::nullopt;
  return out;
}

}  // namespace jc::api
