#include <algorithm>

#include "storage/store.h"

namespace jc::storage {

std::vector<std::pair<std::string, std::string>>::iterator MemoryStore::find(std::string_view key) {
  return std::lower_bound(data_.begin(), data_.end(), key,
                          [](const auto& kv, std::string_view k) { return kv.first < k; });
}

Status MemoryStore::get(std::string_view key, std::string* value) {
  auto it = find(key);
  if (it == data_.end() || it->first != key) return Status::NotFound(std::string(key));
  *value = it->second;
  return Status::Ok();
}

Status MemoryStore::write_ops(const WriteBatch::Ops& ops, bool sync) {
  if (fail_writes_) return Status::IoError("injected write failure");
  for (const auto& [key, value] : ops) {
    auto it = find(key);
    bool present = it != data_.end() && it->first == key;
    if (value) {
      if (present) {
        it->second = *value;
      } else {
        data_.insert(it, {key, *value});
      }
    } else if (present) {
      data_.erase(it);
    }
  }
  if (sync) ++synced_writes_;
  return Status::Ok();
}

Status MemoryStore::scan(std::string_view prefix,
                         const std::function<bool(std::string_view, std::string_view)>& fn) {
  for (auto it = find(prefix); it != data_.end(); ++it) {
    if (std::string_view(it->first).substr(0, prefix.size()) != prefix) break;
    if (!fn(it->first, it->second)) break;
  }
  return Status::Ok();
}

namespace {
class MemoryView : public ReadView {
 public:
  explicit MemoryView(std::vector<std::pair<std::string, std::string>> data)
      : data_(std::move(data)) {}
  Status scan(std::string_view prefix,
              const std::function<bool(std::string_view, std::string_view)>& fn) override {
    auto it = std::lower_bound(data_.begin(), data_.end(), prefix,
                               [](const auto& kv, std::string_view k) { return kv.first < k; });
    for (; it != data_.end(); ++it) {
      if (std::string_view(it->first).substr(0, prefix.size()) != prefix) break;
      if (!fn(it->first, it->second)) break;
    }
    return Status::Ok();
  }

 private:
  std::vector<std::pair<std::string, std::string>> data_;
};
}  // namespace

std::unique_ptr<ReadView> MemoryStore::read_view() { return std::make_unique<MemoryView>(data_); }

}  // namespace jc::storage
