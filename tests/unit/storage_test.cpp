// Unit tests of storage/store.h (LevelDB and MemoryStore), storage/staged.h
// and storage/deferred.h.
#include <doctest/doctest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <optional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/counters.h"
#include "storage/background_write.h"
#include "storage/deferred.h"
#include "storage/staged.h"
#include "storage/store.h"
#include "tests/support/read_counting_store.h"

namespace jc::storage {
namespace {

namespace fs = std::filesystem;

// A fresh directory under the system temp dir, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    path_ = fs::temp_directory_path() / ("jc_storage_test_" + std::to_string(::getpid()) + "_" +
                                         std::to_string(stamp) + "_" + std::to_string(counter++));
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string str() const { return path_.string(); }

 private:
  fs::path path_;
};

using Pairs = std::vector<std::pair<std::string, std::string>>;

Pairs scan_all(Store& s, std::string_view prefix) {
  Pairs out;
  Status st = s.scan(prefix, [&](std::string_view k, std::string_view v) {
    out.emplace_back(std::string(k), std::string(v));
    return true;
  });
  CHECK(st.ok());
  return out;
}

std::string get_or(Store& s, std::string_view key, std::string fallback = "<absent>") {
  std::string v;
  Status st = s.get(key, &v);
  if (st.is_not_found()) return fallback;
  REQUIRE(st.ok());
  return v;
}

void write_ok(Store& s, const WriteBatch& b, bool sync = false) { REQUIRE(s.write(b, sync).ok()); }

// The behaviours every Store must have, run on LevelDB and on MemoryStore.
void check_put_get_del(Store& s) {
  WriteBatch b;
  b.put("k1", "v1");
  b.put("k2", std::string("v\0two", 5));
  b.put("k3", "v3");
  write_ok(s, b, true);
  CHECK(get_or(s, "k1") == "v1");
  CHECK(get_or(s, "k2") == std::string("v\0two", 5));
  CHECK(get_or(s, "k3") == "v3");

  WriteBatch b2;
  b2.del("k1");
  b2.put("k3", "v3-new");
  b2.del("never-there");
  write_ok(s, b2);
  CHECK(get_or(s, "k1") == "<absent>");
  CHECK(get_or(s, "k3") == "v3-new");
  CHECK(get_or(s, "k2") == std::string("v\0two", 5));
}

void check_batch_order(Store& s) {
  // Later operations of a batch win over earlier ones on the same key.
  WriteBatch b;
  b.put("x", "1");
  b.del("x");
  b.put("y", "1");
  b.put("y", "2");
  write_ok(s, b);
  CHECK(get_or(s, "x") == "<absent>");
  CHECK(get_or(s, "y") == "2");
}

void check_not_found(Store& s) {
  std::string v = "untouched";
  Status st = s.get("absent", &v);
  CHECK_FALSE(st.ok());
  CHECK(st.is_not_found());
  CHECK(st.code() == Status::Code::kNotFound);
}

void check_scan(Store& s) {
  WriteBatch b;
  // Written out of order; with neighbours that share a byte prefix.
  b.put("a/3", "three");
  b.put("a/1", "one");
  b.put("a/2", "two");
  b.put("a", "bare");
  b.put("a0", "after");
  b.put("b/1", "other");
  b.put("/a/1", "before");
  write_ok(s, b);
  CHECK(scan_all(s, "a/") == Pairs{{"a/1", "one"}, {"a/2", "two"}, {"a/3", "three"}});
  CHECK(scan_all(s, "b/") == Pairs{{"b/1", "other"}});
  CHECK(scan_all(s, "c/").empty());

  // Stops as soon as the callback returns false.
  std::vector<std::string> seen;
  Status st = s.scan("a/", [&](std::string_view k, std::string_view) {
    seen.emplace_back(k);
    return seen.size() < 2;
  });
  CHECK(st.ok());
  CHECK(seen == std::vector<std::string>{"a/1", "a/2"});
}

}  // namespace

// ---- LevelDB -----------------------------------------------------------

TEST_CASE("storage: leveldb put, get and del in a batch") {
  TempDir dir;
  std::unique_ptr<Store> db;
  REQUIRE(open_leveldb(dir.str(), &db).ok());
  REQUIRE(db);
  check_put_get_del(*db);
  check_batch_order(*db);
}

