// The chaos test's history check, on made-up histories: it must catch a
// read that goes backwards, and only that.
#include "tests/support/history.h"

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

namespace jc::test {
namespace {

using std::chrono::milliseconds;

History::Read at(int sent, int received, const std::string& node, const std::string& reply) {
  auto t0 = std::chrono::steady_clock::time_point{};
  return {"t1", node, "status t1", reply, t0 + milliseconds(sent), t0 + milliseconds(received)};
}

const std::string kResult = "Result: Executed Job[t1] for 5 milliseconds from a to b on node n1";

TEST_CASE("history: reads that stay final, or claim nothing, pass") {
  std::vector<History::Read> reads = {
      at(0, 5, "n1", "Status: t1 RUNNING node=n1 attempt=1"),
      at(10, 20, "n1", kResult),
      at(15, 25, "n2", "Status: t1 RUNNING node=n1 attempt=1"),  // sent before the final was seen
      at(30, 31, "n2", "Status: t1 DONE node=n1 attempt=1"),
      at(40, 41, "n3", "ERR cannot check ticket 't1' now: the proxy, or the node it was submitted to, is "
                          "unreachable; try again"),
      at(50, 51, "n3", kResult)};
  CHECK(backwards_reads(reads).empty());
}

TEST_CASE("history: not final after final, through any node, is caught") {
  for (const std::string& later :
       {std::string("Result has not been executed yet, come back later."),
        std::string("Status: t1 QUEUED node=- attempt=1"), std::string("ERR unknown ticket 't1'")}) {
    std::vector<History::Read> reads = {at(10, 20, "n1", kResult), at(21, 22, "n2", later)};
    auto found = backwards_reads(reads);
    REQUIRE(found.size() == 1);
    CHECK(found[0].rfind("BACKWARDS t1", 0) == 0);
  }
}

TEST_CASE("history: two different results are caught, whenever they were read") {
  std::vector<History::Read> reads = {
      at(10, 20, "n1", kResult),
      at(0, 30, "n2", "Result: Executed Job[t1] for 5 milliseconds from c to d on node n2")};
  auto found = backwards_reads(reads);
  REQUIRE(!found.empty());
  CHECK(found[0].rfind("ANOTHER RESULT t1", 0) == 0);
}

}  // namespace
}  // namespace jc::test
