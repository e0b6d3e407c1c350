#include "cluster_node/node_core.h"

#include <fmt/format.h>

#include <algorithm>
#include <random>

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

std::string origin_key(const std::string& t) { return "o/" + t; }
std::string unforwarded_key(const std::string& t) { return "u/" + t; }
std::string exec_key(const std::string& t) { return "x/" + t; }
constexpr std::string_view kUnsent = "unsent";

std::string random_prefix() {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::random_device rd;
  std::mt19937_64 gen((static_cast<std::uint64_t>(rd()) << 32) ^ rd());
  std::string p;
  for (int i = 0; i < 6; ++i) p.push_back(kAlphabet[gen() % 36]);
  return p;
}
}  // namespace

NodeCore::NodeCore(storage::Store& store, NodeOptions options)
    : staged_(store), options_(std::move(options)), log_(log::get("node")) {}

template <class T>
bool NodeCore::load(const std::string& key, T& value) const {
  std::string bytes;
  return staged_.get(key, &bytes).ok() && protocol::from_record(bytes, value);
}

// A record written with a final result enters the expiry index at its
// final time; the sweep checks the record again, so an entry left behind
// by a later change of the record removes nothing before its time.
void NodeCore::store_origin(const std::string& ticket, const OriginRecord& rec) {
  staged_.put(origin_key(ticket), protocol::to_record(rec));
  if (rec.has_result) staged_.put(protocol::expiry_key(rec.result.final_time(), "o/" + ticket), "");
}

ExecRecord NodeCore::exec_record(ExecJob job) {
  ExecRecord rec;
  rec.spec = std::move(job.assignment.spec);
  rec.attempt = job.assignment.attempt;
  rec.state = job.state;
  rec.local = job.local;
  return rec;
}

// An x/ record lives until the proxy has its result (then on_ack deletes
// it), so it needs no expiry; only records of earlier builds, kept after
// delivery, are in the index (index_final_records).
void NodeCore::store_exec(const std::string& ticket, const ExecRecord& rec) {
  staged_.put(exec_key(ticket), protocol::to_record(rec));
}

std::string NodeCore::stable_node_id(storage::Store& store, const std::string& configured) {
  std::string stored;
  bool have = store.get("m/node_id", &stored).ok();
  if (!configured.empty()) return configured;
  if (have) return stored;
  std::string id = "node-" + random_prefix();
  storage::WriteBatch b;
  b.put("m/node_id", id);
  store.write(b, true);
  return id;
}

std::string NodeCore::data_identity(storage::Store& store) {
  std::string stored;
  if (store.get("m/identity", &stored).ok() && !stored.empty()) return stored;
  std::string id = protocol::random_nonce().substr(0, 16);  // 64 random bits, hex
  storage::WriteBatch b;
  b.put("m/identity", id);
  store.write(b, true);
  return id;
}

Status NodeCore::recover() {
  if (Status cs = callbacks_.recover(); !cs.ok()) return cs;
  std::string value;
  if (staged_.get("m/prefix", &value).ok()) {
    prefix_ = value;
  } else {
    prefix_ = random_prefix();
    staged_.put("m/prefix", prefix_);
  }
  if (staged_.get("m/counter", &value).ok()) counter_ = std::stoull(value);
  if (staged_.get("m/expired", &value).ok()) expired_upto_ = std::stoull(value);
  Status s = staged_.store().scan("u/", [&](std::string_view key, std::string_view value) {
    std::string t(key.substr(2));
    OriginRecord rec;
    if (load(origin_key(t), rec)) {
      unforwarded_order_.push_back(t);
      unforwarded_.insert(t);
      if (value == kUnsent) unsent_.insert(t);
    }
    return true;
  });
  if (!s.ok()) return s;
  std::size_t rerun = 0;
  s = staged_.store().scan("x/", [&](std::string_view key, std::string_view bytes) {
    std::string t(key.substr(2));
    ExecRecord rec;
    if (!protocol::from_record(bytes, rec)) {
      log_->error("unreadable exec record ticket={}", protocol::escape_sample(t));
      return true;
    }
    if (rec.local && unforwarded_.count(t)) local_claimed_.insert(t);
    if (protocol::is_final(rec.state)) {
      if (!rec.delivered) undelivered_.insert(t);
      return true;
    }
    // A job that was running when the node stopped runs again from the
    // start: it lost its run as if its node had been lost, and is queued here.
    if (rec.state == JobState::kRunning) {
      if (!advance(t, rec.state, protocol::JobEvent::kNodeLost)) return true;
      store_exec(t, rec);
      ++rerun;
      exec_queue_.push_front(t);
    } else {
      exec_queue_.push_back(t);
    }
    exec_jobs_[t] = ExecJob{{std::move(rec.spec), rec.attempt}, rec.state, rec.local};
    return true;
  });
  if (!s.ok()) return s;
  if (s = index_final_records(); !s.ok()) return s;
  log_->info("recovered node={} unforwarded={} held={} rerun={} undelivered={}", options_.node_id,
             unforwarded_.size(), exec_queue_.size(), rerun, undelivered_.size());
  events_.work = !exec_queue_.empty();
  return Status::Ok();
}

