// The messages between cluster nodes and the reverse proxy.
//
// The four of the original design keep their roles:
//   INFO            node -> proxy   load report and heartbeat
//   REQUEST_OF_RES  both ways       "send me what you know of these tickets"
//   RESULT          both ways       reports (final ones carry the result)
//   RES_REQ         both ways       RESULT and REQUEST_OF_RES in one frame
// and the rest make the cluster durable and balanced:
//   CHALLENGE         proxy -> node, first: a nonce for the membership proof
//   LEAVE             node -> proxy: draining (jobs handed back), then gone
//   HELLO / WELCOME   handshake: stable node id, protocol version, and the
//                     reconciliation of the jobs the node still holds
//   SUBMIT / ACK      a node forwards client jobs; the proxy acknowledges them
//                     once they are on disk (ACK also confirms results)
//   JOB               proxy -> node: jobs to run (with their attempt number)
//   STATS_REQUEST / STATS_REPLY   the cluster picture for `stats`
//   CANCEL            a client's cancel, and the proxy's order to kill a job
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "protocol/archive.h"
#include "protocol/fields.h"
#include "protocol/job.h"

namespace jc::protocol {

// 2: payloads through protocol/archive.h; 3: run jobs' --disk, the sandbox's
// protections in results, HELLO and node stats; 4: job owners (CLIENT_TOKENS);
// 5: JobResult::final_ms and the EXPIRED report (RESULT_TTL), SUBMIT's
// local_finished, WELCOME's result_ttl_ms; 6: replicated proxies (WELCOME's
// leader, proxies and heartbeat_ms, PEER_HELLO, PEER_DATA, HEARTBEAT, the
// proxies in stats); 7: HELLO's and node stats' cpus (a CPU per slot or
// shared) and offers (what a node runs: "lang:71", "label:gpu", "network"),
// OFFERS; 8: HELLO's and node stats' api_address, cluster stats' held,
// OFFERS' max_queue and queue_full (MAX_QUEUE); 9: a finished sleep's result
// carries its milliseconds, not its sentence (JobResult::sleep_ms).
constexpr std::uint8_t kProtocolVersion = 9;

struct Hello {
  std::uint32_t version = kProtocolVersion;
  std::string node_id;
  std::uint32_t slots = 0;
  std::string client_address;         // where clients reach this node, for `stats`
  std::vector<std::string> held;      // jobs given to it and not finished
  std::vector<std::string> finished;  // jobs finished whose results are not yet acknowledged
  std::string auth;                   // proof of CLUSTER_SECRET (protocol/auth.h), or empty
  std::string sandbox;                // protections its run jobs get ("full", or the list)
  std::string cpus;                   // "pinned": each slot on a CPU of its own; "shared"
  // What it runs: "lang:<judge0 id>", "label:<NODE_LABELS word>", "network".
  std::vector<std::string> offers;
  std::string api_address;  // where its judge0-compatible API is ("host:port"), "" without one

  template <class A>
  void serialize(A& ar, unsigned) {
    fields(ar, version, node_id, slots, client_address, held, finished, auth, sandbox, cpus,
           offers, api_address);
  }
};

struct Welcome {
  bool accepted = false;
  std::string reason;             // why a node was refused
  std::string proxy_id;           // changes when the proxy restarts
  std::vector<std::string> drop;  // held jobs that now belong elsewhere: stop and forget them
  // The proxy's RESULT_TTL: a node whose own differs follows it, so that
  // every process says "expired" from the same moment.
  std::int64_t result_ttl_ms = 0;
  // Replicated proxies: a proxy that does not lead refuses a node and names
  // the leader ("" while an election runs), so the node goes there at once.
  std::string leader;
  std::vector<std::string> proxies;  // PROXY_PEERS
  // The leader sends HEARTBEAT this often (0: never, a single proxy); a node
  // that hears nothing for a few of them takes the link for cut.
  std::int64_t heartbeat_ms = 0;

