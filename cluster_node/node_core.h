// The cluster node's pure core: the jobs its clients submitted (until the
// proxy holds them durably), the jobs the proxy gave it to run, and results.
//
// Like ProxyCore it does no I/O: calls stage LevelDB changes (staged()),
// queue messages for the proxy (take_outbox()) and note what the shell must
// act on (take_events()). The shell commits, then sends. One thread.
//
// Its state is in parts, each the one owner of its records: the origin
// book (origin_book.h: the jobs its clients submitted, o/ r/ and u/), the
// execution book (exec_book.h: the jobs it runs, x/ and d/) and the callbacks it
// owes (callback_book.h). Retention (node_expiry.cpp) removes what expired
// from both books:
//   e/<final ms>/o/<ticket>
//                         "" : the expiry index of o/ (protocol/retention.h); x/
//                         entries only for records of earlier builds
//   m/expiry_index        "1" once records written before the index have entries in it
// NodeCore is the one place that handles every message from the proxy.
#pragma once

#include "cluster_node/callback_book.h"
#include "cluster_node/exec_book.h"
#include "cluster_node/node_records.h"
#include "cluster_node/origin_book.h"
#include <deque>
#include <functional>
#include <optional>
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
#include "storage/staged.h"

namespace jc::node {

struct NodeOptions {
  std::string node_id;
  std::uint32_t slots = 1;
  std::string client_address;
  std::string sandbox;  // the protections run jobs get here, told to the proxy in HELLO
  std::string cpus;     // "pinned" (a CPU per slot) or "shared", likewise
  std::vector<std::string> offers;  // what it runs ("lang:71", "label:gpu", "network"), likewise
  std::string api_address;          // its judge0-compatible API ("host:port"), likewise
  // The unguessable part of each ticket (protocol::random_ticket_part);
  // tests give their own.
  std::function<std::string()> random_part;
  protocol::Retention retention;  // RESULT_TTL
  std::string secret;             // CLUSTER_SECRET: the proof of the HELLO that answers a CHALLENGE
};

// Things the shell reacts to after a call into the core.
struct NodeEvents {
  std::vector<protocol::JobReport> reports;  // new knowledge of tickets (for lookups, waits)
  // Results of this node's own runs that only it has (its jobs run while
  // the proxy was away, never sent there): shown to lookups once committed.
  std::vector<protocol::JobReport> settled_here;
  std::vector<std::string> stop;             // running jobs to stop: they belong elsewhere now
  bool work = false;                         // jobs are waiting for a free slot
};

// What the shell must do about a message from the proxy besides committing
// and sending the outbox: none of it waits for a write.
struct LinkActions {
  std::optional<protocol::Hello> hello;      // the answer to a CHALLENGE: send it now
  std::optional<protocol::Welcome> welcome;  // joined (accepted), or refused: follow the
                                             // leader it names, or back off
  std::vector<std::string> cancel;           // running jobs the proxy cancels: end them CANCELLED
  std::optional<protocol::StatsReply> stats;  // the answer to a `stats` request
  bool idle = false;                          // a HEARTBEAT: nothing to commit or send
};

using protocol::GetAllEntry;

class NodeCore {
 public:
  NodeCore(storage::Store& store, NodeOptions options);
  // Its parts hold references to its stage: it stays where it was made.
  NodeCore(const NodeCore&) = delete;
  NodeCore& operator=(const NodeCore&) = delete;

  // NODE_ID when given, else the id made on first start and kept in the store.
  static std::string stable_node_id(storage::Store& store, const std::string& configured);
  // A random id made once for this data directory and kept in it: what
  // proves that a cgroup was made by this node (runner/cgroup.h).
  static std::string data_identity(storage::Store& store);

  Status recover();
  const std::string& node_id() const { return options_.node_id; }
  // RESULT_TTL: this node's, or the proxy's once it said another.
  const protocol::Retention& retention() const { return options_.retention; }
  void set_client_address(std::string a) { options_.client_address = std::move(a); }
  // Whether some node of the cluster (this one included) offers `need`,
  // as the proxy last said (OFFERS); `now`: one that is up now.
  bool offered(const std::string& need) const;
  // Whether `adding` more jobs would pass MAX_QUEUE, as the proxy last said
  // (its queue is full) or counting what waits here unforwarded.
  bool queue_full(std::size_t adding) const {
    return cluster_queue_full_ || (max_queue_ > 0 && origin_.unforwarded_count() + adding > max_queue_);
  }
  std::uint64_t max_queue() const { return max_queue_; }
  bool available(const std::string& need) const;
  void set_api_address(std::string a) { options_.api_address = std::move(a); }
  void set_sandbox(std::string sandbox, std::string cpus) {
    options_.sandbox = std::move(sandbox);
    options_.cpus = std::move(cpus);
  }

