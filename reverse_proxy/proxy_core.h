// The reverse proxy's pure core: every job's authoritative state (the job
// book: its records, the queue, who holds what), and the decisions of
// dispatch and recovery. Around it: membership (node_table.h), the
// balancer's rate logic (node_rates.h, balancer.h) and the counters
// (proxy_stats.h). With replicated proxies only the leader has one, and what
// it stages becomes a log entry (replicated_store.h).
//
// It does no I/O of its own. Each call stages its LevelDB changes (staged())
// and the messages it wants sent (take_outbox()); the shell commits the
// stage and only then sends, so every acknowledgement is durable. Time comes
// in as an argument. One thread (the proxy's event loop) calls it.
//
// Storage layout (values are Boost.Serialization archives):
//   s/<ticket>            JobSpec: the job as submitted, written once (version 7 on)
//   a/<ticket>            JobRecord of a job not finished (queued or held by a node):
//                         its state and the spec's head
//   f/<ticket>            JobRecord of a finished job, with its result
//   n/<origin>/<ticket>   "" : a result its origin node has not acknowledged yet
//   e/<final ms>/<ticket> origin node: the expiry index of f/ (protocol/retention.h)
//   w/<prefix>            the highest counter of that ticket prefix removed by expiry
//   m/expiry_index        "1" once f/ records written before the index have entries in it
//   o/<node>              what the node offered in its last HELLO, comma-separated: a
//                         label or language stays "offered" (a job needing it is taken
//                         and waits) while its node is away, across restarts and leaders
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/log.h"
#include "common/status.h"
#include "common/time.h"
#include "protocol/messages.h"
#include "protocol/retention.h"
#include "reverse_proxy/job_queue.h"
#include "reverse_proxy/node_rates.h"
#include "reverse_proxy/node_table.h"
#include "reverse_proxy/proxy_stats.h"
#include "storage/staged.h"

namespace jc::proxy {

struct ProxyOptions {
  std::string proxy_id = "proxy";
  std::uint32_t max_nodes = 64;
  std::uint32_t prefetch = 1;
  // A node may also hold as many jobs beyond its slots as it finishes in
  // this many ms (its measured rate), up to kMaxAdaptivePrefetch: fast jobs
  // then never wait for the round trip of result, synced write and dispatch,
  // and slow ones are not piled up. 0 turns it off.
  TimeMs prefetch_ms = 20;
  std::size_t max_dispatch = 100000;
  std::uint32_t max_attempts = 5;
  TimeMs node_timeout_ms = 5000;
  std::string secret;  // CLUSTER_SECRET: nodes must prove it; empty = open cluster
  protocol::Retention retention;  // RESULT_TTL
  // Replicated proxies, told to nodes in WELCOME: PROXY_PEERS, and how
  // often the leader sends HEARTBEAT (0: never).
  std::vector<std::string> proxies;
  TimeMs heartbeat_ms = 0;
  // MAX_QUEUE: queued jobs past which nodes refuse new ones (judge0's
  // MAX_QUEUE_SIZE, its 503 "queue is full"); 0: no limit.
  std::uint64_t max_queue = 1'000'000;
};

using protocol::SweepOutcome;

struct JobRecord {
  // The job as submitted. From record version 7 on the whole of it is
  // written once, as s/<ticket>; a/ and f/ keep only its head, the fields
  // the proxy decides and reports by. So dispatch, requeue and finish
  // rewrite a small record, and only dispatch (which sends the job) and a
  // read of its details decode the spec with its files and test cases.
  protocol::JobSpec spec;
  protocol::JobState state = protocol::JobState::kQueued;
  std::string node;
  std::uint32_t attempts = 0;
  std::uint64_t seq = 0;
  std::vector<std::string> nodes_tried;
  protocol::JobResult result;
  // Version 5: run by its origin node while the proxy was away, never sent
  // here before, and its result already shown to that node's clients: no
  // other node may run it, even when its node is lost (it holds the result).
  bool pinned = false;
  // In memory only: read from a record of version 6 or earlier, which holds
  // the whole spec and has no s/ record yet; the next store writes one.
  bool spec_inline = false;

  template <class A>
  void serialize(A& ar, unsigned) {
    if (ar.version() < 7) {
      protocol::fields(ar, spec, state, node, attempts, seq, nodes_tried, result);
      if (ar.version() >= 5) protocol::fields(ar, pinned);
      if constexpr (A::is_loading::value) spec_inline = true;
      return;
    }
    protocol::fields(ar, spec.origin, spec.owner, spec.priority, spec.not_before_ms, spec.needs,
                     spec.kind, spec.sleep_ms, spec.is_api, spec.api.language_id);
    protocol::fields(ar, state, node, attempts, seq, nodes_tried, result, pinned);
  }
};

struct Outgoing {
  std::string node_id;
  protocol::Message message;
};

class ProxyCore {
 public:
  ProxyCore(storage::Store& store, ProxyOptions options);

