// The node's group commit: what a turn of the event loop staged is written
// in one LevelDB batch, and what depends on it (tickets, the core's
// messages, results only this node has) leaves once it is written. A busy
// turn's synced write is made on a thread of its own (storage::BackgroundWrite)
// while the loop reads, stages and sends the next turn; a small one, or one
// without a sync, is made in place.
#include "cluster_node/node_server.h"

namespace jc::node {

namespace asio = boost::asio;
using boost::system::error_code;
using std::chrono::milliseconds;

namespace {
template <class T>
void append(std::vector<T>& to, std::vector<T>&& from) {
  if (to.empty()) {
    to = std::move(from);
  } else {
    to.insert(to.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
  }
  from.clear();
}
}  // namespace

void NodeServer::flush() {
  flush_scheduled_ = false;
  NodeEvents events = core_.take_events();
  for (const auto& t : events.stop) executor_.stop(t);
  if (events.work) start_jobs();
  // Answered once this turn's writes are (their r/ records among them).
  append(reports_, std::move(events.reports));
  append(settled_, std::move(events.settled_here));
  // New submissions first: their runs overlap this commit's fsync
  // (NodeCore::take_early). Not while the store refuses writes, nor ahead
  // of older ones that the write in flight, or one that failed, holds back.
  const bool older_held = NodeCore::holds_submit(unsent_) ||
                          (writer_->writing() && NodeCore::holds_submit(flight_.messages));
  if (storage_retry_.should_try() && core_.staged().store().writable() && !older_held) {
    for (auto& m : core_.take_early()) link_.send(m);
  }
  if (writer_->writing()) {
    // Questions to the proxy need not wait for it, unless a SUBMIT they
    // could overtake waits (they follow the tickets they ask about).
    if (!older_held && !core_.submissions_waiting()) {
      send_reads_asked();
    }
    return;  // flushed again once it lands
  }
  // On the writer thread: a synced write of a busy turn, or one no client
  // waits for (a barrier for ACKs, whose fsync would block a busy loop for
  // nothing). A small one a client waits for is made in place (an idle
  // node's submission: the handover would cost that job more than the loop
  // gains). Always in place when the store refuses writes (the retry
  // reopens it, which no read may meet), when the node stops, and while it
  // runs jobs on its own: a read sees what is staged, and a result only
  // this node has must not be seen before it is on its disk.
  const bool busy = core_.staged().size() >= kInPlaceBelow || after_commit_.empty();
  const bool off_loop = !stopping_ && core_.staged().commit_syncs() && busy &&
                        core_.connected() && core_.staged().store().writable();
  Held turn = hold_turn(off_loop);
  if (!storage_retry_.should_try()) {
    not_written(std::move(turn), Status::IoError("waiting for the next retry"));
    return;
  }
  if (off_loop) {
    flight_ = std::move(turn);
    log_->debug("commit on the writer thread writes={}", core_.staged().size());
    writer_->start(core_.staged(), [this](const Status& s) {
      Held landed = std::exchange(flight_, {});
      if (!s.ok()) {
        not_written(std::move(landed), s);
        return;
      }
      written(std::move(landed));
      if (!stopping_) flush();  // what was staged meanwhile
    });
    return;
  }
  if (Status s = core_.staged().commit(); !s.ok()) {
    not_written(std::move(turn), s);
    return;
  }
  written(std::move(turn));
}

NodeServer::Held NodeServer::hold_turn(bool off_loop) {
  Held turn;
  turn.synced = core_.staged().commit_syncs();
  turn.link_epoch = link_epoch_;
  core_.begin_commit();
  turn.replies = std::exchange(after_commit_, {});
  // Submissions first, so that a question about a ticket just submitted
  // reaches the proxy after the ticket itself; what a failed write held
  // back goes before them.
  turn.messages = std::exchange(unsent_, {});
  // Stopping, every result leaves with this commit. So it does with a write
  // on the writer thread, which gathers the next results while it is made:
  // holding these too would only add that write's time.
  append(turn.messages,
         core_.take_outbox(stopping_ || off_loop ? std::nullopt : std::optional(steady_ms())));
  arm_results_timer();
  turn.requests = std::exchange(to_request_, {});
  turn.shell = std::exchange(shell_outbox_, {});
  turn.reports = std::exchange(reports_, {});
  turn.settled = std::exchange(settled_, {});
  return turn;
}

void NodeServer::arm_results_timer() {
  auto due = core_.results_due();
  if (!due || results_timer_armed_ || stopping_) return;
  results_timer_armed_ = true;
  results_timer_.expires_after(milliseconds(std::max<TimeMs>(0, *due - steady_ms())));
  results_timer_.async_wait([this](const error_code& ec) {
    results_timer_armed_ = false;
    if (ec || stopping_) return;
    schedule_flush();
  });
}

void NodeServer::send_reads(Held& turn) {
  // Not on a later connection: lookups ask again after a WELCOME, and
  // stats questions are asked again when the link drops.
  if (turn.link_epoch != link_epoch_) return;
  if (!turn.requests.empty() && core_.connected()) {
    link_.send(protocol::RequestOfRes{std::move(turn.requests)});
  }
  for (auto& m : turn.shell) link_.send(m);
}

void NodeServer::send_reads_asked() {
  Held reads;
  reads.link_epoch = link_epoch_;
  reads.requests = std::exchange(to_request_, {});
  reads.shell = std::exchange(shell_outbox_, {});
  send_reads(reads);
}

void NodeServer::not_written(Held turn, const Status& s) {
  if (storage_retry_.should_try()) storage_retry_.failed(s);
  core_.commit_failed();
  // What depends on the write (tickets, the core's messages) waits for the
  // next, before what came since. Reads go on: questions to the proxy,
  // stats, and answers from what is known.
  append(turn.replies, std::move(after_commit_));
  after_commit_ = std::move(turn.replies);
  if (turn.link_epoch == link_epoch_) {
    append(turn.messages, std::move(unsent_));
    unsent_ = std::move(turn.messages);
  }
  send_reads(turn);
  send_reads_asked();  // and those asked while the write was made
  answer_lookups(turn.reports);
  // Only this node has these results: shown once they are on its disk.
  append(turn.settled, std::move(settled_));
  settled_ = std::move(turn.settled);
}

void NodeServer::written(Held turn) {
  storage_retry_.succeeded();
  core_.committed(turn.synced);
  for (const auto& [first, last] :
       compactions_.due(now_ms(), core_.retention().compact_period_ms())) {
    core_.staged().store().compact(first, last);
  }
  for (auto& cb : turn.replies) cb();
  // Not on a later connection: the core sends again after its WELCOME
  // what the proxy has not acknowledged.
  if (turn.link_epoch == link_epoch_) {
    for (auto& m : turn.messages) link_.send(m);
  }
  send_reads(turn);
  for (auto& m : core_.take_synced_acks()) link_.send(m);
  answer_lookups(turn.reports);
  answer_lookups(turn.settled);
  // Results were stored by an unsynced write: unless a submission's
  // synced commit comes first, one of their own within kAckSyncDelayMs
  // makes them durable, then acknowledges them.
  if (core_.wants_sync() && !ack_sync_armed_) {
    ack_sync_armed_ = true;
    ack_sync_timer_.expires_after(milliseconds(NodeCore::kAckSyncDelayMs));
    ack_sync_timer_.async_wait([this](const error_code& ec) {
      ack_sync_armed_ = false;
      if (ec || stopping_ || !core_.wants_sync()) return;
      core_.staged().require_barrier();
      schedule_flush();
    });
  }
}

}  // namespace jc::node
