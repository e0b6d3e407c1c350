#include "protocol/client_tokens.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "protocol/job.h"

namespace jc::protocol {

namespace {

std::array<unsigned char, 32> sha256(std::string_view data) {
  std::array<unsigned char, 32> out{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("SHA-256 failed");
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

ClientTokens ClientTokens::parse(std::string_view text, const std::string& source) {
  ClientTokens t;
  std::set<std::string> names;
  std::set<std::array<unsigned char, 32>> digests;
  std::size_t line_no = 0;
  while (!text.empty()) {
    auto end = text.find('\n');
    std::string_view line = trim(text.substr(0, end));
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    ++line_no;
    if (line.empty() || line.front() == '#') continue;
    auto where = [&] { return source + " line " + std::to_string(line_no); };
    auto colon = line.find(':');
    if (colon == std::string_view::npos) {
      throw std::invalid_argument(where() + ": expected name:token");
    }
    std::string name(trim(line.substr(0, colon)));
    std::string_view token = trim(line.substr(colon + 1));
    if (!is_valid_node_id(name)) {
      throw std::invalid_argument(where() + ": the name must be 1 to 64 characters of "
                                            "A-Z a-z 0-9 . _ -");
    }
    if (token.size() < kMinTokenLength) {
      throw std::invalid_argument(where() + ": the token of '" + name + "' is shorter than " +
                                  std::to_string(kMinTokenLength) +
                                  " characters (try: head -c 24 /dev/urandom | base64)");
    }
    if (!names.insert(name).second) {
      throw std::invalid_argument(where() + ": the name '" + name + "' appears twice");
    }
    auto digest = sha256(token);
    if (!digests.insert(digest).second) {
      throw std::invalid_argument(where() + ": the token of '" + name +
                                  "' is also another name's token");
    }
    t.entries_.push_back({std::move(name), digest});
  }
  if (t.entries_.empty()) throw std::invalid_argument(source + ": no name:token line");
  return t;
}

ClientTokens ClientTokens::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::invalid_argument("cannot read " + path);
  std::stringstream text;
  text << in.rdbuf();
  return parse(text.str(), path);
}

std::optional<std::string> ClientTokens::authenticate(std::string_view token) const {
  auto digest = sha256(token);
  const Entry* found = nullptr;
  for (const auto& e : entries_) {  // every entry, whatever matched before
    bool same = CRYPTO_memcmp(e.digest.data(), digest.data(), digest.size()) == 0;
    if (same) found = &e;
  }
  if (found == nullptr) return std::nullopt;
  return found->name;
}

void ClientTokens::set_admins(std::string_view list) {
  admins_.clear();
  while (!list.empty()) {
    auto comma = list.find(',');
    std::string name(trim(list.substr(0, comma)));
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    if (name.empty()) continue;
    bool known = false;
    for (const auto& e : entries_) known = known || e.name == name;
    if (!known) {
      throw std::invalid_argument("ADMIN_NAMES: '" + name + "' has no token in CLIENT_TOKENS");
    }
    admins_.insert(name);
  }
}

bool may_access(const ClientTokens& tokens, const std::optional<std::string>& name,
                const std::string& owner) {
  if (!tokens.enabled()) return true;
  if (!name) return false;
  return tokens.is_admin(*name) || *name == owner;
}

}  // namespace jc::protocol
