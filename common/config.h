// Reading settings from the environment and the command line at start-up.
// Every reader throws ConfigError with one line that names the variable, the
// value and what was expected; main() prints it and exits with code 2.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

namespace jc::config {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A positive integer (or >= min) in [min, max]; `unit` goes into the message.
std::int64_t env_int(const char* name, std::int64_t fallback, std::int64_t min, std::int64_t max,
                     const char* unit);
std::string env_string(const char* name, const std::string& fallback);
bool env_bool(const char* name, bool fallback);
std::optional<std::string> env_raw(const char* name);

// A TCP port 0..65535 given as an argument or a variable (0 = any free port).
std::uint16_t parse_port(const std::string& what, const std::string& text);
// A port variable; nullopt when unset or empty.
std::optional<std::uint16_t> env_port(const char* name);

// LOG_LEVEL / VERBOSE as the interface defines them.
std::string log_level_from_env();

// Raises the soft limit of open files to the hard limit, so that thousands of
// idle client connections do not starve the acceptor. Returns the new limit.
std::uint64_t raise_fd_limit();

}  // namespace jc::config
