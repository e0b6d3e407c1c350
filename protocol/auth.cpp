#include "protocol/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <random>
#include <stdexcept>

namespace jc::protocol {
namespace {

std::string hex(const unsigned char* data, std::size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(kDigits[data[i] >> 4]);
    out.push_back(kDigits[data[i] & 0xf]);
  }
  return out;
}

}  // namespace

std::string join_proof(std::string_view secret, std::string_view nonce, std::string_view node_id) {
  std::string message = "jobcluster-join|";
  message.append(nonce).append("|").append(node_id);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &len);
  return hex(mac, len);
}

bool verify_join_proof(std::string_view secret, std::string_view nonce, std::string_view node_id,
                       std::string_view proof) {
  std::string expected = join_proof(secret, nonce, node_id);
  return proof.size() == expected.size() &&
         CRYPTO_memcmp(proof.data(), expected.data(), expected.size()) == 0;
}

std::string random_nonce() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    std::random_device rd;  // RAND_bytes does not fail on Linux; this is a last resort
    for (auto& b : bytes) b = static_cast<unsigned char>(rd());
  }
  return hex(bytes, sizeof(bytes));
}

}  // namespace jc::protocol
