// TLS settings from the environment's values, and the key both ends derive.
#include <doctest/doctest.h>

#include <array>
#include <stdexcept>
#include <string>

#include "net/tls.h"

using jc::net::TlsSettings;

namespace {
std::string hex(const std::array<unsigned char, 32>& key) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : key) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}
}  // namespace

TEST_CASE("tls: the link key is HKDF-SHA256 of the secret, the same on every process") {
  auto a = jc::net::derive_link_key("correct horse");
  auto b = jc::net::derive_link_key("correct horse");
  auto c = jc::net::derive_link_key("correct horsf");
  CHECK(a == b);
  CHECK(a != c);
  // Fixed labels: a change to them (a new key for every deployed cluster)
  // must be deliberate. RFC 5869 HKDF-SHA256, salt "jobcluster", info
  // "jobcluster node-proxy link psk v1"; the expected value is from
  // Python's hmac module, an implementation of its own.
  CHECK(hex(a) == "785f4a7bde1c71e1fd09f9ec1602e1e503e7df7f63c281970dbe22241dc60302");
}

TEST_CASE("tls: a short CLUSTER_SECRET is warned about, a long one is not") {
  CHECK(jc::net::weak_secret_warning("").empty());
  CHECK(jc::net::weak_secret_warning("0123456789abcdef").empty());
  CHECK(jc::net::weak_secret_warning("s3cret").find("6 characters") != std::string::npos);
}

TEST_CASE("tls: settings are off, a key from the secret, or certificates, never half of them") {
  CHECK(jc::net::make_tls_settings("", "", "", "").mode == TlsSettings::Mode::off);
  auto psk = jc::net::make_tls_settings("s3cret", "", "", "");
  CHECK(psk.mode == TlsSettings::Mode::psk);
  CHECK(psk.psk == jc::net::derive_link_key("s3cret"));
  CHECK(psk.describe() == "TLS 1.3, key derived from CLUSTER_SECRET");
  CHECK_THROWS_WITH_AS(jc::net::make_tls_settings("s3cret", "/x.pem", "", ""),
                       doctest::Contains("go together"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(jc::net::make_tls_settings("", "/nonexistent/c.pem", "/nonexistent/k.pem",
                                                  "/nonexistent/ca.pem"),
                       doctest::Contains("TLS_CERT: cannot read /nonexistent/c.pem"),
                       std::invalid_argument);
}
