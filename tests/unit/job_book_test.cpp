// The proxy's job book (reverse_proxy/job_book.h): a job queued at its
// submit has no a/ record, only a line in its commit's q/ record; its first
// dispatch is a line in an h/ record, a/ is written whole when its record
// changes later; batch records go with the last of their jobs; and a
// restart queues again, in their order, exactly the jobs still queued, and
// holds again those held.
#include "reverse_proxy/job_book.h"

#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <vector>

#include "common/log.h"
#include "protocol/codec.h"
#include "storage/staged.h"
#include "storage/store.h"
#include "tests/support/store_keys.h"

namespace jc::proxy {
namespace {

using protocol::JobState;

using test::store_keys;

// A record written to the store as it is.
void put(storage::MemoryStore& store, const std::string& key, const std::string& value) {
  storage::WriteBatch w;
  w.put(key, value);
  REQUIRE(store.write(w, true).ok());
}

// A job book on `store`, with what the proxy's core does around it.
struct Book {
  explicit Book(storage::MemoryStore& store)
      : staged(store), book(staged, names, log::get("test")) {}

  // Submitted in this commit, priority `priority`.
  void submit(const std::string& t, std::int32_t priority = 0) {
    auto [it, added] = book.add(t);
    REQUIRE(added);
    protocol::JobSpec spec;
    spec.ticket = t;
    spec.kind = protocol::JobKind::kSleep;
    spec.sleep_ms = 5;
    spec.priority = priority;
    book.write_spec(t, protocol::to_record(spec), it->second, true);
    it->second.set_key(QueueKey{priority, book.next_seq()});
    book.note_queued(it);
    book.enqueue(it, 0);
  }
  // The next job out of the queue, its record read as a dispatch reads it,
  // running on `node` at its first attempt.
  JobBook::iterator pop(JobRecord& rec, const std::string& node) {
    auto t = book.pop_for([](std::uint32_t) { return true; });
    REQUIRE(t);
    auto it = book.find(*t);
    REQUIRE(it != book.end());
    std::string spec_bytes;
    REQUIRE(book.load_queued(it, rec, spec_bytes));
    CHECK(rec.spec.ticket == t->view());
    CHECK(!spec_bytes.empty());
    rec.state = JobState::kRunning;
    rec.node = node;
    rec.attempts = 1;
    it->second.state = JobState::kRunning;
    return it;
  }
  // The next job out of the queue, given to a node (its a/ record written).
  std::string dispatch() {
    JobRecord rec;
    auto it = pop(rec, "n1");
    book.store_active(it, rec);
    return it->first.str();
  }
  // The next job out of the queue, given to `node` as the core gives it
  // (JobBook::store_dispatched): at its first dispatch, an h/ line.
  std::string dispatch_to(const std::string& node) {
    JobRecord rec;
    auto it = pop(rec, node);
    rec.nodes_tried.push_back(node);
    book.store_dispatched(it, rec);
    it->second.node = names.intern(node);
    it->second.attempts = 1;
    return it->first.str();
  }
  // Given back to the queue after its node was lost (its sequence kept).
  void requeue(const std::string& t) {
    auto it = book.find(t);
    REQUIRE(it != book.end());
    JobRecord rec;
    REQUIRE(book.load_active(t, rec));
    rec.state = JobState::kQueued;
    rec.node.clear();
    book.store_active(it, rec);
    it->second.state = JobState::kQueued;
    book.put_back(it);
  }
  void finish(const std::string& t) {
    JobRecord rec;
    REQUIRE(book.load_active(t, rec));
    rec.state = JobState::kDone;
    book.store_finished(t, rec);
  }
  void commit() { REQUIRE(staged.commit().ok()); }
  // Reads the book back from its store; true when a record was unreadable.
  // `held` gets the (node, ticket) of each job a node holds.
  bool recover(std::vector<std::pair<std::string, std::string>>* held = nullptr) {
    bool corrupt = false;
    auto hold = [&](const std::string& node, const std::string& t) {
      if (held != nullptr) held->emplace_back(node, t);
    };
    REQUIRE(book.recover(0, hold, corrupt).ok());
    return corrupt;
  }
  // The order the queue gives its jobs out in (emptying it).
  std::vector<std::string> drain() {
    std::vector<std::string> out;
    while (auto t = book.pop_for([](std::uint32_t) { return true; })) out.push_back(t->str());
    return out;
  }