  template <class A>
  void serialize(A& ar, unsigned) {
    fields(ar, accepted, reason, proxy_id, drop, result_ttl_ms, leader, proxies, heartbeat_ms);
  }
};

struct Submit {
  std::vector<JobSpec> jobs;
  // Of these, the ones the node already runs (or ran) itself because the
  // proxy was away longer than its grace period: held by it, not queued.
  std::vector<std::string> local;
  // None of these jobs was ever sent before (they were accepted while this
  // connection was up): the proxy cannot know them and skips looking for
  // them among finished jobs, a LevelDB read per job that grows with the
  // store. Resent jobs (after a reconnect) leave it false.
  bool first = false;
  // Of `local`, the ones whose local run has finished and whose result the
  // node's clients have seen (the proxy had never been sent them): the
  // proxy takes no other run of them (their RESULT follows).
  std::vector<std::string> local_finished;
  // Filled when loaded, never written: each job's spec as the record the
  // proxy stores for it (s/<ticket>), made of the bytes it came in. The
  // frame and the record are of one archive version, so the proxy does not
  // encode again what it has just decoded.
  std::vector<std::string> spec_records;
  // Written, never loaded: where given (the same index as the job, not
  // empty), a job's bytes as to_bytes(jobs[i]) makes them, written in place
  // of encoding it again. A node encodes a spec it accepts once, for its own
  // record and for this frame. Past the end of `jobs`, the bytes are the job
  // (not empty): a node's new submissions travel as bytes alone, without a
  // decoded spec held and moved for each (with no `local` among them).
  std::vector<std::string> spec_bytes;
  std::size_t size() const { return std::max(jobs.size(), spec_bytes.size()); }

  template <class A>
  void serialize(A& ar, unsigned) {
    if constexpr (A::is_loading::value) {
      load_jobs(ar);
    } else {
      save_jobs(ar);
    }
    fields(ar, local, first, local_finished);
  }

 private:
  // As a vector field is saved (protocol/fields.h), with the bytes given.
  template <class A>
  void save_jobs(A& ar) {
    std::uint64_t n = size();
    ar& n;
    for (std::size_t i = 0; i < n; ++i) {
      if (i < spec_bytes.size() && !spec_bytes[i].empty()) {
        ar.save_binary(spec_bytes[i].data(), spec_bytes[i].size());
      } else {
        detail::field(ar, jobs[i]);
      }
    }
  }

  // As a vector field is loaded (protocol/fields.h), keeping each spec's bytes.
  template <class A>
  void load_jobs(A& ar) {
    std::uint64_t n = 0;
    ar& n;
    ar.check_length(n);
    ar.charge(n * (sizeof(JobSpec) + sizeof(std::string)));
    jobs.clear();
    spec_records.clear();
    jobs.reserve(n);  // the charge above bounds it
    spec_records.reserve(n);
    for (std::uint64_t i = 0; i < n; ++i) {
      const std::size_t start = ar.position();
      detail::field(ar, jobs.emplace_back());  // decoded in place, not moved in
      std::string_view bytes = ar.consumed_since(start);
      ar.charge(bytes.size() + kRecordHeaderBytes);
      std::string& record = spec_records.emplace_back();
      record.reserve(bytes.size() + kRecordHeaderBytes);
      append_record_header(record, ar.version());
      record.append(bytes);
    }
  }
};

enum class AckKind : std::uint8_t { kSubmitted = 0, kResults = 1 };

struct Ack {
  AckKind kind = AckKind::kSubmitted;
  std::vector<std::string> tickets;     // durable on the acknowledging side
  std::vector<std::string> superseded;  // results refused: another run's result won

  template <class A>
  void serialize(A& ar, unsigned) {
    fields(ar, kind, tickets, superseded);
  }
};

struct Assignment {
  JobSpec spec;
  std::uint32_t attempt = 1;
  // The spec's bytes as to_bytes(spec) makes them. Written in place of
  // encoding the spec again when not empty (the proxy sends the bytes it
  // stored at the submit); filled when loaded (the running node's x/ record
  // is made of them). A spec is encoded once, by its origin node.
  std::string spec_bytes;

