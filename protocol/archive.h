// The archives our types serialize through: Boost.Serialization's archive
// concept (is_loading/is_saving, operator&, save_binary/load_binary), and
// every struct's serialize() is reached through boost::serialization's
// serialize_adl, as with Boost's own archives.
//
// Why not boost::archive::binary_[io]archive: each construction of one
// builds a std::locale with a codecvt facet, and each class goes through the
// serializer registry (class ids, tracking). Profiles of the end-to-end
// benchmark showed those alone at about 11% of a node's CPU, for values of a
// few dozen bytes. These archives are a cursor over a string: no locale, no
// registry, no tracking (our values hold no pointers).
//
// Encoding: integers and enums little-endian at their fixed width, bool as
// one byte, strings and vectors as a u64 length then their contents
// (protocol/fields.h). An InArchive knows how many bytes are left, so a
// length field larger than that is refused before anything is allocated.
#pragma once

#include <bit>
#include <boost/serialization/serialization.hpp>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace jc::protocol {

static_assert(std::endian::native == std::endian::little,
              "the archives copy integers as they are in memory: little-endian hosts only");

// Thrown by InArchive on a truncated or inconsistent payload.
struct DecodeFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class OutArchive {
 public:
  using is_loading = std::false_type;
  using is_saving = std::true_type;

  explicit OutArchive(std::string& out) : out_(out) {}

  template <class T>
  OutArchive& operator&(const T& value) {
    save(value);
    return *this;
  }
  template <class T>
  OutArchive& operator<<(const T& value) {
    save(value);
    return *this;
  }
  void save_binary(const void* data, std::size_t n) {
    out_.append(static_cast<const char*>(data), n);
  }
  static constexpr unsigned get_library_version() { return 1; }

 private:
  template <class T>
  void save(const T& value) {
    if constexpr (std::is_same_v<T, bool>) {
      out_.push_back(value ? '\1' : '\0');
    } else if constexpr (std::is_arithmetic_v<T> || std::is_enum_v<T>) {
      save_binary(&value, sizeof value);
    } else {
      boost::serialization::serialize_adl(*this, const_cast<T&>(value), 0u);
    }
  }

  std::string& out_;
};

class InArchive {
 public:
  using is_loading = std::true_type;
  using is_saving = std::false_type;

  explicit InArchive(std::string_view in) : in_(in) {}

  template <class T>
  InArchive& operator&(T& value) {
    load(value);
    return *this;
  }
  template <class T>
  InArchive& operator>>(T& value) {
    load(value);
    return *this;
  }
  void load_binary(void* data, std::size_t n) {
    if (n > remaining()) throw DecodeFailure("payload ends inside a field");
    std::memcpy(data, in_.data() + pos_, n);
    pos_ += n;
  }
  // A length field read from the payload: every element takes at least one
  // byte, so more elements than bytes left is a lie.
  void check_length(std::uint64_t n) const {
    if (n > remaining()) throw DecodeFailure("length field exceeds the payload");
  }
  std::size_t remaining() const { return in_.size() - pos_; }
  static constexpr unsigned get_library_version() { return 1; }

 private:
  template <class T>
  void load(T& value) {
    if constexpr (std::is_same_v<T, bool>) {
      char c = 0;
      load_binary(&c, 1);
      if (c != 0 && c != 1) throw DecodeFailure("bool field is neither 0 nor 1");
      value = c == 1;
    } else if constexpr (std::is_arithmetic_v<T> || std::is_enum_v<T>) {
      load_binary(&value, sizeof value);
    } else {
      boost::serialization::serialize_adl(*this, value, 0u);
    }
  }

  std::string_view in_;
  std::size_t pos_ = 0;
};

}  // namespace jc::protocol
