#include "protocol/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/random.h>

#include <cerrno>
#include <cstring>
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

namespace {

// From the kernel's CSPRNG (getrandom(2), which OpenSSL's own generator
// seeds from), so that a node or proxy without TLS or a CLUSTER_SECRET never
// starts OpenSSL: its providers and tables are about 3.4 MB of every
// process's memory once touched. RAND_bytes only where getrandom fails.
void random_bytes(unsigned char* bytes, std::size_t n) {
  std::size_t got = 0;
  while (got < n) {
    ssize_t r = ::getrandom(bytes + got, n - got, 0);
    if (r > 0) {
      got += static_cast<std::size_t>(r);
    } else if (r < 0 && errno != EINTR) {
      break;
    }
  }
  if (got == n) return;
  if (RAND_bytes(bytes, static_cast<int>(n)) != 1) {
    std::random_device rd;  // RAND_bytes does not fail on Linux; this is a last resort
    for (std::size_t i = 0; i < n; ++i) bytes[i] = static_cast<unsigned char>(rd());
  }
}

}  // namespace

std::string random_nonce() {
  unsigned char bytes[32];
  random_bytes(bytes, sizeof(bytes));
  return hex(bytes, sizeof(bytes));
}

std::string random_ticket_part() {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  // One call to the generator per 455 tickets, not one per ticket: a call
  // to OpenSSL 3's RAND_bytes costs about 10 microseconds here, which was
  // half the node's time for a durable submit (getrandom, a system call, costs
  // a few microseconds too). The bytes are as random read
  // ahead as read one by one; each is used once. (Event-loop thread only.)
  static thread_local unsigned char pool[4095];
  static thread_local std::size_t used = sizeof(pool);
  if (used + 9 > sizeof(pool)) {
    random_bytes(pool, sizeof(pool));
    used = 0;
  }
  const unsigned char* bytes = pool + used;  // 72 bits, of which 11 characters keep 66
  used += 9;
  std::string out;
  for (int i = 0; i < 3; ++i) {
    std::uint32_t v = (std::uint32_t{bytes[3 * i]} << 16) | (std::uint32_t{bytes[3 * i + 1]} << 8) |
                      bytes[3 * i + 2];
    for (int k = 3; k >= 0; --k) out.push_back(kAlphabet[(v >> (6 * k)) & 63]);
  }
  out.resize(11);
  std::memset(const_cast<unsigned char*>(bytes), 0, 9);
  return out;
}

}  // namespace jc::protocol
