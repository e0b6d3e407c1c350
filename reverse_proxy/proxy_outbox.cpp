// ProxyCore's outbox: what it sends, in which order (results gathered per
// node travel together, ahead of the next other message to that node), and
// what may leave before the commit of its turn (take_early).
#include <algorithm>
#include <unordered_set>

#include "protocol/batching.h"
#include "reverse_proxy/proxy_core.h"

namespace jc::proxy {

using protocol::JobReport;

void ProxyCore::send(const std::string& node, protocol::Message m) {
  flush_results(node);
  for (auto& piece : protocol::split_batch(std::move(m))) outbox_.push_back({node, std::move(piece)});
}

void ProxyCore::push_result(const std::string& node, JobReport report) {
  auto& reports = pending_results_[node].reports;
  if (reports.empty()) {
    constexpr std::size_t kMaxRoom = 4096;
    reports.reserve(std::min(last_result_batch_, kMaxRoom));
  }
  reports.push_back(std::move(report));
}

void ProxyCore::flush_results(const std::string& node) {
  auto it = pending_results_.find(node);
  if (it == pending_results_.end()) return;
  last_result_batch_ = it->second.reports.size();
  protocol::Message m = std::move(it->second);
  pending_results_.erase(it);
  for (auto& piece : protocol::split_batch(std::move(m))) outbox_.push_back({node, std::move(piece)});
}

std::vector<Outgoing> ProxyCore::take_early(const std::unordered_set<std::string>& unwelcomed) {
  std::vector<Outgoing> early;
  std::unordered_set<std::string> welcomed = unwelcomed;  // few: a HELLO per connection
  std::size_t kept = 0;
  for (auto& out : outbox_) {
    if (std::holds_alternative<protocol::Welcome>(out.message)) welcomed.insert(out.node_id);
    if (std::holds_alternative<protocol::Job>(out.message) && !welcomed.count(out.node_id)) {
      early.push_back(std::move(out));
    } else {
      if (&outbox_[kept] != &out) outbox_[kept] = std::move(out);
      ++kept;
    }
  }
  outbox_.resize(kept);
  return early;
}

bool ProxyCore::only_acks_out() const {
  if (!pending_results_.empty()) return false;
  for (const auto& out : outbox_) {
    if (!std::holds_alternative<protocol::Ack>(out.message)) return false;
  }
  return true;
}

std::vector<Outgoing> ProxyCore::take_outbox() {
  while (!pending_results_.empty()) flush_results(pending_results_.begin()->first);
  return std::exchange(outbox_, {});
}

}  // namespace jc::proxy
