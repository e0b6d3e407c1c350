#include "bench/peer_server.h"

#include <stdlib.h>

#include <filesystem>
#include <stdexcept>

#include "bench/probe.h"

namespace jc::bench {

namespace fs = std::filesystem;

PeerServer::PeerServer(
    const std::string& binary, const std::string& name,
    const std::function<std::vector<std::string>(std::uint16_t, const std::string&)>& args,
    const std::function<bool(std::uint16_t)>& ready) {
  std::string tmpl = (fs::temp_directory_path() / ("jc-bench-" + name + "-XXXXXX")).string();
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  // The free port may be taken between the probe and the bind: try again.
  for (int attempt = 0; attempt < 3 && port_ == 0; ++attempt) {
    std::uint16_t port = free_loopback_port();
    process_ = std::make_unique<jc::test::Process>(binary, args(port, dir_),
                                                   std::map<std::string, std::string>{},
                                                   dir_ + "/" + name + ".log");
    process_->start();
    bool up = jc::test::eventually([&] { return !process_->running() || ready(port); },
                                   std::chrono::seconds(10), std::chrono::milliseconds(20));
    if (up && process_->running()) port_ = port;
  }
  if (port_ == 0) {
    std::string log = process_->log_since_start();
    process_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
    throw std::runtime_error(name + " did not start: " + log);
  }
}

PeerServer::~PeerServer() {
  process_.reset();  // kill -9 by PID
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

ProcessUsage PeerServer::usage(const std::string& name) const {
  return usage_of(name, process_->pid());
}

}  // namespace jc::bench
