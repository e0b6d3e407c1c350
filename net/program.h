// What both binaries' main() share: --help and --version, configuration
// errors as one line and exit code 2, opening the store, and running a
// server on one io_context until SIGTERM or SIGINT, then a clean stop.
#pragma once

#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>

#include "common/config.h"
#include "common/counters.h"
#include "common/log.h"
#include "net/asio.h"
#include "protocol/client_tokens.h"
#include "protocol/retention.h"
#include "storage/store.h"

namespace jc::net {

// The exit code when argv asks for --help/-h or --version (printed), else nullopt.
inline std::optional<int> info_flags(int argc, char** argv, const char* name, const char* usage) {
  if (argc < 2) return std::nullopt;
  std::string a = argv[1];
  if (a == "--help" || a == "-h") {
    std::fputs(usage, stdout);
    return 0;
  }
  if (a == "--version") {
    std::printf("%s (jobcluster) %s\n", name, JOBCLUSTER_VERSION);
    return 0;
  }
  return std::nullopt;
}

// Loads the configuration with `load`; a ConfigError ends the program with
// one line and exit code 2.
template <class Config, class Load>
std::optional<Config> load_config_or_report(const char* name, Load load) {
  try {
    log::init(config::log_level_from_env());
    return load();
  } catch (const config::ConfigError& e) {
    std::fprintf(stderr, "%s: %s\n", name, e.what());
    return std::nullopt;
  }
}

// BIND_ADDRESS (default 0.0.0.0), which must be an IP address.
inline std::string env_bind_address() {
  std::string address = config::env_string("BIND_ADDRESS", "0.0.0.0");
  boost::system::error_code ec;
  boost::asio::ip::make_address(address, ec);
  if (ec) {
    throw config::ConfigError("BIND_ADDRESS must be an IP address, got '" + address + "'");
  }
  return address;
}

// CLIENT_TOKENS (a file of name:token lines) and ADMIN_NAMES; off when
// CLIENT_TOKENS is unset.
inline protocol::ClientTokens env_client_tokens() {
  std::string file = config::env_string("CLIENT_TOKENS", "");
  std::string admins = config::env_string("ADMIN_NAMES", "");
  if (file.empty()) {
    if (!admins.empty()) throw config::ConfigError("ADMIN_NAMES needs CLIENT_TOKENS");
    return {};
  }
  try {
    auto tokens = protocol::ClientTokens::load(file);
    tokens.set_admins(admins);
    return tokens;
  } catch (const std::invalid_argument& e) {
    throw config::ConfigError(std::string("CLIENT_TOKENS: ") + e.what());
  }
}

// RESULT_TTL in milliseconds, the same on the proxy and every node (default
// 7 days; 0 keeps every job forever). At most 10 years.
inline TimeMs env_result_ttl() {
  return config::env_int("RESULT_TTL", protocol::kDefaultResultTtlMs, 0,
                         3650LL * 24 * 3600 * 1000, "milliseconds");
}

// Opens the store in config.data_dir, lets `prepare` finish the
// configuration with it, then runs Server(io, config, store) until a signal.
template <class Server, class Config>
int run_server(
    Config config, const std::string& component,
    const std::type_identity_t<std::function<void(Config&, storage::Store&)>>& prepare = {}) {
  auto log = log::get(component);
  // SIGUSR1 logs the counters once the server runs (below); until then,
  // and through recovery, it must not stop the process, as its default
  // action would. Jobs start with every signal at its default
  // (runner/isolation_child.cpp).
  std::signal(SIGUSR1, SIG_IGN);
  const std::string data_dir = config.data_dir;
  config::raise_fd_limit();
  std::unique_ptr<storage::Store> store;
  if (auto s = storage::open_leveldb(data_dir, &store); !s.ok()) {
    log->critical("cannot open DATA_DIR={}: {}", data_dir, s.to_string());
    return 1;
  }
  // Private: it holds jobs' scripts, hidden stdin and expected output.
  if (::chmod(data_dir.c_str(), 0700) != 0) {
    log->warn("cannot make DATA_DIR={} private (mode 0700): {}", data_dir, std::strerror(errno));
  }
  std::string format;
  if (auto s = storage::check_format(*store, &format); !s.ok()) {
    log->critical("cannot use DATA_DIR={}: {}", data_dir, s.message());
    return 1;
  }
  if (!format.empty() && format != storage::kStorageFormat) {
    log->info("DATA_DIR={} of storage format {} read as it is and marked {}", data_dir, format,
              storage::kStorageFormat);
  }
  if (prepare) prepare(config, *store);
  try {
    boost::asio::io_context io(1);
    Server server(io, config, *store);
    if (auto s = server.start(); !s.ok()) {
      log->critical("cannot start: {}", s.to_string());
      return 1;
    }
    boost::asio::signal_set signals(io, SIGINT, SIGTERM);
    // A server that can drain does so on the first signal; a second one (or
    // a server that cannot) stops at once.
    bool draining = false;
    auto first_signal = std::chrono::steady_clock::time_point{};
    std::function<void()> wait_signal = [&] {
      signals.async_wait([&](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        if constexpr (requires { server.drain(std::function<void()>{}); }) {
          // Ctrl-C reaches the whole process group and a supervisor script
          // may add its own SIGTERM: a signal within a second of the first
          // is the same request, not "stop now".
          if (draining &&
              std::chrono::steady_clock::now() - first_signal < std::chrono::seconds(1)) {
            wait_signal();
            return;
          }
          if (!draining) {
            draining = true;
            first_signal = std::chrono::steady_clock::now();
            log->info("signal {} received, draining", sig);
            server.drain([&] { io.stop(); });
            wait_signal();
            return;
          }
        }
        log->info("signal {} received, stopping", sig);
        server.stop();
        io.stop();
      });
    };
    wait_signal();
    // SIGUSR1: one line with what this process has done since it started
    // (common/counters.h), for operators and the benchmarks' per-job figures.
    boost::asio::signal_set report(io, SIGUSR1);
    std::function<void()> wait_report = [&] {
      report.async_wait([&](const boost::system::error_code& ec, int) {
        if (ec) return;
        log->info("counters {}", counters::summary());
        wait_report();
      });
    };
    wait_report();
    io.run();
    // The stop is done: a second signal (Ctrl-C reaches the whole process
    // group, and a supervisor may send SIGTERM too) must not cut the
    // teardown short, as the default action would once the set is gone.
    boost::system::error_code ignored;
    signals.clear(ignored);
    report.clear(ignored);  // SIGUSR1 back to its default, ignored again below
    std::signal(SIGINT, SIG_IGN);
    std::signal(SIGTERM, SIG_IGN);
    std::signal(SIGUSR1, SIG_IGN);
  } catch (const std::exception& e) {
    log->critical("fatal: {}", e.what());
    return 1;
  }
  log->info("stopped");
  return 0;
}

}  // namespace jc::net
