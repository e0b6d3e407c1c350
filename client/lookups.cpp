#include "client/lookups.h"

#include "protocol/retention.h"

namespace jc::client {

using protocol::JobReport;
using protocol::JobState;

namespace {
bool settled(const JobReport& r) {
  return (protocol::is_final(r.state) && r.has_result) || r.state == JobState::kExpired;
}
}  // namespace

JobReport LookupBook::without_proxy(JobReport local, bool unforwarded) {
  if (settled(local) || local.state == JobState::kUnknown || unforwarded) return local;
  JobReport unknown;
  unknown.ticket = local.ticket;
  unknown.owner = local.owner;  // still only its owner learns even that much
  return unknown;
}

void LookupBook::answer(std::vector<Ready>& ready) {
  for (auto& r : ready) r.done(r.report, r.unreachable);
}

LookupBook::Effects LookupBook::start(LookupRequest request, LookupDone done, const NodeView& node) {
  Effects fx;
  const std::string& ticket = request.ticket;
  JobReport local = node.local(ticket);
  if ((local.has_result && !request.cancelling) || local.state == JobState::kExpired) {
    done(local, false);
    return fx;
  }
  // Before its first join the node cannot know other nodes' tickets yet:
  // `r` and `status` of a ticket it does not know wait for the join rather
  // than answer "unknown" because the client came a moment too early. Its
  // own tickets it answers at once.
  bool known_here = local.state != JobState::kUnknown;
  if (!node.connected && !request.wait && (node.ever_joined || known_here)) {
    done(without_proxy(std::move(local), node.unforwarded(ticket)), true);
    return fx;
  }
  Pending p;
  p.id = next_id_++;
  p.wait = request.wait;
  p.patient = request.wait || (!request.cancelling && protocol::parse_ticket(ticket).has_value());
  p.done = std::move(done);
  std::optional<TimeMs> timeout;
  if (!request.wait) timeout = kProxyAnswerTimeoutMs;
  if (request.wait && request.seconds) timeout = static_cast<TimeMs>(*request.seconds * 1000);
  if (timeout) {
    p.timed = true;
    fx.arm.emplace_back(p.id, *timeout);
  }
  auto& list = by_ticket_[ticket];
  bool first = list.empty();
  if (p.timed) ticket_of_[p.id] = ticket;
  list.push_back(std::move(p));
  // A cancel's question went with the CANCEL; others ask once per ticket.
  if (first && node.connected && !request.cancelling) fx.ask.push_back(ticket);
  return fx;
}

LookupBook::Effects LookupBook::on_timeout(std::uint64_t id, const NodeView& node) {
  Effects fx;
  auto t = ticket_of_.find(id);
  if (t == ticket_of_.end()) return fx;
  std::string ticket = t->second;
  auto it = by_ticket_.find(ticket);
  if (it == by_ticket_.end()) return fx;
  auto& list = it->second;
  for (auto p = list.begin(); p != list.end(); ++p) {
    if (p->id != id) continue;
    Pending pending = std::move(*p);
    list.erase(p);
    if (list.empty()) by_ticket_.erase(it);
    forget(pending);
    JobReport local = node.local(ticket);
    std::vector<Ready> ready;
    if (local.state == JobState::kUnknown && pending.last_known) {
      // A wait whose seconds ran out: as `r` would answer now.
      ready.push_back({std::move(pending.done), *pending.last_known, false});
    } else {
      // Unknown here, and no answer from the proxy, or one that said the job
      // may still be on its way: say it could not be checked.
      bool unchecked =
          local.state == JobState::kUnknown && (!pending.proxy_answered || pending.origin_away);
      bool unreachable = unchecked || !node.connected;
      JobReport report =
          node.connected ? std::move(local)
                         : without_proxy(std::move(local), node.unforwarded(ticket));
      ready.push_back({std::move(pending.done), std::move(report), unreachable});
    }
    answer(ready);
    return fx;
  }
  return fx;
}

LookupBook::Effects LookupBook::on_report(const JobReport& report, const NodeView& node,
                                          TimeMs now) {
  Effects fx;
  auto it = by_ticket_.find(report.ticket);
  if (it == by_ticket_.end()) return fx;
  bool final = settled(report);
  // The proxy has never heard of a ticket that is still on its way to it:
  // then this node's own record is the better answer (read only then).
  std::optional<JobReport> local;
  if (report.state == JobState::kUnknown) local = node.local(report.ticket);
  // Nobody knows it. A ticket just given by another node may still be on its
  // way to the proxy, so a patient lookup asks again and answers "unknown"
  // only when that lasts kUnknownGraceMs; it never hangs.
  bool unknown = local && local->state == JobState::kUnknown;
  // The proxy has not received it, and names the node whose tickets look
  // like it: that node is away, so the job may be on its way from there. A
  // wait goes on waiting (its grace does not run); `r`, `status` and
  // `cancel` say it cannot be checked now, never that it is unknown.
  bool origin_away = unknown && !report.node.empty();
  std::vector<std::pair<Pending, bool>> done;  // with whether it could not be checked
  auto& list = it->second;
  for (auto p = list.begin(); p != list.end();) {
    bool give_up = false;
    bool asking_again = false;
    p->origin_away = origin_away;
    if (origin_away) {
      p->unknown_since = 0;
      asking_again = p->wait;
    } else if (unknown && p->patient) {
      if (p->unknown_since == 0) p->unknown_since = now;
      give_up = now - p->unknown_since >= kUnknownGraceMs;
      asking_again = !give_up;
    } else {
      p->unknown_since = 0;
    }
    if (!asking_again && (!p->wait || final || give_up)) {
      done.emplace_back(std::move(*p), origin_away);
      p = list.erase(p);
    } else {
      if (report.state != JobState::kUnknown) {
        if (p->last_known) {
          *p->last_known = report;
        } else {
          p->last_known = std::make_unique<JobReport>(report);
        }
      }
      p->proxy_answered = true;
      ++p;
    }
  }
  if (list.empty()) by_ticket_.erase(it);
  JobReport plain_unknown;  // without the node named above
  plain_unknown.ticket = report.ticket;
  const JobReport& best = local && !unknown ? *local : unknown ? plain_unknown : report;
  std::vector<Ready> ready;
  for (auto& [p, unchecked] : done) {
    if (p.timed) fx.disarm.push_back(p.id);
    forget(p);
    ready.push_back({std::move(p.done), best, unchecked});
  }
  answer(ready);
  return fx;
}

LookupBook::Effects LookupBook::on_proxy_lost(const NodeView& node) {
  Effects fx;
  if (!node.ever_joined) return fx;
  std::vector<std::pair<std::string, Pending>> lost;
  for (auto it = by_ticket_.begin(); it != by_ticket_.end();) {
    auto& list = it->second;
    for (auto p = list.begin(); p != list.end();) {
      if (p->wait) {
        // Its grace counts again from the next proxy's first "unknown":
        // while this node was away, the node that gave the ticket may have
        // been away too.
        p->unknown_since = 0;
        ++p;
        continue;
      }
      lost.emplace_back(it->first, std::move(*p));
      p = list.erase(p);
    }
    if (list.empty()) {
      by_ticket_.erase(it++);
    } else {
      ++it;
    }
  }
  std::vector<Ready> ready;
  for (auto& [ticket, p] : lost) {
    if (p.timed) fx.disarm.push_back(p.id);
    forget(p);
    ready.push_back(
        {std::move(p.done), without_proxy(node.local(ticket), node.unforwarded(ticket)), true});
  }
  answer(ready);
  return fx;
}

std::vector<std::string> LookupBook::tickets() const {
  std::vector<std::string> out;
  out.reserve(by_ticket_.size());
  for (const auto& [t, list] : by_ticket_) out.push_back(t);
  return out;
}

std::vector<std::string> LookupBook::asking_again() const {
  std::vector<std::string> out;
  for (const auto& [t, list] : by_ticket_) {
    for (const auto& p : list) {
      if (p.unknown_since != 0 || p.origin_away) {
        out.push_back(t);
        break;
      }
    }
  }
  return out;
}

}  // namespace jc::client
