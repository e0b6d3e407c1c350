// The reads that wait: `r`, `status`, `wait` and `cancel` of tickets a node
// must ask the proxy about, and the policy of what they answer and when.
// Pure: the node's shell gives it the node's knowledge (NodeView) and the
// time, arms the timers it asks for, sends the questions it lists, and feeds
// back the proxy's reports and the timers' ends.
//
// The policy (INTERFACE.md section 3, "reads never go backwards"):
// - a final result or an expiry known here answers at once;
// - otherwise the proxy is asked, and `r`/`status` wait for its answer (at
//   most kProxyAnswerTimeoutMs); before the node's first join they wait for
//   the join rather than answer "unknown" a moment too early;
// - a ticket nobody knows yet, shaped as nodes issue them, may still be on
//   its way from the node that gave it: it is asked again every
//   REQUEST_RESULT_PERIOD for kUnknownGraceMs before it is answered unknown;
//   while the proxy says that node is away, a `wait` waits on and the others
//   answer "cannot check now";
// - without the proxy, a node says only what it alone can know
//   (without_proxy()); a `wait` whose seconds run out answers as `r` would.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/hash_maps.h"
#include "common/time.h"
#include "protocol/job.h"

namespace jc::client {

// The answer to a read: the report, and whether the proxy could not be asked.
using LookupDone = std::function<void(const protocol::JobReport&, bool unreachable)>;

// What the book needs to know of its node, at the moment of a call.
struct NodeView {
  bool connected = false;    // the link to the proxy is up
  bool ever_joined = false;  // the proxy has welcomed the node since it started
  // The node's own knowledge of a ticket (NodeCore::lookup).
  std::function<protocol::JobReport(const std::string&)> local;
  // A job its client submitted here that the proxy has not acknowledged.
  std::function<bool(const std::string&)> unforwarded;
};

struct LookupRequest {
  std::string ticket;
  bool wait = false;               // `wait`: only a final result answers
  std::optional<double> seconds;   // `wait T SECONDS`
  bool cancelling = false;         // `cancel`: the proxy's report after it acted
};

class LookupBook {
 public:
  static constexpr TimeMs kProxyAnswerTimeoutMs = 30000;
  static constexpr TimeMs kUnknownGraceMs = 5000;

  // What the shell does after a call.
  struct Effects {
    std::vector<std::pair<std::uint64_t, TimeMs>> arm;  // a timer: lookup id, after ms
    std::vector<std::uint64_t> disarm;                   // timers of answered lookups
    std::vector<std::string> ask;                        // tickets to ask the proxy about
  };

  Effects start(LookupRequest request, LookupDone done, const NodeView& node);
  // A report from the proxy (or this node's core) about a ticket.
  Effects on_report(const protocol::JobReport& report, const NodeView& node, TimeMs now);
  // Lookup `id`'s timer ran out.
  Effects on_timeout(std::uint64_t id, const NodeView& node);
  // The link to the proxy closed: `r` and `status` answer from what the node
  // knows (after the first join; before it they wait for it).
  Effects on_proxy_lost(const NodeView& node);
  // Tickets the proxy did not know yet that patient lookups ask about again.
  std::vector<std::string> asking_again() const;
  // Every ticket a lookup waits for (asked again after a join).
  std::vector<std::string> tickets() const;
  // Lookups unanswered, counted one by one (tests).
  std::size_t size() const {
    std::size_t n = 0;
    for (const auto& [t, list] : by_ticket_) n += list.size();
    return n;
  }
  bool empty() const { return by_ticket_.empty(); }
  // Drops every lookup unanswered (the node stops).
  void clear() {
    by_ticket_.clear();
    ticket_of_.clear();
  }

  // What a node may say of a ticket without the proxy: its final result, or
  // a state only it can know (a job the proxy never acknowledged). Anything
  // else might be behind what another node already showed, so it becomes
  // "cannot check now" (state unknown, answered as unreachable).
  static protocol::JobReport without_proxy(protocol::JobReport local, bool unforwarded);

 private:
  struct Pending {
    std::uint64_t id = 0;
    bool wait = false;
    // Asks again while the proxy does not know the ticket: a `wait`, or an
    // `r`/`status` of a ticket shaped as nodes issue them.
    bool patient = false;
    LookupDone done;
    bool timed = false;
    TimeMs unknown_since = 0;  // since when the proxy says it does not know it
    // What the proxy last said of it (not final): a timed-out `wait`'s answer.
    // On the heap: most lookups never need it, and a report is 500 bytes.
    std::unique_ptr<protocol::JobReport> last_known;
    bool proxy_answered = false;  // the proxy said something of it, "unknown" included
    // The proxy last said it has not received it and the node whose tickets
    // look like it is away: it may be on its way (asked again meanwhile).
    bool origin_away = false;
  };
  struct Ready {
    LookupDone done;
    protocol::JobReport report;
    bool unreachable = false;
  };
  // Calls the answers once the book is consistent (an answer may start
  // another lookup).
  static void answer(std::vector<Ready>& ready);
  void forget(const Pending& p) {
    if (p.timed) ticket_of_.erase(p.id);
  }

  NodeMap<std::string, std::vector<Pending>> by_ticket_;
  // The ticket of each lookup with a timer, for its timeout.
  FlatMap<std::uint64_t, std::string> ticket_of_;
  std::uint64_t next_id_ = 1;
};

}  // namespace jc::client
