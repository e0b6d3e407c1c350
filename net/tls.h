// TLS for the node-proxy links (OpenSSL through Boost.Asio's SSL streams).
//
// Two ways to authenticate both ends, never neither once TLS is on:
// - a pre-shared key: with only CLUSTER_SECRET set, TLS 1.3 with an external
//   PSK derived from the secret by HKDF-SHA256 (RFC 5869, OpenSSL's KDF) and
//   an ephemeral (EC)DHE exchange on top (psk_dhe_ke), so a recorded link
//   stays secret even if the secret leaks later. Whoever lacks the secret
//   fails the handshake.
// - certificates: TLS_CERT, TLS_KEY and TLS_CA (PEM files). Each side shows
//   its chain and requires the other's to lead to TLS_CA; a node also checks
//   that the proxy's certificate names the host it dialled.
// No cryptography here beyond choosing OpenSSL's parameters.
#pragma once

#include <array>
#include <memory>
#include <string>

#include "net/asio.h"

// clang-format off
#include <boost/asio/ssl.hpp>
// clang-format on

namespace jc::net {

struct TlsSettings {
  enum class Mode { off, psk, certificates };
  Mode mode = Mode::off;
  std::array<unsigned char, 32> psk{};  // Mode::psk: derived from the secret
  std::string cert_file, key_file, ca_file;

  bool on() const { return mode != Mode::off; }
  // "off", "pre-shared key from CLUSTER_SECRET", "certificates (TLS_CERT ...)"
  std::string describe() const;
};

// From the environment's values (empty = unset). Certificates when any of
// the three files is named (then all three must be); else a PSK when the
// secret is set; else off. Throws std::invalid_argument with a message for
// an operator (a missing file, a key that does not match its certificate).
TlsSettings make_tls_settings(const std::string& secret, const std::string& cert_file,
                              const std::string& key_file, const std::string& ca_file);

// The same from TLS_CERT, TLS_KEY and TLS_CA in the environment; throws
// config::ConfigError.
TlsSettings env_tls_settings(const std::string& secret);

// The PSK both ends derive: HKDF-SHA256(secret, salt, info) with fixed,
// versioned labels. Exposed for tests.
std::array<unsigned char, 32> derive_link_key(const std::string& secret);

// A context for one role, built once per process and shared by its links.
enum class TlsRole { server, client };
std::shared_ptr<boost::asio::ssl::context> make_tls_context(const TlsSettings& settings,
                                                            TlsRole role);

// A warning for a CLUSTER_SECRET short enough to guess offline from a
// recorded handshake, or "" when it is long enough (16 characters or more).
std::string weak_secret_warning(const std::string& secret);

// A short reason for a failed handshake, with a hint at the usual cause.
std::string describe_tls_failure(const boost::system::error_code& ec, TlsSettings::Mode mode);

}  // namespace jc::net
