// The proxy's list of recently finished jobs (reverse_proxy/proxy_stats.h):
// the last kMaxRecentJobs, oldest first, kept in a ring filled in place.
#include "reverse_proxy/proxy_stats.h"

#include <doctest/doctest.h>

#include <string>

namespace jc::proxy {

TEST_CASE("proxy stats: the recent jobs are the last ones, oldest first") {
  ProxyStats stats;
  CHECK(stats.recent_jobs().empty());
  for (int i = 0; i < 3; ++i) stats.next_recent_job().ticket = "t" + std::to_string(i);
  auto few = stats.recent_jobs();
  REQUIRE(few.size() == 3);
  CHECK(few.front().ticket == "t0");
  CHECK(few.back().ticket == "t2");

  const int total = static_cast<int>(ProxyStats::kMaxRecentJobs) + 17;
  for (int i = 3; i < total; ++i) {
    auto& slot = stats.next_recent_job();
    slot.ticket.assign("t" + std::to_string(i));
    slot.cpu_ms = i;
  }
  auto all = stats.recent_jobs();
  REQUIRE(all.size() == ProxyStats::kMaxRecentJobs);
  for (std::size_t k = 0; k < all.size(); ++k) {
    const int i = 17 + static_cast<int>(k);
    CHECK(all[k].ticket == "t" + std::to_string(i));
    CHECK(all[k].cpu_ms == i);
  }
}

}  // namespace jc::proxy
