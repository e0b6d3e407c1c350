#include "common/config.h"

#include <fmt/format.h>
#include <sys/resource.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>

namespace jc::config {

std::optional<std::string> env_raw(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

std::int64_t env_int(const char* name, std::int64_t fallback, std::int64_t min, std::int64_t max,
                     const char* unit) {
  auto raw = env_raw(name);
  if (!raw || raw->empty()) return fallback;
  std::int64_t value = 0;
  const char* first = raw->data();
  const char* last = raw->data() + raw->size();
  auto [ptr, ec] = std::from_chars(first, last, value);
  bool bad = ec != std::errc() || ptr != last || value < min || value > max;
  if (bad) {
    std::string expected = min == 1 ? "a positive integer" : fmt::format("an integer from {}", min);
    if (min != 1)
      expected += fmt::format(" to {}", max);
    else
      expected += fmt::format(" up to {}", max);
    throw ConfigError(fmt::format("{} must be {} ({}), got '{}'", name, expected, unit, *raw));
  }
  return value;
}

std::string env_string(const char* name, const std::string& fallback) {
  auto raw = env_raw(name);
  return raw && !raw->empty() ? *raw : fallback;
}

bool env_bool(const char* name, bool fallback) {
  auto raw = env_raw(name);
  if (!raw || raw->empty()) return fallback;
  if (*raw == "true" || *raw == "1" || *raw == "yes") return true;
  if (*raw == "false" || *raw == "0" || *raw == "no") return false;
  throw ConfigError(fmt::format("{} must be true or false, got '{}'", name, *raw));
}

std::optional<std::uint16_t> env_port(const char* name) {
  auto text = env_raw(name);
  if (!text || text->empty()) return std::nullopt;
  return parse_port(name, *text);
}

std::uint16_t parse_port(const std::string& what, const std::string& text) {
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || value > 65535) {
    throw ConfigError(fmt::format(
        "{} must be a port number from 0 to 65535 (0 = any free port), got '{}'", what, text));
  }
  return static_cast<std::uint16_t>(value);
}

std::string log_level_from_env() {
  if (env_bool("VERBOSE", false)) return "debug";
  std::string level = env_string("LOG_LEVEL", "info");
  if (level != "error" && level != "warn" && level != "info" && level != "debug") {
    throw ConfigError(
        fmt::format("LOG_LEVEL must be one of error, warn, info, debug, got '{}'", level));
  }
  return level;
}

std::uint64_t raise_fd_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
    getrlimit(RLIMIT_NOFILE, &lim);
  }
  return lim.rlim_cur;
}

}  // namespace jc::config