TEST_CASE("storage: leveldb get of an absent key is NotFound") {
  TempDir dir;
  std::unique_ptr<Store> db;
  REQUIRE(open_leveldb(dir.str(), &db).ok());
  check_not_found(*db);
}

TEST_CASE("storage: leveldb scans a prefix in key order and stops early") {
  TempDir dir;
  std::unique_ptr<Store> db;
  REQUIRE(open_leveldb(dir.str(), &db).ok());
  check_scan(*db);
}

TEST_CASE("storage: leveldb creates missing parent directories") {
  TempDir dir;
  std::unique_ptr<Store> db;
  REQUIRE(open_leveldb(dir.str() + "/nested/deeper", &db).ok());
  WriteBatch b;
  b.put("k", "v");
  write_ok(*db, b);
  CHECK(get_or(*db, "k") == "v");
}

TEST_CASE("storage: leveldb data survives closing and reopening") {
  TempDir dir;
  {
    std::unique_ptr<Store> db;
    REQUIRE(open_leveldb(dir.str(), &db).ok());
    WriteBatch b;
    b.put("a/1", "one");
    b.put("a/2", "two");
    b.put("gone", "soon");
    write_ok(*db, b, true);
    WriteBatch d;
    d.del("gone");
    write_ok(*db, d, false);
  }  // closed here
  std::unique_ptr<Store> db;
  REQUIRE(open_leveldb(dir.str(), &db).ok());
  CHECK(get_or(*db, "a/1") == "one");
  CHECK(get_or(*db, "gone") == "<absent>");
  CHECK(scan_all(*db, "a/") == Pairs{{"a/1", "one"}, {"a/2", "two"}});
}

TEST_CASE("storage: leveldb refuses a second open of a directory in use") {
  TempDir dir;
  std::unique_ptr<Store> first;
  REQUIRE(open_leveldb(dir.str(), &first).ok());
  std::unique_ptr<Store> second;
  Status st = open_leveldb(dir.str(), &second);
  CHECK_FALSE(st.ok());
  CHECK_FALSE(st.message().empty());
  CHECK(second == nullptr);
  // Once the first is closed the directory opens again.
  first.reset();
  CHECK(open_leveldb(dir.str(), &second).ok());
}

TEST_CASE("storage: leveldb refuses a directory path that is a file") {
  TempDir dir;
  std::unique_ptr<Store> db;
  REQUIRE(open_leveldb(dir.str(), &db).ok());
  db.reset();
  std::unique_ptr<Store> other;
  // A path below a regular file cannot be created.
  Status st = open_leveldb(dir.str() + "/CURRENT/sub", &other);
  CHECK_FALSE(st.ok());
}

// ---- MemoryStore ---------------------------------------------------------

TEST_CASE("storage: memory store put, get and del in a batch") {
  MemoryStore s;
  check_put_get_del(s);
  CHECK(s.size() == 2);
  check_batch_order(s);
}

TEST_CASE("storage: memory store get of an absent key is NotFound") {
  MemoryStore s;
  check_not_found(s);
}

TEST_CASE("storage: memory store scans a prefix in key order and stops early") {
  MemoryStore s;
  check_scan(s);
}

TEST_CASE("storage: memory store set_fail_writes makes writes fail and change nothing") {
  MemoryStore s;
  WriteBatch b;
  b.put("k", "v");
  write_ok(s, b);
  s.set_fail_writes(true);
  WriteBatch b2;
  b2.put("k", "changed");
  b2.put("new", "x");
  Status st = s.write(b2, true);
  CHECK_FALSE(st.ok());
  CHECK(st.code() == Status::Code::kIoError);
  CHECK(get_or(s, "k") == "v");
  CHECK(get_or(s, "new") == "<absent>");
  CHECK(s.synced_writes() == 0);
  s.set_fail_writes(false);
  CHECK(s.write(b2, true).ok());
  CHECK(get_or(s, "k") == "changed");
}

TEST_CASE("storage: memory store counts synced writes only") {
  MemoryStore s;
  WriteBatch b;
  b.put("k", "v");
  write_ok(s, b, false);
  CHECK(s.synced_writes() == 0);
  write_ok(s, b, true);
  write_ok(s, b, true);
  CHECK(s.synced_writes() == 2);
}

// ---- Staged --------------------------------------------------------------

