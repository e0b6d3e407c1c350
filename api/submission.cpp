#include "api/submission.h"

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <fmt/format.h>

#include "api/archive.h"
#include "api/statuses.h"

namespace jc::api {

namespace {

// judge0's limits on two strings (submission.rb).
constexpr std::size_t kMaxOptionChars = 512;

// Rails prints a limit as given: 150, or 0.5.
std::string number_text(double v) {
  if (std::floor(v) == v && std::fabs(v) < 1e15) return fmt::format("{}", static_cast<long long>(v));
  return fmt::format("{}", v);
}

using simdjson::dom::element;
using simdjson::dom::element_type;

// A JSON number as its text, as Rails casts one to a string: an integer
// as its digits, a decimal in its shortest form ("2.5", "2.0").
std::string number_as_text(const element& v) {
  switch (v.type()) {
    case element_type::INT64: return std::to_string(int64_t(v));
    case element_type::UINT64: return std::to_string(uint64_t(v));
    default: break;
  }
  std::string out = fmt::format("{}", double(v));
  if (out.find_first_of(".eEn") == std::string::npos) out += ".0";
  return out;
}

class Checker {
 public:
  // The object's members are read once: a request names a few of the
  // twenty-odd attributes, each looked up here.
  Checker(simdjson::dom::object body, Errors& errors) : errors_(errors) {
    given_.reserve(body.size());
    for (auto field : body) {
      if (!field.value.is_null()) {
        given_.emplace_back(field.key, field.value);
      } else {
        given_.emplace_back(field.key, std::nullopt);  // null: as absent
      }
    }
  }

  void add(std::string_view attribute, std::string message) {
    for (auto& [name, messages] : errors_) {
      if (name == attribute) {
        messages.push_back(std::move(message));
        return;
      }
    }
    errors_.push_back({std::string(attribute), {std::move(message)}});
  }

  bool has(std::string_view key) const { return at(key).has_value(); }

  // The attribute's value; nullopt when absent or null. A name given twice
  // counts as its last, as Rails reads JSON.
  std::optional<element> at(std::string_view key) const {
    for (auto it = given_.rbegin(); it != given_.rend(); ++it) {
      if (it->first == key) return it->second;
    }
    return std::nullopt;
  }

  // A number given as a JSON number or a numeric string (Rails casts both);
  // nullopt when absent or null; an error when it is not a number.
  std::optional<double> number(std::string_view key) {
    std::optional<element> found = at(key);
    if (!found) return std::nullopt;
    const element& v = *found;
    if (v.is_number()) {
      double d = double(v);
      if (std::isfinite(d)) return d;
    } else if (v.is_string()) {
      const std::string s{std::string_view(v)};
      try {
        std::size_t used = 0;
        double d = std::stod(s, &used);
        if (used == s.size() && std::isfinite(d)) return d;
      } catch (...) {
      }
    }
    add(key, "is not a number");
    return std::nullopt;
  }

  // judge0's numericality validations, on the value or its default.
  double bounded(std::string_view key, double fallback, double low, bool low_inclusive, double high) {
    std::optional<double> v = has(key) ? number(key) : fallback;
    if (!v) return fallback;  // not a number: said already
    if (low_inclusive ? *v < low : *v <= low) {
      add(key, fmt::format("must be greater than {}{}", low_inclusive ? "or equal to " : "",
                           number_text(low)));
    } else if (*v > high) {
      add(key, fmt::format("must be less than or equal to {}", number_text(high)));
    }
    return *v;
  }

  // A boolean as Rails casts one: true/false, "true"/"false", 1/0.
  std::optional<bool> boolean(std::string_view key) {
    std::optional<element> found = at(key);
    if (!found) return std::nullopt;
    const element& v = *found;
    switch (v.type()) {
      case element_type::BOOL: return bool(v);
      case element_type::INT64: return int64_t(v) != 0;
      case element_type::UINT64: return uint64_t(v) != 0;
      case element_type::STRING: {
        std::string_view s(v);
        if (s == "true" || s == "1" || s == "t" || s == "on" || s == "yes") return true;
        if (s == "false" || s == "0" || s == "f" || s == "off" || s == "no" || s.empty()) return false;
        break;
      }
      default: break;
    }
    add(key, "is not a boolean");
    return std::nullopt;
  }

  // A string attribute (a number is taken as its text, as Rails does);
  // nullopt when absent or null.
  std::optional<std::string> text(std::string_view key) {
    std::optional<element> found = at(key);
    if (!found) return std::nullopt;
    const element& v = *found;
    if (v.is_string()) return std::string(std::string_view(v));
    if (v.is_number()) return number_as_text(v);
    add(key, "must be a string");
    return std::nullopt;
  }

