// Threads that start runs off the node's event loop. Starting a run
// (Isolation::spawn) waits until its child has entered its namespaces and
// cgroups and executed job_init: on a busy host that is 5 to 60 ms of
// kernel waits per run (the RCU grace periods of cgroup migrations and of
// mount-namespace changes), during which the event loop served nobody:
// neither the node's clients nor the proxy. A SandboxRun posts its spawn
// here and carries on when the result comes back to the loop.
//
// One thread per slot, so a slot's spawn waits only for its own. The
// threads live as long as the Launcher: a run's job_init has
// PR_SET_PDEATHSIG, which fires when the *thread* that made it ends. They
// block every signal, so the node's handlers run on its event loop.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace jc::runner {

class Launcher {
 public:
  explicit Launcher(std::size_t threads);
  // stop().
  ~Launcher();
  Launcher(const Launcher&) = delete;
  Launcher& operator=(const Launcher&) = delete;

  // Runs `work` on one of the threads, in the order posted. `work` must not
  // throw.
  void post(std::function<void()> work);
  // Finishes the work in progress and ends the threads (their children get
  // their PR_SET_PDEATHSIG); work not started is dropped. Called on the
  // thread that posts, as the destructor is.
  void stop();
  // Expires once stop() has begun: a completion posted back to the event
  // loop checks it before it touches what the launcher's owner owns (both
  // run on that one thread, so it cannot expire during the completion).
  std::weak_ptr<void> alive() const { return alive_; }

 private:
  void loop();
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> work_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
  std::shared_ptr<void> alive_ = std::make_shared<int>(0);
};

}  // namespace jc::runner
