#include "net/storage_retry.h"

#include <algorithm>

namespace jc::net {

StorageRetry::StorageRetry(boost::asio::io_context& io, std::shared_ptr<spdlog::logger> log,
                           std::function<void()> retry)
    : timer_(io), log_(std::move(log)), retry_(std::move(retry)) {}

void StorageRetry::failed(const Status& s) {
  ++attempts_;
  if (!failing_) {
    since_ = now_ms();
    log_->error(
        "storage write failed: {}; new jobs are refused (ERR storage full), reads and running "
        "jobs go on, and the write is retried until it succeeds (nothing acknowledged is lost)",
        s.to_string());
  } else {
    log_->debug("storage write failed again attempt={}: {}", attempts_, s.to_string());
  }
  failing_ = true;
  due_ = false;
  timer_.expires_after(std::chrono::milliseconds(backoff_ms_));
  backoff_ms_ = std::min(backoff_ms_ * 2, kMaxRetryMs);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    due_ = true;
    retry_();
  });
}

void StorageRetry::succeeded() {
  if (!failing_) return;
  log_->warn("storage writable again after {} ms and {} attempts: service resumes",
             now_ms() - since_, attempts_);
  failing_ = false;
  due_ = false;
  backoff_ms_ = kFirstRetryMs;
  attempts_ = 0;
  timer_.cancel();
}

}  // namespace jc::net