TEST_CASE("storage: check_format marks an empty store and accepts it again") {
  MemoryStore store;
  REQUIRE(check_format(store).ok());
  std::string value;
  REQUIRE(store.get(kFormatKey, &value).ok());
  CHECK(value == kStorageFormat);
  CHECK(store.synced_writes() == 1);
  CHECK(check_format(store).ok());
  CHECK(store.synced_writes() == 1);
}

TEST_CASE("storage: check_format refuses data of another format with the reason") {
  MemoryStore store;
  WriteBatch b;
  b.put(std::string(kFormatKey), "7");
  REQUIRE(store.write(b, true).ok());
  Status s = check_format(store);
  CHECK(s.code() == Status::Code::kInvalidArgument);
  CHECK(s.message().find("format 7") != std::string::npos);
}

TEST_CASE("storage: check_format refuses unmarked data (format 1) instead of misreading it") {
  MemoryStore store;
  WriteBatch b;
  b.put("a/t1", "old bytes");
  REQUIRE(store.write(b, true).ok());
  Status s = check_format(store);
  CHECK(s.code() == Status::Code::kInvalidArgument);
  CHECK(s.message().find("format 1") != std::string::npos);
  std::string value;
  CHECK(store.get(kFormatKey, &value).is_not_found());
}

TEST_CASE("staged: get sees staged puts and dels before commit") {
  MemoryStore s;
  WriteBatch b;
  b.put("old", "disk");
  b.put("doomed", "disk");
  write_ok(s, b);

  Staged st(s);
  st.put("new", "staged");
  st.put("old", "overwritten");
  st.del("doomed");
  CHECK(st.size() == 3);
  CHECK_FALSE(st.empty());

  std::string v;
  REQUIRE(st.get("new", &v).ok());
  CHECK(v == "staged");
  REQUIRE(st.get("old", &v).ok());
  CHECK(v == "overwritten");
  CHECK(st.get("doomed", &v).is_not_found());
  CHECK(st.get("absent", &v).is_not_found());

  // Nothing reached the store yet.
  CHECK(get_or(s, "new") == "<absent>");
  CHECK(get_or(s, "old") == "disk");
  CHECK(get_or(s, "doomed") == "disk");
}

TEST_CASE("staged: the last staged change of a key wins") {
  MemoryStore s;
  Staged st(s);
  st.put("k", "1");
  st.del("k");
  std::string v;
  CHECK(st.get("k", &v).is_not_found());
  st.put("k", "2");
  REQUIRE(st.get("k", &v).ok());
  CHECK(v == "2");
  CHECK(st.size() == 1);
}

TEST_CASE("staged: commit writes everything and clears the stage") {
  MemoryStore s;
  WriteBatch b;
  b.put("doomed", "disk");
  write_ok(s, b);
  Staged st(s);
  st.put("a", "1");
  st.put("b", "2");
  st.del("doomed");
  REQUIRE(st.commit().ok());
  CHECK(st.empty());
  CHECK(get_or(s, "a") == "1");
  CHECK(get_or(s, "b") == "2");
  CHECK(get_or(s, "doomed") == "<absent>");
  // Reads still see the store through the stage.
  std::string v;
  REQUIRE(st.get("a", &v).ok());
  CHECK(v == "1");
  CHECK(&st.store() == &s);
}

TEST_CASE("staged: require_sync makes the commit a synced write, once") {
  MemoryStore s;
  Staged st(s);
  st.put("a", "1");
  REQUIRE(st.commit().ok());
  CHECK(s.synced_writes() == 0);

  st.put("b", "2");
  st.require_sync();
  REQUIRE(st.commit().ok());
  CHECK(s.synced_writes() == 1);

  // The flag is reset by the commit.
  st.put("c", "3");
  REQUIRE(st.commit().ok());
  CHECK(s.synced_writes() == 1);
}

TEST_CASE("staged: commit of an empty stage writes nothing") {
  MemoryStore s;
  Staged st(s);
  st.require_sync();
  CHECK(st.commit().ok());
  CHECK(s.synced_writes() == 0);
  CHECK(s.size() == 0);
}

TEST_CASE("staged: a failed commit reports the store's error") {
  MemoryStore s;
  s.set_fail_writes(true);
  Staged st(s);
  st.put("a", "1");
  Status result = st.commit();
  CHECK_FALSE(result.ok());
  CHECK(s.size() == 0);
}

