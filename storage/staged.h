// Staged writes: the changes a core makes while handling events, committed
// later in one LevelDB WriteBatch by the I/O shell (group commit).
//
// get() sees staged changes first, so a core reads its own writes before they
// are committed. The shell commits, and only then sends what the core asked it
// to send, so nothing another process learns is lost by a crash.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <absl/hash/hash.h>

#include "storage/store.h"

namespace jc::storage {

// The writes of one stage: each key once, in the order first staged, with
// its last value (nullopt: deleted). A flat index over them (open
// addressing, the keys themselves not copied) answers get(): a core stages
// several writes per job, and a hash map's node, key copy and value move
// for each cost about a tenth of the proxy's work per job.
class Stage {
 public:
  void set(std::string key, std::optional<std::string> value);
  // nullptr: not staged here; else the staged value (nullopt: deleted).
  const std::optional<std::string>* find(std::string_view key) const;
  std::optional<std::string>* find(std::string_view key) {
    return const_cast<std::optional<std::string>*>(std::as_const(*this).find(key));
  }
  bool empty() const { return ops_.empty(); }
  std::size_t size() const { return ops_.size(); }
  WriteBatch::Ops take();
  const WriteBatch::Ops& ops() const { return ops_; }
  // Empty, its room kept for the next stage.
  void clear() {
    empty_slots();
    ops_.clear();
  }

 private:
  // abseil's string hash: a few times cheaper than libstdc++'s Murmur for
  // keys of 20 to 40 bytes, and well mixed in the high bits the tag takes.
  static std::uint64_t hash(std::string_view key) { return absl::Hash<std::string_view>{}(key); }
  // A slot: the high half of its key's hash (compared before the key) over
  // its index into ops_ + 1; 0 = empty.
  static std::uint64_t slot(std::uint64_t h, std::size_t at) { return (h & ~kIndex) | at; }
  static constexpr std::uint64_t kIndex = 0xffffffff;
  // The slot of `key`: where it is, or the empty one where it would go.
  std::size_t slot_of(std::string_view key, std::uint64_t h) const;
  void grow();
  // Empties the slots ops_ holds: one by one when they are few (a table
  // grown by one large stage is not cleared whole for every small one after
  // it), else all at once.
  void empty_slots();

  WriteBatch::Ops ops_;
  std::vector<std::uint64_t> slots_;  // a power of two long
};

// A key for a read, made of a prefix and a ticket on the stack: a lookup
// needs no heap string (a ticket is at most 32 characters).
class ReadKey {
 public:
  ReadKey(std::string_view prefix, std::string_view rest) : n_(prefix.size() + rest.size()) {
    if (n_ <= sizeof buf_) {
      std::memcpy(buf_, prefix.data(), prefix.size());
      std::memcpy(buf_ + prefix.size(), rest.data(), rest.size());
    } else {
      big_.reserve(n_);
      big_.append(prefix).append(rest);
    }
  }
  operator std::string_view() const {
    return n_ <= sizeof buf_ ? std::string_view(buf_, n_) : std::string_view(big_);
  }

 private:
  std::size_t n_;
  char buf_[48];
  std::string big_;
};

// A record's key made of a prefix and a ticket, in one allocation (the
// owned counterpart of ReadKey, for a write).
inline std::string joined_key(std::string_view prefix, std::string_view rest) {
  std::string key;
  key.reserve(prefix.size() + rest.size());
  key.append(prefix).append(rest);
  return key;
}

class Staged {
 public:
  explicit Staged(Store& store) : store_(store) {}

  // The writes of the last commit that landed stay readable from memory
  // until the next one lands: a read that follows its own write just
  // committed (a node answering the clients that wait for a result it has
  // just stored) does not ask LevelDB. They are what the store holds, so
  // nothing else changes; it costs the room of one commit's writes.
  void keep_recent() { keep_recent_ = true; }

