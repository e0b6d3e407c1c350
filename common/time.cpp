#include "common/time.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <ctime>

namespace jc {

TimeMs now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

TimeMs steady_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

TimeText time_text(TimeMs t) {
  // Times before the epoch round towards minus infinity, as gmtime does.
  TimeMs secs = t / 1000, ms = t % 1000;
  if (ms < 0) {
    ms += 1000;
    secs -= 1;
  }
  thread_local TimeMs cached_secs = -1;
  thread_local TimeText cached;  // "YYYY-MM-DD HH:MM:SS" of cached_secs
  if (secs != cached_secs || cached.size == 0) {
    std::time_t tt = static_cast<std::time_t>(secs);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    auto end = fmt::format_to_n(cached.text, sizeof(cached.text) - 5,
                                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}", tm.tm_year + 1900,
                                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    cached.size = std::min(end.size, sizeof(cached.text) - 5);
    cached_secs = secs;
  }
  TimeText out = cached;
  out.text[out.size++] = '.';
  out.text[out.size++] = static_cast<char>('0' + ms / 100);
  out.text[out.size++] = static_cast<char>('0' + ms / 10 % 10);
  out.text[out.size++] = static_cast<char>('0' + ms % 10);
  return out;
}

std::string format_time(TimeMs t) { return std::string(time_text(t).view()); }

}  // namespace jc
