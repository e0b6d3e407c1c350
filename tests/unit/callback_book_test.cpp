// Unit tests of cluster_node/callback_book.h: callbacks owed, due, retried
// with backoff, given up after CALLBACK_RETRY_S, and kept across a restart.
#include "cluster_node/callback_book.h"

#include <doctest/doctest.h>

#include "storage/store.h"

namespace jc::node {

TEST_CASE("callback book: due at once, retried with a doubling backoff, given up in the end") {
  storage::MemoryStore store;
  storage::Staged staged(store);
  CallbackBook book(staged);
  book.owe("t1");
  book.owe("t1");  // owed once
  CHECK(book.size() == 1);
  CHECK(book.due(0, 10, {}) == std::vector<std::string>{"t1"});
  CHECK(book.due(0, 10, {"t1"}).empty());  // in flight
  CHECK(book.failed("t1", 1000, 60'000));
  CHECK(book.due(1999, 10, {}).empty());
  CHECK(book.due(2000, 10, {}).size() == 1);
  CHECK(book.failed("t1", 2000, 60'000));
  CHECK(book.entry("t1")->next_ms == 4000);  // 2 s after the second failure
  CHECK(book.entry("t1")->attempts == 2);
  CHECK_FALSE(book.failed("t1", 61'000, 60'000));  // a minute after the first try
  CHECK(book.size() == 0);
}

TEST_CASE("callback book: what is owed survives a restart, and an answer ends it") {
  storage::MemoryStore store;
  {
    storage::Staged staged(store);
    CallbackBook book(staged);
    book.owe("a");
    book.owe("b");
    book.failed("b", 5000, 3'600'000);
    REQUIRE(staged.commit().ok());
  }
  storage::Staged staged(store);
  CallbackBook book(staged);
  REQUIRE(book.recover().ok());
  CHECK(book.size() == 2);
  CHECK(book.entry("b")->attempts == 1);
  CHECK(book.due(0, 10, {}) == std::vector<std::string>{"a"});
  book.answered("a");
  book.forget("b");
  REQUIRE(staged.commit().ok());
  CallbackBook again(staged);
  REQUIRE(again.recover().ok());
  CHECK(again.size() == 0);
}

}  // namespace jc::node
