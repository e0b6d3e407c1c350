// Unit tests of reverse_proxy/balancer.h: the dispatch plan of one round.
#include "reverse_proxy/balancer.h"
#include "reverse_proxy/node_rates.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <vector>

namespace jc::proxy {
namespace {

std::size_t sum(const std::vector<std::uint32_t>& plan) {
  return std::accumulate(plan.begin(), plan.end(), std::size_t{0});
}

std::vector<std::uint32_t> totals(const std::vector<NodeLoad>& nodes,
                                  const std::vector<std::uint32_t>& plan) {
  std::vector<std::uint32_t> t;
  for (std::size_t i = 0; i < nodes.size(); ++i) t.push_back(nodes[i].held + plan[i]);
  return t;
}

std::uint32_t spread(const std::vector<std::uint32_t>& v) {
  auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  return *hi - *lo;
}

}  // namespace

TEST_CASE("balancer: no nodes gives an empty plan") {
  CHECK(plan_dispatch({}, 10, 100, 1, 0).empty());
  CHECK(plan_dispatch({}, 0, 100, 1, 3).empty());
}

TEST_CASE("balancer: nothing queued gives nothing") {
  std::vector<NodeLoad> nodes = {{2, 0}, {2, 0}};
  CHECK(plan_dispatch(nodes, 0, 100, 1, 0) == std::vector<std::uint32_t>{0, 0});
}

TEST_CASE("balancer: more queued than free slots fills every node, then prefetch") {
  std::vector<NodeLoad> nodes = {{2, 0}, {2, 1}, {2, 2}};
  SUBCASE("without prefetch every node reaches its slots") {
    auto plan = plan_dispatch(nodes, 100, 1000, 0, 0);
    CHECK(plan == std::vector<std::uint32_t>{2, 1, 0});
    for (auto t : totals(nodes, plan)) CHECK(t == 2);
  }
  SUBCASE("with prefetch every node reaches slots + prefetch") {
    auto plan = plan_dispatch(nodes, 100, 1000, 1, 0);
    CHECK(plan == std::vector<std::uint32_t>{3, 2, 1});
    for (auto t : totals(nodes, plan)) CHECK(t == 3);
  }
}

TEST_CASE("balancer: fewer jobs than free slots keeps nodes within one of each other") {
  SUBCASE("idle nodes with equal slots") {
    std::vector<NodeLoad> nodes = {{4, 0}, {4, 0}, {4, 0}};
    for (std::size_t queued = 0; queued <= 12; ++queued) {
      CAPTURE(queued);
      auto plan = plan_dispatch(nodes, queued, 1000, 1, 0);
      CHECK(sum(plan) == queued);
      CHECK(spread(totals(nodes, plan)) <= 1);
    }
  }
  SUBCASE("busy nodes are topped up to the level of the others") {
    std::vector<NodeLoad> nodes = {{4, 0}, {4, 1}, {4, 3}};
    auto plan = plan_dispatch(nodes, 4, 1000, 1, 0);
    CHECK(sum(plan) == 4);
    CHECK(plan[2] <= 1);
    CHECK(spread(totals(nodes, plan)) <= 1);
  }
}

TEST_CASE("balancer: max_jobs caps the total of a round") {
  std::vector<NodeLoad> nodes = {{10, 0}, {10, 0}};
  auto plan = plan_dispatch(nodes, 100, 5, 1, 0);
  CHECK(sum(plan) == 5);
  CHECK(spread(plan) <= 1);
  CHECK(sum(plan_dispatch(nodes, 3, 5, 1, 0)) == 3);  // queued is the smaller bound
  CHECK(sum(plan_dispatch(nodes, 100, 0, 1, 0)) == 0);
}

TEST_CASE("balancer: prefetch is used only once every node's slots are full") {
  std::vector<NodeLoad> nodes = {{2, 0}, {4, 1}, {1, 0}};
  const std::uint32_t prefetch = 2;
  int rounds_with_prefetch = 0;
  for (std::size_t queued = 0; queued <= 20; ++queued) {
    CAPTURE(queued);
    auto plan = plan_dispatch(nodes, queued, 1000, prefetch, queued);
    auto t = totals(nodes, plan);
    bool any_prefetch = false;
    bool all_full = true;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      any_prefetch = any_prefetch || t[i] > nodes[i].slots;
      all_full = all_full && t[i] >= nodes[i].slots;
    }
    if (any_prefetch) {
      ++rounds_with_prefetch;
      CHECK(all_full);
    }
    // Free slots: 2 + 3 + 1 = 6; capacity with prefetch: 6 + 3 * 2 = 12.
    CHECK(sum(plan) == std::min<std::size_t>(queued, 12));
  }
  CHECK(rounds_with_prefetch == 20 - 6);  // queued = 7 .. 20
}

TEST_CASE("balancer: prefetch is water-filled too") {
  std::vector<NodeLoad> nodes = {{1, 1}, {1, 1}, {1, 1}};
  auto plan = plan_dispatch(nodes, 4, 1000, 3, 0);
  CHECK(sum(plan) == 4);
  CHECK(spread(plan) <= 1);
}

