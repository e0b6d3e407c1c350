#include "cluster_node/command.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <vector>

#include "protocol/codec.h"
#include "protocol/job.h"

namespace jc::node {
namespace {

std::string_view trim(std::string_view s) {
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string quote(std::string_view s) { return "'" + protocol::escape_sample(s, 40) + "'"; }

Command parse_sleep(std::string_view arg) {
  std::uint64_t ms = 0;
  auto [ptr, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), ms);
  if (!all_digits(arg) || ec != std::errc() || ptr != arg.data() + arg.size() || ms > kMaxSleepMs) {
    return CmdError{fmt::format("sleep takes milliseconds from 0 to {}, got {}", kMaxSleepMs,
                                quote(arg))};
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

// "word rest": splits off the first word.
std::pair<std::string_view, std::string_view> split_word(std::string_view s) {
  auto sp = s.find_first_of(" \t");
  if (sp == std::string_view::npos) return {s, {}};
  return {s.substr(0, sp), trim(s.substr(sp + 1))};
}

Command parse_ticket_command(std::string_view rest, std::string_view usage,
                             const std::function<Command(std::string)>& make) {
  auto [ticket, extra] = split_word(rest);
  if (auto err = check_ticket(ticket, usage)) return *err;
  if (!extra.empty()) return CmdError{fmt::format("unexpected {} after the ticket: usage: {}", quote(extra), usage)};
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
  if (kw == "sleep") {
    if (rest.empty()) return CmdError{"missing milliseconds: usage: sleep <ms>"};
    return parse_sleep(rest);
  }
  if (kw == "run") {
    if (rest.empty()) return CmdError{"missing command: usage: run <shell command>"};
    return CmdRun{std::string(rest)};
  }
  if (kw == "status") {
    return parse_ticket_command(rest, "status <ticket>", [](std::string t) { return CmdStatus{t}; });
  }
  if (kw == "wait") return parse_wait(rest);
  if (kw == "cancel") {
    return parse_ticket_command(rest, "cancel <ticket>", [](std::string t) { return CmdCancel{t}; });
  }
  if (kw == "getall") return no_args(CmdGetAll{});
  if (kw == "stats") return no_args(CmdStats{});
  if (kw == "help") return no_args(CmdHelp{});
  if (kw == "exit" || kw == "quit") return no_args(CmdExit{});
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
      "<ms>                    submit a sleep job of <ms> milliseconds; replies Ticket ID: <ticket>",
      "sleep <ms>              same as <ms>",
      "run <shell command>     run a command on some node (not available yet in this version)",
      "r<ticket>               the result of a job, or whether it has not run yet",
      "status <ticket>         state, node, attempt, queue position and estimated wait",
      "wait <ticket> [SECONDS] block until the job has finished (or SECONDS pass), then reply as r",
      "cancel <ticket>         cancel a job (not available yet in this version)",
      "getall                  every job submitted through this node, with its state",
      "stats                   nodes with their slots, running and queued jobs; queue; totals",
      "format json|text        switch this connection's reply format",
      "help                    this list",
      "exit | quit             say goodbye and close",
  };
  return kLines;
}

void LineReader::feed(std::string_view data, const std::function<void(std::string_view)>& on_line,
                      const std::function<void()>& on_too_long) {
  while (!data.empty()) {
    auto nl = data.find('\n');
    if (nl != std::string_view::npos && buffer_.empty() && !discarding_ && nl <= max_) {
      // The common case: a whole line in the chunk, handed over without a copy.
      std::string_view line = data.substr(0, nl);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      on_line(line);
      data.remove_prefix(nl + 1);
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
    if (nl == std::string_view::npos) return;
    data.remove_prefix(nl + 1);
    if (discarding_) {
      discarding_ = false;
      continue;
    }
    std::string_view line(buffer_);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    on_line(line);
    buffer_.clear();
  }
}

}  // namespace jc::node
