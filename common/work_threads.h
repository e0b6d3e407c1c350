// Threads that run posted work in the order posted: kernel work that must
// never hold up an event loop. A single proxy writes its busy commits on
// one (reverse_proxy/commit_path.h). The node's sandbox has two sets:
// - its launcher (one thread per slot) starts runs: a run's spawn waits
//   until its child has joined its cgroups, entered its namespaces and
//   executed job_init, 5 to 60 ms of kernel waits per run on a busy host
//   (RCU grace periods of cgroup migrations and of mount-namespace
//   changes), during which the event loop would serve nobody. A run's
//   job_init has PR_SET_PDEATHSIG, which fires when the *thread* that made
//   it ends: these threads live as long as the sandbox.
// - the janitor (runner/janitor.h, one thread) frees what runs leave: the
//   last reference to a job's tmpfs, working directories, cgroups.
// The threads block every signal, so the node's handlers run on its event
// loop.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace jc {

class WorkThreads {
 public:
  // What stop() does with work not started yet.
  enum class AtStop { kFinish, kDrop };
  WorkThreads(std::size_t threads, AtStop at_stop, const char* name);
  // stop().
  ~WorkThreads();
  WorkThreads(const WorkThreads&) = delete;
  WorkThreads& operator=(const WorkThreads&) = delete;

  // Runs `work` on one of the threads; they take work in the order posted.
  // `work` must not throw.
  void post(std::function<void()> work);
  // Destroys `what` on a thread of these (with one thread: after the work
  // posted before it).
  template <class T>
  void dispose(std::unique_ptr<T> what) {
    if (!what) return;
    std::shared_ptr<T> held(std::move(what));
    post([held = std::move(held)]() mutable { held.reset(); });
  }
  // Blocks until everything posted so far is done (tests, shutdown).
  void drain();
  // Finishes the work in progress (and, with AtStop::kFinish, the rest),
  // then ends the threads. Called on a thread that posts, not on these.
  void stop();
  // Expires once stop() has begun: a completion posted back to the event
  // loop checks it before it touches what the owner of these threads owns
  // (both run on that one thread, so it cannot expire during the completion).
  std::weak_ptr<void> alive() const { return alive_; }

 private:
  void loop();
  const AtStop at_stop_;
  std::mutex mutex_;
  std::condition_variable wake_, idle_;
  std::deque<std::function<void()>> work_;
  std::size_t busy_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
  std::shared_ptr<void> alive_ = std::make_shared<int>(0);
};

}  // namespace jc
