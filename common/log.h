// One log format for every process: `time level component message key=value`.
// Loggers are spdlog's, one per component, all writing to stderr.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace jc::log {

// Sets the level ("error", "warn", "info", "debug") and the pattern once, at start.
void init(const std::string& level);

// The logger of a component ("proxy", "node", "client", "store", ...).
std::shared_ptr<spdlog::logger> get(const std::string& component);

}  // namespace jc::log
