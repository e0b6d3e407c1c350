#include "reverse_proxy/result_notices.h"

namespace jc::proxy {

Status ResultNotices::recover(std::size_t& pending) {
  return staged_.store().scan("n/", [&](std::string_view key, std::string_view value) {
    auto rest = key.substr(2);
    auto slash = rest.find('/');
    if (slash == std::string_view::npos) return true;
    std::string origin(rest.substr(0, slash));
    const std::uint64_t id = next_batch_++;
    batches_[id].key = std::string(key);
    if (value.empty()) {  // an earlier build's record: the ticket of its key
      enter(origin, std::string(rest.substr(slash + 1)), id);
      ++pending;
      return true;
    }
    for (std::size_t at = 0; at < value.size();) {
      std::size_t end = value.find('\n', at);
      if (end == std::string_view::npos) end = value.size();
      if (end > at) {
        enter(origin, std::string(value.substr(at, end - at)), id);
        ++pending;
      }
      at = end + 1;
    }
    if (batches_[id].left == 0) {
      staged_.del(std::string(key));
      batches_.erase(id);
    }
    return true;
  });
}

ResultNotices::Owed& ResultNotices::enter(const std::string& origin, const std::string& ticket,
                                          std::uint64_t id) {
  auto [it, added] = unnotified_[origin].try_emplace(ticket, Owed{id, 0});
  if (added) ++batches_[id].left;
  return it->second;
}

void ResultNotices::owe(const std::string& origin, const std::string& ticket) {
  // Into the batch this stage holds for the origin, or a new one.
  auto open = open_.find(origin);
  auto batch = open == open_.end() ? batches_.end() : batches_.find(open->second);
  if (batch == batches_.end() || !staged_.append_staged(batch->second.key, {ticket, "\n"})) {
    const std::uint64_t id = next_batch_++;
    batch = batches_.try_emplace(id, Batch{key(origin, ticket), 0}).first;
    std::string line;
    line.reserve(ticket.size() * 8);  // room for a few more
    line.append(ticket).push_back('\n');
    staged_.put(batch->second.key, std::move(line));
    open_.insert_or_assign(origin, id);
  }
  enter(origin, ticket, batch->first).wait = kRenotifyRounds;
}

void ResultNotices::acknowledged(const std::string& node, const std::vector<std::string>& tickets) {
  auto owed = unnotified_.find(node);
  if (owed == unnotified_.end()) return;
  for (const auto& t : tickets) {
    auto it = owed->second.find(t);
    if (it == owed->second.end()) continue;
    auto batch = batches_.find(it->second.batch);
    owed->second.erase(it);
    if (batch == batches_.end() || --batch->second.left > 0) continue;
    staged_.del(batch->second.key);
    if (auto open = open_.find(node); open != open_.end() && open->second == batch->first) {
      open_.erase(open);
    }
    batches_.erase(batch);
  }
}

std::vector<std::string> ResultNotices::all_owed(const std::string& origin) {
  std::vector<std::string> out;
  if (auto it = unnotified_.find(origin); it != unnotified_.end()) {
    for (auto& [t, owed] : it->second) {
      out.push_back(t);
      owed.wait = kRenotifyRounds;
    }
  }
  return out;
}

std::vector<std::string> ResultNotices::due(const std::string& origin, std::size_t max) {
  std::vector<std::string> out;
  auto it = unnotified_.find(origin);
  if (it == unnotified_.end()) return out;
  for (auto& [t, owed] : it->second) {
    if (out.size() >= max) break;
    if (owed.wait > 0 && --owed.wait > 0) continue;  // pushed lately
    out.push_back(t);
    owed.wait = kRenotifyRounds;
  }
  return out;
}

std::set<std::string> ResultNotices::recipients(const std::string& ticket,
                                                const std::string& origin) {
  std::set<std::string> targets;
  if (auto it = watchers_.find(ticket); it != watchers_.end()) {
    targets = std::move(it->second);
    watchers_.erase(it);
  }
  targets.insert(origin);
  return targets;
}

}  // namespace jc::proxy
