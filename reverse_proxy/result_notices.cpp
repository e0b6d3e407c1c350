#include "reverse_proxy/result_notices.h"

namespace jc::proxy {

Status ResultNotices::recover(std::size_t& pending) {
  return staged_.store().scan("n/", [&](std::string_view key, std::string_view value) {
    auto rest = key.substr(2);
    auto slash = rest.find('/');
    if (slash == std::string_view::npos) return true;
    std::string origin(rest.substr(0, slash));
    const std::uint64_t id = batches_.read(std::string(key));
    auto owe_again = [&](std::string_view t) {
      enter(origin, std::string(t), id);
      ++pending;
    };
    if (value.empty()) {
      owe_again(rest.substr(slash + 1));  // an earlier build's record: its key's ticket
    } else {
      storage::for_each_line(value, owe_again);
    }
    batches_.settle(id);
    return true;
  });
}

ResultNotices::Owed& ResultNotices::enter(const std::string& origin, const std::string& ticket,
                                          std::uint64_t id) {
  auto [it, added] = unnotified_[origin].try_emplace(ticket, Owed{id, 0});
  if (added) batches_.hold(id);
  return it->second;
}

void ResultNotices::owe(const std::string& origin, const std::string& ticket) {
  // Into the batch this stage holds for the origin, or a new one.
  const std::uint64_t id = batches_.add(origin, ticket, [&] { return key(origin, ticket); });
  enter(origin, ticket, id).wait = kRenotifyRounds;
}

void ResultNotices::acknowledged(const std::string& node, const std::vector<std::string>& tickets) {
  auto owed = unnotified_.find(node);
  if (owed == unnotified_.end()) return;
  for (const auto& t : tickets) {
    auto it = owed->second.find(t);
    if (it == owed->second.end()) continue;
    batches_.release(it->second.batch);
    owed->second.erase(it);
  }
}

std::vector<std::string> ResultNotices::all_owed(const std::string& origin) {
  std::vector<std::string> out;
  if (auto it = unnotified_.find(origin); it != unnotified_.end()) {
    for (auto& [t, owed] : it->second) {
      out.push_back(t.str());
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
    out.push_back(t.str());
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
