// A crafted frame (its CRC is easy to compute) must not make the decoder
// allocate what its length fields claim. This file replaces the global
// operator new of the unit test binary to record the largest allocation
// made while a decode runs.
#include <doctest/doctest.h>

#include <boost/crc.hpp>
#include <cstdlib>
#include <new>

#include "protocol/codec.h"

namespace {
thread_local bool t_tracking = false;
thread_local std::size_t t_largest = 0;
}  // namespace

void* operator new(std::size_t n) {
  if (t_tracking && n > t_largest) t_largest = n;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace jc::protocol {
namespace {

std::uint32_t be32(std::string_view b, std::size_t at) {
  auto u = [&](std::size_t i) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + i]));
  };
  return (u(0) << 24) | (u(1) << 16) | (u(2) << 8) | u(3);
}

// Replaces `from` by `to` in the payload of `frame` and fixes the CRC.
std::string tamper(const std::string& frame, const std::string& from, const std::string& to,
                   bool last = false) {
  std::string payload = frame.substr(kFrameHeaderBytes);
  auto pos = last ? payload.rfind(from) : payload.find(from);
  REQUIRE(pos != std::string::npos);
  payload.replace(pos, from.size(), to);
  std::string out = frame.substr(0, kFrameHeaderBytes);
  std::uint32_t len = static_cast<std::uint32_t>(payload.size());
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>(len >> (24 - 8 * i));
  boost::crc_32_type crc;
  crc.process_bytes(payload.data(), payload.size());
  for (int i = 0; i < 4; ++i) out[6 + i] = static_cast<char>(crc.checksum() >> (24 - 8 * i));
  CHECK(be32(out, 0) == payload.size());
  return out + payload;
}

std::size_t largest_allocation_decoding(const std::string& frame, DecodeResult& result) {
  t_largest = 0;
  t_tracking = true;
  result = decode(frame);
  t_tracking = false;
  return t_largest;
}

// A length as the archive writes it (protocol/archive.h): a varint.
std::string varint(std::uint64_t v) {
  std::string s;
  do {
    auto byte = static_cast<unsigned char>(v & 0x7f);
    v >>= 7;
    if (v != 0) byte |= 0x80;
    s.push_back(static_cast<char>(byte));
  } while (v != 0);
  return s;
}

}  // namespace

TEST_CASE("codec: a crafted string length with a valid CRC is refused without allocating it") {
  Hello h;
  h.node_id = "node-abcdef";
  std::string frame = encode(h);
  std::string evil = tamper(frame, varint(11) + "node-abcdef", varint(0x20000000) + "node-abcdef");
  DecodeResult r;
  std::size_t largest = largest_allocation_decoding(evil, r);
  CHECK(std::holds_alternative<DecodeError>(r));
  CHECK(largest < 64 * 1024);
}

TEST_CASE("codec: a crafted element count with a valid CRC is refused without allocating it") {
  Submit s;  // three empty vectors and a bool: the payload is 0, 0, 0, 0
  std::string frame = encode(s);
  REQUIRE(frame.substr(kFrameHeaderBytes) == std::string(4, '\0'));
  std::string evil = tamper(frame, varint(0), varint(0x400000));  // the count of jobs
  DecodeResult r;
  std::size_t largest = largest_allocation_decoding(evil, r);
  CHECK(std::holds_alternative<DecodeError>(r));
  CHECK(largest < 64 * 1024);
}

TEST_CASE("codec: many empty strings, a byte each on the wire, are refused by the memory budget") {
  // HELLO: version, node_id, slots, client_address, then `held` with 4 Mi
  // empty strings (one zero byte each, 128 MiB as std::strings), finished,
  // auth, sandbox, cpus, offers, api_address. Every length fits in the payload; the memory
  // would not.
  const std::uint64_t n = 4u << 20;
  std::string payload = varint(kProtocolVersion) + varint(2) + "n1" + varint(1) + varint(0);
  payload += varint(n) + std::string(n, '\0') + varint(0) + varint(0) + varint(0) + varint(0) +
             varint(0) + varint(0);
  std::string frame(kFrameHeaderBytes, '\0');
  auto len = static_cast<std::uint32_t>(payload.size());
  for (int i = 0; i < 4; ++i) frame[i] = static_cast<char>(len >> (24 - 8 * i));
  frame[4] = static_cast<char>(kProtocolVersion);
  frame[5] = static_cast<char>(Message(Hello{}).index());
  boost::crc_32_type crc;
  crc.process_bytes(payload.data(), payload.size());
  for (int i = 0; i < 4; ++i) frame[6 + i] = static_cast<char>(crc.checksum() >> (24 - 8 * i));
  frame += payload;
  DecodeResult r;
  std::size_t largest = largest_allocation_decoding(frame, r);
  REQUIRE(std::holds_alternative<DecodeError>(r));
  CHECK(largest < 64 * 1024);

  SUBCASE("the same HELLO with a thousand of them decodes") {
    std::string small = varint(kProtocolVersion) + varint(2) + "n1" + varint(1) + varint(0) +
                        varint(1000) + std::string(1000, '\0') + varint(0) + varint(0) +
                        varint(0) + varint(0) + varint(0) + varint(0);
    Hello h;
    REQUIRE(from_bytes(small, h));
    CHECK(h.held.size() == 1000);
  }
}

}  // namespace jc::protocol
