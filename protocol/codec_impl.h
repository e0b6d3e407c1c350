// Template part of codec.h: archives over a string without extra copies.
#pragma once

#include <boost/archive/binary_iarchive.hpp>
#include <boost/archive/binary_oarchive.hpp>
#include <exception>
#include <streambuf>

#include "protocol/fields.h"

namespace jc::protocol::detail {

// Appends everything written to a std::string.
class StringSink : public std::streambuf {
 public:
  explicit StringSink(std::string& out) : out_(out) {}

 protected:
  int_type overflow(int_type ch) override {
    if (ch != traits_type::eof()) out_.push_back(static_cast<char>(ch));
    return ch;
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    out_.append(s, static_cast<std::size_t>(n));
    return n;
  }

 private:
  std::string& out_;
};

// Reads from a fixed span; reading past its end fails the archive.
class SpanSource : public std::streambuf {
 public:
  explicit SpanSource(std::string_view bytes) {
    char* p = const_cast<char*>(bytes.data());
    setg(p, p, p + bytes.size());
  }
};

constexpr unsigned kArchiveFlags = boost::archive::no_header | boost::archive::no_codecvt;

}  // namespace jc::protocol::detail

namespace jc::protocol {

template <class T>
std::string to_bytes(const T& value) {
  std::string out;
  detail::StringSink sink(out);
  {
    boost::archive::binary_oarchive ar(sink, detail::kArchiveFlags);
    ar << value;
  }
  return out;
}

template <class T>
bool from_bytes(std::string_view bytes, T& value) {
  detail::SpanSource source(bytes);
  detail::t_decoding = &source;
  bool ok = true;
  try {
    boost::archive::binary_iarchive ar(source, detail::kArchiveFlags);
    ar >> value;
  } catch (const std::exception&) {
    ok = false;
  }
  detail::t_decoding = nullptr;
  return ok;
}

}  // namespace jc::protocol
