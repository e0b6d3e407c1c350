#include "runner/executor.h"

#include <fmt/format.h>

#include <algorithm>

#include "common/time.h"

namespace jc::runner {

Executor::Executor(boost::asio::io_context& io, std::string node_id, const SandboxConfig& sandbox,
                   std::uint32_t slots, Done done)
    : io_(io),
      node_id_(std::move(node_id)),
      sandbox_(Sandbox::create(sandbox)),
      done_(std::move(done)),
      reaper_(io),
      slot_in_use_(slots, false) {}

Executor::~Executor() { sandbox_->launcher().stop(); }

void Executor::start(protocol::Assignment job) {
  if (job.spec.kind == protocol::JobKind::kRun) {
    const std::string ticket = job.spec.ticket;
    // NodeCore never runs more jobs than slots, so a free one exists.
    auto free = std::find(slot_in_use_.begin(), slot_in_use_.end(), false);
    std::size_t slot = static_cast<std::size_t>(free - slot_in_use_.begin());
    if (free == slot_in_use_.end()) slot_in_use_.push_back(false);
    slot_in_use_[slot] = true;
    slot_of_[ticket] = slot;
    uid_t uid = sandbox_->isolation().slot_uid(static_cast<std::uint32_t>(slot));
    gid_t gid = sandbox_->isolation().slot_gid(static_cast<std::uint32_t>(slot));
    auto run = std::make_shared<RunJob>(io_, reaper_, *sandbox_, std::move(job),
                                        static_cast<std::uint32_t>(slot), uid, gid,
                                        [this, ticket](protocol::JobResult r) {
                                          release_slot(ticket);
                                          if (runs_.erase(ticket) == 0) return;  // stopped
                                          done_(ticket, std::move(r));
                                        });
    runs_[ticket] = run;
    run->start();
    return;
  }
  const InlineKey ticket(job.spec.ticket);
  Sleep s;
  s.ms = job.spec.sleep_ms;
  s.start_ms = now_ms();
  if (s.ms == 0) {
    // Nothing to wait for: finish in the next turn of the loop, without the
    // cost of a timer (a system call to re-arm the loop's timerfd).
    boost::asio::post(io_, [this, ticket] { finish_sleep(ticket.view(), false); });
  } else {
    s.timer = std::make_unique<boost::asio::steady_timer>(io_);
    s.timer->expires_after(std::chrono::milliseconds(job.spec.sleep_ms));
    s.timer->async_wait([this, ticket](const boost::system::error_code& ec) {
      if (!ec) finish_sleep(ticket.view(), false);
    });
  }
  sleeps_.insert_or_assign(ticket, std::move(s));
}

void Executor::finish_sleep(std::string_view view, bool cancelled) {
  auto it = sleeps_.find(view);
  if (it == sleeps_.end()) return;
  const std::string ticket(view);  // `view` may be of the key erased here
  Sleep s = std::move(it->second);
  sleeps_.erase(it);
  protocol::JobResult r;
  r.start_ms = s.start_ms;
  r.end_ms = now_ms();
  r.node = node_id_;
  if (cancelled) {
    if (s.timer) s.timer->cancel();
    r.state = protocol::JobState::kCancelled;
    r.text = fmt::format("cancelled after {} of {} milliseconds", r.end_ms - r.start_ms, s.ms);
  } else {
    r.state = protocol::JobState::kDone;
    r.sleep_ms = s.ms;  // its sentence is made where it is shown (protocol::shown_text)
  }
  done_(ticket, std::move(r));
}

void Executor::stop(const std::string& ticket) {
  if (auto it = sleeps_.find(ticket); it != sleeps_.end()) {
    if (it->second.timer) it->second.timer->cancel();
    sleeps_.erase(it);
  }
  if (auto it = runs_.find(ticket); it != runs_.end()) {
    auto run = it->second;
    runs_.erase(it);  // its result is not wanted
    run->cancel();
  }
}

bool Executor::cancel(const std::string& ticket) {
  if (sleeps_.count(ticket)) {
    finish_sleep(ticket, true);
    return true;
  }
  if (auto it = runs_.find(ticket); it != runs_.end()) {
    it->second->cancel();
    return true;
  }
  return false;
}

void Executor::release_slot(const std::string& ticket) {
  if (auto it = slot_of_.find(ticket); it != slot_of_.end()) {
    slot_in_use_[it->second] = false;
    slot_of_.erase(it);
  }
}

void Executor::stop_all() {
  for (auto& [t, s] : sleeps_) {
    if (s.timer) s.timer->cancel();
  }
  sleeps_.clear();
  auto runs = std::move(runs_);
  runs_.clear();
  for (auto& [t, r] : runs) r->cancel();
  reaper_.stop();
}

}  // namespace jc::runner
