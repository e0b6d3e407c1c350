#include "client/input_reader.h"

#include <fmt/format.h>

#include <algorithm>

namespace jc::client {

std::optional<std::string> heredoc_word(std::string_view line) {
  // Only a line with "<<" can open one: the common command is not parsed twice.
  if (line.find("<<") == std::string_view::npos) return std::nullopt;
  Command c = parse_command(line);
  auto* run = std::get_if<CmdRun>(&c);
  if (run == nullptr || run->heredoc.empty()) return std::nullopt;
  return run->heredoc;
}

std::optional<std::string> InputReader::open_heredoc() const {
  if (!heredoc_) return std::nullopt;
  return heredoc_->word;
}

void InputReader::append(std::string_view bytes) {
  Open& h = *heredoc_;
  if (h.too_long) return;
  if (h.body.size() + bytes.size() > kMaxHeredocBytes) {
    // Read on up to the terminator, without keeping anything.
    h.too_long = true;
    h.body.clear();
    h.body.shrink_to_fit();
    return;
  }
  h.body.append(bytes);
}

void InputReader::feed(std::string_view data, const Sink& sink) {
  while (!data.empty() && !broken_) {
    if (heredoc_ && heredoc_->raw_left > 0) {
      std::size_t n = static_cast<std::size_t>(
          std::min<std::uint64_t>(heredoc_->raw_left, data.size()));
      append(data.substr(0, n));
      heredoc_->raw_left -= n;
      data.remove_prefix(n);
      continue;
    }
    data = lines_.feed_until(
        data, [&](std::string_view line) { return on_line(line, sink); },
        [&] {
          if (heredoc_) {
            heredoc_->too_long = true;
            heredoc_->body.clear();
          } else {
            sink(TooLongLine{});
          }
        });
  }
}

bool InputReader::on_line(std::string_view line, const Sink& sink) {
  if (!heredoc_) {
    if (auto word = heredoc_word(line)) {
      heredoc_ = Open{std::string(line), std::move(*word), "", false, 0};
    } else {
      sink(Line{line});
    }
    return true;
  }
  Open& h = *heredoc_;
  if (line == h.word) {
    Open done = std::move(h);
    heredoc_.reset();
    sink(Heredoc{done.run_line, done.body, done.too_long});
    return true;
  }
  append(line);
  append("\n");
  auto count = counted_section_bytes(line);
  if (!count || *count == 0) return true;
  if (*count > kMaxHeredocBytes) {
    broken_ = true;
    heredoc_.reset();
    sink(Broken{fmt::format(
        "a here-document section of {} bytes is over the limit of {} bytes; its end cannot be "
        "found, so nothing more is read from this connection",
        *count, kMaxHeredocBytes)});
    return false;
  }
  h.raw_left = *count;
  return false;  // the next bytes are the section's, not lines
}

}  // namespace jc::client