std::string NodeCore::submit(protocol::JobSpec spec, TimeMs now) {
  // <node prefix>-<counter>-<66 random bits>: unique by the first two
  // (the counter is stored with the job), unguessable by the third, at most
  // 6 + 1 + 13 + 1 + 11 = 32 characters below 10^13 jobs of one node.
  spec.ticket = fmt::format("{}-{}-{}", prefix_, counter_++,
                            options_.random_part ? options_.random_part()
                                                 : protocol::random_ticket_part());
  spec.origin = options_.node_id;
  spec.submitted_ms = now;
  std::string ticket = spec.ticket;
  // Encoded once: the bytes begin the job's record and are what the proxy
  // is sent.
  std::string spec_bytes = protocol::to_bytes(spec);
  staged_.put(origin_key(ticket), fresh_origin_record(spec_bytes));
  // Sent once committed while connected; otherwise at the next welcome.
  staged_.put(unforwarded_key(ticket), connected_ ? "" : std::string(kUnsent));
  if (!connected_) unsent_.insert(ticket);
  staged_.put("m/counter", std::to_string(counter_));
  staged_.require_sync();
  if (log_->should_log(spdlog::level::debug)) {  // describe() formats: only when it shows
    log_->debug("accepted ticket={} job=\"{}\"", ticket, spec.describe());
  }
  unforwarded_order_.push_back(ticket);
  unforwarded_.insert(ticket);
  // Run here at once without a proxy, from the spec in hand.
  if (local_mode_) claim_local(ticket, spec);
  if (connected_) {
    pending_submit_.jobs.push_back(std::move(spec));
    pending_submit_.spec_bytes.push_back(std::move(spec_bytes));
  }
  return ticket;
}

bool NodeCore::issued_shape(const std::string& ticket) {
  return protocol::parse_ticket(ticket).has_value();
}

Status NodeCore::index_final_records() {
  // Records written before the expiry index (storage format 4) enter it
  // once, at their end.
  std::string marker;
  if (staged_.get("m/expiry_index", &marker).ok()) return Status::Ok();
  std::size_t indexed = 0;
  for (std::string_view space : {"o/", "x/"}) {
    Status s = staged_.store().scan(space, [&](std::string_view key, std::string_view bytes) {
      std::string ticket(key.substr(2));
      bool final = false;
      std::int64_t at = 0;
      if (space == "o/") {
        OriginRecord rec;
        final = protocol::from_record(bytes, rec) && rec.has_result;
        at = rec.result.final_time();
      } else {
        ExecRecord rec;
        final = protocol::from_record(bytes, rec) && protocol::is_final(rec.state);
        at = rec.result.final_time();
      }
      if (final) {
        staged_.put(protocol::expiry_key(at, std::string(space) + ticket), "");
        ++indexed;
      }
      return true;
    });
    if (!s.ok()) return s;
  }
  staged_.put("m/expiry_index", "1");
  if (indexed > 0) log_->info("finished jobs entered in the expiry index count={}", indexed);
  return Status::Ok();
}

