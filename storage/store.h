// The key-value store behind both binaries' durable state.
//
// Only this folder includes LevelDB. The cores see this small interface, so
// tests can run them on MemoryStore, and can make writes fail on demand.
// Keys are ordered bytewise; scan() visits a prefix in key order.
// A Store is used from one thread (the process's event loop), but for
// write_ops() (below).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace jc::storage {

// Changes that belong together: applied all or nothing.
class WriteBatch {
 public:
  void put(std::string key, std::string value) {
    ops_.emplace_back(std::move(key), std::move(value));
  }
  void del(std::string key) { ops_.emplace_back(std::move(key), std::nullopt); }
  bool empty() const { return ops_.empty(); }
  std::size_t size() const { return ops_.size(); }
  std::size_t bytes() const {
    std::size_t n = 0;
    for (const auto& [k, v] : ops_) n += k.size() + (v ? v->size() : 0);
    return n;
  }
  void clear() { ops_.clear(); }
  const auto& ops() const { return ops_; }

  // A batch of these operations, in this order, and back (Staged hands
  // its stage over without moving each key and value).
  using Ops = std::vector<std::pair<std::string, std::optional<std::string>>>;
  WriteBatch() = default;
  explicit WriteBatch(Ops ops) : ops_(std::move(ops)) {}
  Ops take() { return std::exchange(ops_, {}); }

 private:
  Ops ops_;
};

// Every key of a store as it was at one moment, readable from another thread
// while the store takes writes (a replicated proxy's snapshot).
class ReadView {
 public:
  virtual ~ReadView() = default;
  virtual Status scan(std::string_view prefix,
                      const std::function<bool(std::string_view, std::string_view)>& fn) = 0;
};

class Store {
 public:
  virtual ~Store() = default;
  // NotFound when the key is absent.
  virtual Status get(std::string_view key, std::string* value) = 0;
  // sync=true returns only once the batch is on disk (fsync).
  Status write(const WriteBatch& batch, bool sync) { return write_ops(batch.ops(), sync); }
  // The same for operations held elsewhere (a stage's, written in place).
  // LevelDbStore takes it from one other thread while reads go on (a
  // single proxy's commit: proxy/commit_path.h); a failure it meets shows
  // in writable() once it has returned.
  virtual Status write_ops(const WriteBatch::Ops& ops, bool sync) = 0;
  // Calls fn for every key starting with prefix, in order, until it returns false.
  virtual Status scan(std::string_view prefix,
                      const std::function<bool(std::string_view, std::string_view)>& fn) = 0;
  // False after a write failed (a full disk, an I/O error) or when the store
  // could be opened only for reading: reads work, the next write tries to
  // make it writable again.
  virtual bool writable() const { return true; }
  virtual std::string unwritable_reason() const { return ""; }
  // Asks for the keys in [begin, end] to be rewritten without what was
  // deleted among them, so the files shrink (LevelDB's CompactRange). It
  // may run in the background: the call returns at once, and requests made
  // while one runs wait their turn (merged with others of their key space).
  virtual void compact(std::string_view begin, std::string_view end) {
    (void)begin;
    (void)end;
  }
  // A consistent view of the store now (cheap: LevelDB's snapshot). The
  // store must outlive it.
  virtual std::unique_ptr<ReadView> read_view() = 0;
};

// Opens (creating it and its parent directories if needed) a LevelDB store.
// On a full disk an existing store opens for reading only (writable() is
// false).
Status open_leveldb(const std::string& dir, std::unique_ptr<Store>* out);

// The layout of the values a store holds. A data directory written by
// another layout cannot be read safely, so a process refuses it at start
// with a clear reason instead of misreading it. Format 1 (no marker) used
// Boost's binary_archive; format 2 uses protocol/archive.h; format 3 adds
// run jobs' --disk and the sandbox's protections to records; format 4 adds a
// job's owner (CLIENT_TOKENS); format 5 gives every record a version
// (protocol::to_record), so that from now on new fields need no new format:
// a format-4 store is read as it is (its records are version 4) and marked
// 5 (kept in tests/fixtures/format4).
constexpr std::string_view kFormatKey = "meta/format";
constexpr std::string_view kStorageFormat = "5";
// Marks an empty store (or a format-4 one) with kStorageFormat; fails when
// the store was written with another format. `found`, when given, gets the
// format the store had ("" for an empty store).
Status check_format(Store& store, std::string* found = nullptr);

// An in-memory store for tests; fail_writes makes every write fail.
class MemoryStore : public Store {
 public:
  Status get(std::string_view key, std::string* value) override;
  Status write_ops(const WriteBatch::Ops& ops, bool sync) override;
  Status scan(std::string_view prefix,
              const std::function<bool(std::string_view, std::string_view)>& fn) override;
  std::unique_ptr<ReadView> read_view() override;
  void set_fail_writes(bool fail) { fail_writes_ = fail; }
  bool writable() const override { return !fail_writes_; }
  std::string unwritable_reason() const override { return fail_writes_ ? "failing on purpose" : ""; }
  std::size_t size() const { return data_.size(); }
  int synced_writes() const { return synced_writes_; }

 private:
  // Ordered, as LevelDB's keys: a write costs O(log n) (a sorted vector
  // moved every later record at each insert, which made a test of 20,000
  // queued jobs take 30 s).
  std::map<std::string, std::string, std::less<>> data_;
  bool fail_writes_ = false;
  int synced_writes_ = 0;
};

}  // namespace jc::storage
