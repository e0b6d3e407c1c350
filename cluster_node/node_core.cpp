#include "cluster_node/node_core.h"

#include <fmt/format.h>
#include <algorithm>

#include "protocol/auth.h"
#include "protocol/batching.h"
#include "protocol/codec.h"

namespace jc::node {

using protocol::JobReport;
using protocol::JobState;

namespace {
// Jobs or results per frame (forwarding, catching up). Small enough that a
// proxy's handler for one frame is short (a few ms), so that a burst from
// one node does not hold up the proxy's event loop; as fast as 2000 was in
// the benchmarks, and a replicated leader over TLS keeps its leadership.
constexpr std::size_t kMaxPerFrame = 256;
// Results offered again per round (in frames of kMaxPerFrame).
constexpr std::size_t kMaxResendPerRound = 2000;
constexpr std::size_t kRemoteCacheEntries = 10000;
}  // namespace

NodeCore::NodeCore(storage::Store& store, NodeOptions options)
    : staged_(store), options_(std::move(options)), log_(log::get("node")) {
  // The clients waiting for a result read it right after its commit lands.
  staged_.keep_recent();
}

Status NodeCore::recover() {
  if (Status cs = callbacks_.recover(); !cs.ok()) return cs;
  if (Status s = origin_.recover(); !s.ok()) return s;
  std::size_t was_running = 0;  // records of earlier builds that said so
  if (Status s = exec_.recover([this](const std::string& t) { return origin_.unforwarded(t); }, was_running); !s.ok()) return s;
  if (Status s = index_final_records(); !s.ok()) return s;
  // Every held job runs from the start: one that ran when the node stopped
  // is not told apart from one that waited (its start is not written).
  log_->info("recovered node={} unforwarded={} held={} undelivered={}", options_.node_id,
             origin_.unforwarded_count(), exec_.queued(), exec_.undelivered_count());
  if (was_running > 0) log_->info("jobs of an earlier build that were running run again count={}", was_running);
  events_.work = exec_.has_queued();
  return Status::Ok();
}

std::string NodeCore::submit(protocol::JobSpec spec, TimeMs now) {
  std::string spec_bytes;
  std::string ticket = origin_.accept(
      spec, now, options_.node_id,
      options_.random_part ? options_.random_part() : protocol::random_ticket_part(), connected_,
      spec_bytes);
  staged_.require_sync();
  if (log_->should_log(spdlog::level::debug)) {  // describe() formats: only when it shows
    log_->debug("accepted ticket={} job=\"{}\"", ticket, spec.describe());
  }
  // Run here at once without a proxy, from the spec in hand.
  if (local_mode_) claim_local(ticket, spec);
  if (connected_) {
    // As the bytes it was encoded into (Submit::spec_bytes): a turn's
    // thousands of 650-byte specs cost 9 % of a node's CPU in moves. Room
    // for as many as the last turn took.
    if (pending_submit_.spec_bytes.empty()) {
      constexpr std::size_t kMaxRoom = 1 << 16;
      pending_submit_.spec_bytes.reserve(std::min(last_submit_size_, kMaxRoom));
    }
    pending_submit_.spec_bytes.push_back(std::move(spec_bytes));
  }
  return ticket;
}

protocol::Hello NodeCore::hello() const {
  protocol::Hello h;
  h.node_id = options_.node_id;
  h.slots = options_.slots;
  h.client_address = options_.client_address;
  h.sandbox = options_.sandbox;
  h.cpus = options_.cpus;
  h.offers = options_.offers;
  h.api_address = options_.api_address;
  exec_.fill_hello(h);
  return h;
}

protocol::Info NodeCore::info() const {
  protocol::Info i;
  const std::size_t running = exec_.running();
  i.queued = static_cast<std::uint32_t>(exec_.queued());
  i.running = static_cast<std::uint32_t>(running);
  i.free_slots = options_.slots > running ? options_.slots - static_cast<std::uint32_t>(running) : 0;
  i.finished_total = exec_.finished_total();
  i.pending_forward = static_cast<std::uint32_t>(origin_.unforwarded_count());
  return i;
}

LinkActions NodeCore::on_message(protocol::Message m, TimeMs now) {
  LinkActions act;
  std::visit(
      [&](auto& msg) {
        using T = std::decay_t<decltype(msg)>;
        if constexpr (std::is_same_v<T, protocol::Challenge>) {
          protocol::Hello h = hello();
          if (!options_.secret.empty()) {
            h.auth = protocol::join_proof(options_.secret, msg.nonce, h.node_id);
          }
          act.hello = std::move(h);
        } else if constexpr (std::is_same_v<T, protocol::Welcome>) {
          on_welcome(msg);
          act.welcome = std::move(msg);
        } else if constexpr (std::is_same_v<T, protocol::Ack>) {
          on_ack(msg);
        } else if constexpr (std::is_same_v<T, protocol::Job>) {
          on_jobs(msg);
        } else if constexpr (std::is_same_v<T, protocol::Result>) {
          on_reports(msg.reports);
        } else if constexpr (std::is_same_v<T, protocol::ResReq>) {
          on_reports(msg.reports);
          on_requests(msg.requests);
        } else if constexpr (std::is_same_v<T, protocol::RequestOfRes>) {
          on_requests(msg.tickets);
        } else if constexpr (std::is_same_v<T, protocol::Offers>) {
          on_offers(msg);
        } else if constexpr (std::is_same_v<T, protocol::Cancel>) {
          // A running job is the executor's to end; a queued one ends here.
          for (const auto& t : msg.tickets) {
            if (exec_.is_running(t)) {
              act.cancel.push_back(t);
            } else {
              cancel_queued(t, now);
            }
          }
        } else if constexpr (std::is_same_v<T, protocol::StatsReply>) {
          act.stats = std::move(msg);
        } else if constexpr (std::is_same_v<T, protocol::Heartbeat>) {
          act.idle = true;  // the link's idle deadline moved; nothing else to do
        } else {
          log_->warn("unexpected message from proxy type={}", protocol::message_name(m));
        }
      },
      m);
  return act;
}

void NodeCore::on_offers(const protocol::Offers& msg) {
  cluster_offered_ = {msg.offered.begin(), msg.offered.end()};
  cluster_available_ = {msg.available.begin(), msg.available.end()};
  if (msg.queue_full && !cluster_queue_full_) {
    log_->warn("the cluster's queue is full (MAX_QUEUE {}): refusing new jobs", msg.max_queue);
  } else if (!msg.queue_full && cluster_queue_full_) {
    log_->info("the cluster's queue has room again (MAX_QUEUE {})", msg.max_queue);
  }
  max_queue_ = msg.max_queue;
  cluster_queue_full_ = msg.queue_full;
}

bool NodeCore::offered(const std::string& need) const {
  // Its own offers count before the proxy has said anything.
  const auto& own = options_.offers;
  return cluster_offered_.count(need) > 0 || std::find(own.begin(), own.end(), need) != own.end();
}

bool NodeCore::available(const std::string& need) const {
  const auto& own = options_.offers;
  return cluster_available_.count(need) > 0 ||
         (connected() && std::find(own.begin(), own.end(), need) != own.end());
}

void NodeCore::on_disconnected() {
  connected_ = false;
  exec_.set_deferring(false);  // without the proxy's copy, what is held goes to disk
  exec_.new_connection();
  pending_submit_.jobs.clear();
  pending_submit_.spec_bytes.clear();
  pending_results_.reports.clear();
  results_held_since_.reset();
  // The proxy offers them again after the WELCOME, and this node then
  // acknowledges them at once (the same result, stored): the next commit
  // makes what was written for them durable first.
  if (acks_waiting()) staged_.require_barrier();
  if (flight_) flight_->acks.clear();
  acks_staged_.clear();
  acks_written_.clear();
  synced_acks_.reset();
  outbox_.clear();
}

void NodeCore::on_welcome(const protocol::Welcome& w) {
  if (!w.accepted) return;
  connected_ = true;
  exec_.set_deferring(true);
  if (w.result_ttl_ms != options_.retention.ttl_ms) {
    // Reads must agree with the proxy's: a longer TTL here would show
    // results the proxy already calls expired.
    log_->warn("RESULT_TTL={} ms here but {} ms at the proxy: following the proxy's (set the same "
               "everywhere)",
               options_.retention.ttl_ms, w.result_ttl_ms);
    options_.retention.ttl_ms = w.result_ttl_ms;
  }
  if (local_mode_) log_->info("proxy back: jobs go through it again");
  local_mode_ = false;
  for (const auto& t : w.drop) drop_exec(t);
  if (!w.drop.empty()) log_->info("dropped jobs reassigned by the proxy count={}", w.drop.size());
  forward_all();
  exec_.new_connection();
  resend_undelivered();
  send(info());
}

void NodeCore::resend_undelivered() {
  // Results finished in this turn are on their way already.
  std::unordered_set<std::string> fresh;
  for (const auto& r : pending_results_.reports) fresh.insert(r.ticket);
  protocol::Result results;
  for (auto& r : exec_.due(kMaxResendPerRound, fresh, options_.node_id)) {
    results.reports.push_back(std::move(r));
    if (results.reports.size() >= kMaxPerFrame) send(std::exchange(results, {}));
  }
  if (!results.reports.empty()) send(std::move(results));
}

void NodeCore::set_local_mode(bool on) {
  if (on == local_mode_) return;
  local_mode_ = on;
  if (!on) return;
  log_->warn("proxy away past the grace period: running this node's own queued jobs here count={}",
             origin_.unforwarded_count());
  for (const auto& t : origin_.unforwarded_in_order()) {
    if (!exec_.claimed(t)) claim_local(t);
  }
}

void NodeCore::start_drain() {
  draining_ = true;
  if (!connected_) return;  // nothing can be handed back: it stays here, durable
  protocol::Leave leave;
  leave.handed_back = exec_.hand_back();
  log_->info("draining: handed back={} running={} undelivered={}", leave.handed_back.size(),
             exec_.running(), exec_.undelivered_count());
  send(std::move(leave));
}

bool NodeCore::drained() const {
  // Without the proxy nothing more can be delivered: it stays durable here
  // for the next start.
  return exec_.running() == 0 &&
         (!connected_ || (exec_.undelivered_count() == 0 && origin_.unforwarded_count() == 0));
}

void NodeCore::finish_drain() {
  if (connected_) outbox_.push_back(protocol::Leave{{}, true});
}

void NodeCore::claim_local(const std::string& t) {
  OriginRecord origin;
  if (!origin_.load(t, origin)) {
    log_->error("unreadable origin record ticket={}: not run here", protocol::escape_sample(t));
    return;
  }
  claim_local(t, std::move(origin.spec));
}

void NodeCore::claim_local(const std::string& t, protocol::JobSpec spec) {
  exec_.claim_local(t, std::move(spec));
  events_.work = true;
}

void NodeCore::forward_all() {
  protocol::Submit batch;
  for (const auto& t : origin_.unforwarded_in_order()) {
    // The spec is read back from its record: only the tickets of jobs the
    // proxy has not acknowledged are held in memory.
    OriginRecord rec;
    if (!origin_.load(t, rec)) {
      log_->error("unreadable origin record ticket={}: not forwarded", protocol::escape_sample(t));
      continue;
    }
    if (exec_.claimed(t)) {
      batch.local.push_back(t);
      // Its result shows here already: the proxy must take no other run.
      if (exec_.undelivered(t) && rec.has_result && rec.result.node == options_.node_id) {
        batch.local_finished.push_back(t);
      }
    }
    batch.jobs.push_back(std::move(rec.spec));
    origin_.mark_sent(t);
    if (batch.jobs.size() >= kMaxPerFrame) send(std::exchange(batch, {}));
  }
  if (!batch.jobs.empty()) send(std::move(batch));
}

void NodeCore::drop_exec(const std::string& t) {
  if (exec_.drop(t)) events_.stop.push_back(t);
}

void NodeCore::on_ack(const protocol::Ack& a) {
  if (a.kind == protocol::AckKind::kSubmitted) {
    for (const auto& t : a.tickets) exec_.unclaim(t);
    origin_.acknowledged(a.tickets);
    return;
  }
  // The proxy holds these results durably now (it acknowledges after its
  // commit): this node's copy of the run has nothing more to do.
  for (const auto& t : a.tickets) exec_.delivered(t);
  for (const auto& t : a.superseded) {
    log_->info("result superseded by another run ticket={}", t);
    ExecRecord exec;
    OriginRecord origin;
    // A result shown here is final: only a run the proxy could not have had
    // shows before it accepts it (forward_all), so this is never one of them.
    if (exec_.load(t, exec) && origin_.load(t, origin) && origin.has_result &&
        origin.result.node == options_.node_id && origin.result.start_ms == exec.result.start_ms) {
      log_->error("a result shown to clients was superseded ticket={}; it stays shown here", t);
    }
    exec_.superseded(t);
  }
}

void NodeCore::on_jobs(protocol::Job& j) {
  if (draining_) {
    // Sent before the proxy saw our LEAVE: straight back.
    protocol::Leave back;
    for (const auto& a : j.jobs) back.handed_back.push_back(a.spec.ticket);
    send(std::move(back));
    return;
  }
  for (auto& a : j.jobs) exec_.assign(a);
  events_.work = events_.work || exec_.has_queued();
}

void NodeCore::on_reports(std::vector<JobReport>& reports) {
  protocol::Ack ack{protocol::AckKind::kResults, {}, {}};
  bool stored = false;  // a result written here: the ACK waits for a synced commit (wants_sync)
  // Each report moves into events_ below: room for them all at once (a
  // frame holds up to 256, and moving reports as a vector doubles was
  // 2.5 % of a node's CPU), growing still by doubling over a turn's frames.
  auto& to_answer = events_.reports;
  if (to_answer.capacity() < to_answer.size() + reports.size()) {
    to_answer.reserve(std::max(to_answer.size() + reports.size(), 2 * to_answer.capacity()));
  }
  for (auto& r : reports) {
    if (r.state == JobState::kExpired && !origin_.unforwarded(r.ticket) && origin_.has(r.ticket)) {
      // The job ended and expired while this node was away: its record goes
      // too, and the acknowledgement lets the proxy drop its notice.
      origin_.erase(r.ticket);
      if (origin_.raise_mark(r.ticket)) origin_.write_mark();
      remote_.erase(r.ticket);
      ack.tickets.push_back(r.ticket);
    } else if (protocol::is_final(r.state) && r.has_result) {
      OriginRecord rec;  // fresh, as a pending job's is
      bool callback = false;
      bool known = false;
      if (auto p = origin_.pending(r.ticket)) {
        known = true;
        callback = p->callback;
      } else if (origin_.load(r.ticket, rec)) {
        known = true;
        callback = rec.spec.is_api && !rec.spec.api.callback_url.empty();
      }
      if (known) {
        // The proxy's result is the one result. A result shown here first
        // (a local run the proxy had never been sent) is that same result.
        bool same = rec.has_result && rec.result.node == r.result.node &&
                    rec.result.attempt == r.result.attempt &&
                    rec.result.start_ms == r.result.start_ms;
        if (same && rec.result.final_ms != r.result.final_ms) {
          rec.result.final_ms = r.result.final_ms;  // RESULT_TTL counts from the proxy's time
          origin_.store(r.ticket, rec);
        } else if (!same) {
          if (auto refused = protocol::advance(rec.state, protocol::JobEvent::kFinish, r.state)) {
            log_->error("{} ticket={}", *refused, r.ticket);
          } else {
            rec.has_result = true;
            rec.result = r.result;
            rec.attempts = r.attempts;
            origin_.store(r.ticket, rec);
            if (callback) callbacks_.owe(r.ticket);
            stored = true;
          }
        }
        ack.tickets.push_back(r.ticket);
      } else if (origin_.issued_here(r.ticket)) {
        // Submitted here, sent to the proxy, and lost with a commit that a
        // crash cut short (take_early): no client holds its ticket.
        log_->info("result for a ticket this node never committed ticket={}", r.ticket);
        ack.tickets.push_back(r.ticket);
        continue;
      } else if (!remote_.count(r.ticket)) {
        remote_[r.ticket] = r;
        remote_order_.push_back(r.ticket);
        if (remote_order_.size() > kRemoteCacheEntries) {
          remote_.erase(remote_order_.front());
          remote_order_.pop_front();
        }
      }
    }
    events_.reports.push_back(std::move(r));
  }
  // Nor does any acknowledgement overtake one that waits: the proxy would
  // forget a result this node holds only unsynced.
  if (connected_ && (stored || acks_waiting())) {
    acks_staged_.insert(acks_staged_.end(), ack.tickets.begin(), ack.tickets.end());
  } else if (!ack.tickets.empty()) {
    send(std::move(ack));
  }
}

void NodeCore::on_requests(const std::vector<std::string>& tickets) {
  if (tickets.empty()) return;
  protocol::Result reply;
  for (const auto& t : tickets) {
    ExecRecord rec;
    if (exec_.load(t, rec)) {
      reply.reports.push_back(exec_.report(t, rec, options_.node_id));
    } else {
      JobReport unknown;
      unknown.ticket = t;
      reply.reports.push_back(std::move(unknown));
    }
  }
  send(std::move(reply));
}

std::optional<protocol::Assignment> NodeCore::next_job() {
  if (draining_) return std::nullopt;
  return exec_.next(options_.slots);
}

void NodeCore::cancel_queued(const std::string& ticket, TimeMs now) {
  protocol::JobKind kind{};
  if (!exec_.start_cancelled(ticket, kind)) return;
  protocol::JobResult r = protocol::cancelled_before_run(kind);
  r.start_ms = r.end_ms = now;
  job_finished(ticket, std::move(r));
}

void NodeCore::job_finished(const std::string& ticket, protocol::JobResult result) {
  auto rec = exec_.finish(ticket, std::move(result), options_.node_id, connected_);
  if (!rec) return;
  if (exec_.claimed(ticket) && origin_.unsent(ticket)) {
    // Never sent to the proxy: its only run, so the origin (this node)
    // shows the result at once. Any other local run's result shows once
    // the proxy has it, since the proxy may have run the job elsewhere.
    OriginRecord origin;
    if (origin_.load(ticket, origin) && !origin.has_result) {
      if (auto refused = protocol::advance(origin.state, protocol::JobEvent::kFinish, rec->state)) {
        log_->error("{} ticket={}", *refused, ticket);
      } else {
        origin.has_result = true;
        origin.result = rec->result;
        origin.attempts = rec->attempt;
        origin_.store(ticket, origin);
        if (origin.spec.is_api && !origin.spec.api.callback_url.empty()) callbacks_.owe(ticket);
        // Waits on it are answered now, not when their seconds run out.
        staged_.require_sync();
        events_.settled_here.push_back(lookup(ticket, origin.result.end_ms));
      }
    }
  }
  log_->debug("finished ticket={} state={}", ticket, protocol::to_string(rec->state));
  if (connected_) {
    pending_results_.reports.push_back(exec_.report(ticket, *rec, options_.node_id));
  }
  events_.work = events_.work || exec_.has_queued();
}

}  // namespace jc::node