  template <class A>
  void serialize(A& ar, unsigned) {
    if constexpr (A::is_loading::value) {
      const std::size_t start = ar.position();
      fields(ar, spec);
      std::string_view bytes = ar.consumed_since(start);
      ar.charge(bytes.size());
      spec_bytes.assign(bytes.data(), bytes.size());
    } else if (!spec_bytes.empty()) {
      ar.save_binary(spec_bytes.data(), spec_bytes.size());
    } else {
      fields(ar, spec);
    }
    fields(ar, attempt);
  }
};

struct Job {
  std::vector<Assignment> jobs;
  template <class A>
  void serialize(A& ar, unsigned) {
    fields(ar, jobs);
  }
};

struct Info {
  std::uint32_t queued = 0;  // held, not started
  std::uint32_t running = 0;
  std::uint32_t free_slots = 0;
  std::uint64_t finished_total = 0;
  std::uint32_t pending_forward = 0;  // client jobs not yet acknowledged by the proxy

  template <class A>
  void serialize(A& ar, unsigned) {
    fields(ar, queued, running, free_slots, finished_total, pending_forward);
  }
};

struct RequestOfRes {
  std::vector<std::string> tickets;
  template <class A>
  void serialize(A& ar, unsigned) {
    fields(ar, tickets);
  }
};

struct Result {
  std::vector<JobReport> reports;
  template <class A>
  void serialize(A& ar, unsigned) {
    fields(ar, reports);
  }
};

struct ResReq {
  std::vector<JobReport> reports;
  std::vector<std::string> requests;
  template <class A>
  void serialize(A& ar, unsigned) {
    fields(ar, reports, requests);
  }
};

struct NodeStats {
  std::string node_id;
  std::string address;
  bool connected = false;
  std::uint32_t slots = 0;
  std::uint32_t assigned = 0;  // held by the node per the proxy's books
  std::uint32_t running = 0;   // from its last INFO
  std::uint32_t queued = 0;    // from its last INFO
  std::uint64_t finished = 0;  // results accepted from it since the proxy started
  std::int64_t last_heard_ms = 0;
  std::string state;  // up, suspect (quiet past half NODE_TIMEOUT), draining, dead, left
  std::string sandbox;  // protections its run jobs get, from its HELLO
  std::string cpus;     // "pinned" or "shared", from its HELLO
  std::vector<std::string> offers;  // from its HELLO
  std::string api_address;          // likewise

  template <class A>
  void serialize(A& ar, unsigned) {
    fields(ar, node_id, address, connected, slots, assigned, running, queued, finished,
           last_heard_ms, state, sandbox, cpus, offers, api_address);
  }
};

// One replicated proxy as the leader sees it (stats, /api/state).
struct ProxyStatus {
  std::string address;  // its PROXY_PEERS entry
  std::string role;     // leader, follower (a peer as the leader sees it), or unreachable
  std::uint64_t match = 0;  // the last log index it holds, as far as the leader knows
  std::uint64_t lag = 0;    // entries behind the leader's log

  template <class A>
  void serialize(A& ar, unsigned) {
    fields(ar, address, role, match, lag);
  }
};

struct ClusterStats {
  std::vector<NodeStats> nodes;
  std::uint64_t queue_length = 0;
  std::uint64_t running = 0;  // runs now (the nodes' INFO)
  std::uint64_t held = 0;     // given to nodes and not finished: running or queued there
  std::uint64_t submitted_total = 0;
  std::uint64_t finished_total = 0;
  std::uint64_t redispatched_total = 0;
  std::vector<std::string> recent_events;  // newest last: joins, losses, refusals, re-dispatches

