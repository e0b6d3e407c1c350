// The one step where the proxy's two set-ups differ: making what the core
// staged durable before anything that depends on it leaves.
//
//   DiskCommit  one proxy: a LevelDB write, synced when the stage asks,
//               made on a thread of its own while the event loop goes on
//               (one at a time: what is staged meanwhile goes in the next),
//               retried in place while the store refuses writes
//               (StorageRetry). JOB leaves before it (ProxyCore::take_early),
//               the rest after; a turn with only ACKs to send waits a
//               moment for the results of the JOBs it sent (CommitHold).
//   LogCommit   replicated proxies: the stage becomes a log entry
//               (replicated_store.h), a few in flight at once; JOB leaves
//               at once, the rest once its entry is applied here.
//
// ProxyServer calls flush() after each turn that staged or queued anything
// and knows nothing else of how it is done.
#pragma once

#include <spdlog/spdlog.h>

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "net/storage_retry.h"
#include "protocol/retention.h"
#include "replication/raft_log.h"
#include "storage/background_write.h"
#include "reverse_proxy/commit_hold.h"
#include "reverse_proxy/proxy_core.h"
#include "reverse_proxy/replicated_store.h"

namespace jc::proxy {

class CommitPath {
 public:
  using Send = std::function<void(std::vector<Outgoing>)>;
  CommitPath(storage::Store& store, Send send, TimeMs compact_period_ms)
      : store_(store), send_(std::move(send)), compact_period_ms_(compact_period_ms) {}
  virtual ~CommitPath() = default;
  CommitPath(const CommitPath&) = delete;
  CommitPath& operator=(const CommitPath&) = delete;

  // Commits what `core` staged, and sends its messages once they may leave.
  virtual void flush(ProxyCore& core) = 0;
  // Whether the node link that just gave `core` a frame should wait before
  // it sends more (the log has every entry slot taken and the next entry is
  // large). The link is resumed (resume()) when an entry lands.
  virtual bool hold_back(ProxyCore& core) {
    (void)core;
    return false;
  }
  // The core that staged what is in flight is gone (leadership lost, or
  // the proxy stopping): nothing of it is sent.
  virtual void abandon() { compactions_ = {}; }
  // Whether the store refuses writes (a sweep then waits).
  virtual bool failing() const { return false; }
  // The proxy stops: what is staged is committed now, and from now on.
  virtual void flush_at_stop(ProxyCore& core) { flush(core); }

  // Key ranges a sweep emptied: compacted once their removal is committed.
  void compact_later(std::vector<std::pair<std::string, std::string>> ranges) {
    compactions_.add(std::move(ranges));
  }

 protected:
  void compact_due();
  storage::Store& store_;
  Send send_;

 private:
  TimeMs compact_period_ms_;
  protocol::CompactionPlan compactions_;
};

class DiskCommit final : public CommitPath {
 public:
  // Calls the proxy's flush() again after a delay (CommitHold).
  using FlushLater = std::function<void(CommitHold::Clock::duration)>;
  // Where a write made on the writer thread comes back to: `post` runs a
  // function on the event loop, `flush_again` is the proxy's flush() (what
  // was staged while the write was made). Without them every write is made
  // in place, on the caller's thread.
  struct Background {
    std::function<void(std::function<void()>)> post;
    std::function<void()> flush_again;
  };
  DiskCommit(storage::Store& store, Send send, TimeMs compact_period_ms, net::StorageRetry& retry,
             CommitHold::Clock::duration hold = {}, FlushLater flush_later = {},
             Background background = {});
  ~DiskCommit() override;
  void flush(ProxyCore& core) override;
  bool failing() const override { return retry_.failing(); }
  // Waits for the write in flight, then commits the rest in place.
  void flush_at_stop(ProxyCore& core) override;
  // Whether a write is being made on the writer thread.
  bool writing() const { return writer_ && writer_->writing(); }

 private:
  // Writes of fewer operations than this are made in place: a turn or two
  // of an idle proxy (a job's submit and result stage about four), where
  // waking the writer and the loop again would add to the job's latency
  // more than the loop gains.
  static constexpr std::size_t kInPlaceBelow = 64;
  void commit_in_place(ProxyCore& core);
  void start_write(ProxyCore& core);
  // On the event loop, once the writer thread has made the write.
  void land(const Status& s);

  net::StorageRetry& retry_;
  CommitHold hold_;
  FlushLater flush_later_;
  Background background_;
  std::unique_ptr<storage::BackgroundWrite> writer_;  // none: writes made in place
  bool in_place_ = false;                             // stopping: every write in place
  std::vector<Outgoing> flight_out_;  // what leaves once the write in flight lands
  std::vector<Outgoing> waiting_;     // what a failed write held: leaves first after the next
};

class LogCommit final : public CommitPath {
 public:
  struct Hooks {
    // The log refused an entry or lost leadership with one in flight, or
    // this proxy's store refused a committed one: another proxy must serve.
    std::function<void(const std::string& why)> lost;
    // An entry landed: what was staged meanwhile goes in the next one.
    std::function<void()> flush_again;
    // Node links held back (hold_back()) may send again.
    std::function<void()> resume;
  };
  LogCommit(storage::Store& store, Send send, TimeMs compact_period_ms, replication::RaftLog& raft,
            ReplicatedStore& machine, std::size_t entry_writes, Hooks hooks,
            std::shared_ptr<spdlog::logger> log)
      : CommitPath(store, std::move(send), compact_period_ms),
        raft_(raft),
        machine_(machine),
        entry_writes_(entry_writes),
        hooks_(std::move(hooks)),
        log_(std::move(log)) {}
  void flush(ProxyCore& core) override;
  bool hold_back(ProxyCore& core) override;
  void abandon() override;

 private:
  // A few entries in flight at once, so that the leader's disk, the
  // followers' and the links overlap.
  static constexpr std::size_t kMaxEntriesInFlight = 4;
  replication::RaftLog& raft_;
  ReplicatedStore& machine_;
  std::size_t entry_writes_;  // RAFT_ENTRY_WRITES
  Hooks hooks_;
  std::shared_ptr<spdlog::logger> log_;
  // Entries proposed and not applied yet, oldest first: each holds the
  // messages that go out once it is applied. Later changes gather meanwhile.
  std::deque<std::vector<Outgoing>> in_flight_;
  std::uint64_t generation_ = 0;  // a new one at every abandon()
  bool held_back_ = false;
};

}  // namespace jc::proxy