  // Reloads jobs, assignments and pending notifications from the store.
  Status recover(TimeMs now);

  // A node's handshake: accepted (and reconciled) or refused with a reason.
  // `nonce` is the challenge this connection was sent.
  protocol::Welcome on_hello(const protocol::Hello& hello, const std::string& peer, TimeMs now,
                             const std::string& nonce = "");
  // The node's connection ended: it is presumed dead and its jobs go elsewhere.
  void on_disconnect(const std::string& node_id, TimeMs now);
  void on_message(const std::string& node_id, protocol::Message m, TimeMs now);

  // One dispatch round. Returns true when queued jobs are left and a node has
  // room for them (the round was cut by max_dispatch).
  bool dispatch(TimeMs now);
  // The periodic RES_REQ to every node: unacknowledged results for its clients
  // and a request for the jobs it holds.
  void exchange_results(TimeMs now);
  // Nodes that held jobs when the proxy started and have not come back within
  // node_timeout lose them.
  void expire_absent_nodes(TimeMs now);
  // Removes the jobs final for longer than RESULT_TTL (at most kSweepBatch
  // of them), with their pending notifications; the shell runs it every
  // retention.sweep_period_ms(), and at once again while `more`.
  SweepOutcome sweep(TimeMs now);
  static constexpr std::size_t kSweepBatch = 20000;

  protocol::ClusterStats stats(TimeMs now) const;
  // Replicated proxies: adds the proxies, the leader and the term to stats.
  std::function<void(protocol::ClusterStats&)> replication_stats;
  // Jobs finished since start, by final state (for /metrics).
  const std::map<protocol::JobState, std::uint64_t>& finished_by_state() const {
    return stats_.finished_by_state;
  }
  std::uint64_t dispatched_total() const { return stats_.dispatched; }
  const std::deque<ProxyStats::RecentJob>& recent_jobs() const { return stats_.recent_jobs; }
  std::uint64_t finished_total() const { return stats_.finished; }
  std::uint64_t expired_total() const { return stats_.expired; }
  // Queued jobs, delayed ones included.
  std::uint64_t queue_length() const { return queue_.size() + delayed_.size(); }
  // When the next delayed job may be dispatched (nullopt: none waits).
  std::optional<TimeMs> next_delayed() const;
  // Its record; nullopt when unknown or expired (RESULT_TTL) at `now`, or at
  // the latest call's time when that is later: a read from outside (HTTP)
  // passes its clock, so it never shows a job a node already calls expired.
  std::optional<JobRecord> find_job(const std::string& ticket, TimeMs now = 0) const;
  bool expired(const std::string& ticket, TimeMs now = 0) const;
  bool has_dispatchable() const;

  storage::Staged& staged() { return staged_; }
  std::vector<Outgoing> take_outbox() { return std::exchange(outbox_, {}); }

 private:
  // Kept in memory for every job not finished (a million may be queued):
  // small, with node names interned; the rest is in LevelDB.
  struct ActiveJob {
    protocol::JobState state = protocol::JobState::kQueued;
    std::uint32_t node = 0;  // interned name of the node holding it; 0 = none
    std::uint32_t attempts = 0;
    QueueKey key;  // its place in the queue while queued
    std::uint32_t owner = 0;  // interned client name (JobSpec::owner); 0 = none
    TimeMs not_before = 0;    // JobSpec::not_before_ms (--delay)
    bool pinned = false;      // JobRecord::pinned
    std::uint32_t needs = 0;  // interned JobSpec::needs (needs_id()); 0 = nothing
    // Its s/ record's bytes, from its submit until its first dispatch,
    // within kSpecCacheBytes: then dispatch reads nothing from LevelDB (a
    // burst's queue is past the memtable by the time it is dispatched).
    std::unique_ptr<std::string> spec;
  };
  static constexpr std::size_t kSpecCacheBytes = 64 << 20;

