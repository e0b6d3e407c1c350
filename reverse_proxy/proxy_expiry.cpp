#include "reverse_proxy/proxy_expiry.h"

#include <algorithm>
#include <vector>

#include "protocol/codec.h"
#include "storage/ticket_batches.h"

namespace jc::proxy {

namespace {
constexpr std::string_view kIndexedKey = "m/expiry_index";
}  // namespace

Status ProxyExpiry::recover(TimeMs now) {
  Status s = staged_.store().scan("w/", [&](std::string_view key, std::string_view value) {
    try {
      expired_upto_[std::string(key.substr(2))] = std::stoull(std::string(value));
    } catch (const std::exception&) {
      log_->error("unreadable expiry mark key={}", protocol::escape_sample(key));
    }
    return true;
  });
  if (!s.ok()) return s;
  // Finished records written before the expiry index (storage format 4)
  // enter it once, from their end, or from now when that is not known.
  std::string marker;
  if (staged_.get(kIndexedKey, &marker).ok()) return Status::Ok();
  std::size_t indexed = 0;
  s = book_.scan_finished([&](const std::string& ticket, const JobRecord* rec) {
    std::int64_t final_ms = rec ? rec->result.final_time() : 0;
    index(ticket, final_ms > 0 ? final_ms : now, rec ? rec->spec.origin : "");
    ++indexed;
  });
  if (!s.ok()) return s;
  staged_.put(std::string(kIndexedKey), "1");
  if (indexed > 0) log_->info("finished jobs entered in the expiry index count={}", indexed);
  return Status::Ok();
}

protocol::SweepOutcome ProxyExpiry::sweep(TimeMs now, std::size_t batch) {
  protocol::SweepOutcome out;
  if (!retention_.enabled()) return out;
  std::vector<std::pair<std::string, std::string>> gone;  // expiry key, ticket
  staged_.store().scan(protocol::kExpiryPrefix, [&](std::string_view key, std::string_view value) {
    // Removed (or moved) by a sweep whose writes are not in the store yet
    // (a write in flight, a log entry not applied): done already.
    if (!staged_.settled(key)) return true;
    auto parsed = protocol::parse_expiry_key(key);
    if (parsed && parsed->first == 0) {
      // No final time known (a record of an earlier build): it counts from now.
      staged_.del(std::string(key));
      staged_.put(protocol::expiry_key(now, parsed->second), std::string(value));
      return true;
    }
    if (parsed && !retention_.expired(parsed->first, now)) return false;
    if (gone.size() >= batch) {
      out.more = true;
      return false;
    }
    staged_.del(std::string(key));
    // The key's ticket, and the others of the entry after its origin.
    std::vector<std::string> tickets{parsed ? std::string(parsed->second) : std::string()};
    if (auto origin_end = value.find('\n'); origin_end != std::string_view::npos) {
      storage::for_each_line(value.substr(origin_end),
                             [&](std::string_view t) { tickets.emplace_back(t); });
    }
    for (auto& ticket : tickets) {
      if (!ticket.empty()) {
        book_.erase_finished(ticket);
        if (auto parts = protocol::parse_ticket(ticket)) {
          auto& upto = expired_upto_[std::string(parts->prefix)];
          if (parts->counter > upto) {
            upto = parts->counter;
            staged_.put(watermark_key(parts->prefix), std::to_string(upto));
          }
        }
      }
      gone.emplace_back(std::string(key), std::move(ticket));
    }
    return true;
  });
  if (gone.empty()) return out;
  out.removed = gone.size();
  // The index's range, and the finished records' (tickets scatter over it).
  out.compact.emplace_back(gone.front().first, gone.back().first);
  auto [lo, hi] = std::minmax_element(
      gone.begin(), gone.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
  out.compact.emplace_back(JobBook::finished_key(lo->second), JobBook::finished_key(hi->second));
  out.compact.emplace_back(JobBook::spec_key(lo->second), JobBook::spec_key(hi->second));
  log_->debug("swept expired jobs count={} more={}", out.removed, out.more);
  return out;
}

bool ProxyExpiry::gone(const std::string& ticket) const {
  auto parts = protocol::parse_ticket(ticket);
  if (!parts) return false;
  auto it = expired_upto_.find(std::string(parts->prefix));
  return it != expired_upto_.end() && parts->counter <= it->second;
}

}  // namespace jc::proxy