  Status get(std::string_view key, std::string* value) const;
  void put(std::string key, std::string value) { pending_.set(std::move(key), std::move(value)); }
  void del(std::string key) { pending_.set(std::move(key), std::nullopt); }
  // Appends `pieces` to the value staged for `key` in this stage and returns
  // true; false when this stage holds no value for it (not staged, deleted,
  // or committed already). For records written whole within one stage, such
  // as a batch that gathers a turn's entries under one key.
  bool append_staged(std::string_view key, std::initializer_list<std::string_view> pieces) {
    std::optional<std::string>* staged = pending_.find(key);
    if (staged == nullptr || !*staged) return false;
    for (std::string_view piece : pieces) (*staged)->append(piece);
    return true;
  }
  // The commit must reach the disk before anything is acknowledged.
  void require_sync() { sync_ = true; }
  bool sync_required() const { return sync_ && !pending_.empty(); }
  // The next commit is synced even with nothing staged: it makes the
  // unsynced writes before it durable (they are in the store's log, which
  // the sync flushes), for an acknowledgement that needs them to be.
  void require_barrier() { sync_ = barrier_ = true; }
  // Whether the next commit is a synced write.
  bool commit_syncs() const { return sync_ && (barrier_ || !pending_.empty()); }
  bool empty() const { return pending_.empty(); }
  std::size_t size() const { return pending_.size(); }

  // Writes everything staged in one batch and clears the stage; on failure
  // the stage stays as it was, to be committed again.
  Status commit();

  // Replicated proxies: the stage becomes a log entry instead of a local
  // write. lift() appends its writes to `out` and keeps them visible to get()
  // while the entry is in flight (several may be, in log order); landed()
  // forgets the oldest once it is applied to the store; forget_flights()
  // forgets them all when leadership was lost (they may never be applied).
  void lift(WriteBatch& out);
  // The same for a write made elsewhere (a single proxy's, on a thread of
  // its own): the stage becomes a flight as it is, and its operations are
  // returned, unchanged and in place until the flight lands or is unlifted.
  const WriteBatch::Ops& lift_in_place();
  void landed() {
    if (flights_.empty()) return;
    // Its room serves a later stage (a flight's index and vector are as
    // large as a busy turn's, grown again otherwise at every commit).
    if (keep_recent_) std::swap(recent_, flights_.front());
    spare_ = std::move(flights_.front());
    spare_.clear();
    flights_.pop_front();
  }
  void forget_flights() { flights_.clear(); }
  // The oldest flight was not made durable (its write failed): its writes
  // are staged again, under what was staged since (the newer value of a
  // key wins), to be committed with it. `sync`: whether it had to be synced.
  void unlift(bool sync);
  std::size_t in_flight() const { return flights_.size(); }
  // Whether what the store holds for `key` is all there is: neither this
  // stage nor a flight has a write of it not yet durable.
  bool settled(std::string_view key) const {
    if (pending_.find(key) != nullptr) return false;
    for (const Stage& flight : flights_) {
      if (flight.find(key) != nullptr) return false;
    }
    return true;
  }

  Store& store() const { return store_; }

 private:
  Store& store_;
  Stage pending_;
  std::deque<Stage> flights_;  // lifted into log entries not applied yet, oldest first
  Stage spare_;                // the last landed flight's room, empty
  Stage recent_;               // keep_recent(): the last commit that landed
  bool keep_recent_ = false;
  bool sync_ = false;
  bool barrier_ = false;  // require_barrier(): synced even when empty
};

inline std::size_t Stage::slot_of(std::string_view key, std::uint64_t h) const {
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = h & mask;; i = (i + 1) & mask) {
    const std::uint64_t s = slots_[i];
    if (s == 0) return i;
    if ((s & ~kIndex) == (h & ~kIndex) && ops_[(s & kIndex) - 1].first == key) return i;
  }
}

