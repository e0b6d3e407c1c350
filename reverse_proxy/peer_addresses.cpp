#include "reverse_proxy/peer_addresses.h"

#include <algorithm>

namespace jc::proxy {

PeerAddresses::Verdict PeerAddresses::check(std::size_t entry, const std::string& ip,
                                            TimeMs now) const {
  auto it = known_.find(entry);
  if (it == known_.end() || !it->second.answered) return Verdict::kResolve;
  const Known& k = it->second;
  bool listed = std::find(k.ips.begin(), k.ips.end(), ip) != k.ips.end();
  if (listed) return now - k.at <= kFreshMs ? Verdict::kMatches : Verdict::kRefresh;
  return now - k.at < kRetryMs ? Verdict::kDiffers : Verdict::kResolve;
}

void PeerAddresses::resolved(std::size_t entry, std::vector<std::string> ips, TimeMs now,
                             bool failed) {
  Known& k = known_[entry];
  k.at = now;
  if (!failed) k.ips = std::move(ips);
  k.resolving = false;
  k.answered = true;
}

bool PeerAddresses::start_resolving(std::size_t entry) {
  Known& k = known_[entry];
  if (k.resolving) return false;
  k.resolving = true;
  return true;
}

}  // namespace jc::proxy
