#include "reverse_proxy/ticket_origins.h"

#include "protocol/retention.h"

namespace jc::proxy {

void TicketOrigins::note(std::string_view ticket, std::uint32_t origin) {
  auto parts = protocol::parse_ticket(ticket);
  if (!parts || origin == 0) return;
  by_prefix_.try_emplace(std::string(parts->prefix), origin);  // a prefix is short: no allocation
}

void TicketOrigins::recovered(std::string_view ticket, std::uint32_t origin) {
  auto parts = protocol::parse_ticket(ticket);
  if (!parts || origin == 0) return;
  auto [it, added] =
      recovering_.try_emplace(std::string(parts->prefix), parts->counter, origin);
  if (!added && parts->counter < it->second.first) it->second = {parts->counter, origin};
}

void TicketOrigins::finish_recovery() {
  for (auto& [prefix, seen] : recovering_) by_prefix_.try_emplace(prefix, seen.second);
  recovering_.clear();
}

std::optional<std::uint32_t> TicketOrigins::origin_of(std::string_view ticket) const {
  auto parts = protocol::parse_ticket(ticket);
  if (!parts) return std::nullopt;
  auto it = by_prefix_.find(std::string(parts->prefix));
  if (it == by_prefix_.end()) return std::nullopt;
  return it->second;
}

void TicketOrigins::forget(std::uint32_t origin) {
  absl::erase_if(by_prefix_, [origin](const auto& entry) { return entry.second == origin; });
}

}  // namespace jc::proxy
