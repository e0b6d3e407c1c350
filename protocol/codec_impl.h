// Template part of codec.h.
#pragma once

#include "protocol/archive.h"
#include "protocol/fields.h"

namespace jc::protocol {

template <class T>
std::string to_bytes(const T& value) {
  std::string out;
  out.reserve(256);  // as to_record: a job's spec fits
  OutArchive ar(out);
  ar << value;
  ar.flush();
  return out;
}

// As to_bytes, in an older record version (its later fields left out).
template <class T>
std::string to_bytes_at(const T& value, unsigned version) {
  std::string out;
  OutArchive ar(out, version);
  ar << value;
  ar.flush();
  return out;
}

template <class T>
bool from_bytes(std::string_view bytes, T& value) {
  try {
    InArchive ar(bytes);
    ar >> value;
    return ar.remaining() == 0;
  } catch (const std::exception&) {
    return false;
  }
}

template <class T>
std::string to_record(const T& value) {
  std::string out;
  // Most records (a job's, with a short command or source) fit: one
  // allocation instead of the string's four doublings from 15 bytes.
  out.reserve(256);
  append_record_header(out);
  OutArchive ar(out);
  ar << value;
  ar.flush();
  return out;
}

template <class T>
bool from_record(std::string_view bytes, T& value) {
  unsigned version = 4;  // no marker: written before records had versions
  if (!bytes.empty() && bytes[0] == kRecordMarker) {
    if (bytes.size() < kRecordHeaderBytes) return false;
    version = static_cast<unsigned char>(bytes[1]);
    // A record of a later build: its fields cannot be known here.
    if (version < 5 || version > kRecordVersion) return false;
    bytes.remove_prefix(kRecordHeaderBytes);
  }
  try {
    InArchive ar(bytes, version);
    ar >> value;
    return ar.remaining() == 0;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace jc::protocol
