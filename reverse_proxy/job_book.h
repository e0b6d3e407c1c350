// The proxy's job book: every job's records, and where each job not
// finished stands. The one owner of these keys (values are archives,
// protocol/codec.h):
//   s/<ticket>   JobSpec: the job as submitted, written once (version 7 on)
//   q/<seq>      the jobs of one commit queued at their submit, one line
//                each ("<ticket> <seq>"), <seq> the first line's in 16 hex
//                digits; deleted once none of them is left
//   h/<ticket>   the jobs of one commit given to a node for the first time
//                since their submit, one line each ("<ticket> <node>
//                <seq>"), <ticket> the first line's; deleted likewise
//   a/<ticket>   JobRecord of a job not finished whose record changed
//                since (queued again, dispatched again): its state and the
//                spec's head. Until then its q/ or h/ line and its s/
//                record are all its records: a job that runs once where it
//                is first sent writes no record of its own but s/ and f/
//   f/<ticket>   JobRecord of a finished job, with its result
// At start an a/ record wins over an h/ line, which wins over a q/ line
// (each is written only once the one before no longer stands), and an f/
// record over all three.
// In memory it keeps a small entry per job not finished (a million may be
// queued), the queue by priority and needs, the jobs waiting out a --delay,
// and the spec's bytes of jobs not yet dispatched, so that a dispatch reads
// nothing from LevelDB. Moves between states are ProxyCore's to decide
// (through protocol::advance); the book applies them to records and memory.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/hash_maps.h"
#include "common/log.h"
#include "common/owned_bytes.h"
#include "common/status.h"
#include "common/time.h"
#include "protocol/job.h"
#include "reverse_proxy/job_queue.h"
#include "storage/staged.h"
#include "storage/ticket_batches.h"

namespace jc::proxy {

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

// Names kept as small numbers (node names, owners, sets of needs): 0 is "".
class Names {
 public:
  std::uint32_t intern(const std::string& name);
  const std::string& operator[](std::uint32_t id) const { return names_[id]; }
  // A job's needs as one id (their sorted, comma-joined list after "needs:").
  std::uint32_t needs_id(const std::vector<std::string>& needs);
  // The list of an id from needs_id(), without its "needs:".
  std::string_view needs_list(std::uint32_t id) const;

 private:
  std::vector<std::string> names_{""};
  std::unordered_map<std::string, std::uint32_t> ids_{{"", 0}};
};

class JobBook {
 public:
  // What memory holds of a job not finished; the rest is in LevelDB. A
  // burst queues a hundred thousand at once, so it is packed: 64 bytes,
  // with its ticket (InlineKey) 96, one block of jemalloc's 96-byte class.
  struct Active {
    protocol::JobState state = protocol::JobState::kQueued;
    // While it has no a/ record, the batch record whose line stands for it
    // (line_batch, a TicketBatches id; 0: none): a q/ line from its submit
    // until its first dispatch, then an h/ line until anything else changes.
    enum class Line : std::uint8_t { kNone, kQueued, kHeld };
    Line line = Line::kNone;
    bool pinned = false;  // JobRecord::pinned
    // What `bytes` holds (see spec() and record()).
    enum class Kept : std::uint8_t { kNothing, kSpec, kRecord };
    Kept kept = Kept::kNothing;
    std::uint32_t node = 0;  // interned name of the node holding it; 0 = none
    std::uint32_t attempts = 0;
    std::uint32_t owner = 0;   // interned client name (JobSpec::owner); 0 = none
    std::uint32_t origin = 0;  // interned node it came in by (JobSpec::origin)
    std::uint32_t needs = 0;   // interned JobSpec::needs (Names::needs_id); 0 = nothing
    std::int32_t priority = 0;  // its place in the queue while queued: key()
    std::uint64_t seq = 0;
    TimeMs not_before = 0;  // JobSpec::not_before_ms (--delay)
    std::uint64_t line_batch = 0;
    // Its s/ record's bytes from its submit until its first dispatch,
    // within kSpecCacheBytes: then dispatch reads nothing from LevelDB (a
    // burst's queue is past the memtable by the time it is dispatched).
    // Or, held through an h/ line, its record as an a/ record would hold
    // it (the spec's head), so that its result, a requeue or a read decode
    // neither its s/ record nor the files in it. Never both at once: the
    // spec goes at the dispatch that makes the h/ line.
    OwnedBytes bytes;

