// Reaps the node's child processes (job_init of every run) on SIGCHLD and
// calls back with how each ended, so no zombie stays. Only the pids it was
// given are waited for: other children of the process (helpers waited for
// synchronously) are left alone. Runs on the node's io_context thread.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <functional>
#include <unordered_map>

#include "net/asio.h"

namespace jc::runner {

class ChildReaper {
 public:
  using OnExit = std::function<void(int status)>;
  explicit ChildReaper(boost::asio::io_context& io);
  void watch(pid_t pid, OnExit on_exit);
  void stop() { signals_.cancel(); }

 private:
  void wait_signal();
  void reap();
  boost::asio::signal_set signals_;
  std::unordered_map<pid_t, OnExit> children_;
};

}  // namespace jc::runner