protocol::SweepOutcome NodeCore::sweep(TimeMs now) {
  protocol::SweepOutcome out;
  const auto& retention = options_.retention;
  if (!retention.enabled()) return out;
  std::vector<std::string> gone;  // keys of removed records
  std::string first_index, last_index;
  std::size_t visited = 0;
  staged_.store().scan(protocol::kExpiryPrefix, [&](std::string_view key, std::string_view) {
    auto parsed = protocol::parse_expiry_key(key);
    if (parsed && parsed->first == 0) {
      // No final time known (a record of an earlier build): it counts from now.
      staged_.del(std::string(key));
      staged_.put(protocol::expiry_key(now, parsed->second), "");
      return true;
    }
    if (parsed && !retention.expired(parsed->first, now)) return false;
    if (gone.size() >= kSweepBatch || ++visited > 4 * kSweepBatch) {
      out.more = true;
      return false;
    }
    std::string record_key = parsed ? std::string(parsed->second) : std::string();
    std::string ticket = record_key.size() > 2 ? record_key.substr(2) : std::string();
    bool remove_index = true;
    if (record_key.rfind("o/", 0) == 0) {
      OriginRecord rec;
      if (load(record_key, rec)) {
        if (unforwarded_.count(ticket)) {
          remove_index = false;  // the proxy has not even got it: kept, looked at again
        } else if (rec.has_result &&
                   retention.expired(rec.result.final_time() != 0 ? rec.result.final_time()
                                                                  : parsed->first,
                                     now)) {
          staged_.del(record_key);
          gone.push_back(record_key);
          callbacks_.forget(ticket);
          if (auto parts = protocol::parse_ticket(ticket); parts && parts->prefix == prefix_) {
            expired_upto_ = std::max(expired_upto_, parts->counter);
          }
        }
      }
    } else if (record_key.rfind("x/", 0) == 0) {
      ExecRecord rec;
      if (load(record_key, rec)) {
        if (undelivered_.count(ticket) || exec_jobs_.count(ticket)) {
          remove_index = false;  // its result is still on its way to the proxy
        } else if (protocol::is_final(rec.state) &&
                   retention.expired(rec.result.final_time() != 0 ? rec.result.final_time()
                                                                  : parsed->first,
                                     now)) {
          staged_.del(record_key);
          gone.push_back(record_key);
        }
      }
    }
    if (remove_index) {
      staged_.del(std::string(key));
      if (first_index.empty()) first_index = key;
      last_index = key;
    }
    return true;
  });
  if (!gone.empty()) staged_.put("m/expired", std::to_string(expired_upto_));
  // Others' results fetched for clients.
  for (auto it = remote_.begin(); it != remote_.end();) {
    if (retention.expired(it->second.result.final_time(), now)) {
      it = remote_.erase(it);
    } else {
      ++it;
    }
  }
  std::erase_if(remote_order_, [&](const std::string& t) { return !remote_.count(t); });
  out.removed = gone.size();
  if (!first_index.empty()) out.compact.emplace_back(first_index, last_index);
  if (!gone.empty()) {
    std::sort(gone.begin(), gone.end());
    // o/ and x/ keys, each range apart.
    auto x = std::lower_bound(gone.begin(), gone.end(), std::string("x/"));
    if (x != gone.begin()) out.compact.emplace_back(gone.front(), *(x - 1));
    if (x != gone.end()) out.compact.emplace_back(*x, gone.back());
  }
  if (out.removed > 0) log_->debug("swept expired jobs count={} more={}", out.removed, out.more);
  return out;
}

std::optional<protocol::JobSpec> NodeCore::origin_spec(const std::string& ticket) const {
  OriginRecord origin;
  if (!load(origin_key(ticket), origin)) return std::nullopt;
  return std::move(origin.spec);
}

JobReport NodeCore::lookup(const std::string& ticket, TimeMs now) const {
  const auto& retention = options_.retention;
  JobReport r;
  r.ticket = ticket;
  OriginRecord origin;
  if (load(origin_key(ticket), origin)) {
    if (origin.has_result && retention.expired(origin.result.final_time(), now)) {
      return protocol::expired_report(ticket);
    }
    r.state = origin.state;
    r.attempts = origin.attempts;
    r.owner = origin.spec.owner;
    if (origin.has_result) {
      r.node = origin.result.node;
      r.has_result = true;
      r.result = origin.result;
      return r;
    }
  }
  ExecRecord exec;
  if (load(exec_key(ticket), exec) && (exec.delivered || !protocol::is_final(exec.state))) {
    if (exec.delivered && retention.expired(exec.result.final_time(), now)) {
      return protocol::expired_report(ticket);
    }
    // Our own run's result shows only once the proxy accepted it as the one result.
    r = exec_report(ticket, exec);
    if (!exec.delivered) r.has_result = false;
    return r;
  }
  if (auto it = remote_.find(ticket); it != remote_.end()) {
    if (retention.expired(it->second.result.final_time(), now)) return protocol::expired_report(ticket);
    return it->second;
  }
  if (r.state == JobState::kUnknown && retention.enabled()) {
    if (auto parts = protocol::parse_ticket(ticket);
        parts && parts->prefix == prefix_ && parts->counter <= expired_upto_) {
      return protocol::expired_report(ticket);
    }
  }
  return r;
}

