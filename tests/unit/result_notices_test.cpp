// The proxy's results owed to origin nodes (reverse_proxy/result_notices.h):
// one n/ record per origin and commit, gone once all of it is acknowledged,
// and read back after a restart, records of earlier builds included.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "reverse_proxy/result_notices.h"
#include "storage/staged.h"
#include "storage/store.h"

namespace jc::proxy {
namespace {

std::vector<std::string> keys(storage::MemoryStore& store) {
  std::vector<std::string> out;
  store.scan("n/", [&](std::string_view k, std::string_view) {
    out.emplace_back(k);
    return true;
  });
  return out;
}

std::set<std::string> owed(ResultNotices& notices, const std::string& origin) {
  auto all = notices.all_owed(origin);
  return {all.begin(), all.end()};
}

}  // namespace

TEST_CASE("result notices: one record per origin and commit, gone when all of it is acknowledged") {
  storage::MemoryStore store;
  storage::Staged staged(store);
  ResultNotices notices(staged);
  notices.owe("a", "t1");
  notices.owe("a", "t2");
  notices.owe("b", "t3");
  REQUIRE(staged.commit().ok());
  CHECK(keys(store) == std::vector<std::string>{"n/a/t1", "n/b/t3"});
  std::string v;
  REQUIRE(store.get("n/a/t1", &v).ok());
  CHECK(v == "t1\nt2\n");

  notices.owe("a", "t4");  // a later commit: a record of its own
  REQUIRE(staged.commit().ok());
  CHECK(keys(store).size() == 3);
  CHECK(owed(notices, "a") == std::set<std::string>{"t1", "t2", "t4"});

  notices.acknowledged("a", {"t1"});
  REQUIRE(staged.commit().ok());
  CHECK(store.get("n/a/t1", &v).ok());  // t2 is still owed
  notices.acknowledged("a", {"t2", "t4", "unknown"});
  notices.acknowledged("b", {"t1"});  // not b's: changes nothing
  REQUIRE(staged.commit().ok());
  CHECK(keys(store) == std::vector<std::string>{"n/b/t3"});
  CHECK(owed(notices, "a").empty());
  CHECK(owed(notices, "b") == std::set<std::string>{"t3"});
}

TEST_CASE("result notices: a restart owes again what a record still holds") {
  storage::MemoryStore store;
  {
    storage::Staged staged(store);
    ResultNotices notices(staged);
    notices.owe("a", "t1");
    notices.owe("a", "t2");
    REQUIRE(staged.commit().ok());
    notices.acknowledged("a", {"t1"});
    REQUIRE(staged.commit().ok());
  }
  // A record of an earlier build: one ticket, in its key.
  storage::WriteBatch old;
  old.put("n/a/t9", "");
  REQUIRE(store.write(old, true).ok());

  storage::Staged staged(store);
  ResultNotices notices(staged);
  std::size_t pending = 0;
  REQUIRE(notices.recover(pending).ok());
  // t1 was acknowledged but its batch was not: offered again, and the
  // origin acknowledges a result it holds again.
  CHECK(pending == 3);
  CHECK(owed(notices, "a") == std::set<std::string>{"t1", "t2", "t9"});
  notices.acknowledged("a", {"t9"});
  REQUIRE(staged.commit().ok());
  CHECK(keys(store) == std::vector<std::string>{"n/a/t1"});
  notices.acknowledged("a", {"t1", "t2"});
  REQUIRE(staged.commit().ok());
  CHECK(keys(store).empty());
}

TEST_CASE("result notices: a batch acknowledged before its commit is not appended to again") {
  storage::MemoryStore store;
  storage::Staged staged(store);
  ResultNotices notices(staged);
  notices.owe("a", "t1");
  notices.acknowledged("a", {"t1"});
  notices.owe("a", "t2");  // the same stage: a new record
  REQUIRE(staged.commit().ok());
  CHECK(keys(store) == std::vector<std::string>{"n/a/t2"});
  std::string v;
  REQUIRE(store.get("n/a/t2", &v).ok());
  CHECK(v == "t2\n");
  CHECK(owed(notices, "a") == std::set<std::string>{"t2"});
}

TEST_CASE("result notices: a failed commit keeps the batch, and it goes on gathering") {
  storage::MemoryStore store;
  storage::Staged staged(store);
  ResultNotices notices(staged);
  notices.owe("a", "t1");
  store.set_fail_writes(true);
  CHECK_FALSE(staged.commit().ok());
  store.set_fail_writes(false);
  notices.owe("a", "t2");
  REQUIRE(staged.commit().ok());
  std::string v;
  REQUIRE(store.get("n/a/t1", &v).ok());
  CHECK(v == "t1\nt2\n");
}

}  // namespace jc::proxy
