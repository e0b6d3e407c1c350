#include <leveldb/db.h>
#include <leveldb/filter_policy.h>
#include <leveldb/write_batch.h>

#include <sys/statvfs.h>

#include <cstdint>
#include <filesystem>
#include <algorithm>
#include <atomic>
#include <mutex>
#include <tuple>
#include <thread>

#include "common/counters.h"
#include "storage/store.h"

namespace jc::storage {
namespace {

Status from_leveldb(const leveldb::Status& s) {
  if (s.ok()) return Status::Ok();
  if (s.IsNotFound()) return Status::NotFound(s.ToString());
  if (s.IsCorruption()) return Status::Corruption(s.ToString());
  return Status::IoError(s.ToString());
}

leveldb::Slice slice(std::string_view s) { return {s.data(), s.size()}; }

// What LevelDB is opened with; `reuse_logs` only for a start on a full disk.
leveldb::Options leveldb_options(const leveldb::FilterPolicy* filter, bool reuse_logs) {
  leveldb::Options options;
  options.create_if_missing = true;
  // A burst's records in few memtables, and few level-0 tables to compact
  // while it lasts. LevelDB's own 4 MB lowered the four processes' peak
  // RSS during `jc_bench --only e2e` by 2.6 MB only, for four times the
  // level-0 tables (docs/benchmarks.md, step 18).
  options.write_buffer_size = 16 << 20;
  // Most lookups of a new ticket miss (is it already finished?): a Bloom
  // filter answers those without reading table blocks.
  options.filter_policy = filter;
  // Appending to the existing log and manifest writes nothing at open: how
  // a store on a full disk still opens, to be read. Only for that: after a
  // write that failed half-way it would append behind a torn record.
  options.reuse_logs = reuse_logs;
  return options;
}

std::uint64_t free_bytes(const std::string& dir) {
  struct statvfs st {};
  if (::statvfs(dir.c_str(), &st) != 0) return 0;
  return static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
}

// The write-ahead logs a reopen turns into a table: the room it needs.
std::uint64_t log_bytes(const std::string& dir) {
  std::uint64_t total = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".log") total += entry.file_size(ec);
  }
  return total;
}

// LevelDB refuses every write after one that failed (a full disk, an I/O
// error) until it is opened again. So a failed write marks the store
// broken; the next write reopens it first, once the disk has the room the
// reopen needs, and reads go on meanwhile from the open database (a reopen
// that fails falls back to opening it for reading).
class LevelDbStore : public Store {
 public:
  LevelDbStore(std::string dir, std::unique_ptr<const leveldb::FilterPolicy> filter)
      : dir_(std::move(dir)), filter_(std::move(filter)) {}
  ~LevelDbStore() override { stop_compactions(); }

  // Opens for writing; on failure, for reading only (broken_).
  Status open() {
    leveldb::DB* db = nullptr;
    leveldb::Status s = leveldb::DB::Open(leveldb_options(filter_.get(), false), dir_, &db);
    if (s.ok()) {
      db_.reset(db);
      broken_ = false;
      return Status::Ok();
    }
    if (s.IsCorruption()) return from_leveldb(s);
    leveldb::Status r = leveldb::DB::Open(leveldb_options(filter_.get(), true), dir_, &db);
    if (!r.ok()) return from_leveldb(s);
    db_.reset(db);
    why_ = s.ToString();
    broken_ = true;
    return Status::Ok();
  }

  bool writable() const override { return !broken_.load(std::memory_order_acquire); }
  // why_ is written before broken_ is set (release): read after it.
  std::string unwritable_reason() const override {
    return broken_.load(std::memory_order_acquire) ? why_ : std::string();
  }

  Status get(std::string_view key, std::string* value) override {
    if (!db_) return Status::IoError("storage unavailable: " + why_);
    return from_leveldb(db_->Get(leveldb::ReadOptions(), slice(key), value));
  }

  // From the event loop, or from one other thread while the store is
  // writable (a reopen, below, runs only where reads cannot meet it).
  Status write_ops(const WriteBatch::Ops& ops, bool sync) override {
    if (broken_.load(std::memory_order_acquire)) {
      if (Status s = reopen(ops); !s.ok()) return s;
    }
    leveldb::WriteBatch wb;
    for (const auto& [key, value] : ops) {
      if (value) {
        wb.Put(key, *value);
      } else {
        wb.Delete(key);
      }
    }
    leveldb::WriteOptions options;
    options.sync = sync;
    leveldb::Status s = db_->Write(options, &wb);
    auto& c = counters::get();
    counters::add(c.store_writes);
    if (sync) counters::add(c.store_synced_writes);
    counters::add(c.store_bytes, wb.ApproximateSize());
    if (!s.ok()) {
      why_ = s.ToString();  // before broken_: whoever sees broken_ may read it
      broken_.store(true, std::memory_order_release);
    }
    return from_leveldb(s);
  }

