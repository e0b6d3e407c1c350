#include "cluster_node/executor.h"

#include <fmt/format.h>

#include "common/time.h"

namespace jc::node {

Executor::Executor(boost::asio::io_context& io, std::string node_id, Done done)
    : io_(io), node_id_(std::move(node_id)), done_(std::move(done)) {}

void Executor::start(const protocol::Assignment& job) {
  const auto& spec = job.spec;
  std::string ticket = spec.ticket;
  if (spec.kind != protocol::JobKind::kSleep) {
    protocol::JobResult r;
    r.state = protocol::JobState::kFailed;
    r.text = "run jobs are not supported by this node version";
    r.start_ms = r.end_ms = now_ms();
    boost::asio::post(io_, [this, ticket, r] { done_(ticket, r); });
    return;
  }
  std::int64_t start = now_ms();
  auto timer = std::make_unique<boost::asio::steady_timer>(io_);
  timer->expires_after(std::chrono::milliseconds(spec.sleep_ms));
  std::uint64_t ms = spec.sleep_ms;
  timer->async_wait([this, ticket, ms, start](const boost::system::error_code& ec) {
    if (ec) return;  // stopped
    finish_sleep(ticket, ms, start);
  });
  timers_[ticket] = std::move(timer);
}

void Executor::finish_sleep(const std::string& ticket, std::uint64_t ms, std::int64_t start_ms) {
  timers_.erase(ticket);
  protocol::JobResult r;
  r.state = protocol::JobState::kDone;
  r.start_ms = start_ms;
  r.end_ms = now_ms();
  r.node = node_id_;
  r.text = fmt::format("Executed Job[{}] for {} milliseconds from {} to {} on node {}", ticket, ms,
                       format_time(r.start_ms), format_time(r.end_ms), node_id_);
  done_(ticket, std::move(r));
}

void Executor::stop(const std::string& ticket) {
  if (auto it = timers_.find(ticket); it != timers_.end()) {
    it->second->cancel();
    timers_.erase(it);
  }
}

void Executor::stop_all() {
  for (auto& [t, timer] : timers_) timer->cancel();
  timers_.clear();
}

}  // namespace jc::node
