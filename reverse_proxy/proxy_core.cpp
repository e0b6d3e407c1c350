#include "reverse_proxy/proxy_core.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <unordered_set>

#include "protocol/batching.h"
#include "protocol/codec.h"

namespace jc::proxy {

using protocol::JobEvent;
using protocol::JobReport;
using protocol::JobState;

ProxyCore::ProxyCore(storage::Store& store, ProxyOptions options)
    : staged_(store),
      options_(std::move(options)),
      log_(log::get("proxy")),
      book_(staged_, names_, log_),
      notices_(staged_),
      expiry_(staged_, book_, options_.retention, log_),
      members_(staged_) {}

Status ProxyCore::recover(TimeMs now) {
  std::size_t held = 0, pending = 0;
  bool corrupt = false;
  Status s = book_.recover(
      now,
      [&](const std::string& node_id, const std::string& ticket) {
        auto& node = nodes_[node_id];
        node.held.emplace(ticket);
        node.lost_since = now;
        ++held;
      },
      corrupt);
  if (!s.ok()) return s;
  for (const auto& [ticket, job] : book_) origins_.recovered(ticket, job.origin);
  origins_.finish_recovery();
  if (s = notices_.recover(pending); !s.ok()) return s;
  if (s = members_.recover(); !s.ok()) return s;
  if (s = expiry_.recover(now); !s.ok()) return s;
  log_->info("recovered queued={} held={} nodes={} unacknowledged_results={}{}", book_.ready(),
             held, nodes_.size(), pending, corrupt ? " (some records unreadable)" : "");
  return Status::Ok();
}

SweepOutcome ProxyCore::sweep(TimeMs now) {
  clock_ = now;
  // An origin that has not acknowledged a result yet (it was away) keeps
  // its notice: it is told the job expired, forgets its record and
  // acknowledges that, which removes the notice (on_ack).
  SweepOutcome out = expiry_.sweep(now, kSweepBatch);
  stats_.expired += out.removed;
  return out;
}

void ProxyCore::requeue(const std::string& ticket, const std::string& reason) {
  auto it = book_.find(ticket);
  if (it == book_.end()) return;
  JobRecord rec;
  if (!book_.load_active(ticket, rec)) return;
  if (rec.attempts >= options_.max_attempts) {
    protocol::JobResult failed;
    failed.state = JobState::kFailed;
    failed.node = rec.node;
    failed.attempt = rec.attempts;
    failed.text = fmt::format("gave up after {} attempts on nodes {}; last: {}", rec.attempts,
                              fmt::join(rec.nodes_tried, ","), reason);
    log_->warn("job failed ticket={} attempts={} reason=\"{}\"", ticket, rec.attempts, reason);
    // Not the ticket: /api/state is open, and a ticket reads its job.
    note(fmt::format("a job FAILED after {} attempts (its ticket is in the log)", rec.attempts));
    finish_job(ticket, std::move(rec), failed, JobEvent::kGiveUp);
    return;
  }
  log_->debug("requeue ticket={} from={} attempts={}", ticket, rec.node, rec.attempts);
  to_queue(it, rec);
  ++stats_.redispatched;
}

std::optional<TimeMs> ProxyCore::next_delayed() const { return book_.next_delayed(); }

// Back in the queue (its --delay, if any, ran before it was dispatched).
void ProxyCore::to_queue(ActiveIt it, JobRecord& rec) {
  const std::string held_by = rec.node;
  if (auto refused = protocol::advance(rec.state, JobEvent::kNodeLost)) {
    log_->error("{} ticket={}", *refused, it->first);
    return;
  }
  if (!held_by.empty()) nodes_[held_by].held.erase(it->first.view());
  rec.node.clear();
  book_.store_active(it, rec);
  it->second.state = JobState::kQueued;
  it->second.node = 0;
  it->second.attempts = rec.attempts;
  book_.put_back(it);
}

bool ProxyCore::to_node(ActiveIt it, JobRecord& rec, const std::string& node) {
  if (auto refused = protocol::advance(rec.state, JobEvent::kDispatch)) {
    log_->error("{} ticket={} node={}", *refused, it->first, node);
    return false;
  }
  book_.drop_cached_spec(it->second);
  rec.node = node;
  book_.store_dispatched(it, rec);
  it->second.state = JobState::kRunning;
  it->second.node = names_.intern(node);
  it->second.attempts = rec.attempts;
  nodes_[node].held.insert(it->first);
  return true;
}

bool ProxyCore::on_message(const std::string& node_id, protocol::Message m, TimeMs now) {
  auto node = nodes_.find(node_id);
  if (node == nodes_.end() || !node->second.connected) return false;
  node->second.last_heard = now;
  clock_ = now;
  std::visit(
      [&](auto& msg) {
        using T = std::decay_t<decltype(msg)>;
        if constexpr (std::is_same_v<T, protocol::Submit>) {
          on_submit(node_id, msg, now);
        } else if constexpr (std::is_same_v<T, protocol::Ack>) {
          on_ack(node_id, msg);
        } else if constexpr (std::is_same_v<T, protocol::Info>) {
          node->second.info = msg;
        } else if constexpr (std::is_same_v<T, protocol::RequestOfRes>) {
          on_requests(node_id, msg.tickets);
        } else if constexpr (std::is_same_v<T, protocol::Result>) {
          on_reports(node_id, msg.reports, now);
        } else if constexpr (std::is_same_v<T, protocol::ResReq>) {
          on_reports(node_id, msg.reports, now);
          on_requests(node_id, msg.requests);
        } else if constexpr (std::is_same_v<T, protocol::Leave>) {
          on_leave(node_id, msg);
        } else if constexpr (std::is_same_v<T, protocol::Cancel>) {
          on_cancel(node_id, msg.tickets, msg.requester);
        } else if constexpr (std::is_same_v<T, protocol::StatsRequest>) {
          send(node_id, protocol::StatsReply{msg.id, stats(now)});
        } else {
          log_->warn("unexpected message node={} type={}", node_id, protocol::message_name(m));
        }
      },
      m);
  return std::holds_alternative<protocol::Submit>(m) || std::holds_alternative<protocol::Result>(m) ||
         std::holds_alternative<protocol::ResReq>(m) || std::holds_alternative<protocol::Leave>(m);
}

void ProxyCore::on_submit(const std::string& node, protocol::Submit& m, TimeMs now) {
  protocol::Ack ack{protocol::AckKind::kSubmitted, {}, {}};
  std::unordered_set<std::string> local(m.local.begin(), m.local.end());
  std::unordered_set<std::string> shown(m.local_finished.begin(), m.local_finished.end());
  // A SUBMIT carries the tickets its node issued: their prefix is its.
  if (!m.jobs.empty()) origins_.note(m.jobs.front().ticket, names_.intern(node));
  for (std::size_t i = 0; i < m.jobs.size(); ++i) {
    protocol::JobSpec& spec = m.jobs[i];
    if (!protocol::is_valid_ticket(spec.ticket)) {
      log_->warn("bad ticket in submit node={} ticket={}", node,
                 protocol::escape_sample(spec.ticket));
      continue;
    }
    ack.tickets.push_back(spec.ticket);
    // A node re-sends what it had not seen acknowledged: keep the first copy.
    auto [entry, added] = book_.add(spec.ticket);
    if (!added) continue;
    if (!m.first &&
        (book_.has_finished(spec.ticket) || expired_ticket(spec.ticket))) {
      book_.erase_new(entry);
      continue;
    }
    // Run by its origin node while the proxy was away (and its result shown
    // there already): asked of the sets by the spec's ticket, which moves
    // with the spec below; from here on the map's key names the job.
    const bool adopted = local.count(spec.ticket) > 0;
    const bool pinned = adopted && shown.count(spec.ticket) > 0;
    const std::string_view ticket = entry->first;
    // The spec's one write: from now on the job's records hold its head.
    // Its record is the bytes it came in, when it came in a frame.
    std::string spec_bytes = i < m.spec_records.size() ? std::move(m.spec_records[i])
                                                        : protocol::to_record(spec);
    // Kept for its dispatch when that comes soon: not for a job run by its
    // origin (adopted below) or waiting out a --delay.
    book_.write_spec(ticket, std::move(spec_bytes), entry->second,
                     !adopted && spec.not_before_ms <= now);
    const std::uint64_t seq = book_.next_seq();
    book_.describe(entry->second, spec, seq);
    ++stats_.submitted;
    if (adopted) {
      // Run by its origin node while the proxy was away: it holds the job.
      JobRecord rec;
      rec.pinned = pinned;
      rec.spec = std::move(spec);
      rec.seq = seq;
      rec.attempts = 1;
      rec.nodes_tried.push_back(node);
      entry->second.pinned = rec.pinned;
      to_node(entry, rec, node);
      log_->info("adopted ticket={} run locally by={}{}", ticket, node,
                 rec.pinned ? " (its result shown there already)" : "");
      continue;
    }
    book_.note_queued(entry);
    book_.enqueue(entry, now);
    if (log_->should_log(spdlog::level::debug)) {  // describe() formats: only when it shows
      log_->debug("queued ticket={} origin={} job=\"{}\"", ticket, spec.origin, spec.describe());
    }
  }
  staged_.require_sync();
  send(node, std::move(ack));
  update_admission();
}

void ProxyCore::on_ack(const std::string& node, const protocol::Ack& m) {
  if (m.kind != protocol::AckKind::kResults) return;
  notices_.acknowledged(node, m.tickets);
}

void ProxyCore::on_reports(const std::string& node, std::vector<JobReport>& reports, TimeMs now) {
  protocol::Ack ack{protocol::AckKind::kResults, {}, {}};
  for (auto& r : reports) {
    if (protocol::is_final(r.state) && r.has_result) {
      accept_result(node, r, ack);
    } else if (r.state == JobState::kUnknown) {
      auto it = book_.find(r.ticket);
      if (it != book_.end() && it->second.state == JobState::kRunning &&
          it->second.node == names_.intern(node)) {
        requeue(r.ticket, "node " + node + " does not have it");
      }
    }
  }
  if (!ack.tickets.empty() || !ack.superseded.empty()) {
    staged_.require_sync();
    send(node, std::move(ack));
  }
  if (auto it = nodes_.find(node); it != nodes_.end()) {
    it->second.rate.update(it->second.finished, now);
  }
  stats_.finish_rate.update(stats_.finished, now);
}

void ProxyCore::accept_result(const std::string& node, JobReport& report, protocol::Ack& ack) {
  const std::string& t = report.ticket;
  // Who produced a result is the proxy's to say, not the report's.
  report.result.node = node;
  JobRecord rec;
  if ((book_.find(t) != book_.end()) && book_.load_active(t, rec)) {
    // A result counts only from the node the proxy gave the job to, for
    // that attempt: a node cannot finalize what it was never given.
    std::uint32_t attempt = report.result.attempt;
    bool given = attempt >= 1 && attempt <= rec.nodes_tried.size() &&
                 rec.nodes_tried[attempt - 1] == node;
    if (!given) {
      log_->warn(
          "refused result ticket={} node={} attempt={} reason=\"the job was not given to this "
          "node for this attempt\"",
          t, node, attempt);
      ack.superseded.push_back(t);  // the node forgets it
      return;
    }
    auto& entry = nodes_[node];
    entry.finished++;
    entry.rate.last_result = clock_;
    finish_job(t, std::move(rec), std::move(report.result));
    ack.tickets.push_back(std::move(report.ticket));  // `t` is not read after this
    return;
  }
  // Already final: the same result again is acknowledged, another run's is not.
  bool same = book_.load_finished(t, rec) && rec.result.node == report.result.node &&
              rec.result.attempt == report.result.attempt;
  (same ? ack.tickets : ack.superseded).push_back(t);
  if (!same) log_->info("result superseded ticket={} node={}", t, node);
}

void ProxyCore::finish_job(const std::string& ticket, JobRecord rec, protocol::JobResult result,
                           JobEvent event) {
  const JobState from = rec.state;
  if (auto refused = protocol::advance(rec.state, event, result.state)) {
    log_->error("{} ticket={}", *refused, ticket);
    return;
  }
  if (from == JobState::kRunning) {
    nodes_[rec.node].held.erase(ticket);
  } else {
    book_.unqueue(rec);
  }
  rec.result = std::move(result);
  if (rec.result.end_ms == 0) rec.result.end_ms = clock_;  // ended here (cancelled, given up)
  // A pinned job's result was shown by its node when it ended: it counts
  // from then, as that node counts it, or it would show again after expiring.
  rec.result.final_ms = rec.pinned ? rec.result.end_ms : clock_;
  if (!rec.result.node.empty()) rec.node = rec.result.node;
  book_.store_finished(ticket, rec);
  expiry_.index(ticket, rec.result.final_ms, rec.spec.origin);
  notices_.owe(rec.spec.origin, ticket);
  ++stats_.finished;
  ++stats_.finished_by_state[rec.state];
  ProxyStats::RecentJob& recent = stats_.next_recent_job();
  recent.ticket.assign(ticket);
  recent.state.assign(protocol::to_string(rec.state));
  recent.verdict.assign(rec.result.verdict);
  recent.node.assign(rec.result.node);
  recent.owner.assign(rec.spec.owner);
  recent.language_id = rec.spec.is_api ? rec.spec.api.language_id : 0;
  recent.cpu_ms = rec.result.cpu_ms;
  recent.peak_kb = rec.result.peak_kb;
  recent.wall_ms = rec.result.end_ms - rec.result.start_ms;
  recent.finished_ms = rec.result.final_ms;
  log_->debug("finished ticket={} state={} node={} attempt={}", ticket,
              protocol::to_string(rec.state), rec.result.node, rec.result.attempt);
  std::string origin = rec.spec.origin;
  notify_result(ticket, origin, final_report(ticket, std::move(rec)));
}

void ProxyCore::notify_result(const std::string& ticket, const std::string& origin,
                              JobReport report) {
  auto connected = [&](const std::string& n) {
    auto node = nodes_.find(n);
    return node != nodes_.end() && node->second.connected;
  };
  if (!notices_.watched(ticket)) {
    if (connected(origin)) outbox_.push_result(origin, std::move(report));
    return;
  }
  for (const auto& n : notices_.recipients(ticket, origin)) {
    if (connected(n)) outbox_.push_result(n, report);
  }
}

void ProxyCore::on_cancel(const std::string& node, const std::vector<std::string>& tickets,
                          const std::string& requester) {
  protocol::Result reply;
  for (const auto& t : tickets) {
    auto it = book_.find(t);
    if (!requester.empty()) {
      // Another client's job: not cancelled, and answered as unknown.
      JobReport seen = report_of(t);
      if (seen.owner != requester && seen.state != JobState::kExpired) {
        if (seen.state == JobState::kUnknown) {
          reply.reports.push_back(std::move(seen));  // it may name its node, away
          continue;
        }
        log_->warn("refused cancel ticket={} by={} for={}: not the job's owner", t, node,
                   requester);
        JobReport unknown;
        unknown.ticket = t;
        reply.reports.push_back(std::move(unknown));
        continue;
      }
    }
    if (it != book_.end() && it->second.state == JobState::kQueued) {
      JobRecord rec;
      if (book_.load_active(t, rec)) {
        protocol::JobResult r = protocol::cancelled_before_run(rec.spec.kind);
        log_->info("cancelled ticket={} while queued by={}", t, node);
        finish_job(t, std::move(rec), std::move(r), JobEvent::kCancel);
        staged_.require_sync();
      }
    } else if (it != book_.end()) {
      // Running: its node kills it and reports it CANCELLED.
      const std::string& runner = name_of(it->second.node);
      log_->info("cancel ticket={} running on={} by={}", t, runner, node);
      if (nodes_[runner].connected) send(runner, protocol::Cancel{{t}});
    }
    JobReport r = report_of(t);
    if (!protocol::is_final(r.state) && r.state != JobState::kUnknown &&
        r.state != JobState::kExpired) {
      notices_.watch(t, node);
    }
    reply.reports.push_back(std::move(r));
  }
  send(node, std::move(reply));
}

void ProxyCore::on_requests(const std::string& node, const std::vector<std::string>& tickets) {
  if (tickets.empty()) return;
  protocol::Result reply;
  for (const auto& t : tickets) {
    JobReport r = report_of(t);
    if (!protocol::is_final(r.state) && r.state != JobState::kUnknown &&
        r.state != JobState::kExpired && !is_origin(t, node)) {
      notices_.watch(t, node);
    }
    reply.reports.push_back(std::move(r));
  }
  send(node, std::move(reply));
}

bool ProxyCore::is_origin(const std::string& ticket, const std::string& node) const {
  auto it = book_.find(ticket);
  return it != book_.end() && name_of(it->second.origin) == node;
}

JobReport ProxyCore::report_of(const std::string& ticket, TimeMs now) const {
  TimeMs at = std::max(clock_, now);
  JobReport r;
  r.ticket = ticket;
  if (auto it = book_.find(ticket); it != book_.end()) {
    r.state = it->second.state;
    r.node = name_of(it->second.node);
    r.attempts = it->second.attempts;
    r.owner = name_of(it->second.owner);
    r.priority = it->second.priority;
    if (r.state == JobState::kQueued) r.not_before_ms = it->second.not_before;
    if (r.state == JobState::kQueued) {
      r.queue_position = book_.position(it->second);
      r.waiting_for = members_.waiting_for(names_.needs_list(it->second.needs));
      if (stats_.finish_rate.per_second > 0) {
        r.estimated_wait_ms =
            static_cast<std::int64_t>((r.queue_position + 1) * 1000.0 / stats_.finish_rate.per_second);
      }
    }
    return r;
  }
  JobRecord rec;
  if (book_.load_finished(ticket, rec)) {
    // Expired, though not yet swept: as every process answers from now on.
    if (options_.retention.expired(rec.result.final_time(), at)) return protocol::expired_report(ticket);
    return final_report(ticket, std::move(rec));
  }
  if (expired_ticket(ticket)) return protocol::expired_report(ticket);
  if (auto origin = origins_.origin_of(ticket)) {
    const std::string& name = name_of(*origin);
    auto node = nodes_.find(name);
    if (node == nodes_.end() || !node->second.connected) r.node = name;
  }
  return r;
}

JobReport ProxyCore::final_report(const std::string& ticket, JobRecord&& rec) {
  JobReport r;
  r.ticket = ticket;
  r.state = rec.state;
  r.node = std::move(rec.node);
  r.attempts = rec.attempts;
  r.has_result = true;
  r.result = std::move(rec.result);
  r.owner = std::move(rec.spec.owner);
  return r;
}

std::optional<JobRecord> ProxyCore::find_job(const std::string& ticket, TimeMs now) const {
  JobRecord rec;
  bool found = book_.load_active(ticket, rec) ||
               (book_.load_finished(ticket, rec) &&
                !options_.retention.expired(rec.result.final_time(), std::max(clock_, now)));
  if (!found) return std::nullopt;
  if (!book_.load_spec(ticket, rec)) log_->error("no spec record ticket={}", ticket);
  return rec;
}

bool ProxyCore::expired(const std::string& ticket, TimeMs now) const {
  return report_of(ticket, now).state == JobState::kExpired;
}

void ProxyCore::note(std::string event) { stats_.note(clock_, std::move(event)); }

}  // namespace jc::proxy
