#include "net/tls.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/ssl.h>

#include <cstring>
#include <fstream>
#include <stdexcept>

#include "common/config.h"

namespace jc::net {

namespace ssl = boost::asio::ssl;

namespace {

// Both ends name the key the same way; a server meeting another identity
// (another program, a later key derivation) refuses it.
constexpr char kPskIdentity[] = "jobcluster-link-psk-v1";
constexpr char kHkdfSalt[] = "jobcluster";
constexpr char kHkdfInfo[] = "jobcluster node-proxy link psk v1";

// A context and the key its callbacks hand to OpenSSL, freed together.
struct Holder {
  explicit Holder(ssl::context::method m) : ctx(m) {}
  ssl::context ctx;
  std::array<unsigned char, 32> psk{};
};

// The key lives in the context's ex_data under an index of our own (Asio's
// context owns the app data slot: it frees it as a verify callback).
int psk_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

const std::array<unsigned char, 32>* psk_of(SSL* ssl) {
  return static_cast<const std::array<unsigned char, 32>*>(
      SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), psk_index()));
}

unsigned int server_psk(SSL* ssl, const char* identity, unsigned char* psk, unsigned int max_len) {
  const auto* key = psk_of(ssl);
  if (key == nullptr || identity == nullptr || std::strcmp(identity, kPskIdentity) != 0) return 0;
  if (max_len < key->size()) return 0;
  std::memcpy(psk, key->data(), key->size());
  return static_cast<unsigned int>(key->size());
}

unsigned int client_psk(SSL* ssl, const char* /*hint*/, char* identity, unsigned int max_identity,
                        unsigned char* psk, unsigned int max_len) {
  const auto* key = psk_of(ssl);
  if (key == nullptr || max_identity < sizeof(kPskIdentity) || max_len < key->size()) return 0;
  std::memcpy(identity, kPskIdentity, sizeof(kPskIdentity));
  std::memcpy(psk, key->data(), key->size());
  return static_cast<unsigned int>(key->size());
}

// One file into the context, with the variable that named it in the error.
template <class F>
void load(const std::string& file, const char* variable, F&& f) {
  try {
    f();
  } catch (const boost::system::system_error& e) {
    std::string why = e.code().message();
    if (ERR_GET_REASON(static_cast<unsigned long>(e.code().value())) ==
        X509_R_KEY_VALUES_MISMATCH) {
      why = "is not the key of TLS_CERT";
    }
    throw std::invalid_argument(std::string(variable) + " " + file + ": " + why);
  }
}

void require_readable(const std::string& file, const char* variable) {
  std::ifstream in(file);
  if (!in) throw std::invalid_argument(std::string(variable) + ": cannot read " + file);
}

}  // namespace

std::string TlsSettings::describe() const {
  switch (mode) {
    case Mode::off:
      return "off";
    case Mode::psk:
      return "TLS 1.3, key derived from CLUSTER_SECRET";
    case Mode::certificates:
      return "TLS 1.3, certificates (TLS_CERT " + cert_file + ", TLS_CA " + ca_file + ")";
  }
  return "?";
}

std::array<unsigned char, 32> derive_link_key(const std::string& secret) {
  std::array<unsigned char, 32> out{};
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  if (kdf == nullptr) throw std::runtime_error("OpenSSL has no HKDF");
  EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(kdf);
  EVP_KDF_free(kdf);
  if (ctx == nullptr) throw std::runtime_error("EVP_KDF_CTX_new failed");
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<char*>(secret.data()),
                                        secret.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<char*>(kHkdfSalt),
                                        sizeof(kHkdfSalt) - 1),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(kHkdfInfo),
                                        sizeof(kHkdfInfo) - 1),
      OSSL_PARAM_construct_end()};
  int ok = EVP_KDF_derive(ctx, out.data(), out.size(), params);
  EVP_KDF_CTX_free(ctx);
  if (ok != 1) throw std::runtime_error("HKDF derivation failed");
  return out;
}

