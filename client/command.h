// The client protocol's command parser and line splitter: pure, no sockets.
// The grammar is in README.md ("Client protocol"); limits are explained here.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "protocol/job.h"

namespace jc::client {

// A line longer than this is refused: commands are short, and a here-document
// sends a long script as many lines. Checked before buffering more.
constexpr std::size_t kMaxLineBytes = 64 * 1024;
// One day: a longer sleep is almost surely a typo.
constexpr std::uint64_t kMaxSleepMs = 86'400'000;
// `wait` blocks at most one day.
constexpr std::uint32_t kMaxWaitSeconds = 86'400;

// `--priority N` and `--delay MS`, for `sleep` and `run`.
constexpr std::int32_t kMaxPriority = 100;
constexpr std::uint64_t kMaxDelayMs = 30ull * 86'400'000;  // 30 days
struct Schedule {
  std::int32_t priority = 0;  // -100..100, higher first
  std::uint64_t delay_ms = 0;  // not dispatched before this long after it is accepted
};
struct CmdSleep {
  std::uint64_t ms = 0;
  Schedule schedule;
};
// `run [OPTIONS] <command>` or `run [OPTIONS] [command] <<WORD` followed by
// lines up to one equal to WORD (a here-document: the script, or sections).
struct RunOptions {
  std::optional<std::uint32_t> timeout_ms, cpu_ms, memory_mb, output_kb, disk_mb;
  std::optional<std::string> stdin_data, expected;
  std::vector<std::string> needs;  // --needs LABEL (repeatable): a node with NODE_LABELS LABEL
  Schedule schedule;
};
struct CmdRun {
  RunOptions options;
  std::string command;
  std::string heredoc;  // the terminator word; empty when the job is one line
};
struct CmdResult {
  std::string ticket;
};
struct CmdStatus {
  std::string ticket;
};
struct CmdWait {
  std::string ticket;
  std::optional<double> seconds;
};
struct CmdCancel {
  std::string ticket;
};
struct CmdGetAll {};
struct CmdStats {};
struct CmdHelp {};
struct CmdExit {};
struct CmdDrain {};
struct CmdFormat {
  bool json = false;
};
// `auth <token>` (CLIENT_TOKENS).
struct CmdAuth {
  std::string token;
};
struct CmdEmpty {};
struct CmdError {
  std::string message;
};

using Command = std::variant<CmdSleep, CmdRun, CmdResult, CmdStatus, CmdWait, CmdCancel, CmdGetAll,
                             CmdStats, CmdHelp, CmdExit, CmdFormat, CmdEmpty, CmdError, CmdDrain,
                             CmdAuth>;

Command parse_command(std::string_view line);

// A here-document is at most this large: program text and test data, not files.
constexpr std::size_t kMaxHeredocBytes = 1 << 20;

// A counted section line: "@@ file NAME BYTES", or "@@ stdin BYTES" (and
// expect, command, check), followed by exactly BYTES bytes of content,
// whatever they hold (a line "@@ case", the terminator, no newline at the
// end). Returns BYTES (saturated at the largest value) for such a line,
// nullopt for any other: the reader and the spec builder both ask this.
std::optional<std::uint64_t> counted_section_bytes(std::string_view line);
constexpr std::size_t kMaxCases = 200;
constexpr std::size_t kMaxFiles = 32;

// Fills a run job from the `run` line and its here-document body ("" when
// none). Returns an error message, or "" when the job is well-formed.
std::string build_run_spec(const CmdRun& run, std::string_view body, protocol::JobSpec& spec);

// The help text, one command per line.
const std::vector<std::string>& help_lines();

// Splits a byte stream into lines ending in "\n" or "\r\n". A line over the
// limit is reported once and skipped up to its end, never buffered whole.
class LineReader {
 public:
  explicit LineReader(std::size_t max_line = kMaxLineBytes) : max_(max_line) {}
  void feed(std::string_view data, const std::function<void(std::string_view)>& on_line,
            const std::function<void()>& on_too_long);
  // The same, but it stops after a line for which `on_line` returns false,
  // and returns the bytes it did not consume.
  std::string_view feed_until(std::string_view data,
                              const std::function<bool(std::string_view)>& on_line,
                              const std::function<void()>& on_too_long);
  bool has_partial() const { return !buffer_.empty() || discarding_; }

 private:
  std::size_t max_;
  std::string buffer_;
  bool discarding_ = false;
};

}  // namespace jc::client