TEST_CASE("staged: works over leveldb") {
  TempDir dir;
  std::unique_ptr<Store> db;
  REQUIRE(open_leveldb(dir.str(), &db).ok());
  Staged st(*db);
  st.put("p/1", "x");
  st.require_sync();
  REQUIRE(st.commit().ok());
  CHECK(get_or(*db, "p/1") == "x");
}


TEST_CASE("staged: a commit that fails keeps the stage, and the retry writes it all") {
  jc::storage::MemoryStore store;
  jc::storage::Staged staged(store);
  staged.put("a", "1");
  staged.del("b");
  staged.require_sync();
  store.set_fail_writes(true);
  CHECK_FALSE(store.writable());
  CHECK_FALSE(staged.commit().ok());
  CHECK(staged.size() == 2);
  std::string v;
  CHECK(staged.get("a", &v).ok());
  CHECK(v == "1");
  store.set_fail_writes(false);
  CHECK(staged.commit().ok());
  CHECK(staged.empty());
  CHECK(store.get("a", &v).ok());
  CHECK(store.synced_writes() == 1);
}

TEST_CASE("staged: several lifted stages stay visible, newest first, until each lands in order") {
  jc::storage::MemoryStore store;
  jc::storage::Staged staged(store);
  staged.put("a", "1");
  staged.put("b", "1");
  jc::storage::WriteBatch first;
  staged.lift(first);
  CHECK(first.size() == 2);
  CHECK(staged.empty());
  staged.put("a", "2");
  staged.del("b");
  jc::storage::WriteBatch second;
  staged.lift(second);
  CHECK(staged.in_flight() == 2);
  // Nothing staged: lift adds no flight (no entry is proposed for it).
  jc::storage::WriteBatch none;
  staged.lift(none);
  CHECK(none.empty());
  CHECK(staged.in_flight() == 2);
  std::string v;
  REQUIRE(staged.get("a", &v).ok());
  CHECK(v == "2");
  CHECK(staged.get("b", &v).is_not_found());
  // The first entry is applied: the store has it, and the second still wins.
  REQUIRE(store.write(first, false).ok());
  staged.landed();
  CHECK(staged.in_flight() == 1);
  REQUIRE(staged.get("a", &v).ok());
  CHECK(v == "2");
  CHECK(staged.get("b", &v).is_not_found());
  // The second was lost with leadership: reads fall back to the store.
  staged.forget_flights();
  CHECK(staged.in_flight() == 0);
  REQUIRE(staged.get("a", &v).ok());
  CHECK(v == "1");
  REQUIRE(staged.get("b", &v).ok());
  CHECK(v == "1");
}

TEST_CASE("staged: keep_recent answers reads of the last landed commit from memory, and only of it") {
  test::ReadCountingStore store;
  Staged staged(store);
  staged.keep_recent();
  std::string v;
  staged.put("a", "1");
  staged.put("b", "1");
  REQUIRE(staged.commit().ok());
  CHECK(get_or(store, "a") == "1");  // written
  store.reads.clear();
  REQUIRE(staged.get("a", &v).ok());
  CHECK(v == "1");
  CHECK(store.reads.empty());
  // What is staged wins over it; the next commit replaces it.
  staged.put("a", "2");
  REQUIRE(staged.get("a", &v).ok());
  CHECK(v == "2");
  REQUIRE(staged.commit().ok());
  REQUIRE(staged.get("a", &v).ok());
  CHECK(v == "2");
  CHECK(store.reads.empty());
  REQUIRE(staged.get("b", &v).ok());  // of the commit before: from the store
  CHECK(v == "1");
  CHECK(store.reads["b"] == 1);
  // A delete just committed is known too.
  staged.del("a");
  REQUIRE(staged.commit().ok());
  CHECK(staged.get("a", &v).is_not_found());
  CHECK(store.reads.count("a") == 0);
  // A commit that fails changes nothing of it, and is staged still.
  store.set_fail_writes(true);
  staged.put("c", "3");
  CHECK_FALSE(staged.commit().ok());
  CHECK(staged.get("a", &v).is_not_found());
  CHECK(store.reads.count("a") == 0);
  REQUIRE(staged.get("c", &v).ok());
  CHECK(v == "3");
  store.set_fail_writes(false);
  REQUIRE(staged.commit().ok());
  CHECK(get_or(store, "c") == "3");
  store.reads.clear();
  REQUIRE(staged.get("c", &v).ok());
  CHECK(store.reads.empty());
  // A stage written in place (on a writer thread) is kept once it lands.
  staged.put("d", "4");
  REQUIRE(store.write_ops(staged.lift_in_place(), false).ok());
  staged.landed();
  REQUIRE(staged.get("d", &v).ok());
  CHECK(v == "4");
  REQUIRE(staged.get("c", &v).ok());  // replaced by that one
  CHECK(store.reads == std::map<std::string, int>{{"c", 1}});
}

