#include "cluster_node/callback_book.h"

#include <algorithm>

#include "protocol/codec.h"

namespace jc::node {

Status CallbackBook::recover() {
  entries_.clear();
  return staged_.store().scan("c/", [&](std::string_view k, std::string_view bytes) {
    Entry e;
    if (protocol::from_record(bytes, e)) entries_[std::string(k.substr(2))] = e;
    return true;
  });
}

void CallbackBook::store(const std::string& ticket, const Entry& e) {
  entries_[ticket] = e;
  staged_.put(key(ticket), protocol::to_record(e));
}

void CallbackBook::owe(const std::string& ticket) {
  if (entries_.count(ticket)) return;  // owed already (a result seen twice)
  store(ticket, Entry{});
}

std::vector<std::string> CallbackBook::due(TimeMs now, std::size_t max,
                                           const std::set<std::string>& busy) const {
  std::vector<std::pair<TimeMs, std::string>> ready;
  for (const auto& [ticket, e] : entries_) {
    if (e.next_ms <= now && !busy.count(ticket)) ready.emplace_back(e.next_ms, ticket);
  }
  std::sort(ready.begin(), ready.end());
  std::vector<std::string> out;
  for (std::size_t i = 0; i < ready.size() && out.size() < max; ++i) out.push_back(ready[i].second);
  return out;
}

void CallbackBook::answered(const std::string& ticket) { forget(ticket); }

bool CallbackBook::failed(const std::string& ticket, TimeMs now, TimeMs give_up_ms) {
  auto it = entries_.find(ticket);
  if (it == entries_.end()) return false;
  Entry e = it->second;
  if (e.first_ms == 0) e.first_ms = now;
  ++e.attempts;
  if (now - e.first_ms >= give_up_ms) {
    forget(ticket);
    return false;
  }
  TimeMs backoff = kFirstBackoffMs;
  for (std::uint32_t i = 1; i < e.attempts && backoff < kMaxBackoffMs; ++i) backoff *= 2;
  e.next_ms = now + std::min(backoff, kMaxBackoffMs);
  store(ticket, e);
  return true;
}

void CallbackBook::forget(const std::string& ticket) {
  if (entries_.erase(ticket) == 0) return;
  staged_.del(key(ticket));
}

std::optional<CallbackBook::Entry> CallbackBook::entry(const std::string& ticket) const {
  auto it = entries_.find(ticket);
  if (it == entries_.end()) return std::nullopt;
  return it->second;
}

}  // namespace jc::node
