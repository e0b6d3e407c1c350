// Membership: the nodes the proxy knows (node_table.h), what each offers,
// and what the cluster as a whole offers and admits. The one owner of
//   o/<node>   what the node offered in its last HELLO, comma-separated: a
//              label or language stays "offered" (a job needing it is taken
//              and waits) while its node is away, across restarts and leaders
// The rest is volatile, rebuilt from HELLOs and the job book.
#pragma once

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "protocol/messages.h"
#include "reverse_proxy/node_table.h"
#include "storage/staged.h"

namespace jc::proxy {

class Membership {
 public:
  explicit Membership(storage::Staged& staged) : staged_(staged) {}

  Status recover();

  NodeTable& nodes() { return nodes_; }
  const NodeTable& nodes() const { return nodes_; }
  NodeEntry& operator[](const std::string& id) { return nodes_[id]; }
  bool connected(const std::string& id) const {
    auto it = nodes_.find(id);
    return it != nodes_.end() && it->second.connected;
  }
  std::size_t connected_count() const;

  // An accepted HELLO: the node's entry, connected, with what it said of
  // itself (plain words only, admission.h); o/ is written when its offers changed.
  NodeEntry& join(const protocol::Hello& hello, TimeMs now);

  // Whether `entry` offers every need of `needs` (a comma-joined list).
  static bool can_run(const NodeEntry& entry, std::string_view needs);
  // What a queued job with these needs waits for (JobReport::waiting_for):
  // "" when a node up runs it, "node" when it needs nothing but a node.
  std::string waiting_for(std::string_view needs) const;

  // Recomputes what the cluster offers; true when that changed since the
  // last call (every node is told then).
  bool update_offers();
  // MAX_QUEUE: true when the queue's fullness turned (every node is told then).
  bool update_queue_full(std::uint64_t queued, std::uint64_t max_queue);
  bool queue_full() const { return queue_full_; }
  protocol::Offers offers(std::uint64_t max_queue) const {
    return protocol::Offers{offered_, available_, max_queue, queue_full_};
  }

 private:
  storage::Staged& staged_;
  NodeTable nodes_;
  std::map<std::string, std::set<std::string>> known_offers_;  // o/: every node's, up or not
  std::vector<std::string> offered_, available_;               // as last told (OFFERS)
  bool queue_full_ = false;                                    // likewise (MAX_QUEUE)
};

}  // namespace jc::proxy
