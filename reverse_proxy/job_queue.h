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
#include <optional>
#include <string>
#include <tuple>

namespace jc::proxy {

struct QueueKey {
  std::int32_t priority = 0;
  std::uint64_t seq = 0;
};

// Entries point at the ticket strings the caller keeps (the proxy's map of
// active jobs, whose keys never move): a queued job costs one tree node of
// 16 bytes of key and a pointer, not a copy of its ticket.
class JobQueue {
 public:
  // `ticket` must outlive its entry (erase or pop it first).
  void push(const std::string& ticket, QueueKey key) { tree_.insert({entry(key), &ticket}); }
  bool erase(QueueKey key) { return tree_.erase(entry(key)) > 0; }
  // The next job to dispatch, removed from the queue.
  std::optional<std::string> pop() {
    if (tree_.empty()) return std::nullopt;
    auto it = tree_.begin();
    std::string t = *it->second;
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

 private:
  // Negated priority so that the default ascending order puts the highest
  // first; sequence numbers are unique, so the key alone finds an entry.
  using Key = std::pair<std::int64_t, std::uint64_t>;
  static Key entry(QueueKey key) { return {-static_cast<std::int64_t>(key.priority), key.seq}; }
  __gnu_pbds::tree<Key, const std::string*, std::less<Key>, __gnu_pbds::rb_tree_tag,
                   __gnu_pbds::tree_order_statistics_node_update>
      tree_;
};

}  // namespace jc::proxy