std::vector<GetAllEntry> NodeCore::getall(TimeMs now) const {
  std::vector<GetAllEntry> out;
  staged_.store().scan("o/", [&](std::string_view, std::string_view bytes) {
    OriginRecord rec;
    if (protocol::from_record(bytes, rec) &&
        !(rec.has_result && options_.retention.expired(rec.result.final_time(), now))) {
      out.push_back({rec.spec.ticket, rec.state, rec.spec.describe(), rec.spec.owner});
    }
    return true;
  });
  // Tickets of one node share a prefix: order by their counter, i.e. by
  // submission.
  auto counter = [](const std::string& t) -> std::uint64_t {
    auto first = t.find('-');
    if (first == std::string::npos) return 0;
    try {
      return std::stoull(t.substr(first + 1));
    } catch (...) {
      return 0;
    }
  };
  std::sort(out.begin(), out.end(), [&](const GetAllEntry& a, const GetAllEntry& b) {
    return counter(a.ticket) < counter(b.ticket);
  });
  return out;
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
  // Jobs run here while the proxy was away are introduced by SUBMIT instead.
  for (const auto& [t, a] : exec_jobs_) {
    if (!local_claimed_.count(t)) h.held.push_back(t);
  }
  for (const auto& t : undelivered_) {
    if (!local_claimed_.count(t)) h.finished.push_back(t);
  }
  return h;
}

protocol::Info NodeCore::info() const {
  protocol::Info i;
  i.queued = static_cast<std::uint32_t>(exec_queue_.size());
  i.running = static_cast<std::uint32_t>(running_.size());
  i.free_slots = options_.slots > running_.size()
                     ? options_.slots - static_cast<std::uint32_t>(running_.size())
                     : 0;
  i.finished_total = finished_total_;
  i.pending_forward = static_cast<std::uint32_t>(unforwarded_.size());
  return i;
}

