// What a server does when its storage refuses a write (a full disk, an I/O
// error): it keeps running, holds back everything that depended on the
// write (acknowledgements, replies, messages: commit before send), and
// tries the write again with capped exponential backoff until it succeeds.
// This class keeps that state and says, once each, when writes stopped and
// when they resumed. Runs on the server's io_context thread.
#pragma once

#include <functional>
#include <memory>

#include "common/log.h"
#include "common/status.h"
#include "common/time.h"
#include "net/asio.h"

namespace jc::net {

class StorageRetry {
 public:
  static constexpr TimeMs kFirstRetryMs = 100;
  static constexpr TimeMs kMaxRetryMs = 5000;

  // `retry` is called when a retry is due (it should commit again).
  StorageRetry(boost::asio::io_context& io, std::shared_ptr<spdlog::logger> log,
               std::function<void()> retry);
  // Writes are failing: submits should be refused.
  bool failing() const { return failing_; }
  // Whether to try a commit now: writes work, or the next retry is due.
  bool should_try() const { return !failing_ || due_; }
  // A commit failed: log (the first time), arm the next retry.
  void failed(const Status& s);
  // A commit succeeded: log the recovery if writes had failed.
  void succeeded();
  void cancel() { timer_.cancel(); }

 private:
  boost::asio::steady_timer timer_;
  std::shared_ptr<spdlog::logger> log_;
  std::function<void()> retry_;
  bool failing_ = false;
  bool due_ = false;
  TimeMs backoff_ms_ = kFirstRetryMs;
  TimeMs since_ = 0;
  std::uint64_t attempts_ = 0;
};

}  // namespace jc::net
