// The client protocol's command parser (a line into a Command), the help
// text, and the line splitter.
#include "client/command.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <vector>

#include "client/command_internal.h"
#include "protocol/codec.h"
#include "protocol/job.h"

namespace jc::client {
namespace detail {

std::string_view trim(std::string_view s) {
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string quote(std::string_view s) {
  // fmt rather than operator+: GCC 12 warns (-Wrestrict, a known false
  // positive) about "'" + std::string in Release builds.
  return fmt::format("'{}'", protocol::escape_sample(s, 40));
}

// "word rest": splits off the first word.
std::pair<std::string_view, std::string_view> split_word(std::string_view s) {
  auto sp = s.find_first_of(" \t");
  if (sp == std::string_view::npos) return {s, {}};
  return {s.substr(0, sp), trim(s.substr(sp + 1))};
}

}  // namespace detail

namespace {

using detail::all_digits;
using detail::quote;
using detail::split_word;
using detail::trim;

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

Command parse_sleep(std::string_view arg) {
  std::uint64_t ms = 0;
  auto [ptr, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), ms);
  if (!all_digits(arg) || ec != std::errc() || ptr != arg.data() + arg.size() || ms > kMaxSleepMs) {
    return CmdError{
        fmt::format("sleep takes milliseconds from 0 to {}, got {}", kMaxSleepMs, quote(arg))};
  }
  return CmdSleep{ms};
}

std::optional<CmdError> check_ticket(std::string_view t, std::string_view usage) {
  if (t.empty()) return CmdError{fmt::format("missing ticket: usage: {}", usage)};
  if (!protocol::is_valid_ticket(t)) {
    return CmdError{fmt::format(
        "malformed ticket {}: tickets are 1 to 32 characters of A-Z a-z 0-9 _ -", quote(t))};
  }
  return std::nullopt;
}

Command parse_ticket_command(std::string_view rest, std::string_view usage,
                             const std::function<Command(std::string)>& make) {
  auto [ticket, extra] = split_word(rest);
  if (auto err = check_ticket(ticket, usage)) return *err;
  if (!extra.empty())
    return CmdError{fmt::format("unexpected {} after the ticket: usage: {}", quote(extra), usage)};
  return make(std::string(ticket));
}

Command parse_wait(std::string_view rest) {
  constexpr std::string_view kUsage = "wait <ticket> [SECONDS]";
  auto [ticket, secs] = split_word(rest);
  if (auto err = check_ticket(ticket, kUsage)) return *err;
  CmdWait w{std::string(ticket), std::nullopt};
  if (!secs.empty()) {
    double v = 0;
    auto [ptr, ec] = std::from_chars(secs.data(), secs.data() + secs.size(), v);
    if (ec != std::errc() || ptr != secs.data() + secs.size() || !(v >= 0) || v > kMaxWaitSeconds) {
      return CmdError{fmt::format("wait takes SECONDS from 0 to {}, got {}: usage: {}",
                                  kMaxWaitSeconds, quote(secs), kUsage)};
    }
    w.seconds = v;
  }
  return w;
}

constexpr std::string_view kRunUsage =
    "usage: run [--timeout MS] [--cpu MS] [--memory MB] [--output KB] [--disk MB] [--stdin TEXT] "
    "[--expect TEXT] [--needs LABEL] [--priority N] [--delay MS] <command>, or run [OPTIONS] "
    "<<END then lines then END";
constexpr const char* kSleepUsage = "usage: sleep [--priority N] [--delay MS] <ms>";

// One option value: up to the next space, or quoted with '...' or "...";
// inside double quotes \n, \t, \" and \\ are escapes.
std::optional<std::string> take_value(std::string_view& s) {
  std::string out;
  if (s.empty()) return std::nullopt;
  if (s[0] == '\'' || s[0] == '"') {
    char q = s[0];
    std::size_t i = 1;
    for (; i < s.size() && s[i] != q; ++i) {
      if (q == '"' && s[i] == '\\' && i + 1 < s.size()) {
        char e = s[++i];
        out.push_back(e == 'n' ? '\n' : e == 't' ? '\t' : e);
      } else {
        out.push_back(s[i]);
      }
    }
    if (i >= s.size()) return std::nullopt;  // unterminated
    s.remove_prefix(i + 1);
  } else {
    auto sp = s.find_first_of(" \t");
    out = std::string(s.substr(0, sp));
    s.remove_prefix(sp == std::string_view::npos ? s.size() : sp);
  }
  s = trim(s);
  return out;
}

// `--priority` or `--delay` into `into`; nullopt when `name` is neither.
std::optional<std::optional<CmdError>> schedule_option(const std::string& name,
                                                      const std::string& value, Schedule& into) {
  if (name == "priority") {
    std::int32_t v = 0;
    auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    if (value.empty() || ec != std::errc() || ptr != value.data() + value.size() ||
        v < -kMaxPriority || v > kMaxPriority) {
      return CmdError{fmt::format("--priority takes a whole number from -{} to {}, got {}",
                                  kMaxPriority, kMaxPriority, quote(value))};
    }
    into.priority = v;
    return std::optional<CmdError>{};
  }
  if (name == "delay") {
    std::uint64_t v = 0;
    auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    if (!all_digits(value) || ec != std::errc() || ptr != value.data() + value.size() ||
        v > kMaxDelayMs) {
      return CmdError{fmt::format("--delay takes milliseconds from 0 to {} (30 days), got {}",
                                  kMaxDelayMs, quote(value))};
    }
    into.delay_ms = v;
    return std::optional<CmdError>{};
  }
  return std::nullopt;
}

// `sleep [--priority N] [--delay MS] <ms>`
Command parse_sleep_command(std::string_view rest) {
  Schedule schedule;
  while (rest.substr(0, 2) == "--") {
    auto [opt, after] = split_word(rest);
    std::string name(opt.substr(2));
    std::optional<std::string> value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      rest = after;
    } else {
      rest = after;
      value = take_value(rest);
    }
    if (!value) return CmdError{fmt::format("--{} needs a value: {}", name, kSleepUsage)};
    auto handled = schedule_option(name, *value, schedule);
    if (!handled) return CmdError{fmt::format("unknown option --{}: {}", name, kSleepUsage)};
    if (*handled) return **handled;
    rest = trim(rest);
  }
  if (rest.empty()) return CmdError{std::string("missing milliseconds: ") + kSleepUsage};
  Command c = parse_sleep(rest);
  if (auto* sleep = std::get_if<CmdSleep>(&c)) sleep->schedule = schedule;
  return c;
}

Command parse_run(std::string_view rest) {
  CmdRun run;
  // A trailing <<WORD opens a here-document.
  auto hd = rest.rfind("<<");
  if (hd != std::string_view::npos) {
    std::string_view word = trim(rest.substr(hd + 2));
    bool ok = !word.empty() && std::all_of(word.begin(), word.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
    });
    if (ok) {
      run.heredoc = std::string(word);
      rest = trim(rest.substr(0, hd));
    }
  }
  while (rest.substr(0, 2) == "--") {
    auto [opt, after] = split_word(rest);
    if (opt == "--") {
      rest = after;
      break;
    }
    std::string name(opt.substr(2));
    std::string_view value_text;
    std::optional<std::string> value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      std::string_view full = trim(rest.substr(2 + eq + 1));
      name = name.substr(0, eq);
      value = take_value(full);
      rest = full;
    } else {
      rest = after;
      value = take_value(rest);
    }
    if (!value) return CmdError{fmt::format("--{} needs a value: {}", name, kRunUsage)};
    auto number = [&](std::optional<std::uint32_t>& into,
                      const char* unit) -> std::optional<CmdError> {
      std::uint32_t v = 0;
      auto [ptr, ec] = std::from_chars(value->data(), value->data() + value->size(), v);
      if (!all_digits(*value) || ec != std::errc() || ptr != value->data() + value->size() ||
          v == 0) {
        return CmdError{
            fmt::format("--{} takes a positive number of {}, got {}", name, unit, quote(*value))};
      }
      into = v;
      return std::nullopt;
    };
    std::optional<CmdError> err;
    if (name == "timeout")
      err = number(run.options.timeout_ms, "milliseconds");
    else if (name == "cpu")
      err = number(run.options.cpu_ms, "milliseconds");
    else if (name == "memory")
      err = number(run.options.memory_mb, "megabytes");
    else if (name == "output")
      err = number(run.options.output_kb, "kilobytes");
    else if (name == "disk")
      err = number(run.options.disk_mb, "megabytes");
    else if (name == "stdin")
      run.options.stdin_data = *value;
    else if (name == "expect")
      run.options.expected = *value;
    else if (name == "needs") {
      bool ok = !value->empty() && value->size() <= 64 &&
                std::all_of(value->begin(), value->end(), [](char c) {
                  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' ||
                         c == '-';
                });
      if (!ok) {
        return CmdError{fmt::format("--needs takes a label of letters, digits, . _ -, got {}",
                                    quote(*value))};
      }
      run.options.needs.push_back("label:" + *value);
    }
    else if (auto handled = schedule_option(name, *value, run.options.schedule))
      err = *handled;
    else
      return CmdError{fmt::format("unknown option --{}: {}", name, kRunUsage)};
    if (err) return *err;
  }
  run.command = std::string(rest);
  if (run.command.empty() && run.heredoc.empty())
    return CmdError{"missing command: " + std::string(kRunUsage)};
  return run;
}

}  // namespace

