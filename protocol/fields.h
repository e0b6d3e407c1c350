// Serialization of message and record fields with bounds.
//
// A string or vector is written as a u64 length and its contents. On
// loading, the length is checked against the bytes left in the payload
// (InArchive::check_length, protocol/archive.h), and the memory it will take
// against the decode's budget (InArchive::charge), before anything is
// allocated, so a crafted frame (its CRC is easy to compute) cannot make a
// process allocate gigabytes.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace jc::protocol::detail {

template <class Archive, class T>
void field(Archive& ar, T& value) {
  ar& value;
}

template <class Archive>
void field(Archive& ar, std::string& s) {
  std::uint64_t n = s.size();
  ar& n;
  if constexpr (Archive::is_loading::value) {
    if (n == 0) {  // many are (a job's unused options): no call to assign
      s.clear();
      return;
    }
    ar.check_length(n);
    ar.charge(n);
    std::string_view bytes = ar.take(n);
    s.assign(bytes.data(), bytes.size());
  } else {
    if (n > 0) ar.save_binary(s.data(), n);
  }
}

template <class Archive, class T>
void field(Archive& ar, std::vector<T>& v) {
  std::uint64_t n = v.size();
  ar& n;
  if constexpr (Archive::is_loading::value) {
    ar.check_length(n);
    ar.charge(n * sizeof(T));
    v.clear();
    // All at once (the charge bounds it): growing a vector of 500-byte
    // reports moved each of them again, 3 % of the proxy's CPU in a burst.
    v.reserve(n);
    for (std::uint64_t i = 0; i < n; ++i) field(ar, v.emplace_back());
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