TEST_CASE("balancer: a new idle node among full nodes gets the jobs first") {
  std::vector<NodeLoad> nodes = {{2, 2}, {2, 2}, {2, 0}};
  SUBCASE("as many jobs as its free slots") {
    CHECK(plan_dispatch(nodes, 2, 1000, 1, 0) == std::vector<std::uint32_t>{0, 0, 2});
  }
  SUBCASE("for any rotation") {
    for (std::size_t rot = 0; rot < 6; ++rot) {
      CAPTURE(rot);
      CHECK(plan_dispatch(nodes, 2, 1000, 1, rot) == std::vector<std::uint32_t>{0, 0, 2});
    }
  }
  SUBCASE("more jobs: the new node is filled before any prefetch") {
    auto plan = plan_dispatch(nodes, 3, 1000, 1, 0);
    CHECK(plan[2] >= 2);
    CHECK(sum(plan) == 3);
  }
}

TEST_CASE("balancer: rotation changes which node gets the odd job") {
  std::vector<NodeLoad> nodes = {{2, 0}, {2, 0}, {2, 0}};
  std::set<std::size_t> winners;
  for (std::size_t rot = 0; rot < 3; ++rot) {
    auto plan = plan_dispatch(nodes, 1, 1000, 1, rot);
    REQUIRE(sum(plan) == 1);
    winners.insert(
        static_cast<std::size_t>(std::find(plan.begin(), plan.end(), 1u) - plan.begin()));
  }
  CHECK(winners.size() == 3);
  // The same rotation gives the same plan.
  CHECK(plan_dispatch(nodes, 1, 1000, 1, 4) == plan_dispatch(nodes, 1, 1000, 1, 4));
}

TEST_CASE("balancer: a node never gets more than slots + prefetch") {
  std::mt19937 gen(12345);
  std::uniform_int_distribution<int> nnodes(1, 6);
  std::uniform_int_distribution<std::uint32_t> slots(1, 8);
  std::uniform_int_distribution<std::uint32_t> pref(0, 3);
  std::uniform_int_distribution<std::size_t> queued(0, 80);
  for (int iter = 0; iter < 500; ++iter) {
    CAPTURE(iter);
    std::uint32_t prefetch = pref(gen);
    std::vector<NodeLoad> nodes(static_cast<std::size_t>(nnodes(gen)));
    std::size_t capacity = 0;
    for (auto& n : nodes) {
      n.slots = slots(gen);
      // Sometimes above the cap (slots lowered on reconnect): gets nothing.
      n.held = std::uniform_int_distribution<std::uint32_t>(0, n.slots + prefetch + 1)(gen);
      if (n.held < n.slots + prefetch) capacity += n.slots + prefetch - n.held;
    }
    std::size_t q = queued(gen);
    auto plan = plan_dispatch(nodes, q, 1000, prefetch, static_cast<std::size_t>(iter));
    REQUIRE(plan.size() == nodes.size());
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      if (nodes[i].held >= nodes[i].slots + prefetch) {
        CHECK(plan[i] == 0);
      } else {
        CHECK(nodes[i].held + plan[i] <= nodes[i].slots + prefetch);
      }
    }
    CHECK(sum(plan) == std::min(q, capacity));
  }
}

TEST_CASE("balancer: a node's own prefetch counts when larger than the global one") {
  // Both full; a fast node (own prefetch 5) and a slow one (none).
  std::vector<NodeLoad> nodes = {{2, 2, 5}, {2, 2, 0}};
  CHECK(plan_dispatch(nodes, 100, 1000, 1, 0) == std::vector<std::uint32_t>{5, 1});
  SUBCASE("free slots still come first, water-filled, before any prefetch") {
    std::vector<NodeLoad> busy = {{2, 2, 5}, {2, 0, 0}};
    CHECK(plan_dispatch(busy, 2, 1000, 1, 0) == std::vector<std::uint32_t>{0, 2});
  }
  SUBCASE("with the global prefetch at 0 only the node's own applies") {
    CHECK(plan_dispatch(nodes, 100, 1000, 0, 0) == std::vector<std::uint32_t>{5, 0});
  }
}

TEST_CASE("balancer: adaptive prefetch takes only sleep jobs short enough") {
  // Two slots and 20 ms: the extras may add up to 40 ms of known work.
  CHECK(fits_adaptive_prefetch(1000, true, 0, 2, 20));
  CHECK(fits_adaptive_prefetch(2, true, 20, 2, 20));
  CHECK_FALSE(fits_adaptive_prefetch(3, true, 20, 2, 20));
  CHECK_FALSE(fits_adaptive_prefetch(1, true, 10'000, 2, 20));
  CHECK_FALSE(fits_adaptive_prefetch(1, true, std::numeric_limits<std::uint64_t>::max(), 2, 20));
  // A run job's length is unknown; DISPATCH_PREFETCH_MS=0 turns it off.
  CHECK_FALSE(fits_adaptive_prefetch(1, false, 0, 2, 20));
  CHECK_FALSE(fits_adaptive_prefetch(1, true, 0, 2, 0));
}

}  // namespace jc::proxy

TEST_CASE("node rate: faster at once, slower over half a second, zero after a pause") {
  jc::proxy::NodeRate r;
  r.update(0, 1000);  // the first window starts
  r.last_result = 1050;
  r.update(100, 1050);  // 100 results in 50 ms: 2,000/s at once
  CHECK(r.per_second == doctest::Approx(2000));
  CHECK(r.prefetch(20) == 40);
  r.last_result = 1100;
  r.update(110, 1100);  // 200/s: blends down, not at once
  CHECK(r.per_second < 2000);
  CHECK(r.per_second > 200);
  r.update(110, 1700);  // 600 ms without a result
  CHECK(r.per_second == 0);
  CHECK(r.prefetch(20) == 0);
  r.per_second = 1e9;
  CHECK(r.prefetch(20) == jc::proxy::NodeRate::kMaxAdaptivePrefetch);
}
