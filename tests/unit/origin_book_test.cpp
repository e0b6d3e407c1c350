// The origin's record of which jobs the proxy has not acknowledged
// (cluster_node/origin_book.h): one u/ record per commit for jobs sent at
// once, a record of its own for a job accepted while the proxy was away,
// and what a restart reads back, records of earlier builds included.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "cluster_node/origin_book.h"
#include "common/log.h"
#include "protocol/job.h"
#include "storage/staged.h"
#include "storage/store.h"

namespace jc::node {
namespace {

std::vector<std::string> u_keys(storage::MemoryStore& store) {
  std::vector<std::string> out;
  store.scan("u/", [&](std::string_view k, std::string_view) {
    out.emplace_back(k);
    return true;
  });
  return out;
}

struct Origin {
  explicit Origin(storage::MemoryStore& store) : staged(store), book(staged, log::get("node")) {
    REQUIRE(book.recover().ok());
    REQUIRE(staged.commit().ok());
  }
  std::string accept(bool connected, const std::string& owner = "",
                     const std::string& random_part = "AAAAAAAAAAA") {
    protocol::JobSpec spec;
    spec.kind = protocol::JobKind::kSleep;
    spec.owner = owner;
    std::string bytes;
    return book.accept(spec, 0, "node-a", random_part, connected, bytes);
  }
  // Its result came: DONE.
  void finish(const std::string& t) {
    OriginRecord rec;
    REQUIRE(book.load(t, rec));
    rec.state = protocol::JobState::kDone;
    rec.has_result = true;
    rec.result.state = protocol::JobState::kDone;
    book.store(t, rec);
  }
  storage::Staged staged;
  OriginBook book;
};

}  // namespace

TEST_CASE("origin book: the jobs of one commit share a u/ record, gone once all are acknowledged") {
  storage::MemoryStore store;
  Origin o(store);
  std::string t1 = o.accept(true);
  std::string t2 = o.accept(true);
  REQUIRE(o.staged.commit().ok());
  std::string t3 = o.accept(true);
  REQUIRE(o.staged.commit().ok());
  CHECK(u_keys(store) == std::vector<std::string>{"u/" + t1, "u/" + t3});
  std::string v;
  REQUIRE(store.get("u/" + t1, &v).ok());
  CHECK(v == t1 + "\n" + t2 + "\n");
  CHECK(o.book.unforwarded_count() == 3);

  o.book.acknowledged({t1, t3});
  REQUIRE(o.staged.commit().ok());
  CHECK(u_keys(store) == std::vector<std::string>{"u/" + t1});  // t2 still waits
  CHECK(o.book.unforwarded(t2));
  CHECK_FALSE(o.book.unforwarded(t1));
  o.book.acknowledged({t2});
  REQUIRE(o.staged.commit().ok());
  CHECK(u_keys(store).empty());
  CHECK(o.book.unforwarded_in_order().empty());
}

TEST_CASE("origin book: a restart forwards again what a u/ record still holds, in order") {
  storage::MemoryStore store;
  std::string t1, t2, t3, unsent;
  {
    Origin o(store);
    t1 = o.accept(true);
    t2 = o.accept(true);
    t3 = o.accept(true);
    REQUIRE(o.staged.commit().ok());
    unsent = o.accept(false);
    REQUIRE(o.staged.commit().ok());
    o.book.acknowledged({t2});
    REQUIRE(o.staged.commit().ok());
  }
  Origin o(store);
  // t2 was acknowledged but its batch was not: sent again, and the proxy
  // acknowledges a job it holds again.
  CHECK(o.book.unforwarded_in_order() == std::vector<std::string>{t1, t2, t3, unsent});
  CHECK(o.book.unsent(unsent));
  CHECK_FALSE(o.book.unsent(t1));
  o.book.mark_sent(unsent);
  o.book.acknowledged({t1, t2, t3});
  REQUIRE(o.staged.commit().ok());
  CHECK(u_keys(store) == std::vector<std::string>{"u/" + unsent});
  std::string v;
  REQUIRE(store.get("u/" + unsent, &v).ok());
  CHECK(v.empty());  // sent: after a restart it is no longer "never sent"
  o.book.acknowledged({unsent});
  REQUIRE(o.staged.commit().ok());
  CHECK(u_keys(store).empty());
}

TEST_CASE("origin book: a job whose result came back is not forwarded again after a restart") {
  storage::MemoryStore store;
  std::string t1, t2;
  {
    Origin o(store);
    t1 = o.accept(true);
    t2 = o.accept(true);
    REQUIRE(o.staged.commit().ok());
    o.finish(t1);
    REQUIRE(o.staged.commit().ok());
  }
  Origin o(store);
  CHECK(o.book.unforwarded_in_order() == std::vector<std::string>{t2});
}

TEST_CASE("origin book: u/ records of earlier builds, one job each, still read") {
  storage::MemoryStore store;
  std::string t1, t2;
  {
    Origin o(store);
    t1 = o.accept(true);
    t2 = o.accept(true);
    REQUIRE(o.staged.commit().ok());
  }
  storage::WriteBatch old;  // as an earlier build wrote them
  old.del("u/" + t1);
  old.put("u/" + t1, "");
  old.put("u/" + t2, "unsent");
  REQUIRE(store.write(old, true).ok());
  Origin o(store);
  CHECK(o.book.unforwarded_count() == 2);
  CHECK(o.book.unsent(t2));
  o.book.acknowledged({t1, t2});
  REQUIRE(o.staged.commit().ok());
  CHECK(u_keys(store).empty());
}

TEST_CASE("origin book: only a ticket's own spelling finds its job, pending or unforwarded") {
  storage::MemoryStore store;
  Origin o(store);
  const std::string t = o.accept(false, "alice", "Ab-_9Ab-_9A");
  REQUIRE(o.book.pending(t));
  CHECK(*o.book.pending(t)->owner == "alice");
  CHECK(o.book.unforwarded(t));
  CHECK(o.book.unsent(t));
  auto dash = t.find('-');
  const std::string prefix = t.substr(0, dash), counter = t.substr(dash + 1, t.find('-', dash + 1) - dash - 1);
  for (const std::string& other : std::vector<std::string>{
           prefix + "-0" + counter + "-Ab-_9Ab-_9A",   // a leading zero: the same number
           prefix + "-" + counter + "-Ab-_9Ab-_9B",    // another random part
           prefix + "-" + counter + "-Ab-_9Ab-_9",     // a character short
           prefix + "x-" + counter + "-Ab-_9Ab-_9A",   // another prefix
           "zzzzzz-" + counter + "-Ab-_9Ab-_9A",
           prefix + "--Ab-_9Ab-_9A", prefix + "-" + counter, "", "-"}) {
    CAPTURE(other);
    CHECK_FALSE(o.book.pending(other));
    CHECK_FALSE(o.book.unforwarded(other));
    CHECK_FALSE(o.book.unsent(other));
    o.book.acknowledged({other});
    CHECK(o.book.unforwarded_count() == 1);
  }
  CHECK(o.book.unforwarded_in_order() == std::vector<std::string>{t});
  o.book.mark_sent(t);
  CHECK_FALSE(o.book.unsent(t));
  o.book.acknowledged({t});
  CHECK(o.book.unforwarded_count() == 0);
  CHECK(o.book.pending(t));  // still without its r/ record
  o.finish(t);
  CHECK_FALSE(o.book.pending(t));
  OriginOutcome outcome;
  REQUIRE(o.book.load_outcome(t, outcome));
  CHECK(outcome.owner == "alice");
}

}  // namespace jc::node
