// The compact per-job holders of the books (common/inline_key.h,
// common/owned_bytes.h): every string comes back as it went in, whatever
// its length and last byte, through copies, moves and table lookups.
#include <doctest/doctest.h>

#include <string>
#include <utility>
#include <vector>

#include <absl/container/node_hash_map.h>

#include "common/inline_key.h"
#include "common/owned_bytes.h"

using jc::InlineKey;
using jc::OwnedBytes;

namespace {

// Strings at each edge of the inline form: empty, 31 and 32 characters,
// a 32nd character that could pass for a length, longer ones, and bytes
// that are not a ticket's.
std::vector<std::string> edge_strings() {
  std::vector<std::string> out{"", "a", "abcdef-12-0123456789a", std::string(31, 'x'),
                               std::string(32, 'y'), std::string(33, 'z'),
                               std::string(200, 'q')};
  std::string low_last(31, 'k');
  for (int b : {0, 1, 31, 32, 33, 127, 255}) out.push_back(low_last + static_cast<char>(b));
  out.push_back(std::string("nul\0inside", 10));
  return out;
}

}  // namespace

TEST_CASE("inline key: every string reads back as it was, inline up to 32 bytes where it can") {
  for (const std::string& s : edge_strings()) {
    INFO("string of " << s.size() << " bytes");
    InlineKey k(s);
    CHECK(k.view() == s);
    CHECK(k.str() == s);
    // A ticket's 32 characters and anything shorter stay inline; a 32nd
    // byte of 32 or below would read as a length, so such a string goes
    // to the heap, as anything longer does.
    const bool inline_form =
        s.size() < 32 || (s.size() == 32 && static_cast<unsigned char>(s[31]) > 32);
    CHECK(k.on_heap() == !inline_form);

    InlineKey copy(k);
    CHECK(copy.view() == s);
    InlineKey moved(std::move(copy));
    CHECK(moved.view() == s);
    CHECK(copy.view().empty());  // NOLINT: a moved-from key is empty
    InlineKey assigned("something else entirely, on the heap for sure: long");
    assigned = k;
    CHECK(assigned.view() == s);
    assigned = InlineKey("short");
    CHECK(assigned.view() == "short");
    assigned = std::move(moved);
    CHECK(assigned.view() == s);
    assigned = assigned;  // NOLINT: self-assignment keeps it
    CHECK(assigned.view() == s);
  }
  CHECK(sizeof(InlineKey) == 32);
  CHECK(InlineKey().view().empty());
}

TEST_CASE("inline key: a table keyed by it finds entries by any string, and formats it") {
  absl::node_hash_map<InlineKey, int, jc::InlineKeyHash, jc::InlineKeyEq> table;
  const auto strings = edge_strings();
  for (std::size_t i = 0; i < strings.size(); ++i) {
    auto [it, added] = table.try_emplace(std::string_view(strings[i]), static_cast<int>(i));
    CHECK(added);
  }
  for (std::size_t i = 0; i < strings.size(); ++i) {
    auto it = table.find(strings[i]);  // by std::string
    REQUIRE(it != table.end());
    CHECK(it->second == static_cast<int>(i));
    CHECK(table.find(std::string_view(strings[i])) == it);
    CHECK(it->first.view() == strings[i]);
  }
  CHECK(table.find(std::string_view("absent")) == table.end());
  CHECK(fmt::format("t={}", InlineKey("abc-1-xyz")) == "t=abc-1-xyz");
}

TEST_CASE("owned bytes: one block with its length, moved not copied") {
  OwnedBytes none;
  CHECK(!none);
  CHECK(none.size() == 0);
  CHECK(none.view().empty());
  for (const std::string& s : edge_strings()) {
    OwnedBytes b(s);
    CHECK(static_cast<bool>(b));
    CHECK(b.size() == s.size());
    CHECK(b.view() == s);
    OwnedBytes moved(std::move(b));
    CHECK(!b);  // NOLINT: moved from
    CHECK(moved.str() == s);
    OwnedBytes assigned(std::string_view("old"));
    assigned = std::move(moved);
    CHECK(assigned.view() == s);
    assigned.reset();
    CHECK(!assigned);
  }
  CHECK(sizeof(OwnedBytes) == sizeof(void*));
}