TEST_CASE("staged: keep_recent: what is in flight wins over the last landed commit, and a failed synced commit still owes its sync") {
  test::ReadCountingStore store;
  Staged staged(store);
  staged.keep_recent();
  std::string v;
  staged.put("k", "landed");
  REQUIRE(staged.commit().ok());
  // A newer value on its way to the store (a writer thread's write).
  staged.put("k", "flying");
  const WriteBatch::Ops& ops = staged.lift_in_place();
  REQUIRE(staged.get("k", &v).ok());
  CHECK(v == "flying");
  REQUIRE(store.write_ops(ops, false).ok());
  staged.landed();
  REQUIRE(staged.get("k", &v).ok());
  CHECK(v == "flying");
  // A synced commit that fails is still owed, synced, with what it held.
  store.set_fail_writes(true);
  staged.put("k", "synced");
  staged.require_sync();
  CHECK(staged.commit_syncs());
  CHECK_FALSE(staged.commit().ok());
  CHECK(staged.commit_syncs());
  CHECK(staged.sync_required());
  REQUIRE(staged.get("k", &v).ok());
  CHECK(v == "synced");
  store.set_fail_writes(false);
  const auto synced_before = store.synced_writes();
  REQUIRE(staged.commit().ok());
  CHECK(store.synced_writes() == synced_before + 1);
  CHECK_FALSE(staged.commit_syncs());
  CHECK(get_or(store, "k") == "synced");
  CHECK(store.reads == std::map<std::string, int>{{"k", 1}});  // get_or's
}

TEST_CASE("staged: without keep_recent a landed commit is read from the store") {
  test::ReadCountingStore store;
  Staged staged(store);
  std::string v;
  staged.put("a", "1");
  REQUIRE(staged.commit().ok());
  REQUIRE(staged.get("a", &v).ok());
  staged.put("b", "2");
  REQUIRE(store.write_ops(staged.lift_in_place(), false).ok());
  staged.landed();
  REQUIRE(staged.get("b", &v).ok());
  CHECK(v == "2");
  CHECK(store.reads == std::map<std::string, int>{{"a", 1}, {"b", 1}});
}

TEST_CASE("storage: leveldb counts its write batches, the synced ones and their bytes") {
  TempDir dir;
  std::unique_ptr<Store> db;
  REQUIRE(open_leveldb(dir.str(), &db).ok());
  auto& c = counters::get();
  const std::uint64_t writes = c.store_writes, synced = c.store_synced_writes, bytes = c.store_bytes;
  WriteBatch b;
  b.put("k", std::string(1000, 'v'));
  REQUIRE(db->write(b, true).ok());
  REQUIRE(db->write(b, false).ok());
  CHECK(c.store_writes == writes + 2);
  CHECK(c.store_synced_writes == synced + 1);
  CHECK(c.store_bytes >= bytes + 2000);
  // What SIGUSR1 logs: every counter by name (allocations "unknown" here,
  // where jemalloc is not the allocator).
  const std::string line = counters::summary();
  for (const char* name : {"frames_out=", "frames_in=", "link_bytes_out=", "link_bytes_in=",
                           "store_writes=", "store_synced_writes=", "store_bytes=", "allocations="}) {
    CHECK(line.find(name) != std::string::npos);
  }
}

