// What leaves a node for the proxy, and when (NodeCore): the outbox, the
// submissions that leave before their commit, and the acknowledgements of
// results that wait for a synced one. The shell commits between
// take_early() and take_outbox(), in place or on its writer thread
// (node_commit.cpp), and reports the end of each write here.
#include <algorithm>

#include "cluster_node/node_core.h"
#include "protocol/batching.h"

namespace jc::node {

bool NodeCore::holds_submit(const std::vector<protocol::Message>& messages) {
  return std::any_of(messages.begin(), messages.end(), [](const protocol::Message& m) {
    return std::holds_alternative<protocol::Submit>(m);
  });
}

bool NodeCore::submissions_waiting() const {
  return !pending_submit_.spec_bytes.empty() || holds_submit(outbox_);
}

std::vector<protocol::Message> NodeCore::take_early() {
  // Jobs go to the proxy in the order they came: not ahead of older ones
  // this turn sends again (after a WELCOME).
  const bool older_queued = holds_submit(outbox_);
  if (pending_submit_.spec_bytes.empty() || !connected_ || older_queued ||
      !origin_.issued_below_durable_mark()) {
    return {};
  }
  return protocol::split_batch(take_new_submissions());
}

protocol::Submit NodeCore::take_new_submissions() {
  pending_submit_.first = true;  // accepted on this connection, never sent before
  last_submit_size_ = pending_submit_.spec_bytes.size();
  return std::exchange(pending_submit_, {});
}

namespace {
// Every frame within the limit, however large the batch (protocol/batching.h).
std::vector<protocol::Message> split_all(std::vector<protocol::Message> out) {
  for (std::size_t i = 0; i < out.size(); ++i) {
    auto pieces = protocol::split_batch(std::move(out[i]));
    out[i] = std::move(pieces[0]);
    for (std::size_t p = 1; p < pieces.size(); ++p) {
      out.insert(out.begin() + static_cast<std::ptrdiff_t>(++i), std::move(pieces[p]));
    }
  }
  return out;
}
}  // namespace

bool NodeCore::hold_results(TimeMs steady_now) {
  // A free slot the node cannot fill itself waits for the proxy's next job,
  // which waits for these results.
  if (pending_results_.reports.size() >= kResultBatch || exec_.running() < options_.slots) {
    return false;
  }
  if (!results_held_since_) results_held_since_ = steady_now;
  return steady_now < *results_held_since_ + kResultHoldMs;
}

std::optional<TimeMs> NodeCore::results_due() const {
  if (pending_results_.reports.empty() || !results_held_since_) return std::nullopt;
  return *results_held_since_ + kResultHoldMs;
}

std::vector<protocol::Message> NodeCore::take_outbox(std::optional<TimeMs> steady_now) {
  // New submissions and results of one turn of the event loop travel together.
  if (!pending_submit_.spec_bytes.empty()) outbox_.push_back(take_new_submissions());
  if (!pending_results_.reports.empty() && !(steady_now && hold_results(*steady_now))) {
    outbox_.push_back(std::exchange(pending_results_, {}));
    results_held_since_.reset();
  }
  if (synced_acks_) outbox_.push_back(*std::exchange(synced_acks_, std::nullopt));
  return split_all(std::exchange(outbox_, {}));
}

std::vector<protocol::Message> NodeCore::take_synced_acks() {
  if (!synced_acks_) return {};
  return split_all({*std::exchange(synced_acks_, std::nullopt)});
}

void NodeCore::begin_commit() {
  flight_ = Flight{origin_.reserved(), std::exchange(acks_staged_, {})};
}

void NodeCore::commit_failed() {
  if (!flight_) return;
  // Before those staged since: they are staged again in that order too.
  auto& acks = flight_->acks;
  acks.insert(acks.end(), acks_staged_.begin(), acks_staged_.end());
  acks_staged_ = std::move(acks);
  flight_.reset();
}

void NodeCore::committed(bool synced) {
  if (!flight_) begin_commit();  // made in place: what is staged now
  origin_.committed(flight_->reserved);
  acks_written_.insert(acks_written_.end(), flight_->acks.begin(), flight_->acks.end());
  flight_.reset();
  if (synced && connected_ && !acks_written_.empty()) {
    log_->debug("results acknowledged after a synced commit count={}", acks_written_.size());
    if (!synced_acks_) {
      synced_acks_ = protocol::Ack{protocol::AckKind::kResults, std::exchange(acks_written_, {}), {}};
    } else {
      auto& tickets = synced_acks_->tickets;
      tickets.insert(tickets.end(), acks_written_.begin(), acks_written_.end());
      acks_written_.clear();
    }
  }
}

}  // namespace jc::node
