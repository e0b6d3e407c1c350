#include <leveldb/db.h>
#include <leveldb/filter_policy.h>
#include <leveldb/write_batch.h>

#include <filesystem>

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

class LevelDbStore : public Store {
 public:
  LevelDbStore(leveldb::DB* db, std::unique_ptr<const leveldb::FilterPolicy> filter)
      : filter_(std::move(filter)), db_(db) {}

  Status get(std::string_view key, std::string* value) override {
    return from_leveldb(db_->Get(leveldb::ReadOptions(), slice(key), value));
  }

  Status write(const WriteBatch& batch, bool sync) override {
    leveldb::WriteBatch wb;
    for (const auto& [key, value] : batch.ops()) {
      if (value) {
        wb.Put(key, *value);
      } else {
        wb.Delete(key);
      }
    }
    leveldb::WriteOptions options;
    options.sync = sync;
    return from_leveldb(db_->Write(options, &wb));
  }

  Status scan(std::string_view prefix,
              const std::function<bool(std::string_view, std::string_view)>& fn) override {
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

 private:
  // Declared first: the database uses the filter until it is closed.
  std::unique_ptr<const leveldb::FilterPolicy> filter_;
  std::unique_ptr<leveldb::DB> db_;
};

}  // namespace

Status open_leveldb(const std::string& dir, std::unique_ptr<Store>* out) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IoError("cannot create " + dir + ": " + ec.message());
  leveldb::Options options;
  options.create_if_missing = true;
  options.write_buffer_size = 16 << 20;
  // Most lookups of a new ticket miss (is it already finished?): a Bloom
  // filter answers those without reading table blocks.
  std::unique_ptr<const leveldb::FilterPolicy> filter(leveldb::NewBloomFilterPolicy(10));
  options.filter_policy = filter.get();
  leveldb::DB* db = nullptr;
  leveldb::Status s = leveldb::DB::Open(options, dir, &db);
  if (!s.ok()) return from_leveldb(s);
  *out = std::make_unique<LevelDbStore>(db, std::move(filter));
  return Status::Ok();
}

}  // namespace jc::storage