  // Client side. submit() stages the job (the shell replies after the commit).
  std::string submit(protocol::JobSpec spec, TimeMs now);
  // What this node knows of a ticket on its own at `now`: kUnknown when
  // nothing, kExpired when it knows the job expired (RESULT_TTL).
  protocol::JobReport lookup(const std::string& ticket, TimeMs now) const;
  // The spec of a job submitted through this node, while it is kept.
  std::optional<protocol::JobSpec> origin_spec(const std::string& ticket) const;
  // The callbacks this node owes (judge0's callback_url of jobs submitted
  // through it): the shell sends them and reports here how it went.
  CallbackBook& callbacks() { return callbacks_; }
  std::vector<GetAllEntry> getall(TimeMs now) const;
  // Removes what expired (RESULT_TTL): records of jobs submitted or run
  // here, and cached results of others; at most kSweepBatch records a call.
  protocol::SweepOutcome sweep(TimeMs now);
  static constexpr std::size_t kSweepBatch = 20000;

  // Proxy side.
  protocol::Hello hello() const;
  // The one switch for what the proxy sends. `now`: for a job cancelled
  // before it started.
  LinkActions on_message(protocol::Message m, TimeMs now = 0);
  protocol::Info info() const;
  // Offers again the results the proxy has not acknowledged (REQUEST_RESULT_PERIOD).
  void resend_undelivered();
  // A REQUEST_RESULT_PERIOD passed: the records of jobs the proxy gave that
  // waited in memory all of it are staged (ExecBook::set_deferring).
  void age_records() { exec_.age(); }
  // The node stops: every record waiting in memory is staged for its last commit.
  void on_stop() { exec_.set_deferring(false); }
  bool connected() const { return connected_; }
  // `<prefix>-<counter>-<11 random characters>`, as submit() makes them.
  static bool issued_shape(const std::string& ticket) {
    return protocol::parse_ticket(ticket).has_value();
  }
  // A job its client submitted here that the proxy has not acknowledged:
  // nobody else can have run it.
  bool unforwarded(const std::string& ticket) const { return origin_.unforwarded(ticket); }
  // Everything not acknowledged is sent again after the next WELCOME.
  void on_disconnected();
  // The proxy has been away longer than the grace period: this node runs its
  // own clients' queued jobs itself (and tells the proxy when it is back).
  void set_local_mode(bool on);
  // Drain: start no more jobs, hand back to the proxy those not started, and
  // report when everything that ran here is finished and delivered.
  void start_drain();
  bool draining() const { return draining_; }
  bool drained() const;
  void finish_drain();
  bool local_mode() const { return local_mode_; }

  // Executor side: the next job to start (marked running), and its end.
  std::optional<protocol::Assignment> next_job();
  void job_finished(const std::string& ticket, protocol::JobResult result);
  // The proxy cancels a job held here and not started: it ends CANCELLED.
  void cancel_queued(const std::string& ticket, TimeMs now);
  std::size_t running() const { return exec_.running(); }
  std::uint32_t slots() const { return options_.slots; }