inline void Stage::grow() {
  std::vector<std::uint64_t> old = std::move(slots_);
  slots_.assign(old.empty() ? 64 : old.size() * 2, 0);
  for (std::uint64_t s : old) {
    if (s == 0) continue;
    const std::uint64_t h = hash(ops_[(s & kIndex) - 1].first);
    slots_[slot_of(ops_[(s & kIndex) - 1].first, h)] = s;
  }
}

inline void Stage::set(std::string key, std::optional<std::string> value) {
  // At most half full: probes stay short.
  if (2 * (ops_.size() + 1) > slots_.size()) grow();
  const std::uint64_t h = hash(key);
  const std::size_t i = slot_of(key, h);
  if (slots_[i] != 0) {
    ops_[(slots_[i] & kIndex) - 1].second = std::move(value);
    return;
  }
  ops_.emplace_back(std::move(key), std::move(value));
  slots_[i] = slot(h, ops_.size());
}

inline const std::optional<std::string>* Stage::find(std::string_view key) const {
  if (ops_.empty()) return nullptr;
  const std::uint64_t s = slots_[slot_of(key, hash(key))];
  return s == 0 ? nullptr : &ops_[(s & kIndex) - 1].second;
}

inline void Stage::empty_slots() {
  if (ops_.size() * 16 >= slots_.size()) {
    std::fill(slots_.begin(), slots_.end(), 0);
    return;
  }
  // Each op's slot is at its home or after it in the run of full slots
  // that follows; it is found by its index, whatever was emptied before.
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t at = 1; at <= ops_.size(); ++at) {
    std::size_t i = hash(ops_[at - 1].first) & mask;
    while ((slots_[i] & kIndex) != at) i = (i + 1) & mask;
    slots_[i] = 0;
  }
}

inline WriteBatch::Ops Stage::take() {
  empty_slots();
  return std::exchange(ops_, {});
}

inline Status Staged::get(std::string_view key, std::string* value) const {
  const std::optional<std::string>* staged = pending_.find(key);
  for (auto flight = flights_.rbegin(); staged == nullptr && flight != flights_.rend(); ++flight) {
    staged = flight->find(key);  // newest first
  }
  if (staged == nullptr) staged = recent_.find(key);
  if (staged == nullptr) return store_.get(key, value);
  if (!*staged) return Status::NotFound(std::string(key));
  *value = **staged;
  return Status::Ok();
}

inline void Staged::lift(WriteBatch& out) {
  sync_ = false;  // the log makes it durable
  if (pending_.empty()) return;
  for (const auto& [key, value] : pending_.ops()) {
    if (value) {
      out.put(key, *value);
    } else {
      out.del(key);
    }
  }
  // The stage becomes the flight's as it is: no key is copied again.
  flights_.push_back(std::move(pending_));
  pending_ = std::exchange(spare_, Stage());
}

inline const WriteBatch::Ops& Staged::lift_in_place() {
  sync_ = barrier_ = false;  // the writer syncs when asked (commit_syncs)
  flights_.push_back(std::move(pending_));
  pending_ = std::exchange(spare_, Stage());
  return flights_.back().ops();
}

inline void Staged::unlift(bool sync) {
  if (flights_.empty()) return;
  Stage back = std::move(flights_.front());
  flights_.pop_front();
  for (auto& [key, value] : pending_.take()) back.set(std::move(key), std::move(value));
  pending_ = std::move(back);
  sync_ = sync_ || sync;
}

inline Status Staged::commit() {
  // With nothing staged, a store that refuses writes is still asked: the
  // write is what makes it writable again.
  if (pending_.empty() && !barrier_ && store_.writable()) return Status::Ok();
  // Written in place: on failure the stage, its sync owed, stays for the
  // retry (nothing of it was acknowledged).
  Status s = store_.write_ops(pending_.ops(), sync_);
  if (!s.ok()) return s;
  sync_ = barrier_ = false;
  // With keep_recent(), the stage with its index becomes the recent one.
  if (keep_recent_ && !pending_.empty()) std::swap(recent_, pending_);
  pending_.clear();  // its room kept for the next stage
  return s;
}

}  // namespace jc::storage
