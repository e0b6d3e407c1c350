// Checks shared by integration tests (doctest assertions: linked only into
// integration_tests, not into the chaos test or the benchmarks).
#include <doctest/doctest.h>

#include "tests/support/cluster.h"

namespace jc::test {

void check_all_finished_once(Cluster& cluster, const std::vector<std::string>& tickets) {
  std::vector<std::unique_ptr<Client>> clients;
  for (std::size_t i = 0; i < cluster.size(); ++i) {
    clients.push_back(std::make_unique<Client>(cluster.node_port(i)));
  }
  for (const auto& t : tickets) {
    std::string r = wait_result(*clients[0], t, 60s);
    REQUIRE_MESSAGE(!r.empty(), "no result for " << t);
    CHECK(r.find("Executed Job[" + t + "]") != std::string::npos);
    for (std::size_t i = 1; i < clients.size(); ++i) {
      CHECK_MESSAGE(wait_result(*clients[i], t, 30s) == r, "node " << i << " differs on " << t);
    }
  }
}

}  // namespace jc::test