TlsSettings make_tls_settings(const std::string& secret, const std::string& cert_file,
                              const std::string& key_file, const std::string& ca_file) {
  TlsSettings s;
  if (!cert_file.empty() || !key_file.empty() || !ca_file.empty()) {
    if (cert_file.empty() || key_file.empty() || ca_file.empty()) {
      throw std::invalid_argument(
          "TLS_CERT, TLS_KEY and TLS_CA go together: set all three (or none, and CLUSTER_SECRET "
          "for a key derived from it)");
    }
    require_readable(cert_file, "TLS_CERT");
    require_readable(key_file, "TLS_KEY");
    require_readable(ca_file, "TLS_CA");
    s.mode = TlsSettings::Mode::certificates;
    s.cert_file = cert_file;
    s.key_file = key_file;
    s.ca_file = ca_file;
    make_tls_context(s, TlsRole::server);  // loads the files now: a bad one stops the start
  } else if (!secret.empty()) {
    s.mode = TlsSettings::Mode::psk;
    s.psk = derive_link_key(secret);
  }
  return s;
}

TlsSettings env_tls_settings(const std::string& secret) {
  try {
    return make_tls_settings(secret, config::env_string("TLS_CERT", ""),
                             config::env_string("TLS_KEY", ""), config::env_string("TLS_CA", ""));
  } catch (const std::invalid_argument& e) {
    throw config::ConfigError(e.what());
  }
}

std::shared_ptr<ssl::context> make_tls_context(const TlsSettings& settings, TlsRole role) {
  auto holder = std::make_shared<Holder>(role == TlsRole::server ? ssl::context::tls_server
                                                                 : ssl::context::tls_client);
  SSL_CTX* ctx = holder->ctx.native_handle();
  // Both ends are jobcluster: no older protocol to speak.
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  if (role == TlsRole::server) SSL_CTX_set_num_tickets(ctx, 0);  // links are long-lived
  if (settings.mode == TlsSettings::Mode::psk) {
    holder->psk = settings.psk;
    if (psk_index() < 0 || SSL_CTX_set_ex_data(ctx, psk_index(), &holder->psk) != 1) {
      throw std::runtime_error("OpenSSL: cannot attach the link key to the TLS context");
    }
    // An external PSK in TLS 1.3 binds to a SHA-256 suite.
    SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256");
    if (role == TlsRole::server) {
      SSL_CTX_set_psk_server_callback(ctx, server_psk);
    } else {
      SSL_CTX_set_psk_client_callback(ctx, client_psk);
    }
  } else if (settings.mode == TlsSettings::Mode::certificates) {
    load(settings.cert_file, "TLS_CERT",
         [&] { holder->ctx.use_certificate_chain_file(settings.cert_file); });
    load(settings.key_file, "TLS_KEY", [&] {
      holder->ctx.use_private_key_file(settings.key_file, ssl::context::pem);
    });
    if (SSL_CTX_check_private_key(ctx) != 1) {
      throw std::invalid_argument("TLS_KEY " + settings.key_file +
                                  " is not the key of TLS_CERT " + settings.cert_file);
    }
    load(settings.ca_file, "TLS_CA", [&] { holder->ctx.load_verify_file(settings.ca_file); });
    holder->ctx.set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  }
  return std::shared_ptr<ssl::context>(holder, &holder->ctx);
}

std::string weak_secret_warning(const std::string& secret) {
  if (secret.empty() || secret.size() >= 16) return "";
  return "CLUSTER_SECRET has " + std::to_string(secret.size()) +
         " characters: a recorded handshake lets an attacker test guesses offline; use a long "
         "random one (openssl rand -hex 32)";
}

std::string describe_tls_failure(const boost::system::error_code& ec, TlsSettings::Mode mode) {
  std::string what = ec.message();
  std::string hint;
  if (ec.category() == boost::asio::error::get_ssl_category()) {
    int reason = ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
    if (reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_PACKET_LENGTH_TOO_LONG ||
        reason == SSL_R_HTTP_REQUEST) {
      hint = "the peer does not speak TLS: set CLUSTER_SECRET (or TLS_*) on both ends";
    } else if (mode == TlsSettings::Mode::psk) {
      hint = "is CLUSTER_SECRET the same on both ends?";
    } else if (mode == TlsSettings::Mode::certificates) {
      hint = "do both certificates lead to TLS_CA, and does the proxy's name the host dialled?";
    }
  } else if (ec == boost::asio::error::eof || ec == boost::asio::ssl::error::stream_truncated) {
    hint = mode == TlsSettings::Mode::psk
               ? "the peer hung up: is CLUSTER_SECRET the same on both ends?"
               : "the peer hung up during the handshake";
  }
  return hint.empty() ? "TLS handshake failed: " + what
                      : "TLS handshake failed: " + what + " (" + hint + ")";
}

}  // namespace jc::net
