#include "reverse_proxy/membership.h"

#include <algorithm>

#include "reverse_proxy/admission.h"

namespace jc::proxy {

Status Membership::recover() {
  return staged_.store().scan("o/", [&](std::string_view key, std::string_view value) {
    auto& offers = known_offers_[std::string(key.substr(2))];
    while (!value.empty()) {
      auto comma = value.find(',');
      offers.emplace(value.substr(0, comma));
      value.remove_prefix(comma == std::string_view::npos ? value.size() : comma + 1);
    }
    return true;
  });
}

std::size_t Membership::connected_count() const {
  return std::count_if(nodes_.begin(), nodes_.end(),
                       [](const auto& kv) { return kv.second.connected; });
}

NodeEntry& Membership::join(const protocol::Hello& hello, TimeMs now) {
  auto& node = nodes_[hello.node_id];
  node.connected = true;
  node.draining = false;
  node.slots = hello.slots;
  node.address = hello.client_address;
  node.api_address = plain_api_address(hello.api_address);
  node.sandbox = plain_sandbox(hello.sandbox);
  node.cpus = plain_cpus(hello.cpus);
  node.offers = plain_offers(hello.offers);
  if (auto& known = known_offers_[hello.node_id]; known != node.offers) {
    known = node.offers;
    std::string list;
    for (const auto& o : known) list += (list.empty() ? "" : ",") + o;
    staged_.put("o/" + hello.node_id, list);
  }
  node.last_heard = now;
  return node;
}

bool Membership::can_run(const NodeEntry& entry, std::string_view list) {
  while (!list.empty()) {
    auto comma = list.find(',');
    if (!entry.offers.count(std::string(list.substr(0, comma)))) return false;
    list.remove_prefix(comma == std::string_view::npos ? list.size() : comma + 1);
  }
  return true;
}

std::string Membership::waiting_for(std::string_view needs) const {
  for (const auto& [id, node] : nodes_) {
    if (node.connected && !node.draining && can_run(node, needs)) return "";
  }
  return needs.empty() ? "node" : std::string(needs);
}

bool Membership::update_offers() {
  std::set<std::string> offered, available;
  for (const auto& [id, offers] : known_offers_) offered.insert(offers.begin(), offers.end());
  for (const auto& [id, node] : nodes_) {
    if (node.connected && !node.draining) available.insert(node.offers.begin(), node.offers.end());
  }
  std::vector<std::string> o(offered.begin(), offered.end()), a(available.begin(), available.end());
  bool changed = o != offered_ || a != available_;
  offered_ = std::move(o);
  available_ = std::move(a);
  return changed;
}

bool Membership::update_queue_full(std::uint64_t queued, std::uint64_t max_queue) {
  bool full = proxy::queue_full(queue_full_, queued, max_queue);
  if (full == queue_full_) return false;
  queue_full_ = full;
  return true;
}

}  // namespace jc::proxy