 private:
  std::vector<std::pair<std::string_view, std::optional<element>>> given_;
  Errors& errors_;
};

std::uint32_t ms_of(double seconds) {
  return static_cast<std::uint32_t>(std::llround(std::max(0.0, seconds) * 1000.0));
}
std::uint32_t whole(double v) {
  return static_cast<std::uint32_t>(std::max(0.0, std::min(4e9, std::floor(v))));
}

// `text` with `token` replaced by `with` (or `with` after it, where it has
// no token), appended to `out`: "cmd {args}" with no arguments leaves no
// trailing blank.
void append_replaced(std::string& out, std::string_view text, std::string_view token,
                     std::string_view with) {
  const std::size_t start = out.size();
  auto at = text.find(token);
  if (at == std::string_view::npos) {
    out.append(text);
    if (!with.empty()) out.append(" ").append(with);
    return;
  }
  out.append(text.substr(0, at)).append(with).append(text.substr(at + token.size()));
  while (out.size() > start && out.back() == ' ') out.pop_back();
}

std::string quoted_words(std::string_view text) {
  std::string out;
  if (text.empty()) return out;  // most submissions: no options, no arguments
  for (const auto& w : split_words(text)) {
    if (!out.empty()) out += ' ';
    out += shell_quote(w);
  }
  return out;
}

// Whether a run command is one simple command, which the script then
// executes in the shell's place: its signal is then the run's (a shell
// would report it as an exit code of 128 + N).
bool simple_command(std::string_view cmd) {
  static constexpr auto kShell = [] {
    std::array<bool, 256> marks{};
    for (unsigned char c : std::string_view(";&|\n`$()<>=")) marks[c] = true;
    return marks;
  }();
  for (unsigned char c : cmd) {
    if (kShell[c]) return false;
  }
  return true;
}

// What a job of the language needs of a node (the label its nodes offer).
std::string need_of(const Language& language) {
  std::string need = "lang:";
  char digits[12];
  need.append(digits, std::to_chars(digits, digits + sizeof digits, language.id).ptr);
  return need;
}

}  // namespace

Json errors_json(const Errors& errors) {
  Json out = Json::object();
  for (const auto& [name, messages] : errors) out[name] = messages;
  return out;
}

BodyParser::BodyParser()
    : parser_(std::make_unique<simdjson::dom::parser>()),
      root_(std::make_unique<simdjson::dom::element>()) {}
BodyParser::~BodyParser() = default;

const simdjson::dom::element* BodyParser::parse(std::string_view text) {
  // Copied into the parser's padded buffer: the body's string has no
  // padding of its own.
  if (parser_->parse(text.data(), text.size(), true).get(*root_) != simdjson::SUCCESS) return nullptr;
  return root_.get();
}

Submission parse_submission(const simdjson::dom::element& body, bool base64, const Settings& s,
                            const std::vector<Language>& languages,
                            const std::function<bool(const std::string&)>& offered) {
  Submission out;
  if (!body.is_object()) {
    out.errors.push_back({"submission", {"must be a JSON object"}});
    return out;
  }
  Checker c(simdjson::dom::object(body), out.errors);
  auto decoded = [&](std::string_view key) -> std::optional<std::string> {
    auto v = c.text(key);
    if (v && base64) *v = base64_decode(*v);
    return v;
  };
  std::optional<std::string> source = decoded("source_code");
  std::optional<std::string> stdin_text = decoded("stdin");
  std::optional<std::string> expected = decoded("expected_output");
  std::optional<std::string> zip;
  if (auto z = c.text("additional_files")) zip = base64_decode(*z);

  // The language first: whether it is a project decides what is required.
  const Language* language = nullptr;
  std::optional<double> language_id = c.number("language_id");
  if (language_id) {
    // Ids are unique in the table (merge_languages replaces an entry).
    for (const auto& l : languages) {
      if (l.id == *language_id) {
        language = &l;
        break;
      }
    }
  }
  bool project = language != nullptr && language->is_project;
  const std::string language_need = language != nullptr ? need_of(*language) : std::string();
  if (project) {
    if (source && !source->empty()) c.add("source_code", "must be blank");
    if (!zip || zip->empty()) c.add("additional_files", "can't be blank");
  } else if (!source || source->empty()) {
    c.add("source_code", "can't be blank");
  }
  if (!c.has("language_id")) c.add("language_id", "can't be blank");

  protocol::ApiRequest a;
  a.number_of_runs = whole(c.bounded("number_of_runs", s.number_of_runs, 0, false, s.max_number_of_runs));
  a.cpu_time_limit_ms =
      ms_of(c.bounded("cpu_time_limit", s.cpu_time_limit_ms / 1000.0, 0, true, s.max_cpu_time_limit_ms / 1000.0));
  a.cpu_extra_time_ms =
      ms_of(c.bounded("cpu_extra_time", s.cpu_extra_time_ms / 1000.0, 0, true, s.max_cpu_extra_time_ms / 1000.0));
  a.wall_time_limit_ms =
      ms_of(c.bounded("wall_time_limit", s.wall_time_limit_ms / 1000.0, 1, true, s.max_wall_time_limit_ms / 1000.0));
  a.memory_limit_kb = whole(c.bounded("memory_limit", s.memory_limit_kb, 2048, true, s.max_memory_limit_kb));
  a.stack_limit_kb = whole(c.bounded("stack_limit", s.stack_limit_kb, 0, true, s.max_stack_limit_kb));
  a.max_processes_and_or_threads =
      whole(c.bounded("max_processes_and_or_threads", s.max_processes_and_or_threads, 0, false,
                      s.max_max_processes_and_or_threads));
  // The whole tree is always limited (cgroups): a limit per process and
  // thread is refused, as judge0 does where an admin disallows it.
  a.enable_per_process_and_thread_time_limit =
      c.boolean("enable_per_process_and_thread_time_limit").value_or(false);
  if (a.enable_per_process_and_thread_time_limit) {
    c.add("enable_per_process_and_thread_time_limit", "this option cannot be enabled");
  }
  a.enable_per_process_and_thread_memory_limit =
      c.boolean("enable_per_process_and_thread_memory_limit").value_or(false);
  if (a.enable_per_process_and_thread_memory_limit) {
    c.add("enable_per_process_and_thread_memory_limit", "this option cannot be enabled");
  }
  a.max_file_size_kb = whole(c.bounded("max_file_size", s.max_file_size_kb, 0, true, s.max_max_file_size_kb));
  std::optional<std::string> options = c.text("compiler_options");
  std::optional<std::string> arguments = c.text("command_line_arguments");
  if (options && options->size() > kMaxOptionChars) {
    c.add("compiler_options", fmt::format("is too long (maximum is {} characters)", kMaxOptionChars));
  }
  if (arguments && arguments->size() > kMaxOptionChars) {
    c.add("command_line_arguments",
          fmt::format("is too long (maximum is {} characters)", kMaxOptionChars));
  }
  a.redirect_stderr_to_stdout = c.boolean("redirect_stderr_to_stdout").value_or(false);
  a.enable_network = c.boolean("enable_network").value_or(false);
  if (language_id && language == nullptr) {
    c.add("language_id", fmt::format("language with id {} doesn't exist", number_text(*language_id)));
  } else if (language != nullptr && offered && !offered(language_need)) {
    c.add("language_id", fmt::format("no node of this cluster runs the language with id {}",
                                     language->id));
  }
  if (options && !options->empty() && language != nullptr && !language->compile_cmd) {
    c.add("compiler_options", "setting compiler options is only allowed for compiled languages");
  }
  if (a.enable_network && !(offered ? offered("network") : s.allow_network)) {
    c.add("enable_network", "enabling network is not allowed");
  }
  // The zip goes into /box beside the source; what cannot is refused now.
  Extracted extracted;
  if (zip && !zip->empty()) {
    std::uint64_t room = static_cast<std::uint64_t>(s.disk_mb) << 20;
    std::uint64_t used = source ? source->size() : 0;
    extracted = extract_zip(*zip, room > used ? room - used : 0, s.max_archive_entries);
    if (!extracted.error.empty()) c.add("additional_files", extracted.error);
  }
  std::optional<std::string> callback = c.text("callback_url");
  if (callback && !callback->empty()) {
    if (std::string why = check_callback_url(*callback, s.callback_allow); !why.empty()) {
      c.add("callback_url", why);
    }
  }

  // jobcluster's own: test cases behind one compile.
  std::vector<std::pair<std::optional<std::string>, std::optional<std::string>>> tests;
  if (c.has("test_cases")) {
    const element t = *c.at("test_cases");
    if (!t.is_array()) {
      c.add("test_cases", "must be an array of {stdin, expected_output} objects");
    } else if (simdjson::dom::array(t).size() > s.max_test_cases) {
      c.add("test_cases", fmt::format("must have at most {} test cases", s.max_test_cases));
    } else if (stdin_text || expected) {
      c.add("test_cases", "give stdin and expected_output in the test cases, not beside them");
    } else {
      for (const element item : simdjson::dom::array(t)) {
        if (!item.is_object()) {
          c.add("test_cases", "must be an array of {stdin, expected_output} objects");
          break;
        }
        Errors inner;
        Checker ic(simdjson::dom::object(item), inner);
        auto in = ic.text("stdin");
        auto exp = ic.text("expected_output");
        if (!inner.empty()) {
          c.add("test_cases", "stdin and expected_output must be strings");
          break;
        }
        if (in && base64) *in = base64_decode(*in);
        if (exp && base64) *exp = base64_decode(*exp);
        tests.emplace_back(std::move(in), std::move(exp));
      }
    }
  }
  if (!out.errors.empty()) return out;

  // The job.
  protocol::JobSpec& spec = out.spec;
  spec.kind = protocol::JobKind::kRun;
  a.language_id = language->id;
  // The source is kept once, as the file it runs from (the answer reads it
  // there): records and messages do not carry it twice.
  std::string source_text = source.value_or("");
  a.compiler_options = options.value_or("");
  a.command_line_arguments = arguments.value_or("");
  a.additional_files = zip.value_or("");
  a.callback_url = callback.value_or("");
  a.has_stdin = stdin_text.has_value();
  a.has_expected = expected.has_value();
  a.test_cases = static_cast<std::uint32_t>(tests.size());
  if (!project) spec.files.push_back({language->source_file, std::move(source_text)});
  for (auto& f : extracted.files) {
    // As judge0's `unzip -n`: the source file wins over an entry of its name.
    if (!project && f.name == language->source_file) continue;
    spec.files.push_back(std::move(f));
  }
  if (project) {
    spec.check = "[ ! -f compile ] || exec /bin/bash compile\n";
  } else if (language->compile_cmd) {
    append_replaced(spec.check, *language->compile_cmd, "{compiler_options}",
                    quoted_words(a.compiler_options));
    spec.check.push_back('\n');
  }
  // Judged on the language's own command: the arguments are quoted words.
  spec.command.reserve(language->run_cmd.size() + 16);
  if (a.redirect_stderr_to_stdout) spec.command += "exec 2>&1\n";
  if (simple_command(language->run_cmd)) spec.command += "exec ";
  if (project) {
    spec.command.append(language->run_cmd);
  } else {
    append_replaced(spec.command, language->run_cmd, "{args}", quoted_words(a.command_line_arguments));
  }
  spec.command.push_back('\n');
  if (tests.empty()) tests.emplace_back(std::move(stdin_text), std::move(expected));
  spec.cases.reserve(tests.size() * a.number_of_runs);
  for (std::size_t i = 0; i < tests.size(); ++i) {
    for (std::uint32_t r = 0; r < a.number_of_runs; ++r) {
      protocol::TestCase tc;
      tc.name = a.number_of_runs > 1 ? fmt::format("{}.{}", i + 1, r + 1) : std::to_string(i + 1);
      tc.stdin_data = tests[i].first.value_or("");
      tc.has_expected = tests[i].second.has_value();
      tc.expected = tests[i].second.value_or("");
      spec.cases.push_back(std::move(tc));
    }
  }
  protocol::Limits& l = spec.limits;
  l.cpu_ms = a.cpu_time_limit_ms;
  l.cpu_extra_ms = a.cpu_extra_time_ms;
  l.timeout_ms = a.wall_time_limit_ms;
  l.memory_mb = std::max<std::uint32_t>(1, (a.memory_limit_kb + 1023) / 1024);
  l.output_kb = s.output_kb;
  l.disk_mb = s.disk_mb;
  l.processes = a.max_processes_and_or_threads;
  l.stack_kb = a.stack_limit_kb;
  l.file_kb = a.max_file_size_kb;
  l.network = a.enable_network;
  // The compile step: judge0 compiles under its maxima, not the program's limits.
  if (!spec.check.empty()) {
    protocol::Limits& cl = spec.check_limits;
    cl = l;
    cl.cpu_ms = s.max_cpu_time_limit_ms;
    cl.cpu_extra_ms = 0;
    cl.timeout_ms = s.max_wall_time_limit_ms;
    cl.memory_mb = std::max<std::uint32_t>(1, (s.max_memory_limit_kb + 1023) / 1024);
    cl.processes = s.max_max_processes_and_or_threads;
    cl.network = false;
  }
  spec.needs.push_back(language_need);
  if (a.enable_network) spec.needs.push_back("network");
  spec.is_api = true;
  spec.api = std::move(a);
  return out;
}

}  // namespace jc::api
