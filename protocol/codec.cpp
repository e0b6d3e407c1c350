#include "protocol/codec.h"

#include <fmt/format.h>
#include <zlib.h>

namespace jc::protocol {
namespace {

// zlib's CRC-32 (the same polynomial as boost::crc_32_type, several times
// faster: it showed in profiles of frames of a few hundred bytes).
std::uint32_t frame_crc(std::string_view bytes) {
  return static_cast<std::uint32_t>(
      ::crc32_z(0L, reinterpret_cast<const Bytef*>(bytes.data()), bytes.size()));
}

void put_u32(std::string& out, std::size_t at, std::uint32_t v) {
  out[at] = static_cast<char>(v >> 24);
  out[at + 1] = static_cast<char>(v >> 16);
  out[at + 2] = static_cast<char>(v >> 8);
  out[at + 3] = static_cast<char>(v);
}

std::uint32_t get_u32(std::string_view in, std::size_t at) {
  auto b = [&](std::size_t i) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(in[at + i]));
  };
  return (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
}

// Deserializes alternative `I` of Message when it is the frame's type.
template <std::size_t I>
bool load_alternative(std::size_t type, std::string_view payload, Message& out) {
  if (type != I) return false;
  std::variant_alternative_t<I, Message> value;
  if (!from_bytes(payload, value)) return false;
  out = std::move(value);
  return true;
}

template <std::size_t... I>
bool load_message(std::size_t type, std::string_view payload, Message& out,
                  std::index_sequence<I...>) {
  return (load_alternative<I>(type, payload, out) || ...);
}

}  // namespace

std::string_view message_name(const Message& m) {
  static constexpr std::string_view kNames[] = {
      "HELLO",  "WELCOME", "SUBMIT",        "ACK",         "JOB",    "INFO",      "REQUEST_OF_RES",
      "RESULT", "RES_REQ", "STATS_REQUEST", "STATS_REPLY", "CANCEL", "CHALLENGE", "LEAVE",
      "PEER_HELLO", "PEER_DATA", "HEARTBEAT", "OFFERS"};
  static_assert(std::size(kNames) == std::variant_size_v<Message>);
  return kNames[m.index()];
}

void encode(const Message& m, std::string& out) {
  std::size_t start = out.size();
  out.resize(start + kFrameHeaderBytes);
  OutArchive ar(out);
  std::visit([&](const auto& value) { ar << value; }, m);
  ar.flush();
  std::size_t length = out.size() - start - kFrameHeaderBytes;
  put_u32(out, start, static_cast<std::uint32_t>(length));
  out[start + 4] = static_cast<char>(kProtocolVersion);
  out[start + 5] = static_cast<char>(m.index());
  put_u32(out, start + 6,
          frame_crc(std::string_view(out).substr(start + kFrameHeaderBytes, length)));
}

std::string encode(const Message& m) {
  std::string out;
  encode(m, out);
  return out;
}

DecodeResult decode(std::string_view bytes, std::size_t max_frame) {
  if (bytes.size() < kFrameHeaderBytes) return NeedMore{};
  std::uint32_t length = get_u32(bytes, 0);
  auto version = static_cast<std::uint8_t>(bytes[4]);
  auto type = static_cast<std::uint8_t>(bytes[5]);
  if (length > max_frame) {
    return DecodeError{fmt::format("frame of {} bytes exceeds the limit of {}", length, max_frame)};
  }
  if (version != kProtocolVersion) {
    return DecodeError{
        fmt::format("protocol version {} (this side speaks {})", version, kProtocolVersion)};
  }
  if (type >= std::variant_size_v<Message>) {
    return DecodeError{fmt::format("unknown message type {}", type)};
  }
  if (bytes.size() < kFrameHeaderBytes + length) return NeedMore{};
  std::string_view payload = bytes.substr(kFrameHeaderBytes, length);
  if (frame_crc(payload) != get_u32(bytes, 6)) {
    return DecodeError{"frame checksum mismatch"};
  }
  Complete done;
  if (!load_message(type, payload, done.message,
                    std::make_index_sequence<std::variant_size_v<Message>>{})) {
    return DecodeError{fmt::format("malformed {} payload of {} bytes", type, length)};
  }
  done.consumed = kFrameHeaderBytes + length;
  return done;
}

std::size_t frame_payload_length(std::string_view bytes) { return get_u32(bytes, 0); }

std::string escape_sample(std::string_view bytes, std::size_t max) {
  std::string out;
  for (std::size_t i = 0; i < bytes.size() && i < max; ++i) {
    auto c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  if (bytes.size() > max) out += "...";
  return out;
}

}  // namespace jc::protocol
