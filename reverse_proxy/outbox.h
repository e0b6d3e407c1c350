// The proxy's outbox: the messages its core wants sent, per node, in order.
// Results pushed to a node travel together: one RESULT of the reports
// gathered in a call (a node's frame of 256 results finishes jobs of a few
// origins), queued before the next other message to that node, or at
// take(). Pure: the shell takes what leaves, before and after its commit.
#pragma once

#include <map>
#include <string>
#include <unordered_set>
#include <vector>

#include "protocol/messages.h"

namespace jc::proxy {

struct Outgoing {
  std::string node_id;
  protocol::Message message;
};

class Outbox {
 public:
  // Queues `m` for `node`, after the results gathered for it.
  void send(const std::string& node, protocol::Message m);
  void push_result(const std::string& node, protocol::JobReport report);
  // The node's connection is gone: the results gathered for it go nowhere
  // (a node that comes back is sent every result it is owed).
  void drop_results(const std::string& node) { results_.erase(node); }
  // Whether every message waiting is an ACK: nothing a client waits for.
  bool only_acks() const;
  // JOBs to nodes not welcomed in this turn (nor in `unwelcomed`): what
  // may leave before the commit (ProxyCore::take_early says why).
  std::vector<Outgoing> take_early(const std::unordered_set<std::string>& unwelcomed);
  // Everything, the results gathered included.
  std::vector<Outgoing> take();

 private:
  void flush_results(const std::string& node);

  std::vector<Outgoing> out_;
  std::map<std::string, protocol::Result> results_;  // gathered, by node
  // Reports in the last batch flushed: room made for as many in the next,
  // so that a turn's reports (650 bytes each) are not moved again each time
  // the vector grows.
  std::size_t last_batch_ = 0;
};

}  // namespace jc::proxy