TEST_CASE("staged: thousands of keys, each staged several times, commit once each with its last value") {
  MemoryStore s;
  Staged st(s);
  for (int round = 0; round < 3; ++round) {
    for (int k = 0; k < 5000; ++k) {
      std::string key = "k/" + std::to_string(k);
      if (k % 7 == 0 && round == 2) {
        st.del(key);
      } else {
        st.put(key, std::to_string(round) + ":" + std::to_string(k));
      }
    }
    CHECK(st.size() == 5000);
  }
  std::string v;
  REQUIRE(st.get("k/4999", &v).ok());
  CHECK(v == "2:4999");
  CHECK(st.get("k/0", &v).is_not_found());
  CHECK(st.get("k/5000", &v).is_not_found());
  REQUIRE(st.commit().ok());
  CHECK(st.empty());
  CHECK(s.size() == 5000 - 715);  // 0, 7, ..., 4998 deleted
  CHECK(get_or(s, "k/1") == "2:1");
  CHECK(get_or(s, "k/7") == "<absent>");
  // The next stage starts empty and reads through to the store.
  st.put("k/1", "again");
  REQUIRE(st.get("k/1", &v).ok());
  CHECK(v == "again");
  REQUIRE(st.get("k/2", &v).ok());
  CHECK(v == "2:2");
  REQUIRE(st.commit().ok());
  CHECK(get_or(s, "k/1") == "again");
}

TEST_CASE("staged: small stages after a large one read and commit exactly what they staged") {
  // A large stage grows the index; the small ones after it empty only the
  // slots they used. Against a model, over many rounds of either size.
  MemoryStore s;
  Staged st(s);
  std::map<std::string, std::string> model;  // what the store must hold
  std::uint64_t seed = 42;
  auto next = [&] {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<std::uint32_t>(seed >> 33);
  };
  for (int round = 0; round < 200; ++round) {
    const int writes = round % 50 == 0 ? 4000 : 1 + static_cast<int>(next() % 20);
    std::map<std::string, std::optional<std::string>> staged;
    for (int w = 0; w < writes; ++w) {
      std::string key = "k/" + std::to_string(next() % 6000);
      if (next() % 4 == 0) {
        st.del(key);
        staged[key] = std::nullopt;
      } else {
        std::string value = std::to_string(round) + ":" + std::to_string(w);
        st.put(key, value);
        staged[key] = value;
      }
    }
    CHECK(st.size() == staged.size());
    for (int probe = 0; probe < 50; ++probe) {
      std::string key = "k/" + std::to_string(next() % 6000);
      std::optional<std::string> want;
      if (auto it = staged.find(key); it != staged.end()) {
        want = it->second;
      } else if (auto m = model.find(key); m != model.end()) {
        want = m->second;
      }
      std::string v;
      Status got = st.get(key, &v);
      CHECK(got.ok() == want.has_value());
      if (got.ok() && want) CHECK(v == *want);
    }
    REQUIRE(st.commit().ok());
    for (auto& [key, value] : staged) {
      if (value) {
        model[key] = *value;
      } else {
        model.erase(key);
      }
    }
  }
  CHECK(s.size() == model.size());
  for (const auto& [key, value] : model) CHECK(get_or(s, key) == value);
}


TEST_CASE("staged: require_barrier makes even an empty commit a synced write, once") {
  MemoryStore store;
  Staged staged(store);
  CHECK_FALSE(staged.commit_syncs());
  staged.require_sync();
  CHECK_FALSE(staged.commit_syncs());  // nothing staged: nothing to sync
  staged.require_barrier();
  CHECK(staged.commit_syncs());
  REQUIRE(staged.commit().ok());
  CHECK(store.synced_writes() == 1);
  CHECK_FALSE(staged.commit_syncs());
  REQUIRE(staged.commit().ok());
  CHECK(store.synced_writes() == 1);
  // A failed barrier stays for the retry.
  staged.require_barrier();
  store.set_fail_writes(true);
  CHECK_FALSE(staged.commit().ok());
  store.set_fail_writes(false);
  CHECK(staged.commit_syncs());
  REQUIRE(staged.commit().ok());
  CHECK(store.synced_writes() == 2);
}

// A Deferred over a stage of a MemoryStore.
struct Deferring {
  MemoryStore store;
  Staged staged{store};
  Deferred d{staged};
  // The stage committed, then what the store holds under `key` ("" if nothing).
  std::string written(const std::string& key) {
    REQUIRE(staged.commit().ok());
    std::string v;
    return store.get(key, &v).ok() ? v : std::string();
  }
  std::string read(const std::string& key) {
    std::string v;
    return d.get(key, &v).ok() ? v : std::string();
  }
};