    QueueKey key() const { return QueueKey{priority, seq}; }
    void set_key(QueueKey k) {
      priority = k.priority;
      seq = k.seq;
    }
    const OwnedBytes* spec() const { return kept == Kept::kSpec ? &bytes : nullptr; }
    const OwnedBytes* record() const { return kept == Kept::kRecord ? &bytes : nullptr; }
    // Only JobBook calls these, which counts the specs' bytes it keeps: a
    // spec is forgotten through JobBook::drop_cached_spec() before
    // anything else is kept in its place.
    void keep(Kept what, std::string_view b) {
      bytes = OwnedBytes(b);
      kept = what;
    }
    void forget(Kept what) {
      if (kept != what) return;
      bytes.reset();
      kept = Kept::kNothing;
    }
  };
  static_assert(sizeof(Active) == 64);
  // Node-based: delayed_ and the queue point at its keys.
  using Map = TicketNodeMap<Active>;
  using iterator = Map::iterator;
  static constexpr std::size_t kSpecCacheBytes = 64 << 20;

  static constexpr std::string_view kActive = "a/", kFinished = "f/", kSpec = "s/", kQueued = "q/",
                                    kHeld = "h/";
  static std::string active_key(std::string_view t) { return storage::joined_key(kActive, t); }
  static std::string finished_key(std::string_view t) {
    return storage::joined_key(kFinished, t);
  }
  static std::string spec_key(std::string_view t) { return storage::joined_key(kSpec, t); }
  static std::string queued_key(std::uint64_t first_seq);

  JobBook(storage::Staged& staged, Names& names, std::shared_ptr<spdlog::logger> log);

  // Reads every a/ record, then the h/ and q/ lines of jobs without one:
  // queued jobs enter the queue, and held(node, ticket) is called for each
  // job a node holds. Unreadable records are logged and counted in
  // `corrupt`.
  Status recover(TimeMs now,
                 const std::function<void(const std::string&, const std::string&)>& held,
                 bool& corrupt);

  iterator find(std::string_view t) { return active_.find(t); }
  Map::const_iterator find(std::string_view t) const { return active_.find(t); }
  Map::const_iterator begin() const { return active_.begin(); }
  iterator end() { return active_.end(); }
  Map::const_iterator end() const { return active_.end(); }
  bool has_finished(std::string_view t) const;

  // A job just submitted: its entry, or {_, false} when the ticket is known
  // (a node re-sends what it had not seen acknowledged: the first copy stays).
  std::pair<iterator, bool> add(std::string_view ticket) { return active_.try_emplace(ticket); }
  void erase_new(iterator it) { active_.erase(it); }
  // What the entry keeps of its spec: its place in the queue (with its
  // sequence number `seq`), owner, origin, --delay and needs.
  void describe(Active& job, const protocol::JobSpec& spec, std::uint64_t seq);
  // The spec's one write; `keep`: also held in memory until dispatch, when
  // the cache has room.
  void write_spec(std::string_view ticket, std::string bytes, Active& job, bool keep);
  std::uint64_t next_seq() { return next_seq_++; }

