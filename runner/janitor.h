// One background thread for slow clean-ups that must never hold up the
// node's event loop: the last close of a job's mount namespace (which frees
// its tmpfs, as long as the job made it big) and the removal of working
// directories on disk. Work is done in the order given; at exit what is
// left is still done.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace jc::runner {

class Janitor {
 public:
  static Janitor& instance();
  void defer(std::function<void()> work);
  // Blocks until everything deferred so far is done (tests, shutdown).
  void drain();
  ~Janitor();

 private:
  Janitor() = default;
  void loop();
  std::mutex mutex_;
  std::condition_variable wake_, idle_;
  std::deque<std::function<void()>> work_;
  std::thread thread_;
  bool busy_ = false;
  bool stopping_ = false;
};

}  // namespace jc::runner
