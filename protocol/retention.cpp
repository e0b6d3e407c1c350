#include "protocol/retention.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace jc::protocol {

namespace {
constexpr std::size_t kTimeDigits = 16;

bool digits(std::string_view s, std::uint64_t& out) {
  if (s.empty() || s.size() > 19) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}
}  // namespace

void CompactionPlan::add(std::vector<std::pair<std::string, std::string>> ranges) {
  for (auto& [first, last] : ranges) {
    auto same_space = [&](const auto& r) { return r.first.substr(0, 2) == first.substr(0, 2); };
    auto it = std::find_if(ranges_.begin(), ranges_.end(), same_space);
    if (it == ranges_.end()) {
      ranges_.emplace_back(std::move(first), std::move(last));
    } else {
      it->first = std::min(it->first, first);
      it->second = std::max(it->second, last);
    }
  }
}

std::vector<std::pair<std::string, std::string>> CompactionPlan::due(TimeMs now, TimeMs period) {
  if (ranges_.empty() || now - last_ < period) return {};
  last_ = now;
  return std::exchange(ranges_, {});
}

std::optional<TicketParts> parse_ticket(std::string_view ticket) {
  auto first = ticket.find('-');
  if (first == std::string_view::npos || first == 0) return std::nullopt;
  auto second = ticket.find('-', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  if (ticket.size() - second - 1 != kTicketRandomChars) return std::nullopt;
  TicketParts parts;
  parts.prefix = ticket.substr(0, first);
  std::string_view counter = ticket.substr(first + 1, second - first - 1);
  if (counter.starts_with('0') || !digits(counter, parts.counter)) return std::nullopt;
  parts.random = ticket.substr(second + 1);
  return parts;
}

std::string expiry_key(std::int64_t final_ms, std::string_view rest) {
  return fmt::format("{}{:0{}}/{}", kExpiryPrefix, final_ms < 0 ? 0 : final_ms, kTimeDigits, rest);
}

std::optional<std::pair<std::int64_t, std::string_view>> parse_expiry_key(std::string_view key) {
  if (key.substr(0, kExpiryPrefix.size()) != kExpiryPrefix) return std::nullopt;
  key.remove_prefix(kExpiryPrefix.size());
  if (key.size() < kTimeDigits + 2 || key[kTimeDigits] != '/') return std::nullopt;
  std::uint64_t ms = 0;
  if (!digits(key.substr(0, kTimeDigits), ms)) return std::nullopt;
  return std::make_pair(static_cast<std::int64_t>(ms), key.substr(kTimeDigits + 1));
}

}  // namespace jc::protocol