  template <class A>
  void serialize(A& ar, unsigned) {
    fields(ar, nodes, queue_length, running, submitted_total, finished_total, redispatched_total,
           recent_events, proxies, leader, term, held);
  }
  // Replicated proxies (empty, "" and 0 with one proxy).
  std::vector<ProxyStatus> proxies;
  std::string leader;
  std::uint64_t term = 0;
};

struct StatsRequest {
  std::uint64_t id = 0;
  template <class A>
  void serialize(A& ar, unsigned) {
    fields(ar, id);
  }
};

struct StatsReply {
  std::uint64_t id = 0;
  ClusterStats stats;
  template <class A>
  void serialize(A& ar, unsigned) {
    fields(ar, id, stats);
  }
};

// Node -> proxy: a client cancels these. Proxy -> node: kill these (or drop
// them from your queue) and report them CANCELLED.
struct Cancel {
  std::vector<std::string> tickets;
  // Node -> proxy: the client name asking; a job of another owner is not
  // cancelled and answered as unknown. "" = anyone's (no CLIENT_TOKENS, or
  // an admin).
  std::string requester;
  template <class A>
  void serialize(A& ar, unsigned) {
    fields(ar, tickets, requester);
  }
};

// Proxy -> node, first on every connection: the nonce HELLO.auth answers.
struct Challenge {
  std::string nonce;
  template <class A>
  void serialize(A& ar, unsigned) {
    fields(ar, nonce);
  }
};

// Node -> proxy while it drains: dispatch nothing more to it, and take back
// these jobs it has not started. `done`: it finished and delivered the rest
// and now leaves; the proxy must not count it as dead.
struct Leave {
  std::vector<std::string> handed_back;
  bool done = false;
  template <class A>
  void serialize(A& ar, unsigned) {
    fields(ar, handed_back, done);
  }
};

// Proxy -> proxy: the first frame of a link between replicated proxies,
// instead of HELLO: which entry of PROXY_PEERS the dialer is, and its proof
// of CLUSTER_SECRET (join_proof over "proxy:" + address).
struct PeerHello {
  std::uint32_t version = kProtocolVersion;
  std::uint64_t id = 0;  // 1-based position in PROXY_PEERS
  std::string address;
  std::string auth;
  template <class A>
  void serialize(A& ar, unsigned) {
    fields(ar, version, id, address, auth);
  }
};

// Proxy <-> proxy after PEER_HELLO: bytes of the Raft library's own stream.
struct PeerData {
  std::string bytes;
  template <class A>
  void serialize(A& ar, unsigned) {
    fields(ar, bytes);
  }
};

// Leader -> node every Welcome::heartbeat_ms: it still leads. A node cut
// from it by the network learns so from the silence.
struct Heartbeat {
  std::uint64_t term = 0;
  template <class A>
  void serialize(A& ar, unsigned) {
    fields(ar, term);
  }
};

// Proxy -> node, on joining and whenever it changes: what the nodes of the
// cluster offer (HELLO's offers). `offered`: every node's the proxy knows,
// up or not (a job needing something outside it can never run: refused at
// submission); `available`: the nodes' up now (GET /languages).
//
// It also says whether the cluster takes new jobs: `queue_full` while the
// proxy's queue holds MAX_QUEUE jobs (until it is back under nine tenths of
// it), and `max_queue` (0: no limit) bounds what a node holds unforwarded.
struct Offers {
  std::vector<std::string> offered;
  std::vector<std::string> available;
  std::uint64_t max_queue = 0;
  bool queue_full = false;
  template <class A>
  void serialize(A& ar, unsigned) {
    fields(ar, offered, available, max_queue, queue_full);
  }
};

// The type byte of a frame is the index in this variant: append only.
using Message = std::variant<Hello, Welcome, Submit, Ack, Job, Info, RequestOfRes, Result, ResReq,
                             StatsRequest, StatsReply, Cancel, Challenge, Leave, PeerHello,
                             PeerData, Heartbeat, Offers>;

std::string_view message_name(const Message& m);

}  // namespace jc::protocol
