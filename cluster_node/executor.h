// Runs the jobs the proxy gave this node, at most NODE_SLOTS at once, without
// blocking the event loop. The node knows only this interface; how a job is
// run (a timer for sleep jobs, a sandboxed process for run jobs) is the
// runner's business.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "net/asio.h"
#include "protocol/messages.h"

namespace jc::node {

class Executor {
 public:
  using Done = std::function<void(const std::string& ticket, protocol::JobResult)>;

  Executor(boost::asio::io_context& io, std::string node_id, Done done);
  void start(const protocol::Assignment& job);
  // Stops a running job without a result (it belongs to another node now).
  void stop(const std::string& ticket);
  void stop_all();
  std::size_t running() const { return timers_.size(); }

 private:
  void finish_sleep(const std::string& ticket, std::uint64_t ms, std::int64_t start_ms);

  boost::asio::io_context& io_;
  std::string node_id_;
  Done done_;
  std::unordered_map<std::string, std::unique_ptr<boost::asio::steady_timer>> timers_;
};

}  // namespace jc::node
