// The replicated proxies' state machine: the proxy's LevelDB store itself.
//
// The leader's ProxyCore decides (a batch of submits, a dispatch, results, a
// node joining or lost, a requeue, an expiry) exactly as a single proxy does,
// and stages the records those decisions change. The stage is the log entry:
// a `Change`, the writes of one group commit, tagged with what caused them.
// Every proxy applies the committed entries in log order to its own store,
// which makes the stores identical by construction: nothing in apply reads
// a clock, a setting or a hash order (CockroachDB's "proposer-evaluated KV"
// takes the same approach for the same reason). A proxy that becomes leader
// loads its ProxyCore from its store once every earlier entry is applied.
//
// Keys of its own: m/raft_applied, the last entry applied (so a restart
// skips what its store already has).
#pragma once

#include <atomic>
#include <deque>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/log.h"
#include "replication/raft_log.h"
#include "storage/store.h"

namespace jc::proxy {

// One log entry: the writes of one group commit on the leader.
struct Change {
  // Format 1: the writes as bytes. Format 2: format 1 compressed with zstd
  // (job records repeat their field names and tickets, so entries shrink
  // about tenfold, and with them every byte the log writes to disk and
  // sends to the followers). Both are read; format 2 is written.
  static constexpr std::uint8_t kPlain = 1;
  static constexpr std::uint8_t kCompressed = 2;
  std::int64_t time_ms = 0;  // the leader's clock when it proposed it
  storage::WriteBatch writes;
};

// Format 2 (kCompressed).
std::string encode_change(const Change& change);
// Format 1, as builds before format 2 wrote it.
std::string encode_plain_change(const Change& change);
// False for bytes that are not a whole change of a format this build knows.
bool decode_change(std::string_view bytes, Change& change);

// A snapshot: every key of the store at one applied index.
std::string encode_snapshot(replication::Index index, storage::ReadView& view);
// The index, or nullopt for bytes that are not a snapshot this build knows;
// `fn` gets every pair (nothing when it returns nullopt).
std::optional<replication::Index> decode_snapshot(
    std::string_view bytes,
    const std::function<void(std::string_view, std::string_view)>& fn = {});

class ReplicatedStore : public replication::StateMachine {
 public:
  explicit ReplicatedStore(storage::Store& store);
  // Reads m/raft_applied.
  Status open();

  // A change the store refuses (a full disk) waits, with every later one,
  // and is written by retry() in order; apply still succeeds, since the
  // library (0.15) would otherwise take this proxy out of the cluster for
  // good. The entries are on a majority's disk in the log meanwhile.
  Status apply(replication::Index index, std::string_view entry) override;
  // The leader's own entries: the entry at `index` will be `entry`, which
  // encodes `writes`. Applying it then writes these instead of decoding the
  // bytes again; only if the committed entry at that index is these very
  // bytes (a new leader may have replaced it), else it is decoded.
  void expect(replication::Index index, std::string entry, storage::WriteBatch writes);
  // Leadership lost: what was expected may be replaced.
  void forget_expected() { expected_.clear(); }
  std::function<std::string()> snapshot(replication::Index index) override;
  Status restore(std::string_view snapshot) override;

  // Writes what waits, in order; true when nothing waits any more.
  bool retry();
  // Entries applied by the log but not yet written to the store: a leader
  // must not serve from it (it hands over), and no snapshot is taken.
  bool behind() const override { return !backlog_.empty(); }
  replication::Index applied() const { return applied_; }
  std::uint64_t entries_applied() const { return entries_applied_; }
  std::uint64_t snapshots_restored() const { return snapshots_restored_; }

  static constexpr std::string_view kAppliedKey = "m/raft_applied";

 private:
  storage::Store& store_;
  std::shared_ptr<spdlog::logger> log_;
  replication::Index applied_ = 0;
  std::deque<std::pair<replication::Index, storage::WriteBatch>> backlog_;
  struct Expected {
    replication::Index index;
    std::string entry;
    storage::WriteBatch writes;
  };
  std::deque<Expected> expected_;  // in index order
  bool failing_ = false;
  std::uint64_t entries_applied_ = 0;
  std::uint64_t snapshots_restored_ = 0;
};

}  // namespace jc::proxy
