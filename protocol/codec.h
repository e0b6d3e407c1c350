// Framing of node <-> proxy messages, and the serialization of values.
//
// Grammar of one frame (all integers big-endian):
//   frame   := length:u32 version:u8 type:u8 crc:u32 payload
//   length  := size of payload in bytes, at most the decoder's max_frame
//   version := kProtocolVersion
//   type    := index of the message in protocol::Message
//   crc     := CRC-32 of payload
//   payload := the message through OutArchive (protocol/archive.h)
//
// decode() is a pure incremental decoder: it never throws, never allocates
// more than the declared length (checked against max_frame first), and
// turns every archive exception into a DecodeError. The CRC rejects garbage
// before the archive sees it, and the archive checks every length field
// against the bytes left.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>

#include "protocol/messages.h"

namespace jc::protocol {

constexpr std::size_t kFrameHeaderBytes = 10;
// Large enough for a batch of results with big outputs, small enough that a
// stranger cannot make us buffer gigabytes.
constexpr std::size_t kMaxFrameBytes = 64 * 1024 * 1024;

// Appends the frame of `m` to `out`.
void encode(const Message& m, std::string& out);
std::string encode(const Message& m);

struct NeedMore {};
struct Complete {
  Message message;
  std::size_t consumed = 0;
};
struct DecodeError {
  std::string reason;
};
using DecodeResult = std::variant<NeedMore, Complete, DecodeError>;

DecodeResult decode(std::string_view bytes, std::size_t max_frame = kMaxFrameBytes);
// The payload length a frame header declares (`bytes` holds at least
// kFrameHeaderBytes); not checked against any limit.
std::size_t frame_payload_length(std::string_view bytes);

// A value in today's version, without a frame or a version (payloads).
template <class T>
std::string to_bytes(const T& value);
template <class T>
bool from_bytes(std::string_view bytes, T& value);
// Values stored in LevelDB: the same archive behind a record header
// (kRecordMarker, version), so a later build reads what this one wrote and
// this one reads version-4 records, which have no header (archive.h).
template <class T>
std::string to_record(const T& value);
template <class T>
bool from_record(std::string_view bytes, T& value);

// Short printable sample of bad bytes for a log line (redis-style).
std::string escape_sample(std::string_view bytes, std::size_t max = 32);

}  // namespace jc::protocol

#include "protocol/codec_impl.h"
