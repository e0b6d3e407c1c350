#include "reverse_proxy/proxy_core.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "protocol/auth.h"
#include "protocol/batching.h"
#include "protocol/codec.h"
#include "reverse_proxy/balancer.h"

namespace jc::proxy {

using protocol::JobEvent;
using protocol::JobReport;
using protocol::JobState;

namespace {
std::string active_key(const std::string& t) { return "a/" + t; }
std::string finished_key(const std::string& t) { return "f/" + t; }
std::string spec_key(const std::string& t) { return "s/" + t; }
std::string notify_key(const std::string& origin, const std::string& t) {
  return "n/" + origin + "/" + t;
}
std::string watermark_key(std::string_view prefix) { return "w/" + std::string(prefix); }
constexpr std::string_view kIndexedKey = "m/expiry_index";
}  // namespace

ProxyCore::ProxyCore(storage::Store& store, ProxyOptions options)
    : staged_(store), options_(std::move(options)), log_(log::get("proxy")) {}

Status ProxyCore::recover(TimeMs now) {
  std::size_t held = 0;
  bool corrupt = false;
  Status s = staged_.store().scan("a/", [&](std::string_view key, std::string_view value) {
    JobRecord rec;
    if (!protocol::from_record(value, rec)) {
      log_->error("unreadable job record key={}", protocol::escape_sample(key));
      corrupt = true;
      return true;
    }
    QueueKey qkey{rec.spec.priority, rec.seq};
    auto [entry, inserted] = active_.insert_or_assign(
        std::string(key.substr(2)), ActiveJob{rec.state, intern(rec.node), rec.attempts, qkey, intern(rec.spec.owner)});
    entry->second.needs = needs_id(rec.spec.needs);
    const std::string& ticket = entry->first;
    entry->second.pinned = rec.pinned;
    next_seq_ = std::max(next_seq_, rec.seq + 1);
    if (rec.state == JobState::kRunning) {
      auto& node = nodes_[rec.node];
      node.held.insert(ticket);
      node.lost_since = now;
      ++held;
    } else {
      entry->second.not_before = rec.spec.not_before_ms;
      enqueue(entry, now);
    }
    return true;
  });
  if (!s.ok()) return s;
  std::size_t pending = 0;
  s = staged_.store().scan("n/", [&](std::string_view key, std::string_view) {
    auto rest = key.substr(2);
    auto slash = rest.find('/');
    if (slash != std::string_view::npos) {
      unnotified_[std::string(rest.substr(0, slash))].insert(std::string(rest.substr(slash + 1)));
      ++pending;
    }
    return true;
  });
  if (!s.ok()) return s;
  s = staged_.store().scan("w/", [&](std::string_view key, std::string_view value) {
    try {
      expired_upto_[std::string(key.substr(2))] = std::stoull(std::string(value));
    } catch (const std::exception&) {
      log_->error("unreadable expiry mark key={}", protocol::escape_sample(key));
    }
    return true;
  });
  if (!s.ok()) return s;
  s = staged_.store().scan("o/", [&](std::string_view key, std::string_view value) {
    auto& offers = known_offers_[std::string(key.substr(2))];
    while (!value.empty()) {
      auto comma = value.find(',');
      offers.emplace(value.substr(0, comma));
      value.remove_prefix(comma == std::string_view::npos ? value.size() : comma + 1);
    }
    return true;
  });
  if (!s.ok()) return s;
  if (s = index_finished_records(now); !s.ok()) return s;
  log_->info("recovered queued={} held={} nodes={} unacknowledged_results={}{}", queue_.size(),
             held, nodes_.size(), pending, corrupt ? " (some records unreadable)" : "");
  return Status::Ok();
}

Status ProxyCore::index_finished_records(TimeMs now) {
  // Finished records written before the expiry index (storage format 4)
  // enter it once, from their end, or from now when that is not known.
  std::string marker;
  if (staged_.get(kIndexedKey, &marker).ok()) return Status::Ok();
  std::size_t indexed = 0;
  Status s = staged_.store().scan("f/", [&](std::string_view key, std::string_view value) {
    JobRecord rec;
    std::string ticket(key.substr(2));
    std::int64_t final_ms = protocol::from_record(value, rec) ? rec.result.final_time() : 0;
    staged_.put(protocol::expiry_key(final_ms > 0 ? final_ms : now, ticket), rec.spec.origin);
    ++indexed;
    return true;
  });
  if (!s.ok()) return s;
  staged_.put(std::string(kIndexedKey), "1");
  if (indexed > 0) log_->info("finished jobs entered in the expiry index count={}", indexed);
  return Status::Ok();
}

SweepOutcome ProxyCore::sweep(TimeMs now) {
  SweepOutcome out;
  clock_ = now;
  if (!options_.retention.enabled()) return out;
  std::vector<std::pair<std::string, std::string>> gone;  // expiry key, ticket
  staged_.store().scan(protocol::kExpiryPrefix, [&](std::string_view key, std::string_view value) {
    auto parsed = protocol::parse_expiry_key(key);
    if (parsed && parsed->first == 0) {
      // No final time known (a record of an earlier build): it counts from now.
      staged_.del(std::string(key));
      staged_.put(protocol::expiry_key(now, parsed->second), std::string(value));
      return true;
    }
    if (parsed && !options_.retention.expired(parsed->first, now)) return false;
    if (gone.size() >= kSweepBatch) {
      out.more = true;
      return false;
    }
    std::string ticket = parsed ? std::string(parsed->second) : std::string();
    staged_.del(std::string(key));
    if (!ticket.empty()) {
      staged_.del(finished_key(ticket));
      staged_.del(spec_key(ticket));
      // An origin that has not acknowledged the result yet (it was away)
      // keeps its notice: it is told the job expired, forgets its record and
      // acknowledges that, which removes the notice (on_ack).
      if (auto parts = protocol::parse_ticket(ticket)) {
        auto& upto = expired_upto_[std::string(parts->prefix)];
        if (parts->counter > upto) {
          upto = parts->counter;
          staged_.put(watermark_key(parts->prefix), std::to_string(upto));
        }
      }
    }
    gone.emplace_back(std::string(key), std::move(ticket));
    return true;
  });
  if (gone.empty()) return out;
  out.removed = gone.size();
  stats_.expired += gone.size();
  // The index's range, and the finished records' (tickets scatter over it).
  out.compact.emplace_back(gone.front().first, gone.back().first);
  auto [lo, hi] = std::minmax_element(gone.begin(), gone.end(),
                                      [](const auto& a, const auto& b) { return a.second < b.second; });
  out.compact.emplace_back(finished_key(lo->second), finished_key(hi->second));
  out.compact.emplace_back(spec_key(lo->second), spec_key(hi->second));
  log_->debug("swept expired jobs count={} more={}", out.removed, out.more);
  return out;
}

bool ProxyCore::expired_ticket(const std::string& ticket) const {
  auto parts = protocol::parse_ticket(ticket);
  if (!parts) return false;
  auto it = expired_upto_.find(std::string(parts->prefix));
  return it != expired_upto_.end() && parts->counter <= it->second;
}

protocol::Welcome ProxyCore::on_hello(const protocol::Hello& hello, const std::string& peer,
                                      TimeMs now, const std::string& nonce) {
  protocol::Welcome w;
  w.proxy_id = options_.proxy_id;
  clock_ = now;
  auto refuse = [&](std::string reason) {
    log_->warn("refused node={} peer={} reason=\"{}\"", hello.node_id, peer, reason);
    note(fmt::format("refused node {} from {}: {}", hello.node_id, peer, reason));
    w.reason = std::move(reason);
    return w;
  };
  if (hello.version != protocol::kProtocolVersion) {
    return refuse(
        fmt::format("protocol version {} is not {}", hello.version, protocol::kProtocolVersion));
  }
  if (!protocol::is_valid_node_id(hello.node_id)) {
    return refuse("node id must be 1 to 64 characters of [A-Za-z0-9._-]");
  }
  if (hello.slots == 0) return refuse("a node needs at least one slot");
  if (!options_.secret.empty() &&
      (nonce.empty() ||
       !protocol::verify_join_proof(options_.secret, nonce, hello.node_id, hello.auth))) {
    return refuse(hello.auth.empty()
                      ? "this cluster needs CLUSTER_SECRET and the node gave no proof"
                      : "wrong CLUSTER_SECRET proof");
  }
  auto existing = nodes_.find(hello.node_id);
  if (existing != nodes_.end() && existing->second.connected) {
    return refuse(fmt::format("node id {} is already connected", hello.node_id));
  }
  std::size_t connected = std::count_if(nodes_.begin(), nodes_.end(),
                                        [](const auto& kv) { return kv.second.connected; });
  if (connected >= options_.max_nodes) {
    return refuse(fmt::format("MAX_NUM_NODES={} nodes are already connected", options_.max_nodes));
  }
  auto& node = nodes_[hello.node_id];
  node.connected = true;
  node.draining = false;
  node.slots = hello.slots;
  node.address = hello.client_address;
  node.api_address = hello.api_address.size() <= 300 ? hello.api_address : "";
  // Shown on the dashboard and in every node's `stats`: only the words a
  // node writes ("full", "user,cgroup", ...).
  bool plain = hello.sandbox.size() <= 64 &&
               std::all_of(hello.sandbox.begin(), hello.sandbox.end(),
                           [](char c) { return (c >= 'a' && c <= 'z') || c == ','; });
  node.sandbox = plain ? hello.sandbox : "?";
  node.cpus = hello.cpus == "pinned" || hello.cpus == "shared" ? hello.cpus : "?";
  // What it runs: short words of a plain alphabet (they reach every node's
  // stats and the API), at most a few thousand.
  node.offers.clear();
  for (const auto& o : hello.offers) {
    bool plain = !o.empty() && o.size() <= 100 &&
                 std::all_of(o.begin(), o.end(), [](char c) {
                   return std::isalnum(static_cast<unsigned char>(c)) || c == ':' || c == '.' ||
                          c == '_' || c == '-' || c == '+';
                 });
    if (plain && node.offers.size() < 4096) node.offers.insert(o);
  }
  if (auto& known = known_offers_[hello.node_id]; known != node.offers) {
    known = node.offers;
    std::string list;
    for (const auto& o : known) list += (list.empty() ? "" : ",") + o;
    staged_.put("o/" + hello.node_id, list);
  }
  node.last_heard = now;
  w.accepted = true;
  w.result_ttl_ms = options_.retention.ttl_ms;
  w.heartbeat_ms = options_.heartbeat_ms;
  w.proxies = options_.proxies;
  reconcile(hello.node_id, hello, w);
  note(fmt::format("node {} joined from {} with {} slots", hello.node_id, peer, hello.slots));
  log_->info("node joined node={} peer={} slots={} held={} finished={} dropped={}", hello.node_id,
             peer, hello.slots, hello.held.size(), hello.finished.size(), w.drop.size());
  send(hello.node_id, w);
  send_offers(hello.node_id);
  // Results its clients have not acknowledged yet.
  if (auto it = unnotified_.find(hello.node_id); it != unnotified_.end()) {
    protocol::Result r;
    for (const auto& t : it->second) {
      r.reports.push_back(report_of(t));
      notify_wait_[t] = kRenotifyRounds;
    }
    if (!r.reports.empty()) send(hello.node_id, std::move(r));
  }
  return w;
}

void ProxyCore::reconcile(const std::string& node_id, const protocol::Hello& hello,
                          protocol::Welcome& welcome) {
  auto& node = nodes_[node_id];
  std::unordered_set<std::string> claimed;
  // Jobs it still holds, and jobs it finished whose results are on the way:
  // both stay with it unless they were given to another node meanwhile.
  auto claim = [&](const std::string& t, bool finished) {
    claimed.insert(t);
    auto it = active_.find(t);
    bool elsewhere = it != active_.end() && it->second.state == JobState::kRunning &&
                     it->second.node != intern(node_id);
    if (it == active_.end() || elsewhere) {
      // A held copy must stop; a finished one's result is offered anyway
      // (the first final result wins).
      if (!finished) welcome.drop.push_back(t);
      return;
    }
    if (it->second.state == JobState::kQueued) {
      // Given back to the queue while the node was away, and not yet given
      // to anyone else: it stays where it is.
      JobRecord rec;
      if (!load_record(active_key(t), rec)) return;
      queue_.erase(it->second.key, it->second.needs);
      to_node(it, rec, node_id);
    }
    node.held.insert(t);
  };
  for (const auto& t : hello.held) claim(t, false);
  for (const auto& t : hello.finished) claim(t, true);
  std::vector<std::string> lost;
  for (const auto& t : node.held) {
    // A pinned job (run there while the proxy was away, its result shown)
    // comes back by SUBMIT rather than HELLO, with its result after it.
    auto it = active_.find(t);
    if (!claimed.count(t) && !(it != active_.end() && it->second.pinned)) lost.push_back(t);
  }
  for (const auto& t : lost) requeue(t, "node came back without it");
}

void ProxyCore::on_disconnect(const std::string& node_id, TimeMs now) {
  auto it = nodes_.find(node_id);
  if (it == nodes_.end() || !it->second.connected) return;
  it->second.connected = false;
  it->second.lost_since = now;
  clock_ = now;
  note(fmt::format("node {} lost, holding {} jobs", node_id, it->second.held.size()));
  log_->info("node left node={} held={}", node_id, it->second.held.size());
  release_node_jobs(node_id, "node " + node_id + " was lost");
  send_offers();
}

void ProxyCore::release_node_jobs(const std::string& node_id, const std::string& reason) {
  auto& node = nodes_[node_id];
  std::vector<std::string> jobs;
  for (const auto& t : node.held) {
    // Its result, shown to its clients already, is on that node: it waits
    // for the node rather than run again and give a second result.
    if (auto it = active_.find(t); it != active_.end() && it->second.pinned) continue;
    jobs.push_back(t);
  }
  for (const auto& t : jobs) requeue(t, reason);
  if (!jobs.empty()) {
    note(fmt::format("{} jobs re-dispatched: {}", jobs.size(), reason));
    log_->info("requeued node={} jobs={} reason=\"{}\"", node_id, jobs.size(), reason);
  }
}

void ProxyCore::requeue(const std::string& ticket, const std::string& reason) {
  auto it = active_.find(ticket);
  if (it == active_.end()) return;
  JobRecord rec;
  if (!load_record(active_key(ticket), rec)) return;
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

void ProxyCore::enqueue(ActiveMap::iterator it, TimeMs now) {
  if (it->second.not_before > now) {
    delayed_.emplace(std::make_pair(it->second.not_before, it->second.key.seq), &it->first);
  } else {
    queue_.push(it->first, it->second.key, it->second.needs);
  }
}

void ProxyCore::promote_due(TimeMs now) {
  while (!delayed_.empty() && delayed_.begin()->first.first <= now) {
    const std::string& ticket = *delayed_.begin()->second;
    delayed_.erase(delayed_.begin());
    auto it = active_.find(ticket);
    if (it != active_.end() && it->second.state == JobState::kQueued) {
      queue_.push(it->first, it->second.key, it->second.needs);
    }
  }
}

std::optional<TimeMs> ProxyCore::next_delayed() const {
  if (delayed_.empty()) return std::nullopt;
  return delayed_.begin()->first.first;
}

// Back in the queue (its --delay, if any, ran before it was dispatched).
void ProxyCore::to_queue(ActiveMap::iterator it, JobRecord& rec) {
  const std::string held_by = rec.node;
  if (auto refused = protocol::advance(rec.state, JobEvent::kNodeLost)) {
    log_->error("{} ticket={}", *refused, it->first);
    return;
  }
  if (!held_by.empty()) nodes_[held_by].held.erase(it->first);
  rec.node.clear();
  store_active(it->first, rec);
  it->second.state = JobState::kQueued;
  it->second.node = 0;
  it->second.attempts = rec.attempts;
  queue_.push(it->first, it->second.key, it->second.needs);
}

bool ProxyCore::to_node(ActiveMap::iterator it, JobRecord& rec, const std::string& node) {
  if (auto refused = protocol::advance(rec.state, JobEvent::kDispatch)) {
    log_->error("{} ticket={} node={}", *refused, it->first, node);
    return false;
  }
  drop_cached_spec(it->second);
  rec.node = node;
  store_active(it->first, rec);
  it->second.state = JobState::kRunning;
  it->second.node = intern(node);
  it->second.attempts = rec.attempts;
  nodes_[node].held.insert(it->first);
  return true;
}

void ProxyCore::on_message(const std::string& node_id, protocol::Message m, TimeMs now) {
  auto node = nodes_.find(node_id);
  if (node == nodes_.end() || !node->second.connected) return;
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
}

void ProxyCore::on_submit(const std::string& node, protocol::Submit& m, TimeMs now) {
  protocol::Ack ack{protocol::AckKind::kSubmitted, {}, {}};
  std::string ignored;
  std::unordered_set<std::string> local(m.local.begin(), m.local.end());
  std::unordered_set<std::string> shown(m.local_finished.begin(), m.local_finished.end());
  for (std::size_t i = 0; i < m.jobs.size(); ++i) {
    protocol::JobSpec& spec = m.jobs[i];
    if (!protocol::is_valid_ticket(spec.ticket)) {
      log_->warn("bad ticket in submit node={} ticket={}", node,
                 protocol::escape_sample(spec.ticket));
      continue;
    }
    ack.tickets.push_back(spec.ticket);
    // A node re-sends what it had not seen acknowledged: keep the first copy.
    auto [entry, added] = active_.try_emplace(spec.ticket);
    if (!added) continue;
    if (!m.first &&
        (staged_.get(finished_key(spec.ticket), &ignored).ok() || expired_ticket(spec.ticket))) {
      active_.erase(entry);
      continue;
    }
    const std::string& ticket = entry->first;
    // The spec's one write: from now on the job's records hold its head.
    // Its record is the bytes it came in, when it came in a frame.
    std::string spec_bytes = i < m.spec_records.size() ? std::move(m.spec_records[i])
                                                        : protocol::to_record(spec);
    std::unique_ptr<std::string> cached;
    // Kept for its dispatch when that comes soon: not for a job run by its
    // origin (adopted below) or waiting out a --delay.
    if (!local.count(ticket) && spec.not_before_ms <= now &&
        cached_spec_bytes_ + spec_bytes.size() <= kSpecCacheBytes) {
      cached_spec_bytes_ += spec_bytes.size();
      cached = std::make_unique<std::string>(spec_bytes);
    }
    staged_.put(spec_key(ticket), std::move(spec_bytes));
    JobRecord rec;
    rec.spec = std::move(spec);
    rec.seq = next_seq_++;
    QueueKey key{rec.spec.priority, rec.seq};
    ++stats_.submitted;
    if (local.count(ticket)) {
      // Run by its origin node while the proxy was away: it holds the job.
      rec.attempts = 1;
      rec.nodes_tried.push_back(node);
      rec.pinned = shown.count(ticket) > 0;
      entry->second.key = key;
      entry->second.owner = intern(rec.spec.owner);
      entry->second.pinned = rec.pinned;
      entry->second.needs = needs_id(rec.spec.needs);
      to_node(entry, rec, node);
      log_->info("adopted ticket={} run locally by={}{}", ticket, node,
                 rec.pinned ? " (its result shown there already)" : "");
      continue;
    }
    store_active(ticket, rec);
    entry->second = ActiveJob{JobState::kQueued, 0, 0, key, intern(rec.spec.owner),
                              rec.spec.not_before_ms};
    entry->second.needs = needs_id(rec.spec.needs);
    entry->second.spec = std::move(cached);
    enqueue(entry, now);
    if (log_->should_log(spdlog::level::debug)) {  // describe() formats: only when it shows
      log_->debug("queued ticket={} origin={} job=\"{}\"", ticket, rec.spec.origin,
                  rec.spec.describe());
    }
  }
  staged_.require_sync();
  send(node, std::move(ack));
  update_admission();
}

void ProxyCore::on_ack(const std::string& node, const protocol::Ack& m) {
  if (m.kind != protocol::AckKind::kResults) return;
  auto it = unnotified_.find(node);
  for (const auto& t : m.tickets) {
    staged_.del(notify_key(node, t));
    if (it != unnotified_.end()) it->second.erase(t);
    notify_wait_.erase(t);
  }
}

void ProxyCore::on_reports(const std::string& node, std::vector<JobReport>& reports, TimeMs now) {
  protocol::Ack ack{protocol::AckKind::kResults, {}, {}};
  for (auto& r : reports) {
    if (protocol::is_final(r.state) && r.has_result) {
      accept_result(node, r, ack);
    } else if (r.state == JobState::kUnknown) {
      auto it = active_.find(r.ticket);
      if (it != active_.end() && it->second.state == JobState::kRunning &&
          it->second.node == intern(node)) {
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
  if (active_.count(t) && load_record(active_key(t), rec)) {
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
    ack.tickets.push_back(t);
    return;
  }
  // Already final: the same result again is acknowledged, another run's is not.
  bool same = load_record(finished_key(t), rec) && rec.result.node == report.result.node &&
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
    queue_.erase(QueueKey{rec.spec.priority, rec.seq}, needs_id(rec.spec.needs));
    delayed_.erase({rec.spec.not_before_ms, rec.seq});
  }
  rec.result = std::move(result);
  if (rec.result.end_ms == 0) rec.result.end_ms = clock_;  // ended here (cancelled, given up)
  // A pinned job's result was shown by its node when it ended: it counts
  // from then, as that node counts it, or it would show again after expiring.
  rec.result.final_ms = rec.pinned ? rec.result.end_ms : clock_;
  if (!rec.result.node.empty()) rec.node = rec.result.node;
  staged_.del(active_key(ticket));
  if (rec.spec_inline) staged_.put(spec_key(ticket), protocol::to_record(rec.spec));
  staged_.put(finished_key(ticket), protocol::to_record(rec));
  staged_.put(protocol::expiry_key(rec.result.final_ms, ticket), rec.spec.origin);
  staged_.put(notify_key(rec.spec.origin, ticket), "");
  if (auto it = active_.find(ticket); it != active_.end()) drop_cached_spec(it->second);
  active_.erase(ticket);
  ++stats_.finished;
  ++stats_.finished_by_state[rec.state];
  stats_.finished_job({ticket, std::string(protocol::to_string(rec.state)), rec.result.verdict,
                       rec.result.node, rec.spec.owner,
                       rec.spec.is_api ? rec.spec.api.language_id : 0, rec.result.cpu_ms,
                       rec.result.peak_kb, rec.result.end_ms - rec.result.start_ms,
                       rec.result.final_ms});
  log_->debug("finished ticket={} state={} node={} attempt={}", ticket,
              protocol::to_string(rec.state), rec.result.node, rec.result.attempt);
  unnotified_[rec.spec.origin].insert(ticket);
  notify_wait_[ticket] = kRenotifyRounds;
  std::string origin = rec.spec.origin;
  notify_result(ticket, origin, final_report(ticket, std::move(rec)));
}

void ProxyCore::notify_result(const std::string& ticket, const std::string& origin,
                              const JobReport& report) {
  std::set<std::string> targets;
  if (auto it = watchers_.find(ticket); it != watchers_.end()) {
    targets = std::move(it->second);
    watchers_.erase(it);
  }
  targets.insert(origin);
  for (const auto& n : targets) {
    auto node = nodes_.find(n);
    if (node != nodes_.end() && node->second.connected) send(n, protocol::Result{{report}});
  }
}

void ProxyCore::on_cancel(const std::string& node, const std::vector<std::string>& tickets,
                          const std::string& requester) {
  protocol::Result reply;
  for (const auto& t : tickets) {
    auto it = active_.find(t);
    if (!requester.empty()) {
      // Another client's job: not cancelled, and answered as unknown.
      JobReport seen = report_of(t);
      if (seen.owner != requester && seen.state != JobState::kExpired) {
        if (seen.state != JobState::kUnknown) {
          log_->warn("refused cancel ticket={} by={} for={}: not the job's owner", t, node,
                     requester);
        }
        JobReport unknown;
        unknown.ticket = t;
        reply.reports.push_back(std::move(unknown));
        continue;
      }
    }
    if (it != active_.end() && it->second.state == JobState::kQueued) {
      JobRecord rec;
      if (load_record(active_key(t), rec)) {
        protocol::JobResult r = protocol::cancelled_before_run(rec.spec.kind);
        log_->info("cancelled ticket={} while queued by={}", t, node);
        finish_job(t, std::move(rec), std::move(r), JobEvent::kCancel);
        staged_.require_sync();
      }
    } else if (it != active_.end()) {
      // Running: its node kills it and reports it CANCELLED.
      const std::string& runner = name_of(it->second.node);
      log_->info("cancel ticket={} running on={} by={}", t, runner, node);
      if (nodes_[runner].connected) send(runner, protocol::Cancel{{t}});
    }
    JobReport r = report_of(t);
    if (!protocol::is_final(r.state) && r.state != JobState::kUnknown &&
        r.state != JobState::kExpired) {
      watchers_[t].insert(node);
    }
    reply.reports.push_back(std::move(r));
  }
  send(node, std::move(reply));
}

void ProxyCore::on_leave(const std::string& node_id, const protocol::Leave& m) {
  auto& node = nodes_[node_id];
  if (!node.draining) {
    note(fmt::format("node {} draining", node_id));
    log_->info("node draining node={} handed_back={}", node_id, m.handed_back.size());
  }
  node.draining = true;
  send_offers();
  for (const auto& t : m.handed_back) {
    auto it = active_.find(t);
    if (it == active_.end() || it->second.state != JobState::kRunning ||
        it->second.node != intern(node_id)) {
      continue;
    }
    // Never started: back to the queue, and the dispatch does not count as
    // an attempt.
    JobRecord rec;
    if (!load_record(active_key(t), rec)) continue;
    if (rec.attempts > 0) --rec.attempts;
    if (!rec.nodes_tried.empty()) rec.nodes_tried.pop_back();
    to_queue(it, rec);
  }
  if (m.done) {
    note(fmt::format("node {} left after draining", node_id));
    log_->info("node left after draining node={} held={}", node_id, node.held.size());
    node.connected = false;
    if (!node.held.empty()) release_node_jobs(node_id, "node " + node_id + " left holding jobs");
  }
}

void ProxyCore::on_requests(const std::string& node, const std::vector<std::string>& tickets) {
  if (tickets.empty()) return;
  protocol::Result reply;
  for (const auto& t : tickets) {
    JobReport r = report_of(t);
    if (!protocol::is_final(r.state) && r.state != JobState::kUnknown &&
        r.state != JobState::kExpired) {
      watchers_[t].insert(node);
    }
    reply.reports.push_back(std::move(r));
  }
  send(node, std::move(reply));
}

JobReport ProxyCore::report_of(const std::string& ticket, TimeMs now) const {
  TimeMs at = std::max(clock_, now);
  JobReport r;
  r.ticket = ticket;
  if (auto it = active_.find(ticket); it != active_.end()) {
    r.state = it->second.state;
    r.node = name_of(it->second.node);
    r.attempts = it->second.attempts;
    r.owner = name_of(it->second.owner);
    r.priority = it->second.key.priority;
    if (r.state == JobState::kQueued) r.not_before_ms = it->second.not_before;
    if (r.state == JobState::kQueued) {
      r.queue_position = queue_.position(it->second.key, it->second.needs);
      r.waiting_for = waiting_for(it->second.needs);
      if (stats_.finish_rate.per_second > 0) {
        r.estimated_wait_ms =
            static_cast<std::int64_t>((r.queue_position + 1) * 1000.0 / stats_.finish_rate.per_second);
      }
    }
    return r;
  }
  JobRecord rec;
  if (load_record(finished_key(ticket), rec)) {
    // Expired, though not yet swept: as every process answers from now on.
    if (options_.retention.expired(rec.result.final_time(), at)) return protocol::expired_report(ticket);
    return final_report(ticket, std::move(rec));
  }
  if (expired_ticket(ticket)) return protocol::expired_report(ticket);
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

bool ProxyCore::has_dispatchable() const {
  if (queue_.empty()) return false;
  for (const auto& [id, node] : nodes_) {
    if (node.connected && !node.draining &&
        node.held.size() < node.slots + std::max(options_.prefetch, node.rate.prefetch(options_.prefetch_ms))) {
      return true;
    }
  }
  return false;
}

bool ProxyCore::dispatch(TimeMs now) {
  clock_ = now;
  promote_due(now);
  if (queue_.empty()) {
    update_admission();
    return false;
  }
  std::vector<std::string> ids;
  std::vector<NodeLoad> loads;
  for (auto& [id, node] : nodes_) {
    if (!node.connected || node.draining) continue;
    node.rate.update(node.finished, now);
    ids.push_back(id);
    loads.push_back({node.slots, static_cast<std::uint32_t>(node.held.size()), node.rate.prefetch(options_.prefetch_ms)});
  }
  auto plan =
      plan_dispatch(loads, queue_.size(), options_.max_dispatch, options_.prefetch, rotation_++);
  std::size_t total = 0;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    NodeEntry& node = nodes_[ids[i]];
    const std::size_t base_cap = node.slots + options_.prefetch;
    protocol::Job job;
    while (job.jobs.size() < plan[i]) {
      auto next = queue_.pop_for([&](std::uint32_t needs) { return can_run(node, needs); });
      if (!next) break;
      const std::string& t = *next;
      auto it = active_.find(t);
      if (it == active_.end()) continue;
      JobRecord rec;
      if (!load_queued(it, rec)) continue;
      std::size_t held_after = node.held.size() + 1;
      if (held_after > base_cap &&
          !fits_adaptive_prefetch(static_cast<std::uint32_t>(held_after - base_cap),
                                  rec.spec.kind == protocol::JobKind::kSleep, rec.spec.sleep_ms,
                                  node.slots, options_.prefetch_ms)) {
        queue_.push(it->first, it->second.key, it->second.needs);  // back, for a node with room
        break;
      }
      rec.attempts++;
      rec.nodes_tried.push_back(ids[i]);
      if (!to_node(it, rec, ids[i])) {
        queue_.push(it->first, it->second.key, it->second.needs);  // refused and logged: left where it was
        break;
      }
      job.jobs.push_back({std::move(rec.spec), rec.attempts});
    }
    if (job.jobs.empty()) continue;
    total += job.jobs.size();
    stats_.dispatched += job.jobs.size();
    log_->debug("dispatch node={} jobs={}", ids[i], job.jobs.size());
    send(ids[i], std::move(job));
  }
  if (total > 0) log_->debug("dispatch round jobs={} queued={}", total, queue_.size());
  update_admission();
  return total >= options_.max_dispatch && has_dispatchable();
}

void ProxyCore::exchange_results(TimeMs now) {
  clock_ = now;
  constexpr std::size_t kMaxPerExchange = 1000;
  for (const auto& [id, node] : nodes_) {
    if (!node.connected) continue;
    protocol::ResReq m;
    if (auto it = unnotified_.find(id); it != unnotified_.end()) {
      for (const auto& t : it->second) {
        if (m.reports.size() >= kMaxPerExchange) break;
        auto wait = notify_wait_.find(t);
        if (wait != notify_wait_.end() && --wait->second > 0) continue;  // pushed lately
        m.reports.push_back(report_of(t));
        notify_wait_[t] = kRenotifyRounds;
      }
    }
    for (const auto& t : node.held) {
      if (m.requests.size() >= kMaxPerExchange) break;
      m.requests.push_back(t);
    }
    // Sent even when empty: it doubles as the heartbeat a node watches for.
    send(id, std::move(m));
  }
}

void ProxyCore::expire_absent_nodes(TimeMs now) {
  clock_ = now;
  for (auto& [id, node] : nodes_) {
    if (node.connected || node.held.empty()) continue;
    if (now - node.lost_since >= options_.node_timeout_ms) {
      release_node_jobs(id, fmt::format("node {} did not come back within NODE_TIMEOUT", id));
    }
  }
}

protocol::ClusterStats ProxyCore::stats(TimeMs now) const {
  protocol::ClusterStats s;
  for (const auto& [id, node] : nodes_) {
    protocol::NodeStats n;
    n.node_id = id;
    n.address = node.address;
    n.sandbox = node.sandbox;
    n.cpus = node.cpus;
    n.api_address = node.api_address;
    n.offers.assign(node.offers.begin(), node.offers.end());
    n.connected = node.connected;
    n.slots = node.slots;
    n.assigned = static_cast<std::uint32_t>(node.held.size());
    n.running = node.info.running;
    n.queued = node.info.queued;
    n.finished = node.finished;
    n.last_heard_ms = node.last_heard;
    n.state = node.state(now, options_.node_timeout_ms);
    // What runs, apart from what a node holds queued (its prefetch).
    s.running += node.connected ? node.info.running : 0;
    s.held += node.connected ? node.held.size() : 0;
    s.nodes.push_back(std::move(n));
  }
  s.queue_length = queue_length();
  s.recent_events.assign(stats_.events.begin(), stats_.events.end());
  s.submitted_total = stats_.submitted;
  s.finished_total = stats_.finished;
  s.redispatched_total = stats_.redispatched;
  if (replication_stats) replication_stats(s);
  return s;
}

std::optional<JobRecord> ProxyCore::find_job(const std::string& ticket, TimeMs now) const {
  JobRecord rec;
  bool found = load_record(active_key(ticket), rec) ||
               (load_record(finished_key(ticket), rec) &&
                !options_.retention.expired(rec.result.final_time(), std::max(clock_, now)));
  if (!found) return std::nullopt;
  if (!load_spec(ticket, rec)) log_->error("no spec record ticket={}", ticket);
  return rec;
}

bool ProxyCore::expired(const std::string& ticket, TimeMs now) const {
  return report_of(ticket, now).state == JobState::kExpired;
}

bool ProxyCore::load_record(const std::string& key, JobRecord& rec) const {
  std::string value;
  if (!staged_.get(key, &value).ok()) return false;
  return protocol::from_record(value, rec);
}

bool ProxyCore::load_queued(ActiveMap::iterator it, JobRecord& rec) {
  ActiveJob& job = it->second;
  if (job.spec) {
    // Never dispatched since it came: its a/ record says nothing that
    // memory does not (no attempt, no node tried, no result).
    bool whole = protocol::from_record(*job.spec, rec.spec);
    drop_cached_spec(job);
    if (whole && job.attempts == 0) {
      rec.state = job.state;
      rec.seq = job.key.seq;
      rec.pinned = job.pinned;
      return true;
    }
    rec = JobRecord{};
  }
  if (!load_record(active_key(it->first), rec)) return false;
  if (load_spec(it->first, rec)) return true;
  log_->error("no spec record ticket={}: left out of the queue", it->first);
  return false;
}

void ProxyCore::drop_cached_spec(ActiveJob& job) {
  if (!job.spec) return;
  cached_spec_bytes_ -= job.spec->size();
  job.spec.reset();
}

bool ProxyCore::load_spec(const std::string& ticket, JobRecord& rec) const {
  if (rec.spec_inline) return true;
  std::string value;
  if (!staged_.get(spec_key(ticket), &value).ok()) return false;
  return protocol::from_record(value, rec.spec);
}

void ProxyCore::store_active(const std::string& ticket, JobRecord& rec) {
  if (rec.spec_inline) {
    // A record of an earlier version: its spec moves to a record of its own.
    staged_.put(spec_key(ticket), protocol::to_record(rec.spec));
    rec.spec_inline = false;
  }
  staged_.put(active_key(ticket), protocol::to_record(rec));
}

void ProxyCore::note(std::string event) { stats_.note(clock_, std::move(event)); }

std::uint32_t ProxyCore::needs_id(const std::vector<std::string>& needs) {
  if (needs.empty()) return 0;
  if (needs.size() == 1) return intern("needs:" + needs[0]);  // an API job's language
  std::vector<std::string> sorted = needs;
  std::sort(sorted.begin(), sorted.end());
  std::string joined;
  for (const auto& n : sorted) joined += (joined.empty() ? "" : ",") + n;
  return intern("needs:" + joined);
}

bool ProxyCore::can_run(const NodeEntry& entry, std::uint32_t needs) const {
  if (needs == 0) return true;
  std::string_view list = name_of(needs);
  list.remove_prefix(6);  // "needs:"
  while (!list.empty()) {
    auto comma = list.find(',');
    if (!entry.offers.count(std::string(list.substr(0, comma)))) return false;
    list.remove_prefix(comma == std::string_view::npos ? list.size() : comma + 1);
  }
  return true;
}

std::string ProxyCore::waiting_for(std::uint32_t needs) const {
  for (const auto& [id, node] : nodes_) {
    if (node.connected && !node.draining && can_run(node, needs)) return "";
  }
  if (needs == 0) return "node";
  std::string_view list = name_of(needs);
  list.remove_prefix(6);  // "needs:"
  return std::string(list);
}

void ProxyCore::send_offers(const std::string& to) {
  std::set<std::string> offered, available;
  for (const auto& [id, offers] : known_offers_) offered.insert(offers.begin(), offers.end());
  for (const auto& [id, node] : nodes_) {
    if (node.connected && !node.draining) available.insert(node.offers.begin(), node.offers.end());
  }
  std::vector<std::string> o(offered.begin(), offered.end()), a(available.begin(), available.end());
  bool changed = o != offered_ || a != available_;
  offered_ = std::move(o);
  available_ = std::move(a);
  for (const auto& [id, node] : nodes_) {
    if (node.connected && (changed || id == to)) {
      send(id, protocol::Offers{offered_, available_, options_.max_queue, queue_full_});
    }
  }
}

void ProxyCore::update_admission() {
  if (options_.max_queue == 0) return;
  const std::uint64_t queued = queue_length();
  const std::uint64_t low = options_.max_queue - options_.max_queue / 10;
  const bool full = queue_full_ ? queued >= low : queued >= options_.max_queue;
  if (full == queue_full_) return;
  queue_full_ = full;
  std::string event = full ? fmt::format("queue is full ({} jobs, MAX_QUEUE): nodes refuse new ones", queued)
                           : fmt::format("queue has room again ({} jobs)", queued);
  log_->warn("{}", event);
  note(std::move(event));
  for (const auto& [id, node] : nodes_) {
    if (node.connected) send(id, protocol::Offers{offered_, available_, options_.max_queue, queue_full_});
  }
}

std::uint32_t ProxyCore::intern(const std::string& name) {
  if (name.empty()) return 0;
  auto [it, added] = name_ids_.try_emplace(name, static_cast<std::uint32_t>(names_.size()));
  if (added) names_.push_back(name);
  return it->second;
}

void ProxyCore::send(const std::string& node, protocol::Message m) {
  for (auto& piece : protocol::split_batch(std::move(m))) outbox_.push_back({node, std::move(piece)});
}

}  // namespace jc::proxy