TEST_CASE("deferred: a put made later and deleted before a whole round passed writes nothing") {
  Deferring f;
  f.d.put("x/a", "A", true);
  f.d.age();  // a round ends: "x/a" came during it
  f.d.put("x/b", "B", true);
  CHECK(f.read("x/a") == "A");
  f.d.del("x/a");
  f.d.del("x/b");
  CHECK(f.d.waiting() == 0);
  CHECK(f.staged.empty());  // no put, and no delete of what was never written
  f.d.age();
  f.d.age();
  CHECK(f.staged.empty());
  std::string v;
  CHECK(f.d.get("x/a", &v).is_not_found());
}

TEST_CASE("deferred: what outlives a whole round is staged, and its delete is then written") {
  Deferring f;
  f.d.put("x/a", "A", true);
  f.d.age();
  CHECK(f.staged.empty());
  f.d.put("x/b", "B", true);
  f.d.age();  // "x/a" waited through all of the second round
  CHECK(f.written("x/a") == "A");
  CHECK(f.written("x/b").empty());
  CHECK(f.d.waiting() == 1);
  f.d.del("x/a");
  CHECK(f.written("x/a").empty());
  f.d.write_all();
  CHECK(f.written("x/b") == "B");
  CHECK(f.d.waiting() == 0);
}

TEST_CASE("deferred: a put made now replaces a waiting one, which is never written over it") {
  Deferring f;
  f.d.put("x/a", "old", true);
  f.d.age();
  f.d.put("x/a", "now", false);
  CHECK(f.d.waiting() == 0);
  f.d.age();
  f.d.age();
  CHECK(f.written("x/a") == "now");
}

TEST_CASE("deferred: a waiting key put again waits a whole round from then") {
  Deferring f;
  f.d.put("x/a", "first", true);
  f.d.age();
  f.d.put("x/a", "second", true);  // back with the young ones
  f.d.age();
  CHECK(f.read("x/a") == "second");
  CHECK(f.staged.empty());
  f.d.age();
  CHECK(f.written("x/a") == "second");
}

TEST_CASE("deferred: a delete by prefix and ticket drops what waits, else stages the whole key") {
  Deferring f;
  f.d.put("x/ticket-1", "A", true);
  f.d.age();
  f.d.put("d/ticket-1", "B", true);
  f.d.del("x/", "ticket-1");  // waited since the last round: dropped
  f.d.del("d/", "ticket-1");  // came in this one: dropped
  CHECK(f.d.waiting() == 0);
  CHECK(f.staged.empty());

  // A key already written: its delete is staged under the joined key.
  f.d.put("x/ticket-2", "C", false);
  CHECK(f.written("x/ticket-2") == "C");
  f.d.del("x/", "ticket-2");
  CHECK(f.staged.size() == 1);
  CHECK(f.written("x/ticket-2").empty());
  // And one longer than a key on the stack holds.
  const std::string long_rest(100, 'k');
  f.d.put("x/" + long_rest, "D", true);
  f.d.del("x/", long_rest);
  CHECK(f.d.waiting() == 0);
  CHECK(f.staged.empty());
}

}  // namespace jc::storage

TEST_CASE("staged: a stage lifted in place and unlifted goes back under what came since") {
  jc::storage::MemoryStore store;
  jc::storage::Staged staged(store);
  staged.put("a", "1");
  staged.put("b", "1");
  staged.require_sync();
  const jc::storage::WriteBatch::Ops& ops = staged.lift_in_place();
  CHECK(ops.size() == 2);
  CHECK(staged.empty());
  CHECK(staged.in_flight() == 1);
  staged.put("a", "2");
  staged.put("c", "2");
  std::string v;
  REQUIRE(staged.get("b", &v).ok());  // from the flight
  CHECK(v == "1");
  // Its write failed: staged again, the newer value of "a" kept, and the
  // sync it asked for still owed.
  staged.unlift(true);
  CHECK(staged.in_flight() == 0);
  CHECK(staged.size() == 3);
  CHECK(staged.sync_required());
  REQUIRE(staged.commit().ok());
  CHECK(store.synced_writes() == 1);
  REQUIRE(store.get("a", &v).ok());
  CHECK(v == "2");
  REQUIRE(store.get("b", &v).ok());
  CHECK(v == "1");
  REQUIRE(store.get("c", &v).ok());

  // A landed flight's room serves the next stage, empty.
  staged.put("d", "3");
  const jc::storage::WriteBatch::Ops& next = staged.lift_in_place();
  REQUIRE(store.write_ops(next, false).ok());
  staged.landed();
  CHECK(staged.empty());
  CHECK(staged.get("a", &v).ok());
  staged.put("e", "4");
  CHECK(staged.size() == 1);
  REQUIRE(staged.get("e", &v).ok());
  CHECK(v == "4");
  CHECK(staged.get("d", &v).ok());
}

