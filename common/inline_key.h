// Keys of the books that hold an entry per job: a ticket is at most 32
// characters (protocol::kMaxTicketLength), so it lives inside the entry,
// where a std::string of 26 characters takes a heap block of its own (32
// bytes and an allocation per job on the proxy, besides its 32 bytes in
// the entry). Any other string works too, on the heap when it does not
// fit.
//
// 32 bytes. The last one says which: 1 to 32 is a string of 32 minus it
// inline; above 32, the 32nd character of a string of 32 inline (no
// string shorter than 32 ends with such a byte in that place); 0, a heap
// block whose pointer and length are in the first 16.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

#include <absl/hash/hash.h>

namespace jc {

class InlineKey {
 public:
  static constexpr std::size_t kInline = 32;

  InlineKey() { bytes_[kInline - 1] = static_cast<char>(kInline); }
  explicit InlineKey(std::string_view s) { assign(s); }
  InlineKey(const InlineKey& other) { assign(other.view()); }
  InlineKey(InlineKey&& other) noexcept {
    std::memcpy(bytes_, other.bytes_, kInline);
    other.bytes_[kInline - 1] = static_cast<char>(kInline);  // empty, owns nothing
  }
  InlineKey& operator=(const InlineKey& other) {
    if (this != &other) {
      InlineKey copy(other);
      swap(copy);
    }
    return *this;
  }
  InlineKey& operator=(InlineKey&& other) noexcept {
    InlineKey moved(std::move(other));
    swap(moved);
    return *this;
  }
  ~InlineKey() {
    if (on_heap()) delete[] heap_data();
  }

  std::string_view view() const {
    const auto tag = static_cast<unsigned char>(bytes_[kInline - 1]);
    if (tag == 0) return {heap_data(), heap_size()};
    return {bytes_, tag > kInline ? kInline : kInline - tag};
  }
  operator std::string_view() const { return view(); }  // NOLINT: a key is its string
  std::string str() const { return std::string(view()); }
  bool on_heap() const { return bytes_[kInline - 1] == 0; }

  friend bool operator==(const InlineKey& a, const InlineKey& b) { return a.view() == b.view(); }

  void swap(InlineKey& other) noexcept {
    char tmp[kInline];
    std::memcpy(tmp, bytes_, kInline);
    std::memcpy(bytes_, other.bytes_, kInline);
    std::memcpy(other.bytes_, tmp, kInline);
  }

 private:
  void assign(std::string_view s) {
    const bool fits =
        s.size() < kInline ||
        (s.size() == kInline && static_cast<unsigned char>(s[kInline - 1]) > kInline);
    if (fits) {
      std::memcpy(bytes_, s.data(), s.size());
      if (s.size() < kInline) bytes_[kInline - 1] = static_cast<char>(kInline - s.size());
      return;
    }
    char* data = new char[s.size()];
    std::memcpy(data, s.data(), s.size());
    const std::size_t size = s.size();
    std::memcpy(bytes_, &data, sizeof data);
    std::memcpy(bytes_ + sizeof data, &size, sizeof size);
    bytes_[kInline - 1] = 0;
  }
  char* heap_data() const {
    char* data = nullptr;
    std::memcpy(&data, bytes_, sizeof data);
    return data;
  }
  std::size_t heap_size() const {
    std::size_t size = 0;
    std::memcpy(&size, bytes_ + sizeof(char*), sizeof size);
    return size;
  }

  alignas(8) char bytes_[kInline];
};

static_assert(sizeof(InlineKey) == InlineKey::kInline);

// For absl's tables keyed by InlineKey, looked up by any string without
// a copy.
struct InlineKeyHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return absl::Hash<std::string_view>{}(s); }
};
struct InlineKeyEq {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const { return a == b; }
};

}  // namespace jc

template <>
struct fmt::formatter<jc::InlineKey> : fmt::formatter<std::string_view> {
  template <class Ctx>
  auto format(const jc::InlineKey& k, Ctx& ctx) const {
    return fmt::formatter<std::string_view>::format(k.view(), ctx);
  }
};