  // Records. load_* read a/ or f/ with the spec's head only; load_spec adds
  // the whole spec; load_queued reads a queued job to dispatch it, from
  // memory when it can.
  // A job never dispatched has no a/ record: load_active makes its record
  // from memory and its s/ record.
  bool load_active(std::string_view t, JobRecord& rec) const;
  bool load_finished(std::string_view t, JobRecord& rec) const {
    return load(storage::ReadKey(kFinished, t), rec);
  }
  bool load_spec(std::string_view ticket, JobRecord& rec,
                 std::string* spec_bytes = nullptr) const;
  // `spec_bytes`: the spec's bytes as stored (s/ without its header), to be
  // sent as they are; empty when its record is of an earlier version.
  bool load_queued(iterator it, JobRecord& rec, std::string& spec_bytes);
  // A job just submitted, queued: into this commit's q/ batch (its
  // priority and seq set, Active::set_key), instead of an a/ record.
  void note_queued(iterator it);
  // A job given to rec.node: on its first dispatch since its submit, a line
  // "<ticket> <node> <seq>" in this commit's h/ batch instead of an a/
  // record (its attempt is the first, the node its only one tried), and
  // memory keeps the record's head (Active::record()) for load_active();
  // otherwise store_active(). The caller sets the entry's state, node and
  // attempts.
  void store_dispatched(iterator it, JobRecord& rec);
  // Writes a/ (and s/, for a record read in a version before 7).
  void store_active(iterator it, JobRecord& rec);
  // The job is final: a/ goes, f/ holds it with its result, memory forgets it.
  void store_finished(std::string_view ticket, const JobRecord& rec);
  // Expiry removes a finished job's records.
  void erase_finished(std::string_view ticket);
  // Every f/ record, for the expiry index of records written before it.
  Status scan_finished(const std::function<void(const std::string&, const JobRecord*)>& each) const;

  // The queue. enqueue: into it, or among the delayed ones while its
  // --delay runs; promote_due() moves those whose time has come.
  void enqueue(iterator it, TimeMs now);
  void put_back(iterator it) { queue_.push(it->first, it->second.key(), it->second.needs); }
  void promote_due(TimeMs now);
  // A job taken out of the queue, or out of the delayed ones (by its record).
  void unqueue(iterator it) { queue_.erase(it->second.key(), it->second.needs); }
  void unqueue(const JobRecord& rec);
  template <class CanRun>
  const InlineKey* pop_for(CanRun&& can_run) {
    return queue_.pop_for(std::forward<CanRun>(can_run));
  }
  std::optional<TimeMs> next_delayed() const;
  std::size_t ready() const { return queue_.size(); }
  // Queued jobs, delayed ones included.
  std::uint64_t queued() const { return queue_.size() + delayed_.size(); }
  std::int64_t position(const Active& job) const { return queue_.position(job.key(), job.needs); }
  void drop_cached_spec(Active& job);
  // The specs' bytes kept for their dispatch, all together.
  std::size_t cached_spec_bytes() const { return cached_spec_bytes_; }

 private:
  bool load(std::string_view key, JobRecord& rec) const;
  // The record of a job never dispatched: its spec from `spec_record` (its
  // s/ record's bytes), the rest from memory.
  static bool fresh_record(const Active& job, std::string_view spec_record, JobRecord& rec);
  // The job has an a/ record (or is gone): it leaves its q/ or h/ batch.
  void leave_line(Active& job) {
    if (job.line == Active::Line::kQueued) queued_.release(job.line_batch);
    if (job.line == Active::Line::kHeld) held_.release(job.line_batch);
    job.line = Active::Line::kNone;
    job.line_batch = 0;
    job.forget(Active::Kept::kRecord);
  }
  // Reads the q/ or h/ records (`prefix`, into `batches`): each line of a
  // job with no a/ record (nor an earlier line), neither finished nor
  // expired, enters memory standing for that job; `enter` completes the
  // entry with its record so far (spec and sequence) and the line's node.
  using EnterLine = std::function<void(iterator, JobRecord&, const std::string& node)>;
  Status recover_lines(std::string_view prefix, storage::TicketBatches& batches, bool& corrupt,
                       const EnterLine& enter);

  storage::Staged& staged_;
  Names& names_;
  std::shared_ptr<spdlog::logger> log_;
  Map active_;
  NeedsQueue queue_;
  // Queued jobs whose --delay runs, by (not before, sequence).
  std::map<std::pair<TimeMs, std::uint64_t>, const InlineKey*> delayed_;
  std::uint64_t next_seq_ = 1;
  std::size_t cached_spec_bytes_ = 0;  // the specs kept (Active::spec()), all together
  storage::TicketBatches queued_;      // q/ records
  storage::TicketBatches held_;        // h/ records
};

}  // namespace jc::proxy
