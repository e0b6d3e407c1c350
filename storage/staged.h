// Staged writes: the changes a core makes while handling events, committed
// later in one LevelDB WriteBatch by the I/O shell (group commit).
//
// get() sees staged changes first, so a core reads its own writes before they
// are committed. The shell commits, and only then sends what the core asked it
// to send, so nothing another process learns is lost by a crash.
#pragma once

#include <deque>
#include <functional>
#include <string_view>
#include <unordered_map>

#include "storage/store.h"

namespace jc::storage {

class Staged {
 public:
  explicit Staged(Store& store) : store_(store) {}

  Status get(std::string_view key, std::string* value) const;
  void put(std::string key, std::string value) { pending_[std::move(key)] = std::move(value); }
  void del(std::string key) { pending_[std::move(key)] = std::nullopt; }
  // The commit must reach the disk before anything is acknowledged.
  void require_sync() { sync_ = true; }

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
  void landed() {
    if (!flights_.empty()) flights_.pop_front();
  }
  void forget_flights() { flights_.clear(); }
  std::size_t in_flight() const { return flights_.size(); }
  Store& store() const { return store_; }

 private:
  // Looked up by string_view without building a std::string.
  struct KeyHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  Store& store_;
  using Map = std::unordered_map<std::string, std::optional<std::string>, KeyHash, std::equal_to<>>;
  Map pending_;
  std::deque<Map> flights_;  // lifted into log entries not applied yet, oldest first
  bool sync_ = false;
};

inline Status Staged::get(std::string_view key, std::string* value) const {
  if (auto it = pending_.find(key); it != pending_.end()) {
    if (!it->second) return Status::NotFound(std::string(key));
    *value = *it->second;
    return Status::Ok();
  }
  for (auto flight = flights_.rbegin(); flight != flights_.rend(); ++flight) {  // newest first
    if (auto it = flight->find(key); it != flight->end()) {
      if (!it->second) return Status::NotFound(std::string(key));
      *value = *it->second;
      return Status::Ok();
    }
  }
  return store_.get(key, value);
}

inline void Staged::lift(WriteBatch& out) {
  sync_ = false;  // the log makes it durable
  if (pending_.empty()) return;
  for (const auto& [key, value] : pending_) {
    if (value) {
      out.put(key, *value);
    } else {
      out.del(key);
    }
  }
  // The stage's map becomes the flight's as it is: no key is copied again.
  flights_.push_back(std::move(pending_));
  pending_ = Map();
}

inline Status Staged::commit() {
  // With nothing staged, a store that refuses writes is still asked: the
  // write is what makes it writable again.
  if (pending_.empty() && store_.writable()) return Status::Ok();
  WriteBatch batch;
  while (!pending_.empty()) {
    auto node = pending_.extract(pending_.begin());  // moves the key out too
    if (node.mapped()) {
      batch.put(std::move(node.key()), std::move(*node.mapped()));
    } else {
      batch.del(std::move(node.key()));
    }
  }
  bool sync = sync_;
  sync_ = false;
  Status s = store_.write(batch, sync);
  if (!s.ok()) {
    // Kept staged, for the retry: nothing of it was acknowledged.
    for (const auto& [key, value] : batch.ops()) pending_.emplace(key, value);
    sync_ = sync;
  }
  return s;
}

}  // namespace jc::storage
