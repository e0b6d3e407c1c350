#include "runner/child_reaper.h"

#include <sys/wait.h>

#include <cerrno>
#include <tuple>
#include <vector>

namespace jc::runner {

ChildReaper::ChildReaper(boost::asio::io_context& io) : signals_(io, SIGCHLD) { wait_signal(); }

void ChildReaper::watch(pid_t pid, OnExit on_exit) {
  children_[pid] = std::move(on_exit);
  // It may have exited before we watched it: look once it is registered,
  // from the event loop (callbacks may start new children).
  boost::asio::post(signals_.get_executor(), [this] { reap(); });
}

void ChildReaper::wait_signal() {
  signals_.async_wait([this](const boost::system::error_code& ec, int) {
    if (ec) return;
    reap();
    wait_signal();
  });
}

void ChildReaper::reap() {
  // Collect first, call after: a callback may start (and watch) a new child.
  std::vector<std::pair<OnExit, int>> exited;
  for (auto it = children_.begin(); it != children_.end();) {
    int status = 0;
    pid_t r = ::waitpid(it->first, &status, WNOHANG);
    if (r == it->first || (r < 0 && errno == ECHILD)) {
      exited.emplace_back(std::move(it->second), r < 0 ? 0 : status);
      it = children_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& [cb, status] : exited) cb(status);
}

}  // namespace jc::runner
