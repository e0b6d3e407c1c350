// A run job's spec from its parsed `run` line and its here-document: the
// script, or the "@@" sections (file, check, command, case, stdin, expect).
#include "client/command.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <limits>

#include "client/command_internal.h"
#include "protocol/job.h"

namespace jc::client {

namespace {

using detail::all_digits;
using detail::quote;
using detail::split_word;
using detail::trim;

bool valid_file_name(std::string_view n) {
  return !n.empty() && n.size() <= 100 && n != "." && n != ".." &&
         std::all_of(n.begin(), n.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
         });
}

// A shell reads its script as a C string: a NUL byte would silently end it
// there, so such a script is refused at submission instead.
std::string script_error(std::string_view what, const std::string& script) {
  auto nul = script.find('\0');
  if (nul == std::string::npos) return "";
  return fmt::format("the {} holds a NUL byte (at byte {}): a shell cannot run it", what, nul);
}

std::string build_run_spec_parts(const CmdRun& run, std::string_view body,
                                 protocol::JobSpec& spec);

}  // namespace

std::optional<std::uint64_t> counted_section_bytes(std::string_view line) {
  if (line.substr(0, 3) != "@@ ") return std::nullopt;
  auto [kind, rest] = split_word(trim(line.substr(3)));
  std::string_view count = rest;
  if (kind == "file") {
    auto [name, after] = split_word(rest);
    count = after;
    if (name.empty()) return std::nullopt;
  } else if (kind != "stdin" && kind != "expect" && kind != "command" && kind != "check") {
    return std::nullopt;
  }
  if (!all_digits(count)) return std::nullopt;
  std::uint64_t n = 0;
  auto [ptr, ec] = std::from_chars(count.data(), count.data() + count.size(), n);
  if (ec == std::errc::result_out_of_range) return std::numeric_limits<std::uint64_t>::max();
  return n;
}

std::string build_run_spec(const CmdRun& run, std::string_view body, protocol::JobSpec& spec) {
  std::string err = build_run_spec_parts(run, body, spec);
  if (err.empty()) err = script_error("command", spec.command);
  if (err.empty()) err = script_error("check step", spec.check);
  return err;
}

namespace {

// Where the sections of a here-document go, and which were given: each of
// command, check, a file name, and a case's (or the single run's) stdin and
// expect may come once, so that nothing pasted after them replaces them.
class Sections {
 public:
  // `stdin_given`, `expect_given`: --stdin and --expect, which are the
  // single run's sections.
  Sections(protocol::JobSpec& spec, bool stdin_given, bool expect_given)
      : spec_(spec), stdin_seen_(stdin_given), expect_seen_(expect_given) {}

  // Opens the section `kind arg`; "" or why it cannot be opened.
  std::string open(std::string_view kind, std::string_view arg, bool counted) {
    target_ = nullptr;
    if (kind == "case") {
      if (spec_.cases.size() >= kMaxCases) return fmt::format("at most {} cases", kMaxCases);
      spec_.cases.push_back({std::string(arg), "", false, ""});
      stdin_seen_ = expect_seen_ = false;
      return "";
    }
    if (kind == "file") {
      if (!valid_file_name(arg)) {
        return fmt::format("bad file name {}: use letters, digits, . _ -", quote(arg));
      }
      if (spec_.files.size() >= kMaxFiles) return fmt::format("at most {} files", kMaxFiles);
      for (const auto& f : spec_.files) {
        if (f.name == arg) return fmt::format("the file {} is given twice", quote(arg));
      }
      spec_.files.push_back({std::string(arg), ""});
      target_ = &spec_.files.back().content;
      return "";
    }
    if (kind != "check" && kind != "command" && kind != "stdin" && kind != "expect") {
      return fmt::format(
          "unknown section {}: use file NAME, check, command, case [NAME], stdin, expect (each "
          "but case may end in a byte count)",
          quote(kind));
    }
    if (!arg.empty() && !counted) {
      return fmt::format("'@@ {}' takes nothing or a byte count, got {}", kind, quote(arg));
    }
    bool in_case = !spec_.cases.empty();
    if (kind == "check") return once(check_seen_, "'@@ check'", &spec_.check);
    if (kind == "command") {
      if (command_seen_ || !spec_.command.empty()) {
        return command_seen_ ? "a second '@@ command': give the command once"
                             : "give the command on the run line or in the here-document, not both";
      }
      return once(command_seen_, "'@@ command'", &spec_.command);
    }
    if (kind == "stdin") {
      return once(stdin_seen_, in_case ? "'@@ stdin' for this case" : "'@@ stdin' (or --stdin)",
                  in_case ? &spec_.cases.back().stdin_data : &spec_.stdin_data);
    }
    std::string err = once(expect_seen_,
                           in_case ? "'@@ expect' for this case" : "'@@ expect' (or --expect)",
                           in_case ? &spec_.cases.back().expected : &spec_.expected);
    (in_case ? spec_.cases.back().has_expected : spec_.has_expected) = true;
    return err;
  }
  // Where the open section's content goes; nullptr between sections and
  // after `case`.
  std::string* target() const { return target_; }
  void close() { target_ = nullptr; }

