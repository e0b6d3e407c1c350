// The cluster node's pure core: the jobs its clients submitted (until the
// proxy holds them durably), the jobs the proxy gave it to run, and results.
//
// Like ProxyCore it does no I/O: calls stage LevelDB changes (staged()),
// queue messages for the proxy (take_outbox()) and note what the shell must
// act on (take_events()). The shell commits, then sends. One thread.
//
// Storage layout:
//   m/prefix, m/counter   ticket prefix (random, made once) and next number
//   o/<ticket>            OriginRecord (node_records.h): a job a client submitted here
//   u/<ticket>            "" : submitted here, not yet acknowledged by the proxy;
//                         "unsent" : and never sent to it (accepted while it was away)
//   x/<ticket>            ExecRecord: a job the proxy gave this node, until the
//                         proxy has its result
//   e/<final ms>/o/<ticket>
//                         "" : the expiry index of o/ (protocol/retention.h); x/
//                         entries only for records of earlier builds
//   m/expired             the highest counter of this node's tickets removed by expiry
//   m/expiry_index        "1" once records written before the index have entries in it
#pragma once

#include "cluster_node/callback_book.h"
#include "cluster_node/node_records.h"
#include <deque>
#include <functional>
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
};

// Things the shell reacts to after a call into the core.
struct NodeEvents {
  std::vector<protocol::JobReport> reports;  // new knowledge of tickets (for lookups, waits)
  std::vector<std::string> stop;             // running jobs to stop: they belong elsewhere now
  bool work = false;                         // jobs are waiting for a free slot
};

using protocol::GetAllEntry;

class NodeCore {
 public:
  NodeCore(storage::Store& store, NodeOptions options);

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
    return cluster_queue_full_ || (max_queue_ > 0 && unforwarded_.size() + adding > max_queue_);
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
  void on_message(protocol::Message m);
  protocol::Info info() const;
  // Offers again the results the proxy has not acknowledged (REQUEST_RESULT_PERIOD).
  void resend_undelivered();
  bool connected() const { return connected_; }
  // `<prefix>-<counter>-<11 random characters>`, as submit() makes them.
  static bool issued_shape(const std::string& ticket);
  // A job its client submitted here that the proxy has not acknowledged:
  // nobody else can have run it.
  bool unforwarded(const std::string& ticket) const { return unforwarded_.count(ticket) > 0; }
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
  std::size_t running() const { return running_.size(); }
  std::uint32_t slots() const { return options_.slots; }

  storage::Staged& staged() { return staged_; }
  std::vector<protocol::Message> take_outbox();
  NodeEvents take_events() { return std::exchange(events_, {}); }

 private:
  void on_welcome(const protocol::Welcome& w);
  void on_ack(const protocol::Ack& a);
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
  // Moves a job's state through protocol::next_state(); a refused
  // transition is logged as an error and returns false.
  bool advance(const std::string& ticket, protocol::JobState& state, protocol::JobEvent event,
               protocol::JobState outcome = protocol::JobState::kDone);
  protocol::JobReport exec_report(const std::string& ticket, const ExecRecord& rec) const;
  void store_origin(const std::string& ticket, const OriginRecord& rec);
  void store_exec(const std::string& ticket, const ExecRecord& rec);
  Status index_final_records();
  template <class T>
  bool load(const std::string& key, T& value) const;
  void send(protocol::Message m) {
    if (connected_) outbox_.push_back(std::move(m));
  }

  storage::Staged staged_;
  NodeOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  std::string prefix_;
  std::uint64_t counter_ = 1;
  std::uint64_t expired_upto_ = 0;  // m/expired
  bool connected_ = false;
  bool local_mode_ = false;
  bool draining_ = false;
  // Run here while the proxy was away, and not yet acknowledged by it.
  std::unordered_set<std::string> local_claimed_;
  // Of the unforwarded jobs, those never sent to the proxy: nobody else can
  // run them, so their local run's result shows at once (u/ says "unsent").
  std::unordered_set<std::string> unsent_;
  // Submitted here and not yet acknowledged by the proxy, in submission order.
  std::deque<std::string> unforwarded_order_;
  std::unordered_set<std::string> unforwarded_;  // tickets the proxy has not acknowledged
  // Given to this node by the proxy.
  std::deque<std::string> exec_queue_;
  // A job given to this node (or taken from its own clients while the
  // proxy was away), queued or running: all its x/ record holds but a
  // result, so that its start and its finish write the record without
  // reading it back.
  struct ExecJob {
    protocol::Assignment assignment;
    protocol::JobState state = protocol::JobState::kQueued;
    bool local = false;  // ExecRecord::local
  };
  // Its x/ record (without a result); a copy of the job when it stays held.
  static ExecRecord exec_record(ExecJob job);
  std::unordered_map<std::string, ExecJob> exec_jobs_;
  std::unordered_set<std::string> running_;
  CallbackBook callbacks_{staged_};
  std::set<std::string> cluster_offered_, cluster_available_;  // the proxy's OFFERS
  std::uint64_t max_queue_ = 0;      // likewise (0: no limit)
  bool cluster_queue_full_ = false;  // likewise
  std::set<std::string> undelivered_;  // finished, result not yet acknowledged
  // Rounds of resend_undelivered() before a result sent on this connection
  // is offered again: TCP delivers it, and the proxy acknowledges what it
  // reads, so offering megabytes again every REQUEST_RESULT_PERIOD only
  // queues copies ahead of the node's INFO (a slow proxy then took the node
  // for silent). Cleared on every new connection, which offers all again.
  std::unordered_map<std::string, int> resend_wait_;
  static constexpr int kResendRounds = 30;
  // Final results of other nodes' tickets, fetched for clients (bounded).
  std::unordered_map<std::string, protocol::JobReport> remote_;
  std::deque<std::string> remote_order_;
  std::vector<protocol::Message> outbox_;
  protocol::Submit pending_submit_;
  protocol::Result pending_results_;
  NodeEvents events_;
  std::uint64_t finished_total_ = 0;
};

}  // namespace jc::node
