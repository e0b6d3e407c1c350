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
// Encoding: integers wider than a byte as varints (LEB128, 7 bits a byte,
// low first; signed ones zigzag-mapped first, as in Protocol Buffers), so the
// many zero and small fields of a job record take one byte each; one-byte
// integers, enums (all of them one byte) and bools as one byte; floating
// point as its bytes; strings and vectors as a varint length then their
// contents (protocol/fields.h). An InArchive knows how many bytes are left,
// so a length field larger than that is refused before anything is
// allocated, and a varint too long or too large for its field is refused.
//
// Versions: every archive has a record version (kRecordVersion when
// written today). A field added after version 4 is written and read only
// when the archive's version has it (`if (ar.version() >= 5) ...`), so a
// stored record of an older version still reads, its new fields defaulted.
// Frames are always of today's version (HELLO refuses other protocols).
#pragma once

#include <algorithm>
#include <bit>
#include <boost/serialization/serialization.hpp>
#include <cstdint>
#include <cstring>
#include <limits>
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

// The version of the records and frames this build writes: 5 adds
// JobResult::final_ms (the proxy's time of the job's one result, which
// RESULT_TTL counts from); 6 adds a job's needs, its judge0 request
// (ApiRequest), the limits judge0 sets per job (Limits), and a passing
// check step's output (JobResult::check_output); 7 keeps a job's spec once
// at the proxy, in a record of its own, and its job record only the spec's
// head (reverse_proxy/proxy_core.h); 8 keeps a job's owner in its origin
// node's r/ record (cluster_node/node_records.h), so that a read of a
// finished job needs that record alone; 9 gives a finished sleep's result
// its milliseconds instead of its sentence (JobResult::sleep_ms). Frames of
// versions 6 to 8 are the same bytes (only stored records differ); those of
// 9 carry sleep_ms too.
constexpr unsigned kRecordVersion = 9;
// Stored records of version 5 on start with this byte, then their version
// (one byte). A version-4 record starts with its ticket's length (a
// varint below 33), so the two never meet.
constexpr char kRecordMarker = '\xF5';
constexpr std::size_t kRecordHeaderBytes = 2;  // the marker, the version
// A record's header, at the end of `out`.
inline void append_record_header(std::string& out, unsigned version = kRecordVersion) {
  out.push_back(kRecordMarker);
  out.push_back(static_cast<char>(version));
}

class OutArchive {
 public:
  using is_loading = std::false_type;
  using is_saving = std::true_type;

  // `version`: an older one writes what that version had (tests of reading
  // old records make them so).
  explicit OutArchive(std::string& out, unsigned version = kRecordVersion)
      : out_(out), version_(version) {}
  ~OutArchive() { flush(); }
  OutArchive(const OutArchive&) = delete;
  OutArchive& operator=(const OutArchive&) = delete;
  unsigned version() const { return version_; }
  // Small fields are staged in the archive and appended to the string a
  // buffer at a time: a job's record has dozens of one-byte fields, and an
  // append for each cost a call and a capacity check. The string holds
  // everything written once flush() has run, or the archive is gone.
  void flush() {
    if (staged_ > 0) {
      out_.append(buffer_, staged_);
      staged_ = 0;
    }
  }

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
  [[gnu::always_inline]] void save_binary(const void* data, std::size_t n) {
    if (n <= kBufferBytes - staged_) {
      std::memcpy(buffer_ + staged_, data, n);
      staged_ += n;
      return;
    }
    flush();
    out_.append(static_cast<const char*>(data), n);
  }
  static constexpr unsigned get_library_version() { return 1; }

 private:
  template <class T>
  void save(const T& value) {
    if constexpr (std::is_same_v<T, bool>) {
      put(value ? '\1' : '\0');
    } else if constexpr (std::is_integral_v<T> && sizeof(T) > 1) {
      save_varint(zigzag(value));
    } else if constexpr (std::is_arithmetic_v<T> || std::is_enum_v<T>) {
      static_assert(sizeof(T) == 1 || std::is_floating_point_v<T>, "enums must be one byte");
      save_binary(&value, sizeof value);
    } else {
      boost::serialization::serialize_adl(*this, const_cast<T&>(value), 0u);
    }
  }

  template <class T>
  static std::uint64_t zigzag(T v) {
    if constexpr (std::is_signed_v<T>) {
      auto u = static_cast<std::uint64_t>(static_cast<std::int64_t>(v));
      return (u << 1) ^ static_cast<std::uint64_t>(static_cast<std::int64_t>(v) >> 63);
    } else {
      return static_cast<std::uint64_t>(v);
    }
  }
  [[gnu::always_inline]] void put(char c) {
    if (staged_ == kBufferBytes) flush();
    buffer_[staged_++] = c;
  }
  [[gnu::always_inline]] void save_varint(std::uint64_t v) {
    if (kBufferBytes - staged_ < 10) flush();  // room for the longest
    while (v >= 0x80) {
      buffer_[staged_++] = static_cast<char>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    buffer_[staged_++] = static_cast<char>(v);  // most fields of a record: zero or small
  }

  static constexpr std::size_t kBufferBytes = 512;
  std::string& out_;
  unsigned version_;
  std::size_t staged_ = 0;
  char buffer_[kBufferBytes];
};

class InArchive {
 public:
  using is_loading = std::true_type;
  using is_saving = std::false_type;

