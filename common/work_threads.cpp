#include "common/work_threads.h"

#include <pthread.h>
#include <signal.h>

#include <algorithm>

namespace jc {

WorkThreads::WorkThreads(std::size_t threads, AtStop at_stop, const char* name)
    : at_stop_(at_stop) {
  // Threads inherit the signal mask of the thread that makes them.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  try {
    for (std::size_t i = 0; i < std::max<std::size_t>(threads, 1); ++i) {
      threads_.emplace_back([this] { loop(); });
      pthread_setname_np(threads_.back().native_handle(), name);
    }
  } catch (...) {
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    stop();
    throw;
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

WorkThreads::~WorkThreads() { stop(); }

void WorkThreads::stop() {
  alive_.reset();
  std::deque<std::function<void()>> dropped;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    if (at_stop_ == AtStop::kDrop) dropped.swap(work_);
  }
  wake_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void WorkThreads::post(std::function<void()> work) {
  {
    std::lock_guard lock(mutex_);
    work_.push_back(std::move(work));
  }
  wake_.notify_one();
}

void WorkThreads::drain() {
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [this] { return work_.empty() && busy_ == 0; });
}

void WorkThreads::loop() {
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait(lock, [this] { return stopping_ || !work_.empty(); });
    if (work_.empty()) return;  // stopping, nothing left (or dropped)
    auto work = std::move(work_.front());
    work_.pop_front();
    ++busy_;
    lock.unlock();
    work();
    work = nullptr;  // what it held goes here, not under the lock
    lock.lock();
    --busy_;
    if (work_.empty() && busy_ == 0) idle_.notify_all();
  }
}

}  // namespace jc
