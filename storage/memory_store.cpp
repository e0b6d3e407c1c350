#include <algorithm>

#include "storage/store.h"

namespace jc::storage {

Status MemoryStore::get(std::string_view key, std::string* value) {
  auto it = data_.find(key);
  if (it == data_.end()) return Status::NotFound(std::string(key));
  *value = it->second;
  return Status::Ok();
}

Status MemoryStore::write_ops(const WriteBatch::Ops& ops, bool sync) {
  if (fail_writes_) return Status::IoError("injected write failure");
  for (const auto& [key, value] : ops) {
    if (value) {
      data_.insert_or_assign(std::string(key), *value);
    } else if (auto it = data_.find(key); it != data_.end()) {
      data_.erase(it);
    }
  }
  if (sync) ++synced_writes_;
  return Status::Ok();
}

Status MemoryStore::scan(std::string_view prefix,
                         const std::function<bool(std::string_view, std::string_view)>& fn) {
  for (auto it = data_.lower_bound(prefix); it != data_.end(); ++it) {
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

std::unique_ptr<ReadView> MemoryStore::read_view() {
  return std::make_unique<MemoryView>(
      std::vector<std::pair<std::string, std::string>>(data_.begin(), data_.end()));
}

}  // namespace jc::storage
