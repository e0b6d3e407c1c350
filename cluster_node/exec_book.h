// The node's execution book: the jobs the proxy gave this node (or that it
// took from its own clients while the proxy was away), from their arrival
// until the proxy has their result. The one owner of
//   x/<ticket>   ExecRecord (node_records.h): the job as given and its attempt,
//                written once (records of earlier builds also hold a result)
//   d/<ticket>   ExecOutcome: the run's state and result, once it ended
// and, in memory, of each held job's spec and state (so that its start and
// its finish write the record without reading it back), the order they
// start in, which run, and which results the proxy has not acknowledged.
//
// While the proxy is connected (set_deferring), the x/ and d/ records of
// the jobs it gives wait in memory (storage/deferred.h) and are written
// only once they outlive a whole round of age() (REQUEST_RESULT_PERIOD):
// the proxy holds those jobs durably and re-dispatches what a restarted
// node does not name in its HELLO, so a record lost to a kill -9 costs a
// rerun, never a job; and most jobs are delivered, their records deleted,
// long before. Everything waiting is written when the proxy goes away
// (the node then keeps running what it has, alone) and when the node
// stops. Jobs run while the proxy is away are written at once.
#pragma once

#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "cluster_node/node_records.h"
#include "common/hash_maps.h"
#include "common/log.h"
#include "common/status.h"
#include "protocol/codec.h"
#include "protocol/messages.h"
#include "storage/deferred.h"
#include "storage/staged.h"

namespace jc::node {

class ExecBook {
 public:
  ExecBook(storage::Staged& staged, std::shared_ptr<spdlog::logger> log)
      : staged_(staged), records_(staged), log_(std::move(log)) {}

  static constexpr std::string_view kExec = "x/", kOutcome = "d/";
  static std::string key(const std::string& t) { return std::string(kExec) + t; }
  static std::string outcome_key(const std::string& t) { return std::string(kOutcome) + t; }

  // Reads every x/ record: every held job runs from the start, in ticket
  // order (one a record of an earlier build says was running goes first);
  // `origin_unforwarded` says which of this node's own jobs the proxy never
  // acknowledged (a local run of one of them is a claim). `was_running`:
  // how many records of earlier builds said RUNNING.
  Status recover(const std::function<bool(const std::string&)>& origin_unforwarded,
                 std::size_t& was_running);

  // A job the proxy gives: false when it is here already (held, or its
  // result not acknowledged yet), or its ticket is not one.
  bool assign(protocol::Assignment& a);
  // A job of this node's own clients, run here while the proxy is away
  // (one held here already stays as it is, now claimed).
  void claim_local(const std::string& ticket, protocol::JobSpec spec);
  bool claimed(const std::string& t) const { return local_claimed_.count(t) > 0; }
  // The proxy acknowledged the submit of a job claimed here.
  void unclaim(const std::string& t) { local_claimed_.erase(t); }

  // The next job to start (marked running in memory only), while slots
  // are free.
  std::optional<protocol::Assignment> next(std::uint32_t slots);
  // A held job not started, cancelled: out of the queue and counted as
  // running, so that finish() ends it. False when it is not such a job.
  bool start_cancelled(const std::string& t, protocol::JobKind& kind);
  // A run ended: its record with the result, undelivered. nullopt when it
  // was dropped meanwhile, or the transition is refused. `sending`: its
  // result goes to the proxy now (not offered again for kResendRounds).
  std::optional<ExecRecord> finish(const std::string& t, protocol::JobResult result,
                                   const std::string& node_id, bool sending);
  // The proxy gave the job to another node: it leaves the book. Returns
  // true when it was running (the shell must stop it).
  bool drop(const std::string& t);
  // The proxy holds the result durably: the record goes.
  void delivered(const std::string& t);
  // The proxy took another run's result: this one's record goes.
  void superseded(const std::string& t);
  // A drain: the queued jobs not started (nor claimed) leave the book.
  std::vector<std::string> hand_back();

