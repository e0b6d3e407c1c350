// The proxy's queue of jobs waiting for a node: ordered by priority (higher
// first), then by submission sequence. A job given back after its node was
// lost keeps its sequence number, so it goes ahead of later submissions.
//
// Backed by an order-statistics tree, so that a job's queue position (for
// `status`) costs O(log n) and not a scan of a million-job queue.
#pragma once

#include <cstdint>
#include <ext/pb_ds/assoc_container.hpp>
#include <ext/pb_ds/tree_policy.hpp>
#include <map>
#include <optional>
#include <string>
#include <tuple>

#include "common/inline_key.h"

namespace jc::proxy {

struct QueueKey {
  std::int32_t priority = 0;
  std::uint64_t seq = 0;
};

// Entries point at the tickets the caller keeps (the keys of the proxy's
// map of active jobs, which never move): a queued job costs one tree node of
// 16 bytes of key and a pointer, not a copy of its ticket.
class JobQueue {
 public:
  // `ticket` must outlive its entry (erase or pop it first).
  void push(const InlineKey& ticket, QueueKey key) { tree_.insert({entry(key), &ticket}); }
  bool erase(QueueKey key) { return tree_.erase(entry(key)) > 0; }
  // The next job to dispatch, removed from the queue: its ticket as the
  // caller keeps it; null when the queue is empty.
  const InlineKey* pop() {
    if (tree_.empty()) return nullptr;
    auto it = tree_.begin();
    const InlineKey* t = it->second;
    tree_.erase(it);
    return t;
  }
  // 0-based position, or -1 when nothing is queued under this key.
  std::int64_t position(QueueKey key) const {
    auto e = entry(key);
    if (tree_.find(e) == tree_.end()) return -1;
    return static_cast<std::int64_t>(tree_.order_of_key(e));
  }
  std::size_t size() const { return tree_.size(); }
  bool empty() const { return tree_.empty(); }
  // The key of the next job, without taking it.
  std::optional<QueueKey> head() const {
    if (tree_.empty()) return std::nullopt;
    const Key& k = tree_.begin()->first;
    return QueueKey{static_cast<std::int32_t>(-k.first), k.second};
  }

 private:
  // Negated priority so that the default ascending order puts the highest
  // first; sequence numbers are unique, so the key alone finds an entry.
  using Key = std::pair<std::int64_t, std::uint64_t>;
  static Key entry(QueueKey key) { return {-static_cast<std::int64_t>(key.priority), key.seq}; }
  __gnu_pbds::tree<Key, const InlineKey*, std::less<Key>, __gnu_pbds::rb_tree_tag,
                   __gnu_pbds::tree_order_statistics_node_update>
      tree_;
};

// The queue by what jobs need of a node (JobSpec::needs, interned as one
// id per distinct set; 0: nothing): a queue each, so that a node takes the
// next job it can run without the others being scanned, and the order
// across them is still priority, then submission (a merge of their heads:
// as many steps as distinct needs, whatever the queue's length).
class NeedsQueue {
 public:
  void push(const InlineKey& ticket, QueueKey key, std::uint32_t needs) {
    queues_[needs].push(ticket, key);
    ++size_;
  }
  bool erase(QueueKey key, std::uint32_t needs) {
    auto it = queues_.find(needs);
    if (it == queues_.end() || !it->second.erase(key)) return false;
    --size_;
    if (it->second.empty()) queues_.erase(it);
    return true;
  }
  // The next job a node may run (`can_run(needs)`), removed.
  template <class CanRun>
  const InlineKey* pop_for(CanRun&& can_run) {
    JobQueue* best = nullptr;
    std::optional<QueueKey> best_key;
    for (auto& [needs, q] : queues_) {
      auto key = q.head();
      if (!key || (needs != 0 && !can_run(needs))) continue;
      if (!best_key || key->priority > best_key->priority ||
          (key->priority == best_key->priority && key->seq < best_key->seq)) {
        best = &q;
        best_key = key;
      }
    }
    if (best == nullptr) return nullptr;
    const InlineKey* t = best->pop();
    --size_;
    return t;
  }
  // 0-based position among the jobs of the same needs, or -1.
  std::int64_t position(QueueKey key, std::uint32_t needs) const {
    auto it = queues_.find(needs);
    return it == queues_.end() ? -1 : it->second.position(key);
  }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

 private:
  std::map<std::uint32_t, JobQueue> queues_;
  std::size_t size_ = 0;
};

}  // namespace jc::proxy