  Status scan(std::string_view prefix,
              const std::function<bool(std::string_view, std::string_view)>& fn) override {
    if (!db_) return Status::IoError("storage unavailable: " + why_);
    leveldb::ReadOptions options;
    options.fill_cache = false;
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(options));
    for (it->Seek(slice(prefix)); it->Valid(); it->Next()) {
      std::string_view key(it->key().data(), it->key().size());
      if (key.substr(0, prefix.size()) != prefix) break;
      if (!fn(key, std::string_view(it->value().data(), it->value().size()))) break;
    }
    return from_leveldb(it->status());
  }

  // A LevelDB snapshot: reads from any thread see the store as it was.
  // While one lives the database is not reopened (reopen() waits for it).
  std::unique_ptr<ReadView> read_view() override {
    class View : public ReadView {
     public:
      View(LevelDbStore& store) : store_(store), snapshot_(store.db_->GetSnapshot()) {
        ++store_.views_;
      }
      ~View() override {
        store_.db_->ReleaseSnapshot(snapshot_);
        --store_.views_;
      }
      Status scan(std::string_view prefix,
                  const std::function<bool(std::string_view, std::string_view)>& fn) override {
        leveldb::ReadOptions options;
        options.fill_cache = false;
        options.snapshot = snapshot_;
        std::unique_ptr<leveldb::Iterator> it(store_.db_->NewIterator(options));
        for (it->Seek(slice(prefix)); it->Valid(); it->Next()) {
          std::string_view key(it->key().data(), it->key().size());
          if (key.substr(0, prefix.size()) != prefix) break;
          if (!fn(key, std::string_view(it->value().data(), it->value().size()))) break;
        }
        return from_leveldb(it->status());
      }

     private:
      LevelDbStore& store_;
      const leveldb::Snapshot* snapshot_;
    };
    return std::make_unique<View>(*this);
  }

  // CompactRange rewrites every table that overlaps the range, which takes
  // seconds for a large one: it runs on a thread of its own (LevelDB allows
  // calls from several threads), so the event loop never waits for it.
  void compact(std::string_view begin, std::string_view end) override {
    std::lock_guard lock(compact_mu_);
    // Ranges of one key space (its first two bytes, "f/", "e/"...) merge;
    // ranges of different ones stay apart, or the range between them (every
    // live record of the spaces in between) would be rewritten too.
    auto same_space = [&](const auto& r) { return r.first.substr(0, 2) == begin.substr(0, 2); };
    auto it = std::find_if(compactions_.begin(), compactions_.end(), same_space);
    if (it == compactions_.end()) {
      compactions_.emplace_back(std::string(begin), std::string(end));
    } else {
      it->first = std::min(it->first, std::string(begin));
      it->second = std::max(it->second, std::string(end));
    }
    if (compacting_ || !db_ || broken_) return;
    if (compactor_.joinable()) compactor_.join();
    compacting_ = true;
    compactor_ = std::thread([this] { run_compactions(); });
  }

 private:
  void run_compactions() {
    for (;;) {
      std::string begin, end;
      {
        std::lock_guard lock(compact_mu_);
        if (compactions_.empty() || stopping_) {
          compacting_ = false;
          return;
        }
        std::tie(begin, end) = std::move(compactions_.front());
        compactions_.erase(compactions_.begin());
      }
      leveldb::Slice b = slice(begin), e = slice(end);
      db_->CompactRange(&b, &e);
    }
  }
  // Waits for a compaction under way; the database may then be closed.
  void stop_compactions() {
    {
      std::lock_guard lock(compact_mu_);
      stopping_ = true;
      compactions_.clear();
    }
    if (compactor_.joinable()) compactor_.join();
    std::lock_guard lock(compact_mu_);
    stopping_ = false;
    compacting_ = false;
  }

  Status reopen(const WriteBatch::Ops& ops) {
    // Closing gives up reads until the open: only when it can succeed.
    std::uint64_t bytes = 0;
    for (const auto& [k, v] : ops) bytes += k.size() + (v ? v->size() : 0);
    std::uint64_t need = log_bytes(dir_) + 2 * bytes + (1 << 20);
    std::uint64_t have = free_bytes(dir_);
    if (have < need) {
      return Status::IoError("storage full: " + std::to_string(have) + " bytes free of the " +
                             std::to_string(need) + " needed (" + why_ + ")");
    }
    if (views_ > 0) return Status::IoError("storage unwritable, reopen waits for a snapshot: " + why_);
    stop_compactions();
    db_.reset();
    Status s = open();
    if (!s.ok()) why_ = s.to_string();
    if (!s.ok() || broken_) return Status::IoError("storage still unwritable: " + why_);
    return Status::Ok();
  }

  std::string dir_;
  // Declared before the database: it uses the filter until it is closed.
  std::unique_ptr<const leveldb::FilterPolicy> filter_;
  std::unique_ptr<leveldb::DB> db_;
  // Set by a failed write (on whichever thread wrote), cleared by an open.
  std::atomic<bool> broken_{false};
  std::string why_;
  // The compaction thread and what it is asked to do next.
  std::mutex compact_mu_;
  std::thread compactor_;
  bool compacting_ = false;
  bool stopping_ = false;
  std::vector<std::pair<std::string, std::string>> compactions_;  // asked for, not begun
  std::atomic<int> views_{0};  // read views alive (snapshots being written)
};

}  // namespace

Status open_leveldb(const std::string& dir, std::unique_ptr<Store>* out) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IoError("cannot create " + dir + ": " + ec.message());
  auto store = std::make_unique<LevelDbStore>(
      dir, std::unique_ptr<const leveldb::FilterPolicy>(leveldb::NewBloomFilterPolicy(10)));
  if (Status s = store->open(); !s.ok()) return s;
  *out = std::move(store);
  return Status::Ok();
}

}  // namespace jc::storage