  storage::Staged staged;
  Names names;
  JobBook book;
};

}  // namespace

TEST_CASE("job book: a commit's queued jobs share one q/ record, which goes with the last") {
  storage::MemoryStore store;
  Book b(store);
  b.submit("t1");
  b.submit("t2");
  b.commit();
  b.submit("t3");
  b.commit();
  CHECK(store_keys(store, "a/").empty());
  CHECK(store_keys(store, "q/") ==
        std::vector<std::string>{JobBook::queued_key(1), JobBook::queued_key(3)});
  std::string value;
  REQUIRE(store.get(JobBook::queued_key(1), &value).ok());
  CHECK(value == "t1 1\nt2 2\n");

  // A queued job reads as one: state, sequence and spec from memory and s/.
  JobRecord rec;
  REQUIRE(b.book.load_active("t2", rec));
  CHECK(rec.state == JobState::kQueued);
  CHECK(rec.seq == 2);
  CHECK(rec.attempts == 0);
  CHECK(rec.spec.ticket == "t2");

  CHECK(b.dispatch() == "t1");
  b.commit();
  CHECK(store_keys(store, "a/") == std::vector<std::string>{"a/t1"});
  CHECK(store.get(JobBook::queued_key(1), &value).ok());  // t2 is still queued
  CHECK(b.dispatch() == "t2");
  b.commit();
  CHECK(store_keys(store, "q/") == std::vector<std::string>{JobBook::queued_key(3)});

  // A job finished (cancelled) while queued: f/, no a/ ever, and its batch goes.
  b.finish("t3");
  b.commit();
  CHECK(store_keys(store, "q/").empty());
  CHECK(store_keys(store, "a/") == std::vector<std::string>{"a/t1", "a/t2"});
  CHECK(b.book.has_finished("t3"));
}

TEST_CASE("job book: a restart queues again exactly the jobs still queued, in their order") {
  storage::MemoryStore store;
  {
    Book b(store);
    b.submit("t1");
    b.submit("t2");
    b.submit("t3");
    b.submit("t4");
    b.commit();
    b.submit("t5");
    b.submit("t6", 5);  // goes first
    b.commit();
    CHECK(b.dispatch() == "t6");
    CHECK(b.dispatch() == "t1");
    CHECK(b.dispatch() == "t2");
    b.commit();
    b.requeue("t2");  // back with its sequence: ahead of t3
    b.finish("t1");
    b.finish("t4");  // cancelled while queued
    b.commit();
  }
  Book b(store);
  std::vector<std::pair<std::string, std::string>> held;
  CHECK_FALSE(b.recover(&held));
  CHECK(held == std::vector<std::pair<std::string, std::string>>{{"n1", "t6"}});
  CHECK(b.book.queued() == 3);
  CHECK(b.drain() == std::vector<std::string>{"t2", "t3", "t5"});
  CHECK(b.book.next_seq() == 7);

  // Both q/ records still list a job that is queued; each goes with its last.
  CHECK(store_keys(store, "q/").size() == 2);
  for (const std::string t : {"t3", "t5"}) {
    auto it = b.book.find(t);
    REQUIRE(it != b.book.end());
    JobRecord rec;
    std::string spec_bytes;
    REQUIRE(b.book.load_queued(it, rec, spec_bytes));
    CHECK(rec.seq == (t == "t3" ? 3u : 5u));
    b.book.store_active(it, rec);
  }
  b.commit();
  CHECK(store_keys(store, "q/").empty());
}

TEST_CASE("job book: a q/ record whose jobs all left is deleted at the restart") {
  storage::MemoryStore store;
  {
    Book b(store);
    b.submit("t1");
    b.submit("t2");
    b.commit();
    b.dispatch();
    b.commit();
    // t2 expired after it finished: its s/ and f/ records are gone, the
    // q/ record still lists it (t1 holds it).
    b.finish("t2");
    b.commit();
    b.book.erase_finished("t2");
    b.commit();
    b.finish("t1");
    b.commit();
    CHECK(store_keys(store, "q/").empty());
  }
  // The same, but the record kept (as after a crash before t1's finish).
  put(store, JobBook::queued_key(1), "t1 1\nt2 2\n");
  Book b(store);
  CHECK_FALSE(b.recover());
  CHECK(b.book.queued() == 0);
  b.commit();
  CHECK(store_keys(store, "q/").empty());
}

TEST_CASE("job book: an unreadable q/ line is reported, and the rest of the record recovered") {
  storage::MemoryStore store;
  {
    Book b(store);
    b.submit("t1");
    b.commit();
  }
  put(store, JobBook::queued_key(1), "t1 1\nno-sequence\nt9 x\n");
  Book b(store);
  CHECK(b.recover());
  // The readable job is queued again; the record stays once it leaves,
  // for the lines that could not be read.
  CHECK(b.dispatch() == "t1");
  b.commit();
  CHECK(store_keys(store, "q/") == std::vector<std::string>{JobBook::queued_key(1)});
}

TEST_CASE("job book: a first dispatch is an h/ line, read back at a restart, and an unreadable one is reported") {
  storage::MemoryStore store;
  {
    Book b(store);
    b.submit("t1");
    b.submit("t2");
    b.commit();
    CHECK(b.dispatch_to("n1") == "t1");
    b.commit();
    CHECK(store_keys(store, "a/").empty());
    CHECK(store_keys(store, "h/") == std::vector<std::string>{"h/t1"});
    std::string value;
    REQUIRE(store.get("h/t1", &value).ok());
    CHECK(value == "t1 n1 1\n");
  }
  {
    // t1 is held by n1 again, t2 queued: each from its line.
    Book b(store);
    std::vector<std::pair<std::string, std::string>> held;
    CHECK_FALSE(b.recover(&held));
    CHECK(held == std::vector<std::pair<std::string, std::string>>{{"n1", "t1"}});
    JobRecord rec;
    REQUIRE(b.book.load_active("t1", rec));
    CHECK(rec.state == JobState::kRunning);
    CHECK(rec.node == "n1");
    CHECK(rec.attempts == 1);
    CHECK(rec.seq == 1);
    CHECK(b.drain() == std::vector<std::string>{"t2"});
  }
  // A line without its node or sequence is reported; the record stays
  // once the readable job leaves it.
  put(store, "h/t1", "t1 n1 1\nno-node 3\nt9 n1 x\n");
  Book b(store);
  CHECK(b.recover());
  b.finish("t1");
  b.commit();
  CHECK(store_keys(store, "h/") == std::vector<std::string>{"h/t1"});
}

TEST_CASE("job book: the specs kept for dispatch are counted exactly as they come and go") {
  storage::MemoryStore store;
  Book b(store);
  auto spec_size = [](const std::string& t) {
    protocol::JobSpec spec;
    spec.ticket = t;
    spec.kind = protocol::JobKind::kSleep;
    spec.sleep_ms = 5;
    return protocol::to_record(spec).size();
  };
  const std::size_t one = spec_size("t1");
  b.submit("t1");
  b.submit("t2");
  b.submit("t3");
  b.commit();
  CHECK(b.book.cached_spec_bytes() == 3 * one);

  // A first dispatch reads the kept spec once and keeps the record's head
  // in its place: the job reads as running from memory.
  CHECK(b.dispatch_to("n1") == "t1");
  CHECK(b.book.cached_spec_bytes() == 2 * one);
  JobRecord rec;
  REQUIRE(b.book.load_active("t1", rec));
  CHECK(rec.state == JobState::kRunning);
  CHECK(rec.node == "n1");
  CHECK(rec.attempts == 1);  // the head: no spec read

  // Given back: an a/ record of its own, the head forgotten.
  b.requeue("t1");
  b.commit();
  CHECK(b.book.cached_spec_bytes() == 2 * one);
  REQUIRE(b.book.load_active("t1", rec));
  CHECK(rec.state == JobState::kQueued);
  CHECK(store_keys(store, "a/") == std::vector<std::string>{"a/t1"});

  // Given to a node without its spec read for the dispatch first: the
  // spec still kept is dropped, and counted out, before the head is kept.
  auto it = b.book.find("t2");
  REQUIRE(it != b.book.end());
  REQUIRE(b.book.load_active("t2", rec));
  b.book.unqueue(it);
  rec.state = JobState::kRunning;
  rec.node = "n2";
  rec.attempts = 1;
  rec.nodes_tried = {"n2"};
  b.book.store_dispatched(it, rec);
  it->second.state = JobState::kRunning;
  CHECK(b.book.cached_spec_bytes() == one);
  REQUIRE(b.book.load_active("t2", rec));
  CHECK(rec.state == JobState::kRunning);
  CHECK(rec.node == "n2");

  // Finished, queued or running: nothing of theirs is kept.
  b.finish("t3");
  CHECK(b.book.cached_spec_bytes() == 0);
  b.finish("t2");
  b.finish("t1");
  b.commit();
  CHECK(b.book.cached_spec_bytes() == 0);
  CHECK(b.book.find("t1") == b.book.end());
  CHECK(b.book.has_finished("t1"));
  CHECK(b.book.has_finished("t2"));
}

}  // namespace jc::proxy