  // The job with what came of its run (its d/ record over its x/ record).
  bool load(const std::string& t, ExecRecord& rec) const;
  // Expiry of a record of an earlier build: x/ and d/ go.
  void forget(const std::string& t) { erase(t); }
  protocol::JobReport report(const std::string& t, const ExecRecord& rec,
                             const std::string& node_id) const;
  // HELLO: jobs held, and finished ones whose result is on its way
  // (claimed ones excluded: they are introduced by SUBMIT).
  void fill_hello(protocol::Hello& h) const;
  // Results to offer the proxy again in this round, at most `max`: what
  // was not sent in the last kResendRounds rounds, apart from `fresh`.
  std::vector<protocol::JobReport> due(std::size_t max,
                                       const std::unordered_set<std::string>& fresh,
                                       const std::string& node_id);
  void new_connection() {
    for (auto& [t, wait] : undelivered_) wait = 0;
  }
  // On while a proxy is connected: the records of the jobs it gives wait
  // in memory. Off: everything waiting is staged now.
  void set_deferring(bool on) {
    deferring_ = on;
    if (!on) records_.write_all();
  }
  // A round (REQUEST_RESULT_PERIOD) passed: records that waited all of it
  // are staged.
  void age() { records_.age(); }

  bool holds(const std::string& t) const { return jobs_.count(t) > 0; }
  bool is_running(const std::string& t) const {
    auto it = jobs_.find(t);
    return it != jobs_.end() && it->second.running;
  }
  bool undelivered(const std::string& t) const { return undelivered_.count(t) > 0; }
  // Whether `t` has an x/ record (memory knows every readable one).
  bool has_record(const std::string& t) const {
    return jobs_.count(t) > 0 || undelivered_.count(t) > 0 || delivered_records_.count(t) > 0;
  }
  std::size_t undelivered_count() const { return undelivered_.size(); }
  std::size_t running() const { return running_count_; }
  std::size_t queued() const { return queue_.size(); }
  bool has_queued() const { return !queue_.empty(); }
  std::uint64_t finished_total() const { return finished_total_; }

 private:
  struct Job {
    protocol::Assignment assignment;  // without its spec_bytes (x/ is made of them)
    protocol::JobState state = protocol::JobState::kQueued;
    bool local = false;  // ExecRecord::local
    // Started (by next(), or start_cancelled() to end it): its run is on.
    bool running = false;
  };
  // Its x/ record (without a result); a copy of the job when it stays held.
  static ExecRecord record_of(Job job);
  // What came of the run (its d/ record), over `rec` read from x/.
  void apply_outcome(const std::string& t, ExecRecord& rec) const;
  void erase(const std::string& t) {
    records_.del(kExec, t);
    records_.del(kOutcome, t);
    delivered_records_.erase(t);
  }
  // What came of the run: its d/ record (waiting, for a job the proxy gave
  // while it is connected).
  void store_outcome(const std::string& t, const ExecRecord& rec) {
    records_.put(outcome_key(t), protocol::to_record(ExecOutcome{rec.state, rec.result}),
                 deferring_ && !rec.local);
  }
  // Its x/ record, made of the spec's bytes when they are known. `later`:
  // it waits (storage::Deferred), the first write of a job just given.
  void store(const std::string& t, const ExecRecord& rec, std::string_view spec_bytes = {},
             bool later = false) {
    records_.put(key(t),
                 spec_bytes.empty() ? protocol::to_record(rec) : exec_record_from(spec_bytes, rec),
                 later);
  }
  bool advance(const std::string& t, protocol::JobState& state, protocol::JobEvent event,
               protocol::JobState outcome = protocol::JobState::kDone);

  storage::Staged& staged_;
  storage::Deferred records_;  // every x/ and d/ write and read goes through it
  bool deferring_ = false;
  std::shared_ptr<spdlog::logger> log_;
  std::deque<std::string> queue_;  // held, not started, in start order
  FlatMap<std::string, Job> jobs_;
  std::size_t running_count_ = 0;      // jobs_ with `running` set
  // Finished, result not yet acknowledged: with the rounds of resending
  // before it is offered again (0: offered in the next).
  FlatMap<std::string, int> undelivered_;
  // x/ records of results delivered (earlier builds kept them): with jobs_
  // and undelivered_, every readable x/ record, so that an assignment is
  // checked against memory, never read from the store.
  FlatSet<std::string> delivered_records_;
  // Run here while the proxy was away, and not yet acknowledged by it.
  FlatSet<std::string> local_claimed_;
  // x/ records found unreadable at the start (kept, reported): a job given
  // again under such a ticket is not deferred, since its key has a record
  // (storage::Deferred).
  FlatSet<std::string> unreadable_;
  // Rounds of resending before a result sent on this connection is offered
  // again (undelivered_'s values): TCP delivers it, and the proxy
  // acknowledges what it reads, so offering megabytes again every
  // REQUEST_RESULT_PERIOD only queues copies ahead of the node's INFO (a slow
  // proxy then took the node for silent). Cleared on every new connection,
  // which offers all again.
  static constexpr int kResendRounds = 30;
  std::uint64_t finished_total_ = 0;
};

}  // namespace jc::node
