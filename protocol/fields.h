// Serialization of message and record fields with bounds.
//
// Boost.Serialization trusts the length of a string or vector it reads and
// allocates it before reading the contents, so a crafted frame (its CRC is
// easy to compute) could make a process allocate gigabytes. Our types
// serialize through fields(): a string or vector length is checked against
// the bytes left in the payload being decoded before anything is allocated
// (every element takes at least one byte).
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <streambuf>
#include <string>
#include <vector>

namespace jc::protocol::detail {

// The payload being decoded on this thread; null while encoding.
inline thread_local std::streambuf* t_decoding = nullptr;

inline void check_length(std::uint64_t n) {
  std::uint64_t left =
      t_decoding != nullptr
          ? static_cast<std::uint64_t>(std::max<std::streamsize>(t_decoding->in_avail(), 0))
          : std::numeric_limits<std::uint64_t>::max();
  if (n > left) throw std::length_error("length field exceeds the payload");
}

template <class Archive, class T>
void field(Archive& ar, T& value) {
  ar& value;
}

template <class Archive>
void field(Archive& ar, std::string& s) {
  std::uint64_t n = s.size();
  ar& n;
  if constexpr (Archive::is_loading::value) {
    check_length(n);
    s.resize(n);
    if (n > 0) ar.load_binary(s.data(), n);
  } else {
    if (n > 0) ar.save_binary(s.data(), n);
  }
}

template <class Archive, class T>
void field(Archive& ar, std::vector<T>& v) {
  std::uint64_t n = v.size();
  ar& n;
  if constexpr (Archive::is_loading::value) {
    check_length(n);
    v.clear();
    v.reserve(std::min<std::uint64_t>(n, 1024));
    for (std::uint64_t i = 0; i < n; ++i) {
      T item{};
      field(ar, item);
      v.push_back(std::move(item));
    }
  } else {
    for (auto& item : v) field(ar, item);
  }
}

}  // namespace jc::protocol::detail

namespace jc::protocol {

template <class Archive, class... T>
void fields(Archive& ar, T&... values) {
  (detail::field(ar, values), ...);
}

}  // namespace jc::protocol