  // The handlers take the message's parts by reference to move from them.
  void on_submit(const std::string& node, protocol::Submit& m, TimeMs now);
  void on_ack(const std::string& node, const protocol::Ack& m);
  void on_reports(const std::string& node, std::vector<protocol::JobReport>& reports, TimeMs now);
  void on_requests(const std::string& node, const std::vector<std::string>& tickets);
  void on_cancel(const std::string& node, const std::vector<std::string>& tickets,
                 const std::string& requester);
  void on_leave(const std::string& node, const protocol::Leave& m);
  void accept_result(const std::string& node, protocol::JobReport& report, protocol::Ack& ack);
  // Records the job's one result; `event` is how it ended (docs/job-states.md).
  void finish_job(const std::string& ticket, JobRecord rec, protocol::JobResult result,
                  protocol::JobEvent event = protocol::JobEvent::kFinish);
  void requeue(const std::string& ticket, const std::string& reason);
  using ActiveMap = std::unordered_map<std::string, ActiveJob>;
  // The two moves of a job not finished, applied to its record (stored) and
  // to the in-memory index alike. to_queue takes it from the node holding
  // it (rec.node) and puts it back at its place in the queue; to_node gives
  // it to `node` (the caller takes it out of the queue first).
  void to_queue(ActiveMap::iterator it, JobRecord& rec);
  // A queued job into the queue, or, while its --delay runs, among the
  // delayed ones; promote_due() moves those whose time has come.
  void enqueue(ActiveMap::iterator it, TimeMs now);
  void promote_due(TimeMs now);
  // Both move a job through protocol::next_state(); a refused transition
  // is logged and changes nothing (to_node then returns false).
  bool to_node(ActiveMap::iterator it, JobRecord& rec, const std::string& node);
  void reconcile(const std::string& node_id, const protocol::Hello& hello,
                 protocol::Welcome& welcome);
  void release_node_jobs(const std::string& node_id, const std::string& reason);

  protocol::JobReport report_of(const std::string& ticket, TimeMs now = 0) const;
  // The report of a finished job, from its record.
  static protocol::JobReport final_report(const std::string& ticket, JobRecord&& rec);
  bool load_record(const std::string& key, JobRecord& rec) const;
  // The whole spec into `rec` (a record of version 7 holds its head only).
  bool load_spec(const std::string& ticket, JobRecord& rec) const;
  // A queued job's record with its whole spec, to dispatch it.
  bool load_queued(ActiveMap::iterator it, JobRecord& rec);
  void drop_cached_spec(ActiveJob& job);
  // Gone by RESULT_TTL: not found, and below its prefix's removed counter.
  bool expired_ticket(const std::string& ticket) const;
  Status index_finished_records(TimeMs now);
  // Writes a/ (and s/, for a record read in a version before 7).
  void store_active(const std::string& ticket, JobRecord& rec);
  void send(const std::string& node, protocol::Message m);
  std::uint32_t intern(const std::string& name);
  // A job's needs as one interned id (their sorted, comma-joined list).
  std::uint32_t needs_id(const std::vector<std::string>& needs);
  // Whether node `entry` offers every need of the interned set `needs`.
  bool can_run(const NodeEntry& entry, std::uint32_t needs) const;
  // Tells every node what the cluster offers, when that changed (or
  // `to` only, a node that just joined).
  void send_offers(const std::string& to = "");
  // What a queued job with these needs waits for (JobReport::waiting_for).
  std::string waiting_for(std::uint32_t needs) const;
  // Turns queue_full_ on at MAX_QUEUE queued and off under nine tenths of
  // it, and tells the nodes when it turns.
  void update_admission();
  const std::string& name_of(std::uint32_t id) const { return names_[id]; }
  void notify_result(const std::string& ticket, const std::string& origin,
                     const protocol::JobReport& report);

  storage::Staged staged_;
  ProxyOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  ActiveMap active_;
  std::vector<std::string> names_{""};  // interned node names; 0 is "none"
  std::unordered_map<std::string, std::uint32_t> name_ids_{{"", 0}};
  std::vector<std::string> offered_, available_;  // as last sent in OFFERS
  bool queue_full_ = false;                       // likewise (MAX_QUEUE)
  std::map<std::string, std::set<std::string>> known_offers_;  // o/: every node's, up or not
  NeedsQueue queue_;
  // Queued jobs whose --delay runs, by (not before, sequence).
  std::map<std::pair<TimeMs, std::uint64_t>, const std::string*> delayed_;
  NodeTable nodes_;  // membership
  std::unordered_map<std::string, std::set<std::string>> watchers_;
  std::map<std::string, std::set<std::string>> unnotified_;  // origin -> tickets
  // Exchanges before a result pushed to its origin on this connection is
  // pushed again: the node acknowledges what it reads, and a result of
  // megabytes pushed every REQUEST_RESULT_PERIOD only queues copies.
  std::unordered_map<std::string, int> notify_wait_;
  static constexpr int kRenotifyRounds = 30;
  std::vector<Outgoing> outbox_;
  // The highest counter removed by expiry, per ticket prefix (w/ keys).
  std::unordered_map<std::string, std::uint64_t> expired_upto_;
  std::uint64_t next_seq_ = 1;
  std::size_t cached_spec_bytes_ = 0;  // ActiveJob::spec, all together
  std::size_t rotation_ = 0;
  ProxyStats stats_;  // counters since start, for stats and estimates
  TimeMs clock_ = 0;  // the latest time a call brought
  void note(std::string event);
};

}  // namespace jc::proxy
