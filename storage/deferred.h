// Records that are written only if they are still wanted a round later.
//
// Some records guard against a restart of their process and are deleted
// again within milliseconds in the usual case: a running node's x/ and d/
// (cluster_node/exec_book.h) live from a job's arrival until the proxy
// holds its result. When another process keeps the same facts durably,
// losing such a record to a kill -9 costs a rerun and nothing else, so
// writing it at once (then its delete) is work wasted on almost every job.
// Deferred keeps them in memory instead: a put made `later` waits here
// until it has outlived one whole round (age(), called on a timer), and is
// staged only then; a delete of a waiting key drops it and writes nothing.
// write_all() stages everything waiting, for when the other process's copy
// can no longer be counted on (it went away) or this one stops.
//
// A key put later must have no record in the store (it is the key's first
// write): its delete is then nothing at all. A put made now replaces any
// waiting value, so that an older one is never written over it.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "common/hash_maps.h"
#include "storage/staged.h"

namespace jc::storage {

class Deferred {
 public:
  explicit Deferred(Staged& staged) : staged_(staged) {}

  void put(std::string key, std::string value, bool later) {
    if (later) {
      old_.erase(key);
      young_.insert_or_assign(std::move(key), std::move(value));
      return;
    }
    drop(key);
    staged_.put(std::move(key), std::move(value));
  }
  // A waiting put is dropped (nothing is written); else the delete is staged.
  void del(std::string key) {
    if (!drop(key)) staged_.del(std::move(key));
  }
  // The same for the key `prefix` + `rest`, made only when a delete is
  // staged: most deletes drop a waiting put, and need no key of their own.
  void del(std::string_view prefix, std::string_view rest) {
    if (drop(ReadKey(prefix, rest))) return;
    staged_.del(joined_key(prefix, rest));
  }
  // What waits here, else what the stage or the store holds.
  Status get(std::string_view key, std::string* value) const {
    for (const auto* m : {&young_, &old_}) {
      if (auto it = m->find(absl::string_view(key.data(), key.size())); it != m->end()) {
        *value = it->second;
        return Status::Ok();
      }
    }
    return staged_.get(key, value);
  }
  // A round passed: what waited through all of it is staged; what came
  // during it waits one more.
  void age() {
    for (auto& [k, v] : old_) staged_.put(k, std::move(v));
    old_.clear();
    std::swap(old_, young_);
  }
  void write_all() {
    age();
    age();
  }
  std::size_t waiting() const { return young_.size() + old_.size(); }

 private:
  bool drop(std::string_view key) {
    const absl::string_view k(key.data(), key.size());
    return young_.erase(k) > 0 || old_.erase(k) > 0;
  }

  Staged& staged_;
  FlatMap<std::string, std::string> young_, old_;
};

}  // namespace jc::storage