namespace {
// A test's event loop: what the writer thread posts back runs when pumped.
class PostedLoop {
 public:
  void post(std::function<void()> f) {
    std::lock_guard<std::mutex> lock(mutex_);
    posted_.push_back(std::move(f));
  }
  // Runs what is posted until `done()` holds, for 10 s at most.
  bool run_until(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      run_posted();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
  }
  std::size_t run_posted() {
    std::vector<std::function<void()>> now;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      now.swap(posted_);
    }
    for (auto& f : now) f();
    return now.size();
  }

 private:
  std::mutex mutex_;
  std::vector<std::function<void()>> posted_;
};

jc::storage::BackgroundWrite::Post post_to(PostedLoop& loop) {
  return [&loop](std::function<void()> f) { loop.post(std::move(f)); };
}

// A stage over a store in memory, and a writer that posts back to `loop`.
struct Writing {
  jc::storage::MemoryStore store;
  jc::storage::Staged staged{store};
  PostedLoop loop;
  jc::storage::BackgroundWrite writer{post_to(loop)};
};
}  // namespace

TEST_CASE_FIXTURE(Writing, "background write: the stage is written on another thread while the next one gathers, then lands on the loop") {
  staged.put("a", "1");
  staged.require_barrier();
  std::optional<jc::Status> landed;
  writer.start(staged, [&](const jc::Status& s) { landed = s; });
  CHECK(writer.writing());
  // The flight took the sync and the barrier: a sync asked for the next
  // stage, with nothing in it, is no barrier.
  staged.require_sync();
  CHECK_FALSE(staged.commit_syncs());
  std::string v;
  REQUIRE(staged.get("a", &v).ok());  // from the flight
  CHECK(v == "1");
  staged.put("b", "2");
  REQUIRE(loop.run_until([&] { return landed.has_value(); }));
  CHECK(landed->ok());
  CHECK_FALSE(writer.writing());
  CHECK(staged.in_flight() == 0);
  CHECK(store.synced_writes() == 1);
  REQUIRE(store.get("a", &v).ok());
  CHECK(v == "1");
  CHECK(store.get("b", &v).is_not_found());  // the next stage's
  CHECK(staged.size() == 1);
}

TEST_CASE_FIXTURE(Writing, "background write: a write that fails puts its stage back under what came since, its sync still owed") {
  staged.put("a", "1");
  staged.put("b", "1");
  staged.require_sync();
  store.set_fail_writes(true);
  std::optional<jc::Status> landed;
  writer.start(staged, [&](const jc::Status& s) { landed = s; });
  staged.put("a", "2");
  REQUIRE(loop.run_until([&] { return landed.has_value(); }));
  CHECK_FALSE(landed->ok());
  CHECK(staged.in_flight() == 0);
  CHECK(staged.size() == 2);
  CHECK(staged.sync_required());
  store.set_fail_writes(false);
  REQUIRE(staged.commit().ok());
  std::string v;
  REQUIRE(store.get("a", &v).ok());
  CHECK(v == "2");
  REQUIRE(store.get("b", &v).ok());
  CHECK(store.synced_writes() == 1);
}

TEST_CASE("background write: finish() lands the write in place, once, and a writer destroyed first lands nothing") {
  jc::storage::MemoryStore store;
  jc::storage::Staged staged(store);
  PostedLoop loop;
  int landings = 0;
  {
    jc::storage::BackgroundWrite writer(post_to(loop));
    staged.put("a", "1");
    writer.start(staged, [&](const jc::Status& s) {
      CHECK(s.ok());
      ++landings;
    });
    writer.finish();
    CHECK(landings == 1);
    CHECK_FALSE(writer.writing());
    CHECK(staged.in_flight() == 0);
    loop.run_posted();  // the writer's own completion: nothing left to land
    CHECK(landings == 1);
    staged.put("b", "1");
    writer.start(staged, [&](const jc::Status&) { ++landings; });
  }
  // Destroyed with a write in flight: made, never landed.
  loop.run_posted();
  CHECK(landings == 1);
  std::string v;
  CHECK(store.get("b", &v).ok());
  CHECK(staged.in_flight() == 1);
}
