// The keys a store holds under a prefix, in order: how unit tests check
// which records a change wrote.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "storage/store.h"

namespace jc::test {

inline std::vector<std::string> store_keys(storage::Store& store, std::string_view prefix) {
  std::vector<std::string> out;
  store.scan(prefix, [&](std::string_view k, std::string_view) {
    out.emplace_back(k);
    return true;
  });
  return out;
}

}  // namespace jc::test
