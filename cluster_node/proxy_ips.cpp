#include "cluster_node/proxy_ips.h"

namespace jc::node {

bool ProxyIps::start_lookup(std::size_t k, TimeMs now, bool dialling) {
  Known& known = known_.at(k);
  if (known.in_flight > 0) {
    if (known.in_flight >= kMaxLookups || now - known.lookup_started < kLookupPatienceMs) {
      return false;
    }
  } else {
    const TimeMs age = now - known.at;
    if (known.endpoints.empty() ? !dialling && age < kLookupPatienceMs : age < kRefreshMs) {
      return false;
    }
  }
  ++known.in_flight;
  known.lookup_started = now;
  return true;
}

void ProxyIps::resolved(std::size_t k, Endpoints endpoints, TimeMs now, bool failed) {
  Known& known = known_.at(k);
  if (known.in_flight > 0) --known.in_flight;
  known.at = now;
  if (!failed && !endpoints.empty()) {
    known.endpoints = std::move(endpoints);
    known.doubtful = false;
  }
}

}  // namespace jc::node