Command parse_command(std::string_view raw) {
  std::string_view line = trim(raw);
  if (line.empty()) return CmdEmpty{};
  if (all_digits(line)) return parse_sleep(line);
  auto [word, rest] = split_word(line);
  std::string kw = lower(word);
  auto no_args = [&](Command c) -> Command {
    if (!rest.empty()) return CmdError{fmt::format("{} takes no arguments", kw)};
    return c;
  };
  if (kw == "sleep") return parse_sleep_command(rest);
  if (kw == "run") return parse_run(rest);
  if (kw == "status") {
    return parse_ticket_command(rest, "status <ticket>",
                                [](std::string t) { return CmdStatus{t}; });
  }
  if (kw == "wait") return parse_wait(rest);
  if (kw == "cancel") {
    return parse_ticket_command(rest, "cancel <ticket>",
                                [](std::string t) { return CmdCancel{t}; });
  }
  if (kw == "getall") return no_args(CmdGetAll{});
  if (kw == "stats") return no_args(CmdStats{});
  if (kw == "help") return no_args(CmdHelp{});
  if (kw == "exit" || kw == "quit") return no_args(CmdExit{});
  if (kw == "drain") return no_args(CmdDrain{});
  if (kw == "auth") {
    if (rest.empty()) return CmdError{"missing token: usage: auth <token>"};
    return CmdAuth{std::string(rest)};
  }
  if (kw == "format") {
    std::string mode = lower(rest);
    if (mode == "json") return CmdFormat{true};
    if (mode == "text") return CmdFormat{false};
    return CmdError{fmt::format("format takes json or text, got {}", quote(rest))};
  }
  if (kw == "r") {  // "r <ticket>" with a space
    return parse_ticket_command(rest, "r<ticket>", [](std::string t) { return CmdResult{t}; });
  }
  if ((word[0] == 'r' || word[0] == 'R') && word.size() > 1) {
    return parse_ticket_command(line.substr(1), "r<ticket>",
                                [](std::string t) { return CmdResult{t}; });
  }
  return CmdError{fmt::format("unknown command {}: send help for the list of commands",
                              quote(word.substr(0, 40)))};
}

