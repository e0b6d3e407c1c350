// Splits what a client sends into what the conversation acts on: command
// lines, and whole here-documents. Pure: no sockets.
//
// A here-document is framed here, before any command is carried out, so that
// its body is never mistaken for commands (whatever the conversation does
// with the `run` line: a `wait` ahead of it, a missing `auth`) and so that a
// counted section ("@@ file NAME BYTES", client/command.h) is read as exactly
// that many bytes, whatever they hold: a line equal to the terminator, a line
// "@@ case", a line longer than kMaxLineBytes, a carriage return.
//
// Limits: a line is at most kMaxLineBytes (longer ones are reported and
// skipped); a here-document's body at most kMaxHeredocBytes (past it, the
// rest is read up to the terminator and dropped, and the here-document is
// reported too long). A counted section that claims more than
// kMaxHeredocBytes leaves no way to find where it ends: the input is then
// broken, and nothing after it is read.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "client/command.h"

namespace jc::client {

class InputReader {
 public:
  struct Line {
    std::string_view text;
  };
  struct TooLongLine {};
  struct Heredoc {
    std::string_view run_line;  // the `run ... <<WORD` line
    std::string_view body;      // lines joined by "\n", counted sections as sent
    bool too_long = false;      // over kMaxHeredocBytes: the body is empty
  };
  struct Broken {
    std::string message;
  };
  using Item = std::variant<Line, TooLongLine, Heredoc, Broken>;
  using Sink = std::function<void(Item)>;

  // Items are handed to `sink` in order; views are valid during the call.
  void feed(std::string_view data, const Sink& sink);
  // Something half-read: a partial line, or an open here-document.
  bool has_partial() const { return lines_.has_partial() || heredoc_.has_value(); }
  // The terminator of a here-document still open (at the end of input).
  std::optional<std::string> open_heredoc() const;
  bool broken() const { return broken_; }

 private:
  struct Open {
    std::string run_line;
    std::string word;
    std::string body;
    bool too_long = false;
    std::uint64_t raw_left = 0;  // bytes of a counted section still to come
  };
  // False when the line reader must stop: raw bytes follow, or the input broke.
  bool on_line(std::string_view line, const Sink& sink);
  void append(std::string_view bytes);

  LineReader lines_;
  std::optional<Open> heredoc_;
  bool broken_ = false;
};

// The terminator word when `line` is a `run` command that opens a
// here-document, else nullopt.
std::optional<std::string> heredoc_word(std::string_view line);

}  // namespace jc::client
