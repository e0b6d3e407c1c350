#include "reverse_proxy/result_notices.h"

namespace jc::proxy {

Status ResultNotices::recover(std::size_t& pending) {
  return staged_.store().scan("n/", [&](std::string_view key, std::string_view) {
    auto rest = key.substr(2);
    auto slash = rest.find('/');
    if (slash != std::string_view::npos) {
      unnotified_[std::string(rest.substr(0, slash))].insert(std::string(rest.substr(slash + 1)));
      ++pending;
    }
    return true;
  });
}

void ResultNotices::owe(const std::string& origin, const std::string& ticket) {
  staged_.put(key(origin, ticket), "");
  unnotified_[origin].insert(ticket);
  wait_[ticket] = kRenotifyRounds;
}

void ResultNotices::acknowledged(const std::string& node, const std::vector<std::string>& tickets) {
  auto it = unnotified_.find(node);
  for (const auto& t : tickets) {
    staged_.del(key(node, t));
    if (it != unnotified_.end()) it->second.erase(t);
    wait_.erase(t);
  }
}

std::vector<std::string> ResultNotices::all_owed(const std::string& origin) {
  std::vector<std::string> out;
  if (auto it = unnotified_.find(origin); it != unnotified_.end()) {
    for (const auto& t : it->second) {
      out.push_back(t);
      wait_[t] = kRenotifyRounds;
    }
  }
  return out;
}

std::vector<std::string> ResultNotices::due(const std::string& origin, std::size_t max) {
  std::vector<std::string> out;
  auto it = unnotified_.find(origin);
  if (it == unnotified_.end()) return out;
  for (const auto& t : it->second) {
    if (out.size() >= max) break;
    auto wait = wait_.find(t);
    if (wait != wait_.end() && --wait->second > 0) continue;  // pushed lately
    out.push_back(t);
    wait_[t] = kRenotifyRounds;
  }
  return out;
}

std::set<std::string> ResultNotices::recipients(const std::string& ticket, const std::string& origin) {
  std::set<std::string> targets;
  if (auto it = watchers_.find(ticket); it != watchers_.end()) {
    targets = std::move(it->second);
    watchers_.erase(it);
  }
  targets.insert(origin);
  return targets;
}

}  // namespace jc::proxy
