// Clock helpers. The cores take time as an argument (milliseconds since
// the epoch); only the I/O shells call now_ms() and steady_ms().
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace jc {

using TimeMs = std::int64_t;

TimeMs now_ms();
// Milliseconds of the monotonic clock, for intervals a step of the wall
// clock must neither stretch nor cut (its zero means nothing).
TimeMs steady_ms();
// "YYYY-MM-DD HH:MM:SS.mmm" in UTC, the format of results.
std::string format_time(TimeMs t);

// The same text without a heap allocation, for the result of every sleep
// job: the calendar part is computed once per second (per thread).
struct TimeText {
  char text[32];
  std::size_t size = 0;
  std::string_view view() const { return {text, size}; }
};
TimeText time_text(TimeMs t);

}  // namespace jc
