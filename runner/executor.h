// Runs the jobs the proxy gave this node without blocking the event loop:
// sleep jobs on a timer, run jobs as RunJob in the sandbox, each in a slot
// of its own (slot i's user id is JOB_UID_BASE + i). The rest of the node
// sees only start / stop / cancel; NodeCore decides how many run at once
// (NODE_SLOTS).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/hash_maps.h"
#include "net/asio.h"
#include "protocol/messages.h"
#include "runner/child_reaper.h"
#include "runner/run_job.h"
#include "runner/sandbox.h"

namespace jc::runner {

class Executor {
 public:
  using Done = std::function<void(const std::string& ticket, protocol::JobResult)>;

  Executor(boost::asio::io_context& io, std::string node_id, const SandboxConfig& sandbox,
           std::uint32_t slots, Done done);
  // Stops the sandbox's launcher first: a spawn in progress finishes, and
  // its completion, should the event loop run again, touches nothing of
  // this executor (WorkThreads::alive).
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;
  void start(protocol::Assignment job);
  // Stops a running job without a result (it belongs to another node now).
  void stop(const std::string& ticket);
  // Kills a running job; it ends CANCELLED. False when it is not running here.
  bool cancel(const std::string& ticket);
  void stop_all();
  // The protections run jobs get here ("full", or the list).
  const std::string& sandbox_description() const { return sandbox_->description(); }
  // "pinned" (a CPU per slot) or "shared".
  const std::string& cpus_description() const { return sandbox_->cpus_description(); }

 private:
  struct Sleep {
    std::unique_ptr<boost::asio::steady_timer> timer;  // none for 0 ms
    std::uint64_t ms = 0;
    std::int64_t start_ms = 0;
  };
  void finish_sleep(std::string_view ticket, bool cancelled);
  void release_slot(const std::string& ticket);

  boost::asio::io_context& io_;
  std::string node_id_;
  std::unique_ptr<Sandbox> sandbox_;
  Done done_;
  ChildReaper reaper_;
  // By ticket, kept inline: a sleep job costs no heap block of its own.
  TicketMap<Sleep> sleeps_;
  std::unordered_map<std::string, std::shared_ptr<RunJob>> runs_;
  std::vector<bool> slot_in_use_;
  std::unordered_map<std::string, std::size_t> slot_of_;
};

}  // namespace jc::runner
