// A MemoryStore that counts the reads of each key: how unit tests check that
// a core answers from memory instead of asking the store.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "storage/store.h"

namespace jc::test {

class ReadCountingStore : public storage::MemoryStore {
 public:
  Status get(std::string_view key, std::string* value) override {
    ++reads[std::string(key)];
    return MemoryStore::get(key, value);
  }
  std::map<std::string, int> reads;
};

}  // namespace jc::test