  storage::Staged& staged() { return staged_; }
  // What leaves for the proxy after this turn's commit. Given the time (of
  // the steady clock, unlike the wall-clock times of the other calls), a
  // busy node's results may wait to travel together (results_due());
  // without it every one leaves.
  std::vector<protocol::Message> take_outbox(std::optional<TimeMs> steady_now = std::nullopt);
  // Results of a busy node travel in batches: while fewer than kResultBatch
  // wait, every slot is running a job, and the first has waited less than
  // kResultHoldMs. One RESULT per finished job cost each side a frame, a
  // turn and a commit, and the proxy a dispatch round for one free slot. A
  // node with a slot it cannot fill sends at once: the proxy's next job
  // waits for that result, and an idle cluster's latency does not change.
  static constexpr std::size_t kResultBatch = 64;
  static constexpr TimeMs kResultHoldMs = 2;
  // When the results held back must leave (the shell arms a timer), if any
  // are: steady-clock milliseconds, as take_outbox() was given.
  std::optional<TimeMs> results_due() const;
  // What may leave before this turn's writes are durable: the jobs just
  // submitted (SUBMIT), so that they run while this node's fsync does. No
  // client has their tickets before the commit; should the node die first,
  // the proxy runs jobs nobody asks for, and their results, for tickets
  // this node does not know, are acknowledged and dropped (on_reports).
  // Their counters are below the committed m/counter, so they are never
  // issued again. The shell sends these, commits, calls committed(), then
  // sends take_outbox().
  std::vector<protocol::Message> take_early();
  // Whether submissions wait in the outbox (this turn's, or older ones
  // queued again): a question about a ticket must not overtake its SUBMIT.
  bool submissions_waiting() const;
  static bool holds_submit(const std::vector<protocol::Message>& messages);
  // The ACK(results) that a synced commit allowed (committed()), to send
  // after what that commit held back; take_outbox() includes it too.
  std::vector<protocol::Message> take_synced_acks();
  // A write of what is staged now begins (made on a thread of its own
  // while this core goes on): committed() or commit_failed() ends it. A
  // commit made in place may call committed() alone.
  void begin_commit();
  // `synced`: the commit was a synced write (Staged::commit_syncs), so the
  // acknowledgements that wait for one leave now.
  void committed(bool synced);
  // The write begun failed: what it held is staged again (Staged::unlift),
  // and so are the acknowledgements that waited for it.
  void commit_failed();
  // Results from the proxy are acknowledged only once a synced commit holds
  // them. Their own turn's commit is not synced for them: the clients that
  // wait are answered after it. The ACK leaves after the next synced commit:
  // a submission's, or one the shell makes for it alone
  // (Staged::require_barrier) when none came within kAckSyncDelayMs. A
  // result is never lost meanwhile: the proxy holds it durably and offers
  // it again until it is acknowledged, and a read of a ticket whose result
  // is not here asks the proxy.
  bool wants_sync() const { return !acks_written_.empty(); }
  // A synced commit of the node's own blocks its loop for an fsync: one
  // that came at once after each answer would hold up the next submission
  // by as much, so it waits for one to ride, this long at most (under load
  // one comes within a turn; far below REQUEST_RESULT_PERIOD, after which
  // the proxy offers an unacknowledged result again).
  static constexpr TimeMs kAckSyncDelayMs = 10;
  NodeEvents take_events() { return std::exchange(events_, {}); }

 private:
  void on_welcome(const protocol::Welcome& w);
  void on_ack(const protocol::Ack& a);
  void on_offers(const protocol::Offers& o);
  // These take the message's parts by reference to move from them.
  void on_jobs(protocol::Job& j);
  void on_reports(std::vector<protocol::JobReport>& reports);
  void on_requests(const std::vector<std::string>& tickets);
  void forward_all();
  // Runs a job of this node's clients here, no proxy being there: its spec
  // read back from the origin record, or the one just accepted.
  void claim_local(const std::string& ticket);
  void claim_local(const std::string& ticket, protocol::JobSpec spec);
  void drop_exec(const std::string& ticket);
  Status index_final_records();
  void send(protocol::Message m) {
    if (connected_) outbox_.push_back(std::move(m));
  }

  storage::Staged staged_;
  NodeOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  OriginBook origin_{staged_, log_};
  ExecBook exec_{staged_, log_};
  CallbackBook callbacks_{staged_};
  bool connected_ = false;
  bool local_mode_ = false;
  bool draining_ = false;
  std::set<std::string> cluster_offered_, cluster_available_;  // the proxy's OFFERS
  std::uint64_t max_queue_ = 0;      // likewise (0: no limit)
  bool cluster_queue_full_ = false;  // likewise
  // Final results of other nodes' tickets, fetched for clients (bounded).
  std::unordered_map<std::string, protocol::JobReport> remote_;
  std::deque<std::string> remote_order_;
  std::vector<protocol::Message> outbox_;
  protocol::Submit pending_submit_;
  // Jobs in the last SUBMIT this node made: room for as many (up to 1,024)
  // is made at the next turn's first job, so that a spec (648 bytes) is not
  // moved again each time the vector grows.
  std::size_t last_submit_size_ = 0;
  // The turn's new submissions as one SUBMIT (marked `first`), emptied.
  protocol::Submit take_new_submissions();
  protocol::Result pending_results_;
  std::optional<TimeMs> results_held_since_;  // set while take_outbox() holds them
  bool hold_results(TimeMs steady_now);
  // Results to acknowledge once synced: stored in this turn's stage, and
  // written by an unsynced commit.
  std::vector<std::string> acks_staged_, acks_written_;
  // The write begun (begin_commit) and not ended: the m/counter it holds,
  // and the results it stores.
  struct Flight {
    std::uint64_t reserved = 0;
    std::vector<std::string> acks;
  };
  std::optional<Flight> flight_;
  std::optional<protocol::Ack> synced_acks_;  // take_synced_acks()
  bool acks_waiting() const {
    return !acks_staged_.empty() || !acks_written_.empty() || (flight_ && !flight_->acks.empty());
  }
  NodeEvents events_;
};

}  // namespace jc::node
