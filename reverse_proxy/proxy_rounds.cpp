// The leader's rounds: dispatch rounds and the timers that start them, the
// periodic result exchange and sweep, and the group commit (commit_path.h)
// with the sends that wait for it.
#include "reverse_proxy/proxy_server.h"

namespace jc::proxy {

namespace asio = boost::asio;
using boost::system::error_code;
using std::chrono::milliseconds;

void ProxyServer::start_leading_timers() {
  schedule_periodic();
  arm_delay_timer();
  if (config_.core.retention.enabled()) schedule_sweep(0);
  if (raft_) send_heartbeats();
}

// Rounds run as soon as queued jobs meet free slots (coalesced into one round
// per turn of the event loop), and at least every DISPATCH_PERIOD. A round
// due when the turn's commit starts runs first (flush()), whichever was
// posted first.
void ProxyServer::kick_dispatch() {
  if (dispatch_posted_ || stopping_ || !core_) return;
  dispatch_posted_ = true;
  asio::post(io_, [this] { run_posted_dispatch(); });
}

void ProxyServer::run_posted_dispatch() {
  if (!dispatch_posted_) return;  // flush() ran it
  dispatch_posted_ = false;
  run_dispatch();
}

void ProxyServer::run_dispatch() {
  if (stopping_ || !core_) return;
  auto started = std::chrono::steady_clock::now();
  bool more = core_->dispatch(now_ms());
  rounds_.observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  schedule_flush();
  arm_delay_timer();
  if (more) {
    // Cut by MAX_NUM_JOBS_DISPATCH: the next round waits one period.
    dispatch_timer_.expires_after(milliseconds(config_.dispatch_period_ms));
    dispatch_timer_.async_wait([this](const error_code& ec) {
      if (!ec) run_dispatch();
    });
  }
}

void ProxyServer::arm_delay_timer() {
  if (!core_) return;
  auto next = core_->next_delayed();
  if (!next || (delay_timer_at_ != 0 && delay_timer_at_ <= *next)) return;
  delay_timer_at_ = *next;
  delay_timer_.expires_after(milliseconds(std::max<TimeMs>(0, *next - now_ms())));
  delay_timer_.async_wait([this](const error_code& ec) {
    if (ec) return;
    delay_timer_at_ = 0;
    kick_dispatch();  // the round promotes the job and arms the timer again
  });
}

void ProxyServer::record_history() {
  if (core_) history_.record(now_ms(), core_->finished_total(), core_->queue_length());
  history_timer_.expires_after(std::chrono::seconds(1));
  history_timer_.async_wait([this](const error_code& ec) {
    if (!ec && !stopping_) record_history();
  });
}

void ProxyServer::schedule_periodic() {
  exchange_timer_.expires_after(milliseconds(config_.request_result_period_ms));
  exchange_timer_.async_wait([this](const error_code& ec) {
    if (ec || stopping_ || !core_) return;
    TimeMs now = now_ms();
    core_->expire_absent_nodes(now);
    core_->exchange_results(now);
    if (core_->has_dispatchable()) kick_dispatch();
    schedule_flush();
    schedule_periodic();
  });
}

void ProxyServer::schedule_sweep(TimeMs after_ms) {
  sweep_timer_.expires_after(milliseconds(after_ms));
  sweep_timer_.async_wait([this](const error_code& ec) {
    if (ec || stopping_ || !core_) return;
    if (commit_->failing()) {
      // Its removals could not be written: sweep again once they can.
      schedule_sweep(config_.core.retention.sweep_period_ms());
      return;
    }
    SweepOutcome swept = core_->sweep(now_ms());
    if (swept.removed > 0) {
      log_->info("removed expired jobs count={}{}", swept.removed, swept.more ? " (more follow)" : "");
      commit_->compact_later(std::move(swept.compact));
    }
    schedule_flush();  // commits the removal, then compacts what is due
    // A large backlog goes in batches, with the event loop free between them.
    schedule_sweep(swept.more ? 10 : config_.core.retention.sweep_period_ms());
  });
}

void ProxyServer::schedule_flush() {
  if (flush_scheduled_) return;
  flush_scheduled_ = true;
  asio::post(io_, [this] { flush(); });
}

void ProxyServer::flush() {
  // The round first, in the same commit: its JOBs leave before the fsync
  // (ProxyCore::take_early), so a job submitted in this turn runs while the
  // submit is made durable, not after. A round posted after this flush
  // would otherwise wait for it.
  run_posted_dispatch();
  flush_scheduled_ = false;
  if (core_ && commit_) commit_->flush(*core_);
}

void ProxyServer::send_outbox(std::vector<Outgoing> outbox) {
  for (auto& out : outbox) {
    auto it = by_node_.find(out.node_id);
    if (it == by_node_.end()) continue;
    auto session = sessions_.find(it->second);
    if (session != sessions_.end()) session->second.conn->send(out.message);
  }
}

}  // namespace jc::proxy
