#include "reverse_proxy/commit_path.h"

#include <unordered_set>

#include "common/time.h"

namespace jc::proxy {

void CommitPath::compact_due() {
  for (const auto& [first, last] : compactions_.due(now_ms(), compact_period_ms_)) {
    store_.compact(first, last);
  }
}

namespace {
// Adds the nodes whose WELCOME is among messages held for a write: no JOB
// may overtake it, or the WELCOME's drop list would remove the job just given.
void add_unwelcomed(const std::vector<Outgoing>& held, std::unordered_set<std::string>& nodes) {
  for (const auto& out : held) {
    if (std::holds_alternative<protocol::Welcome>(out.message)) nodes.insert(out.node_id);
  }
}

void append(std::vector<Outgoing>& to, std::vector<Outgoing> from) {
  if (to.empty()) {
    to = std::move(from);
  } else {
    to.insert(to.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
  }
}
}  // namespace

DiskCommit::DiskCommit(storage::Store& store, Send send, TimeMs compact_period_ms,
                       net::StorageRetry& retry, CommitHold::Clock::duration hold,
                       FlushLater flush_later, Background background)
    : CommitPath(store, std::move(send), compact_period_ms),
      retry_(retry),
      hold_(flush_later ? hold : CommitHold::Clock::duration{}),
      flush_later_(std::move(flush_later)),
      background_(std::move(background)) {
  if (background_.post && background_.flush_again) {
    writer_ = std::make_unique<storage::BackgroundWrite>(background_.post);
  }
}

// The writer first: a write it makes uses the stage's operations.
DiskCommit::~DiskCommit() { writer_.reset(); }

void DiskCommit::flush(ProxyCore& core) {
  if (!retry_.should_try()) return;
  // JOB first: the run overlaps the fsync (ProxyCore::take_early). Not
  // while the store refuses writes: then nothing moves until it takes them.
  bool sent_jobs = false;
  if (core.staged().store().writable()) {
    // Not to a node whose WELCOME waits for the write in flight or for a
    // failed one's retry.
    std::unordered_set<std::string> unwelcomed;
    add_unwelcomed(flight_out_, unwelcomed);
    add_unwelcomed(waiting_, unwelcomed);
    auto early = core.take_early(unwelcomed);
    sent_jobs = !early.empty();
    send_(std::move(early));
  }
  if (writing()) {
    // What a turn that staged nothing sends may rest on what is being
    // written (a result a RES_REQ is answered with): it leaves with that.
    // Anything staged goes in the next write, when this one lands.
    if (core.staged().empty()) append(flight_out_, core.take_outbox());
    return;
  }
  switch (hold_.decide(sent_jobs, core.staged().sync_required(), core.only_acks_out(),
                       CommitHold::Clock::now())) {
    case CommitHold::Decision::kStartHold:
      flush_later_(hold_.hold());
      return;
    case CommitHold::Decision::kHold:
      return;  // the flush that flush_later_ arranged commits
    case CommitHold::Decision::kCommit:
      break;
  }
  // In place: a small write (an idle proxy's: handing it over and back
  // costs its job more than the loop would wait), nothing to write (a store
  // that refuses writes is still asked: the write is what makes it writable
  // again), and while the store refuses writes (the retry reopens it, which
  // no read may meet).
  if (writer_ && !in_place_ && core.staged().size() >= kInPlaceBelow &&
      core.staged().store().writable()) {
    start_write(core);
  } else {
    commit_in_place(core);
  }
}

void DiskCommit::commit_in_place(ProxyCore& core) {
  if (Status s = core.staged().commit(); !s.ok()) {
    // Nothing staged may be acknowledged: every message waits for the
    // write, which is retried (StorageRetry).
    retry_.failed(s);
    return;
  }
  retry_.succeeded();
  compact_due();
  send_(std::exchange(waiting_, {}));
  send_(core.take_outbox());
}

void DiskCommit::start_write(ProxyCore& core) {
  flight_out_ = std::exchange(waiting_, {});
  append(flight_out_, core.take_outbox());
  writer_->start(core.staged(), [this](const Status& s) { land(s); });
}

void DiskCommit::land(const Status& s) {
  auto out = std::exchange(flight_out_, {});
  if (!s.ok()) {
    // Staged again under what came since (BackgroundWrite), and retried in
    // place: nothing of it was acknowledged, and its messages go first
    // after the retry.
    waiting_ = std::move(out);
    retry_.failed(s);
    return;
  }
  retry_.succeeded();
  compact_due();
  send_(std::move(out));
  if (!in_place_) background_.flush_again();  // what was staged meanwhile
}

void DiskCommit::flush_at_stop(ProxyCore& core) {
  hold_.stop();
  in_place_ = true;
  if (writer_) writer_->finish();
  flush(core);
}

void LogCommit::flush(ProxyCore& core) {
  // What is staged while every slot is taken goes in the next entry
  // (group commit), proposed as the oldest lands.
  if (in_flight_.size() >= kMaxEntriesInFlight) return;
  // JOB before its entry is on a majority's disk, as with one proxy: a
  // leader that loses the entry never acknowledged the job, and the next
  // one drops the node's copy at its HELLO (ProxyCore::take_early). Not to
  // a node whose WELCOME waits in an entry in flight: JOB would overtake
  // it, and the WELCOME's drop list would then remove the job just given.
  std::unordered_set<std::string> unwelcomed;
  for (const auto& batch : in_flight_) add_unwelcomed(batch, unwelcomed);
  send_(core.take_early(unwelcomed));
  Change change;
  change.time_ms = now_ms();
  core.staged().lift(change.writes);
  auto outbox = core.take_outbox();
  if (change.writes.empty()) {
    // Nothing new to make durable: what these messages say is durable
    // once the entries in flight are, or already is when none is.
    if (in_flight_.empty()) {
      send_(std::move(outbox));
    } else {
      auto& last = in_flight_.back();
      last.insert(last.end(), std::make_move_iterator(outbox.begin()),
                  std::make_move_iterator(outbox.end()));
    }
    return;
  }
  std::string entry = encode_change(change);
  in_flight_.push_back(std::move(outbox));
  std::uint64_t generation = generation_;
  ProxyCore* staged_by = &core;  // alive until abandon(), which comes first
  auto index = raft_.propose(entry, [this, generation, staged_by](bool ok) {
    // Called in log order, once each entry is applied here.
    if (generation != generation_) return;
    if (!ok) {
      // It may still be committed by the next leader; nothing of it was
      // acknowledged, and nodes send again what is not.
      hooks_.lost("leadership lost with a log entry in flight");
      return;
    }
    if (machine_.behind()) {
      // Committed, but this proxy's store refused it: another proxy
      // serves from a complete store.
      hooks_.lost("this proxy's store refuses writes (a full disk?)");
      return;
    }
    staged_by->staged().landed();
    auto landed = std::move(in_flight_.front());
    in_flight_.pop_front();
    compact_due();
    send_(std::move(landed));
    hooks_.flush_again();
  });
  if (!index) {
    in_flight_.pop_back();
    hooks_.lost("the log refused an entry: this proxy no longer leads");
    return;
  }
  // This proxy applies its own entry from these writes, not from the bytes.
  machine_.expect(*index, std::move(entry), std::move(change.writes));
  if (held_back_) {
    held_back_ = false;
    hooks_.resume();
  }
}

bool LogCommit::hold_back(ProxyCore& core) {
  // While every entry slot is taken and the next entry is already large,
  // the node waits (its link is paused, and TCP pushes back on it) rather
  // than the entry growing: every proxy applies an entry in one go, and
  // one that takes longer than an election timeout looks like a dead
  // proxy. The node keeps what it sent durably meanwhile.
  if (in_flight_.size() < kMaxEntriesInFlight || core.staged().size() < entry_writes_) {
    return false;
  }
  if (!held_back_) {
    log_->debug("holding node links back: {} log entries in flight, {} writes staged",
                in_flight_.size(), core.staged().size());
  }
  held_back_ = true;
  return true;
}

void LogCommit::abandon() {
  ++generation_;
  in_flight_.clear();
  held_back_ = false;
  machine_.forget_expected();
  CommitPath::abandon();
}

}  // namespace jc::proxy
