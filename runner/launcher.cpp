#include "runner/launcher.h"

#include <pthread.h>
#include <signal.h>

#include <algorithm>

namespace jc::runner {

Launcher::Launcher(std::size_t threads) {
  // Threads inherit the signal mask of the thread that makes them.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  try {
    for (std::size_t i = 0; i < std::max<std::size_t>(threads, 1); ++i) {
      threads_.emplace_back([this] { loop(); });
      pthread_setname_np(threads_.back().native_handle(), "jc-launcher");
    }
  } catch (...) {
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    stop();
    throw;
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

Launcher::~Launcher() { stop(); }

void Launcher::stop() {
  alive_.reset();
  std::deque<std::function<void()>> dropped;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    dropped.swap(work_);
  }
  wake_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void Launcher::post(std::function<void()> work) {
  {
    std::lock_guard lock(mutex_);
    work_.push_back(std::move(work));
  }
  wake_.notify_one();
}

void Launcher::loop() {
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait(lock, [this] { return stopping_ || !work_.empty(); });
    if (stopping_) return;
    auto work = std::move(work_.front());
    work_.pop_front();
    lock.unlock();
    work();
    work = nullptr;  // what it held goes here, not under the lock
    lock.lock();
  }
}

}  // namespace jc::runner
