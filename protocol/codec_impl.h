// Template part of codec.h.
#pragma once

#include "protocol/archive.h"
#include "protocol/fields.h"

namespace jc::protocol {

template <class T>
std::string to_bytes(const T& value) {
  std::string out;
  OutArchive ar(out);
  ar << value;
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

}  // namespace jc::protocol