 private:
  std::string once(bool& seen, std::string_view what, std::string* target) {
    if (seen) return fmt::format("a second {}: each section may come once", what);
    seen = true;
    target_ = target;
    return "";
  }

  protocol::JobSpec& spec_;
  std::string* target_ = nullptr;
  bool stdin_seen_, expect_seen_;
  bool command_seen_ = false, check_seen_ = false;
};

std::string build_run_spec_parts(const CmdRun& run, std::string_view body,
                                 protocol::JobSpec& spec) {
  spec.kind = protocol::JobKind::kRun;
  spec.command = run.command;
  // One-line values are lines: a newline ends them unless they have one.
  auto as_lines = [](std::string v) {
    if (!v.empty() && v.back() != '\n') v.push_back('\n');
    return v;
  };
  if (run.options.stdin_data) spec.stdin_data = as_lines(*run.options.stdin_data);
  if (run.options.expected) {
    spec.has_expected = true;
    spec.expected = as_lines(*run.options.expected);
  }
  spec.limits.timeout_ms = run.options.timeout_ms.value_or(0);
  spec.limits.cpu_ms = run.options.cpu_ms.value_or(0);
  spec.limits.memory_mb = run.options.memory_mb.value_or(0);
  spec.limits.output_kb = run.options.output_kb.value_or(0);
  spec.limits.disk_mb = run.options.disk_mb.value_or(0);
  spec.needs = run.options.needs;
  if (run.heredoc.empty()) return "";
  // Without "@@" section lines the whole body is the script.
  bool sectioned = body.substr(0, 3) == "@@ " || body.find("\n@@ ") != std::string_view::npos;
  if (!sectioned) {
    if (!spec.command.empty())
      return "give the command on the run line or in the here-document, not both";
    spec.command = std::string(body);
    return spec.command.empty() ? "the here-document is empty: it must hold the script" : "";
  }
  // The --stdin and --expect options count as those sections.
  Sections sections(spec, run.options.stdin_data.has_value(), run.options.expected.has_value());
  std::size_t line_no = 0;
  while (!body.empty()) {
    auto nl = body.find('\n');
    std::string_view line = body.substr(0, nl);
    body.remove_prefix(nl == std::string_view::npos ? body.size() : nl + 1);
    ++line_no;
    if (line.substr(0, 3) != "@@ ") {
      if (sections.target() == nullptr) {
        if (trim(line).empty()) continue;
        return fmt::format(
            "line {} of the here-document is outside any section: start with a "
            "section line such as '@@ command'",
            line_no);
      }
      sections.target()->append(line);
      sections.target()->push_back('\n');
      continue;
    }
    auto counted = counted_section_bytes(line);
    auto [kind, arg] = split_word(trim(line.substr(3)));
    if (counted) {
      // The count is the last word; what precedes it names the section.
      auto space = arg.find_last_of(" \t");
      arg = space == std::string_view::npos ? std::string_view{} : trim(arg.substr(0, space));
    }
    if (std::string err = sections.open(kind, arg, counted.has_value()); !err.empty()) {
      return fmt::format("line {} of the here-document: {}", line_no, err);
    }
    if (counted) {
      if (*counted > body.size()) {
        return fmt::format("line {} of the here-document: the section has {} bytes, not {}",
                           line_no, body.size(), *counted);
      }
      std::string_view content = body.substr(0, *counted);
      sections.target()->assign(content);
      line_no += static_cast<std::size_t>(std::count(content.begin(), content.end(), '\n'));
      body.remove_prefix(content.size());
      sections.close();  // what follows starts a new section
    }
  }
  if (spec.command.empty())
    return "no command: add a '@@ command' section or give it on the run line";
  return "";
}

}  // namespace

}  // namespace jc::client
