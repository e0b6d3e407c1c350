// A peer system measured beside jobcluster (beanstalkd, redis): one server
// process on a free loopback port with its data in a fresh directory,
// started until it answers `ready`, killed by its PID and its directory
// removed at the end.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bench/report.h"
#include "tests/support/process.h"

namespace jc::bench {

class PeerServer {
 public:
  // args(port, dir): the command line; ready(port): whether it serves.
  PeerServer(const std::string& binary, const std::string& name,
             const std::function<std::vector<std::string>(std::uint16_t, const std::string&)>& args,
             const std::function<bool(std::uint16_t)>& ready);
  ~PeerServer();
  PeerServer(const PeerServer&) = delete;
  PeerServer& operator=(const PeerServer&) = delete;

  std::uint16_t port() const { return port_; }
  ProcessUsage usage(const std::string& name) const;

 private:
  std::string dir_;
  std::unique_ptr<jc::test::Process> process_;
  std::uint16_t port_ = 0;
};

}  // namespace jc::bench
