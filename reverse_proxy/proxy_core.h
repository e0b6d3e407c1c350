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
// Its state is in parts, each the one owner of its records and of what
// memory holds of them: the job book (job_book.h: s/, a/, f/ and the
// queue), the results owed to nodes (result_notices.h: n/), retention
// (proxy_expiry.h: e/, w/) and membership (membership.h: o/ and the nodes).
// ProxyCore is the one place that handles every message: it decides a
// job's moves (protocol::advance) and has each part record them.
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
#include "reverse_proxy/job_book.h"
#include "reverse_proxy/membership.h"
#include "reverse_proxy/outbox.h"
#include "reverse_proxy/node_rates.h"
#include "reverse_proxy/proxy_expiry.h"
#include "reverse_proxy/result_notices.h"
#include "reverse_proxy/ticket_origins.h"
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

class ProxyCore {
 public:
  ProxyCore(storage::Store& store, ProxyOptions options);
  // Its parts hold references to its stage, names and options: it stays
  // where it was made.
  ProxyCore(const ProxyCore&) = delete;
  ProxyCore& operator=(const ProxyCore&) = delete;

  // Reloads jobs, assignments and pending notifications from the store.
  Status recover(TimeMs now);

  // A node's handshake: accepted (and reconciled) or refused with a reason.
  // `nonce` is the challenge this connection was sent.
  protocol::Welcome on_hello(const protocol::Hello& hello, const std::string& peer, TimeMs now,
                             const std::string& nonce = "");
  // The node's connection ended: it is presumed dead and its jobs go elsewhere.
  void on_disconnect(const std::string& node_id, TimeMs now);
  // The one switch for what a joined node sends. Returns true when a
  // dispatch round is due in this turn (new jobs, freed slots, jobs handed
  // back by a draining node).
  bool on_message(const std::string& node_id, protocol::Message m, TimeMs now);

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
  std::vector<ProxyStats::RecentJob> recent_jobs() const { return stats_.recent_jobs(); }
  std::uint64_t finished_total() const { return stats_.finished; }
  std::uint64_t expired_total() const { return stats_.expired; }
  // Queued jobs, delayed ones included.
  std::uint64_t queue_length() const { return book_.queued(); }
  // When the next delayed job may be dispatched (nullopt: none waits).
  std::optional<TimeMs> next_delayed() const;
  // Its record; nullopt when unknown or expired (RESULT_TTL) at `now`, or at
  // the latest call's time when that is later: a read from outside (HTTP)
  // passes its clock, so it never shows a job a node already calls expired.
  std::optional<JobRecord> find_job(const std::string& ticket, TimeMs now = 0) const;
  bool expired(const std::string& ticket, TimeMs now = 0) const;
  // Whether a finished job's result is durable: its f/ record is neither
  // staged nor being written (a single proxy's write on its own thread, a
  // replicated proxy's log entry in flight).
  bool result_durable(const std::string& ticket) const {
    return staged_.settled(storage::ReadKey(JobBook::kFinished, ticket));
  }
  bool has_dispatchable() const;
  // Unfinished jobs a node other than their origin asked about (their
  // result goes to it too).
  std::size_t watched_jobs() const { return notices_.watched(); }

  storage::Staged& staged() { return staged_; }
  // Whether every message waiting for the commit is an ACK: nothing a
  // client waits for (no RESULT, WELCOME, OFFERS, CANCEL or RES_REQ).
  bool only_acks_out() const { return outbox_.only_acks(); }
  std::vector<Outgoing> take_outbox() { return outbox_.take(); }
  // What may leave before this turn's writes are durable: JOB, to a node
  // not welcomed in this turn (WELCOME goes first on a connection). Running
  // a job acknowledges nothing: should the proxy die before the commit, the
  // origin still holds the job as unacknowledged and submits it again, and
  // the node's copy, unknown to the proxy, is dropped at its HELLO (or its
  // result refused). The shell sends these, then commits, then sends the
  // rest (take_outbox()), so the run overlaps the proxy's fsync.
  // `unwelcomed`: nodes whose WELCOME was taken earlier and has not left
  // yet (a log entry in flight holds it); their JOB waits too.
  std::vector<Outgoing> take_early(const std::unordered_set<std::string>& unwelcomed = {}) {
    return outbox_.take_early(unwelcomed);
  }

 private:
  using Active = JobBook::Active;
  using ActiveIt = JobBook::iterator;

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
  // The two moves of a job not finished, applied to its record (stored) and
  // to the in-memory index alike. to_queue takes it from the node holding
  // it (rec.node) and puts it back at its place in the queue; to_node gives
  // it to `node` (the caller takes it out of the queue first). Both move a
  // job through protocol::next_state(); a refused transition is logged and
  // changes nothing (to_node then returns false).
  void to_queue(ActiveIt it, JobRecord& rec);
  bool to_node(ActiveIt it, JobRecord& rec, const std::string& node);
  void reconcile(const std::string& node_id, const protocol::Hello& hello,
                 protocol::Welcome& welcome);
  void release_node_jobs(const std::string& node_id, const std::string& reason);

  // What the proxy knows of a ticket. One it has never received, shaped as
  // nodes issue them, whose prefix belongs to a node that is not connected
  // now, names that node (state still kUnknown): the job may be on its way
  // from there, and the nodes asking do not call it unknown yet.
  protocol::JobReport report_of(const std::string& ticket, TimeMs now = 0) const;
  // The node whose tickets carry each prefix: for report_of.
  TicketOrigins origins_;
  // The report of a finished job, from its record.
  static protocol::JobReport final_report(const std::string& ticket, JobRecord&& rec);
  // Gone by RESULT_TTL: not found, and below its prefix's removed counter.
  bool expired_ticket(const std::string& ticket) const { return expiry_.gone(ticket); }
  // Queues `m` for `node`, after the results gathered for it (Outbox).
  void send(const std::string& node, protocol::Message m) { outbox_.send(node, std::move(m)); }
  // Whether node `entry` offers every need of the interned set `needs`.
  bool can_run(const NodeEntry& entry, std::uint32_t needs) const {
    return needs == 0 || Membership::can_run(entry, names_.needs_list(needs));
  }
  // Tells every node what the cluster offers, when that changed (or
  // `to` only, a node that just joined).
  void send_offers(const std::string& to = "");
  // Turns the queue full at MAX_QUEUE queued and not under nine tenths of
  // it, and tells the nodes when it turns.
  void update_admission();
  const std::string& name_of(std::uint32_t id) const { return names_[id]; }
  // Whether `node` is where the unfinished job `ticket` was submitted: it
  // is told of the result anyway (ResultNotices::recipients), so it need not
  // watch for it.
  bool is_origin(const std::string& ticket, const std::string& node) const;
  // Pushes `report` to its origin and every watcher: moved to the origin
  // when nobody else watches (the usual case), copied otherwise.
  void notify_result(const std::string& ticket, const std::string& origin,
                     protocol::JobReport report);
  void note(std::string event);

  storage::Staged staged_;
  ProxyOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  Names names_;  // node names, owners and needs, interned
  JobBook book_;
  ResultNotices notices_;
  ProxyExpiry expiry_;
  Membership members_;
  NodeTable& nodes_ = members_.nodes();
  Outbox outbox_;
  std::size_t rotation_ = 0;
  ProxyStats stats_;  // counters since start, for stats and estimates
  TimeMs clock_ = 0;  // the latest time a call brought
};

}  // namespace jc::proxy
