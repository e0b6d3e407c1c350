#include "reverse_proxy/balancer.h"

#include <algorithm>
#include <queue>
#include <tuple>

namespace jc::proxy {
namespace {

// Gives up to `budget` jobs, one at a time, to the node with the lowest level
// among those below their cap: its slots, plus with_prefetch the larger of
// `prefetch` and its own. Returns how many were given.
std::size_t water_fill(const std::vector<NodeLoad>& nodes, std::vector<std::uint32_t>& plan,
                       std::size_t budget, bool with_prefetch, std::uint32_t prefetch,
                       std::size_t rotation) {
  using Entry = std::tuple<std::uint32_t, std::size_t, std::size_t>;  // level, order, index
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap;
  const std::size_t n = nodes.size();
  auto cap = [&](std::size_t i) {
    return nodes[i].slots + (with_prefetch ? std::max(prefetch, nodes[i].prefetch) : 0);
  };
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t held = nodes[i].held + plan[i];
    if (held < cap(i)) heap.emplace(held, (i + n - rotation % n) % n, i);
  }
  std::size_t given = 0;
  while (given < budget && !heap.empty()) {
    auto [level, order, i] = heap.top();
    heap.pop();
    ++plan[i];
    ++given;
    if (level + 1 < cap(i)) heap.emplace(level + 1, order, i);
  }
  return given;
}

}  // namespace

bool fits_adaptive_prefetch(std::uint32_t extra, bool known_length, std::uint64_t job_ms,
                            std::uint32_t slots, std::int64_t prefetch_ms) {
  if (!known_length || prefetch_ms <= 0) return false;
  // extra * job_ms <= slots * prefetch_ms, without overflow for huge sleeps.
  auto budget = static_cast<std::uint64_t>(slots) * static_cast<std::uint64_t>(prefetch_ms);
  return job_ms == 0 || extra <= budget / job_ms;
}

std::vector<std::uint32_t> plan_dispatch(const std::vector<NodeLoad>& nodes, std::size_t queued,
                                         std::size_t max_jobs, std::uint32_t prefetch,
                                         std::size_t rotation) {
  std::vector<std::uint32_t> plan(nodes.size(), 0);
  if (nodes.empty()) return plan;
  std::size_t budget = std::min(queued, max_jobs);
  budget -= water_fill(nodes, plan, budget, false, prefetch, rotation);
  if (budget > 0) water_fill(nodes, plan, budget, true, prefetch, rotation);
  return plan;
}

}  // namespace jc::proxy