const std::vector<std::string>& help_lines() {
  static const std::vector<std::string> kLines = {
      "<ms>                    submit a sleep job of <ms> milliseconds; replies Ticket ID: "
      "<ticket>",
      "sleep [--priority N] [--delay MS] <ms>",
      "                        same as <ms>; priority -100..100 (higher first), not before MS",
      "run [OPTIONS] <command> run a shell command on some node under limits (see below)",
      "  options: --timeout MS --cpu MS --memory MB --output KB --disk MB --stdin TEXT --expect TEXT",
      "           --needs LABEL (a node with that NODE_LABELS word; repeatable)",
      "           --priority N --delay MS (as for sleep)",
      "  run [OPTIONS] <<END   then lines, then END: the script, or sections @@ file NAME,",
      "                        @@ check, @@ command, @@ case [NAME], @@ stdin, @@ expect",
      "r<ticket>               the result of a job, or whether it has not run yet",
      "status <ticket>         state, node, attempt, queue position and estimated wait",
      "wait <ticket> [SECONDS] block until the job has finished (or SECONDS pass), then reply as r",
      "cancel <ticket>         cancel a queued job, or kill a running one",
      "getall                  every job submitted through this node, with its state",
      "stats                   nodes with their slots, running and queued jobs; queue; totals",
      "format json|text        switch this connection's reply format",
      "help                    this list",
      "auth <token>            with CLIENT_TOKENS, first: who you are (OK auth <name>)",
      "exit | quit             say goodbye and close",
      "drain                   (from this machine, or a name in ADMIN_NAMES) stop taking jobs, "
      "finish, deliver, exit",
  };
  return kLines;
}

void LineReader::feed(std::string_view data, const std::function<void(std::string_view)>& on_line,
                      const std::function<void()>& on_too_long) {
  feed_until(
      data,
      [&](std::string_view line) {
        on_line(line);
        return true;
      },
      on_too_long);
}

std::string_view LineReader::feed_until(std::string_view data,
                                        const std::function<bool(std::string_view)>& on_line,
                                        const std::function<void()>& on_too_long) {
  while (!data.empty()) {
    auto nl = data.find('\n');
    if (nl != std::string_view::npos && buffer_.empty() && !discarding_ && nl <= max_) {
      // The common case: a whole line in the chunk, handed over without a copy.
      std::string_view line = data.substr(0, nl);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      data.remove_prefix(nl + 1);
      if (!on_line(line)) return data;
      continue;
    }
    std::string_view part = nl == std::string_view::npos ? data : data.substr(0, nl);
    if (!discarding_) {
      if (buffer_.size() + part.size() > max_) {
        buffer_.clear();
        discarding_ = true;
        on_too_long();
      } else {
        buffer_.append(part);
      }
    }
    if (nl == std::string_view::npos) return {};
    data.remove_prefix(nl + 1);
    if (discarding_) {
      discarding_ = false;
      continue;
    }
    std::string_view line(buffer_);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    bool go_on = on_line(line);
    buffer_.clear();
    if (!go_on) return data;
  }
  return data;
}

}  // namespace jc::client
