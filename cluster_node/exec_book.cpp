#include "cluster_node/exec_book.h"

#include <algorithm>

namespace jc::node {

using protocol::JobState;

ExecRecord ExecBook::record_of(Job job) {
  ExecRecord rec;
  rec.spec = std::move(job.assignment.spec);
  rec.attempt = job.assignment.attempt;
  rec.state = job.state;
  rec.local = job.local;
  return rec;
}

bool ExecBook::advance(const std::string& t, JobState& state, protocol::JobEvent event,
                       JobState outcome) {
  if (auto refused = protocol::advance(state, event, outcome)) {
    log_->error("{} ticket={}", *refused, t);
    return false;
  }
  return true;
}

Status ExecBook::recover(const std::function<bool(const std::string&)>& origin_unforwarded,
                         std::size_t& was_running) {
  return staged_.store().scan("x/", [&](std::string_view k, std::string_view bytes) {
    std::string t(k.substr(2));
    ExecRecord rec;
    if (!protocol::from_record(bytes, rec)) {
      log_->error("unreadable exec record ticket={}", protocol::escape_sample(t));
      unreadable_.insert(t);  // a new assignment writes over it at once, not later
      return true;
    }
    apply_outcome(t, rec);
    if (rec.local && origin_unforwarded(t)) local_claimed_.insert(t);
    if (protocol::is_final(rec.state)) {
      if (rec.delivered) {
        delivered_records_.insert(t);
      } else {
        undelivered_.try_emplace(t, 0);
      }
      return true;
    }
    // A job that was running when the node stopped runs again from the
    // start: it lost its run as if its node had been lost, and is queued
    // here (records of earlier builds say RUNNING; later ones stay QUEUED).
    if (rec.state == JobState::kRunning) {
      if (!advance(t, rec.state, protocol::JobEvent::kNodeLost)) return true;
      store(t, rec);
      ++was_running;
      queue_.push_front(t);
    } else {
      queue_.push_back(t);
    }
    jobs_[t] = Job{{std::move(rec.spec), rec.attempt}, rec.state, rec.local};
    return true;
  });
}

bool ExecBook::assign(protocol::Assignment& a) {
  const std::string t = a.spec.ticket;
  // Already here (held, or finished with its result not yet acknowledged):
  // the proxy asks again after a reconnect; keep what we have.
  if (!protocol::is_valid_ticket(t) || jobs_.count(t) || undelivered_.count(t) ||
      delivered_records_.count(t)) {
    return false;
  }
  ExecRecord rec;
  rec.attempt = a.attempt;
  std::string bytes = std::move(a.spec_bytes);
  a.spec_bytes.clear();
  if (bytes.empty()) rec.spec = a.spec;  // else the record is made of the bytes
  store(t, rec, bytes, deferring_ && unreadable_.erase(t) == 0);
  log_->debug("assigned ticket={} attempt={}", t, a.attempt);
  jobs_[t] = Job{std::move(a), JobState::kQueued, false};
  queue_.push_back(t);
  return true;
}

void ExecBook::claim_local(const std::string& t, protocol::JobSpec spec) {
  if (auto it = jobs_.find(t); it != jobs_.end()) {
    // Given here already (the proxy sent it before its commit, then went
    // away): it stays as it is, queued or running, and becomes this
    // node's claim. A second entry would run it twice and lose a count
    // of the running ones.
    it->second.local = true;
    ExecRecord rec = record_of(it->second);
    rec.state = JobState::kQueued;  // a start is never written
    store(t, rec);
    local_claimed_.insert(t);
    return;
  }
  if (undelivered_.count(t) > 0) {
    // Run here already: its result waits for the proxy, as a claim's does.
    local_claimed_.insert(t);
    return;
  }
  ExecRecord rec;
  rec.spec = std::move(spec);
  rec.attempt = 1;
  rec.local = true;
  store(t, rec);
  jobs_[t] = Job{{std::move(rec.spec), 1}, JobState::kQueued, true};
  queue_.push_back(t);
  local_claimed_.insert(t);
}

std::optional<protocol::Assignment> ExecBook::next(std::uint32_t slots) {
  while (!queue_.empty() && running_count_ < slots) {
    std::string t = std::move(queue_.front());
    queue_.pop_front();
    auto it = jobs_.find(t);
    if (it == jobs_.end()) continue;
    Job& job = it->second;
    if (!advance(t, job.state, protocol::JobEvent::kDispatch)) continue;
    // The start is not written: a job running when the node stops runs
    // again from the start after a restart, as a queued one does, so its
    // x/ record stays QUEUED until the run's result is written.
    job.running = true;
    ++running_count_;
    return job.assignment;
  }
  return std::nullopt;
}

bool ExecBook::start_cancelled(const std::string& t, protocol::JobKind& kind) {
  auto it = jobs_.find(t);
  if (it == jobs_.end() || it->second.running) return false;
  queue_.erase(std::remove(queue_.begin(), queue_.end(), t), queue_.end());
  kind = it->second.assignment.spec.kind;
  it->second.running = true;
  ++running_count_;
  return true;
}

std::optional<ExecRecord> ExecBook::finish(const std::string& t, protocol::JobResult result,
                                           const std::string& node_id, bool sending) {
  auto it = jobs_.find(t);
  if (it == jobs_.end() || !it->second.running) return std::nullopt;  // dropped while it ran
  --running_count_;
  ExecRecord rec = record_of(std::move(it->second));
  jobs_.erase(it);
  if (!advance(t, rec.state, protocol::JobEvent::kFinish, result.state)) return std::nullopt;
  result.node = node_id;
  result.attempt = rec.attempt;
  rec.result = std::move(result);
  store_outcome(t, rec);  // x/ stays as it was given
  undelivered_.insert_or_assign(t, sending ? kResendRounds : 0);
  ++finished_total_;
  return rec;
}

bool ExecBook::drop(const std::string& t) {
  auto it = jobs_.find(t);
  const bool was_running = it != jobs_.end() && it->second.running;
  if (it != jobs_.end()) {
    jobs_.erase(it);
  } else if (!undelivered_.count(t)) {
    return false;
  }
  if (was_running) --running_count_;
  queue_.erase(std::remove(queue_.begin(), queue_.end(), t), queue_.end());
  undelivered_.erase(t);
  erase(t);
  log_->debug("dropped ticket={}", t);
  return was_running;
}

void ExecBook::delivered(const std::string& t) {
  if (undelivered_.erase(t)) erase(t);
}

void ExecBook::superseded(const std::string& t) {
  undelivered_.erase(t);
  erase(t);
}

std::vector<std::string> ExecBook::hand_back() {
  std::vector<std::string> back;
  for (const auto& t : queue_) {
    auto it = jobs_.find(t);
    if (it == jobs_.end() || it->second.running || local_claimed_.count(t)) continue;
    back.push_back(t);
  }
  for (const auto& t : back) {
    jobs_.erase(t);
    erase(t);
  }
  queue_.clear();
  return back;
}

void ExecBook::apply_outcome(const std::string& t, ExecRecord& rec) const {
  std::string bytes;
  ExecOutcome outcome;
  if (records_.get(storage::ReadKey(kOutcome, t), &bytes).ok() &&
      protocol::from_record(bytes, outcome)) {
    rec.state = outcome.state;
    rec.result = std::move(outcome.result);
  }
}

bool ExecBook::load(const std::string& t, ExecRecord& rec) const {
  std::string bytes;
  if (!records_.get(storage::ReadKey(kExec, t), &bytes).ok() || !protocol::from_record(bytes, rec))
    return false;
  apply_outcome(t, rec);
  return true;
}

protocol::JobReport ExecBook::report(const std::string& t, const ExecRecord& rec,
                                     const std::string& node_id) const {
  protocol::JobReport r;
  r.ticket = t;
  r.state = is_running(t) ? JobState::kRunning : rec.state;
  r.node = node_id;
  r.attempts = rec.attempt;
  r.owner = rec.spec.owner;
  if (protocol::is_final(rec.state)) {
    r.has_result = true;
    r.result = rec.result;
  }
  return r;
}

void ExecBook::fill_hello(protocol::Hello& h) const {
  // Jobs run here while the proxy was away are introduced by SUBMIT instead.
  for (const auto& [t, job] : jobs_) {
    if (!local_claimed_.count(t)) h.held.push_back(t);
  }
  for (const auto& [t, wait] : undelivered_) {
    if (!local_claimed_.count(t)) h.finished.push_back(t);
  }
}

std::vector<protocol::JobReport> ExecBook::due(std::size_t max,
                                               const std::unordered_set<std::string>& fresh,
                                               const std::string& node_id) {
  std::vector<protocol::JobReport> out;
  for (auto& [t, wait] : undelivered_) {
    if (out.size() >= max) break;
    if (fresh.count(t)) continue;
    if (wait > 0 && --wait > 0) continue;  // sent lately
    ExecRecord rec;
    if (!load(t, rec)) continue;
    out.push_back(report(t, rec, node_id));
    wait = kResendRounds;
  }
  return out;
}

}  // namespace jc::node