  // What decoding may allocate, at most: a few times the payload (a job
  // spec takes about 7 times its encoded size in memory), and never more
  // than kMaxDecodedBytes, whatever the frame claims.
  static constexpr std::uint64_t kMaxDecodedBytes = 256ull << 20;
  explicit InArchive(std::string_view in, unsigned version = kRecordVersion)
      : version_(version),
        in_(in),
        budget_(std::min<std::uint64_t>(kMaxDecodedBytes,
                                        std::max<std::uint64_t>(1ull << 20, 16ull * in.size()))) {}

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
  // The next n bytes, consumed: a string field is assigned from them in one
  // copy (resize-then-copy would first zero a job's megabytes of output).
  std::string_view take(std::size_t n) {
    if (n > remaining()) throw DecodeFailure("payload ends inside a field");
    std::string_view out = in_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  // A length field read from the payload: every element takes at least one
  // byte, so more elements than bytes left is a lie.
  void check_length(std::uint64_t n) const {
    if (n > remaining()) throw DecodeFailure("length field exceeds the payload");
  }
  std::size_t remaining() const { return in_.size() - pos_; }
  // Where the next field starts, and the bytes read since an earlier such
  // position (a field's encoding, as it came).
  std::size_t position() const { return pos_; }
  std::string_view consumed_since(std::size_t start) const { return in_.substr(start, pos_ - start); }
  // Counts memory a field is about to take (a string's bytes, a vector's
  // elements): an empty string costs one byte on the wire and 32 in memory,
  // so lengths checked against the payload alone would let a 64 MiB frame
  // claim gigabytes.
  void charge(std::uint64_t bytes) {
    if (bytes > budget_ - used_) throw DecodeFailure("payload would take too much memory");
    used_ += bytes;
  }
  static constexpr unsigned get_library_version() { return 1; }
  unsigned version() const { return version_; }

 private:
  template <class T>
  void load(T& value) {
    if constexpr (std::is_same_v<T, bool>) {
      char c = 0;
      load_binary(&c, 1);
      if (c != 0 && c != 1) throw DecodeFailure("bool field is neither 0 nor 1");
      value = c == 1;
    } else if constexpr (std::is_integral_v<T> && sizeof(T) > 1) {
      value = unzigzag<T>(load_varint());
    } else if constexpr (std::is_arithmetic_v<T> || std::is_enum_v<T>) {
      load_binary(&value, sizeof value);
    } else {
      boost::serialization::serialize_adl(*this, value, 0u);
    }
  }

  [[gnu::always_inline]] std::uint64_t load_varint() {
    // Most fields are one byte: that case inline, the rest out of line.
    if (pos_ < in_.size()) {
      auto byte = static_cast<unsigned char>(in_[pos_]);
      if (byte < 0x80) {
        ++pos_;
        return byte;
      }
    }
    return load_long_varint();
  }
  [[gnu::noinline]] std::uint64_t load_long_varint() {
    std::uint64_t v = 0;
    if (in_.size() - pos_ >= 10) {
      // Room for the longest: no bounds check per byte.
      const auto* p = reinterpret_cast<const unsigned char*>(in_.data()) + pos_;
      for (int i = 0; i < 10; ++i) {
        const unsigned byte = p[i];
        if (i == 9 && byte > 1) throw DecodeFailure("varint exceeds 64 bits");
        v |= static_cast<std::uint64_t>(byte & 0x7f) << (7 * i);
        if ((byte & 0x80) == 0) {
          pos_ += static_cast<std::size_t>(i) + 1;
          return v;
        }
      }
      throw DecodeFailure("varint longer than 10 bytes");
    }
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ == in_.size()) throw DecodeFailure("payload ends inside a varint");
      auto byte = static_cast<unsigned char>(in_[pos_++]);
      if (shift == 63 && byte > 1) throw DecodeFailure("varint exceeds 64 bits");
      v |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) return v;
    }
    throw DecodeFailure("varint longer than 10 bytes");
  }
  template <class T>
  static T unzigzag(std::uint64_t u) {
    if constexpr (std::is_signed_v<T>) {
      auto v = static_cast<std::int64_t>((u >> 1) ^ (~(u & 1) + 1));
      if (v < std::numeric_limits<T>::min() || v > std::numeric_limits<T>::max()) {
        throw DecodeFailure("integer field out of range");
      }
      return static_cast<T>(v);
    } else {
      if (u > std::numeric_limits<T>::max()) throw DecodeFailure("integer field out of range");
      return static_cast<T>(u);
    }
  }

  unsigned version_;
  std::string_view in_;
  std::size_t pos_ = 0;
  std::uint64_t budget_;
  std::uint64_t used_ = 0;
};

}  // namespace jc::protocol
