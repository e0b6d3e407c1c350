// Wall-clock helpers. The cores take time as an argument (milliseconds since
// the epoch); only the I/O shells call now_ms().
#pragma once

#include <cstdint>
#include <string>

namespace jc {

using TimeMs = std::int64_t;

TimeMs now_ms();
// "YYYY-MM-DD HH:MM:SS.mmm" in UTC, the format of results.
std::string format_time(TimeMs t);

}  // namespace jc