void NodeCore::on_message(protocol::Message m) {
  std::visit(
      [&](auto& msg) {
        using T = std::decay_t<decltype(msg)>;
        if constexpr (std::is_same_v<T, protocol::Welcome>) {
          on_welcome(msg);
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
          cluster_offered_ = {msg.offered.begin(), msg.offered.end()};
          cluster_available_ = {msg.available.begin(), msg.available.end()};
          if (msg.queue_full && !cluster_queue_full_) {
            log_->warn("the cluster's queue is full (MAX_QUEUE {}): refusing new jobs", msg.max_queue);
          } else if (!msg.queue_full && cluster_queue_full_) {
            log_->info("the cluster's queue has room again (MAX_QUEUE {})", msg.max_queue);
          }
          max_queue_ = msg.max_queue;
          cluster_queue_full_ = msg.queue_full;
        } else {
          log_->warn("unexpected message from proxy type={}", protocol::message_name(m));
        }
      },
      m);
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

std::vector<protocol::Message> NodeCore::take_outbox() {
  // New submissions and results of one turn of the event loop travel together.
  if (!pending_submit_.jobs.empty()) {
    pending_submit_.first = true;  // accepted on this connection, never sent before
    outbox_.push_back(std::exchange(pending_submit_, {}));
  }
  if (!pending_results_.reports.empty()) outbox_.push_back(std::exchange(pending_results_, {}));
  // Every frame within the limit, however large the batch (protocol/batching.h).
  std::vector<protocol::Message> out = std::exchange(outbox_, {});
  for (std::size_t i = 0; i < out.size(); ++i) {
    auto pieces = protocol::split_batch(std::move(out[i]));
    out[i] = std::move(pieces[0]);
    for (std::size_t p = 1; p < pieces.size(); ++p) {
      out.insert(out.begin() + static_cast<std::ptrdiff_t>(++i), std::move(pieces[p]));
    }
  }
  return out;
}

void NodeCore::on_disconnected() {
  connected_ = false;
  resend_wait_.clear();
  pending_submit_.jobs.clear();
  pending_submit_.spec_bytes.clear();
  pending_results_.reports.clear();
  outbox_.clear();
}

void NodeCore::on_welcome(const protocol::Welcome& w) {
  if (!w.accepted) return;
  connected_ = true;
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
  resend_wait_.clear();
  resend_undelivered();
  send(info());
}

void NodeCore::resend_undelivered() {
  // Results finished in this turn are on their way already.
  std::unordered_set<std::string> fresh;
  for (const auto& r : pending_results_.reports) fresh.insert(r.ticket);
  protocol::Result results;
  std::size_t offered = 0;
  for (const auto& t : undelivered_) {
    if (offered >= kMaxResendPerRound) break;
    if (fresh.count(t)) continue;
    auto wait = resend_wait_.find(t);
    if (wait != resend_wait_.end() && --wait->second > 0) continue;  // sent lately
    ExecRecord rec;
    if (!load(exec_key(t), rec)) continue;
    results.reports.push_back(exec_report(t, rec));
    ++offered;
    resend_wait_[t] = kResendRounds;
    if (results.reports.size() >= kMaxPerFrame) send(std::exchange(results, {}));
  }
  std::erase_if(resend_wait_, [&](const auto& kv) { return !undelivered_.count(kv.first); });
  if (!results.reports.empty()) send(std::move(results));
}

void NodeCore::set_local_mode(bool on) {
  if (on == local_mode_) return;
  local_mode_ = on;
  if (!on) return;
  log_->warn("proxy away past the grace period: running this node's own queued jobs here count={}",
             unforwarded_.size());
  for (const auto& t : unforwarded_order_) {
    if (unforwarded_.count(t) && !local_claimed_.count(t)) claim_local(t);
  }
}

void NodeCore::start_drain() {
  draining_ = true;
  if (!connected_) return;  // nothing can be handed back: it stays here, durable
  protocol::Leave leave;
  for (const auto& t : exec_queue_) {
    if (running_.count(t) || local_claimed_.count(t) || !exec_jobs_.count(t)) continue;
    leave.handed_back.push_back(t);
  }
  for (const auto& t : leave.handed_back) {
    exec_jobs_.erase(t);
    staged_.del(exec_key(t));
  }
  exec_queue_.clear();
  log_->info("draining: handed back={} running={} undelivered={}", leave.handed_back.size(),
             running_.size(), undelivered_.size());
  send(std::move(leave));
}

bool NodeCore::drained() const {
  // Without the proxy nothing more can be delivered: it stays durable here
  // for the next start.
  return running_.empty() && (!connected_ || (undelivered_.empty() && unforwarded_.empty()));
}

void NodeCore::finish_drain() {
  if (connected_) outbox_.push_back(protocol::Leave{{}, true});
}

void NodeCore::claim_local(const std::string& t) {
  OriginRecord origin;
  if (!load(origin_key(t), origin)) {
    log_->error("unreadable origin record ticket={}: not run here", protocol::escape_sample(t));
    return;
  }
  claim_local(t, std::move(origin.spec));
}

void NodeCore::claim_local(const std::string& t, protocol::JobSpec spec) {
  ExecRecord rec;
  rec.spec = std::move(spec);
  rec.attempt = 1;
  rec.local = true;
  store_exec(t, rec);
  exec_jobs_[t] = ExecJob{{std::move(rec.spec), 1}, JobState::kQueued, true};
  exec_queue_.push_back(t);
  local_claimed_.insert(t);
  events_.work = true;
}

void NodeCore::forward_all() {
  protocol::Submit batch;
  for (const auto& t : unforwarded_order_) {
    // The spec is read back from its record: only the tickets of jobs the
    // proxy has not acknowledged are held in memory.
    OriginRecord rec;
    if (!unforwarded_.count(t)) continue;
    if (!load(origin_key(t), rec)) {
      log_->error("unreadable origin record ticket={}: not forwarded", protocol::escape_sample(t));
      continue;
    }
    batch.jobs.push_back(std::move(rec.spec));
    if (local_claimed_.count(t)) {
      batch.local.push_back(t);
      // Its result shows here already: the proxy must take no other run.
      OriginRecord origin;
      if (undelivered_.count(t) && load(origin_key(t), origin) && origin.has_result &&
          origin.result.node == options_.node_id) {
        batch.local_finished.push_back(t);
      }
    }
    if (unsent_.erase(t)) staged_.put(unforwarded_key(t), "");  // sent from now on
    if (batch.jobs.size() >= kMaxPerFrame) send(std::exchange(batch, {}));
  }
  if (!batch.jobs.empty()) send(std::move(batch));
}

bool NodeCore::advance(const std::string& ticket, JobState& state, protocol::JobEvent event,
                       JobState outcome) {
  if (auto refused = protocol::advance(state, event, outcome)) {
    log_->error("{} ticket={}", *refused, ticket);
    return false;
  }
  return true;
}

void NodeCore::drop_exec(const std::string& t) {
  if (exec_jobs_.erase(t) == 0 && !undelivered_.count(t)) return;
  exec_queue_.erase(std::remove(exec_queue_.begin(), exec_queue_.end(), t), exec_queue_.end());
  if (running_.erase(t)) events_.stop.push_back(t);
  undelivered_.erase(t);
  staged_.del(exec_key(t));
  log_->debug("dropped ticket={}", t);
}

void NodeCore::on_ack(const protocol::Ack& a) {
  if (a.kind == protocol::AckKind::kSubmitted) {
    for (const auto& t : a.tickets) {
      if (unforwarded_.erase(t)) staged_.del(unforwarded_key(t));
      local_claimed_.erase(t);
      unsent_.erase(t);
    }
    while (!unforwarded_order_.empty() && !unforwarded_.count(unforwarded_order_.front())) {
      unforwarded_order_.pop_front();
    }
    return;
  }
  // The proxy holds these results durably now (it acknowledges after its
  // commit): this node's copy of the run has nothing more to do.
  for (const auto& t : a.tickets) {
    if (undelivered_.erase(t)) staged_.del(exec_key(t));
  }
  for (const auto& t : a.superseded) {
    log_->info("result superseded by another run ticket={}", t);
    ExecRecord exec;
    OriginRecord origin;
    // A result shown here is final: only a run the proxy could not have had
    // shows before it accepts it (forward_all), so this is never one of them.
    if (load(exec_key(t), exec) && load(origin_key(t), origin) && origin.has_result &&
        origin.result.node == options_.node_id && origin.result.start_ms == exec.result.start_ms) {
      log_->error("a result shown to clients was superseded ticket={}; it stays shown here", t);
    }
    undelivered_.erase(t);
    staged_.del(exec_key(t));
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
  for (auto& a : j.jobs) {
    const std::string t = a.spec.ticket;
    // Already here (held, or finished with its result not yet acknowledged):
    // the proxy asks again after a reconnect; keep what we have.
    ExecRecord rec;
    if (!protocol::is_valid_ticket(t) || exec_jobs_.count(t) || undelivered_.count(t) ||
        load(exec_key(t), rec)) {
      continue;
    }
    rec.spec = a.spec;
    rec.attempt = a.attempt;
    store_exec(t, rec);
    log_->debug("assigned ticket={} attempt={}", t, a.attempt);
    exec_jobs_[t] = ExecJob{std::move(a), JobState::kQueued, false};
    exec_queue_.push_back(t);
  }
  events_.work = events_.work || !exec_queue_.empty();
}

void NodeCore::on_reports(std::vector<JobReport>& reports) {
  protocol::Ack ack{protocol::AckKind::kResults, {}, {}};
  std::string scratch;
  for (auto& r : reports) {
    if (r.state == JobState::kExpired && !unforwarded_.count(r.ticket) &&
        staged_.get(origin_key(r.ticket), &scratch).ok()) {
      // The job ended and expired while this node was away: its record goes
      // too, and the acknowledgement lets the proxy drop its notice.
      staged_.del(origin_key(r.ticket));
      if (auto parts = protocol::parse_ticket(r.ticket);
          parts && parts->prefix == prefix_ && parts->counter > expired_upto_) {
        expired_upto_ = parts->counter;
        staged_.put("m/expired", std::to_string(expired_upto_));
      }
      remote_.erase(r.ticket);
      ack.tickets.push_back(r.ticket);
    } else if (protocol::is_final(r.state) && r.has_result) {
      OriginRecord rec;
      if (load(origin_key(r.ticket), rec)) {
        // The proxy's result is the one result. A result shown here first
        // (a local run the proxy had never been sent) is that same result.
        bool same = rec.has_result && rec.result.node == r.result.node &&
                    rec.result.attempt == r.result.attempt &&
                    rec.result.start_ms == r.result.start_ms;
        if (same && rec.result.final_ms != r.result.final_ms) {
          rec.result.final_ms = r.result.final_ms;  // RESULT_TTL counts from the proxy's time
          store_origin(r.ticket, rec);
        } else if (!same && advance(r.ticket, rec.state, protocol::JobEvent::kFinish, r.state)) {
          rec.has_result = true;
          rec.result = r.result;
          rec.attempts = r.attempts;
          store_origin(r.ticket, rec);
          if (rec.spec.is_api && !rec.spec.api.callback_url.empty()) callbacks_.owe(r.ticket);
          staged_.require_sync();
        }
        ack.tickets.push_back(r.ticket);
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
  if (!ack.tickets.empty()) send(std::move(ack));
}

void NodeCore::on_requests(const std::vector<std::string>& tickets) {
  if (tickets.empty()) return;
  protocol::Result reply;
  for (const auto& t : tickets) {
    ExecRecord rec;
    if (load(exec_key(t), rec)) {
      reply.reports.push_back(exec_report(t, rec));
    } else {
      JobReport unknown;
      unknown.ticket = t;
      reply.reports.push_back(std::move(unknown));
    }
  }
  send(std::move(reply));
}

JobReport NodeCore::exec_report(const std::string& ticket, const ExecRecord& rec) const {
  JobReport r;
  r.ticket = ticket;
  r.state = running_.count(ticket) ? JobState::kRunning : rec.state;
  r.node = options_.node_id;
  r.attempts = rec.attempt;
  r.owner = rec.spec.owner;
  if (protocol::is_final(rec.state)) {
    r.has_result = true;
    r.result = rec.result;
  }
  return r;
}

std::optional<protocol::Assignment> NodeCore::next_job() {
  while (!draining_ && !exec_queue_.empty() && running_.size() < options_.slots) {
    std::string t = std::move(exec_queue_.front());
    exec_queue_.pop_front();
    auto it = exec_jobs_.find(t);
    if (it == exec_jobs_.end()) continue;
    ExecJob& job = it->second;
    if (!advance(t, job.state, protocol::JobEvent::kDispatch)) continue;
    store_exec(t, exec_record(job));
    running_.insert(t);
    return job.assignment;
  }
  return std::nullopt;
}

void NodeCore::cancel_queued(const std::string& ticket, TimeMs now) {
  auto it = exec_jobs_.find(ticket);
  if (it == exec_jobs_.end() || running_.count(ticket)) return;
  exec_queue_.erase(std::remove(exec_queue_.begin(), exec_queue_.end(), ticket), exec_queue_.end());
  protocol::JobResult r = protocol::cancelled_before_run(it->second.assignment.spec.kind);
  r.start_ms = r.end_ms = now;
  running_.insert(ticket);  // job_finished() takes it from the running set
  job_finished(ticket, std::move(r));
}

void NodeCore::job_finished(const std::string& ticket, protocol::JobResult result) {
  if (!running_.erase(ticket)) return;  // dropped while it ran
  auto it = exec_jobs_.find(ticket);
  if (it == exec_jobs_.end()) return;
  ExecRecord rec = exec_record(std::move(it->second));
  exec_jobs_.erase(it);
  if (!advance(ticket, rec.state, protocol::JobEvent::kFinish, result.state)) return;
  result.node = options_.node_id;
  result.attempt = rec.attempt;
  rec.result = std::move(result);
  store_exec(ticket, rec);
  undelivered_.insert(ticket);
  ++finished_total_;
  if (local_claimed_.count(ticket) && unsent_.count(ticket)) {
    // Never sent to the proxy: its only run, so the origin (this node)
    // shows the result at once. Any other local run's result shows once
    // the proxy has it, since the proxy may have run the job elsewhere.
    OriginRecord origin;
    if (load(origin_key(ticket), origin) && !origin.has_result &&
        advance(ticket, origin.state, protocol::JobEvent::kFinish, rec.state)) {
      origin.has_result = true;
      origin.result = rec.result;
      origin.attempts = rec.attempt;
      store_origin(ticket, origin);
      if (origin.spec.is_api && !origin.spec.api.callback_url.empty()) callbacks_.owe(ticket);
    }
  }
  log_->debug("finished ticket={} state={}", ticket, protocol::to_string(rec.state));
  if (connected_) {
    pending_results_.reports.push_back(exec_report(ticket, rec));
    resend_wait_[ticket] = kResendRounds;
  }
  events_.work = events_.work || !exec_queue_.empty();
}

}  // namespace jc::node
