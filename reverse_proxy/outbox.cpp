#include "reverse_proxy/outbox.h"

#include <algorithm>

#include "protocol/batching.h"

namespace jc::proxy {

void Outbox::send(const std::string& node, protocol::Message m) {
  flush_results(node);
  for (auto& piece : protocol::split_batch(std::move(m))) out_.push_back({node, std::move(piece)});
}

void Outbox::push_result(const std::string& node, protocol::JobReport report) {
  auto& reports = results_[node].reports;
  if (reports.empty()) {
    constexpr std::size_t kMaxRoom = 4096;
    reports.reserve(std::min(last_batch_, kMaxRoom));
  }
  reports.push_back(std::move(report));
}

void Outbox::flush_results(const std::string& node) {
  auto it = results_.find(node);
  if (it == results_.end()) return;
  last_batch_ = it->second.reports.size();
  protocol::Message m = std::move(it->second);
  results_.erase(it);
  for (auto& piece : protocol::split_batch(std::move(m))) out_.push_back({node, std::move(piece)});
}

std::vector<Outgoing> Outbox::take_early(const std::unordered_set<std::string>& unwelcomed) {
  std::vector<Outgoing> early;
  std::unordered_set<std::string> welcomed = unwelcomed;  // few: a HELLO per connection
  std::size_t kept = 0;
  for (auto& out : out_) {
    if (std::holds_alternative<protocol::Welcome>(out.message)) welcomed.insert(out.node_id);
    if (std::holds_alternative<protocol::Job>(out.message) && !welcomed.count(out.node_id)) {
      early.push_back(std::move(out));
    } else {
      if (&out_[kept] != &out) out_[kept] = std::move(out);
      ++kept;
    }
  }
  out_.resize(kept);
  return early;
}

bool Outbox::only_acks() const {
  if (!results_.empty()) return false;
  for (const auto& out : out_) {
    if (!std::holds_alternative<protocol::Ack>(out.message)) return false;
  }
  return true;
}

std::vector<Outgoing> Outbox::take() {
  while (!results_.empty()) flush_results(results_.begin()->first);
  return std::exchange(out_, {});
}

}  // namespace jc::proxy
