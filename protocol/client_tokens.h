// Client credentials (CLIENT_TOKENS): a file of `name:token` lines read once
// at start. A connection proves a name with `auth <token>` (the line
// protocol) or `Authorization: Bearer <token>` (the HTTP API).
//
// Only SHA-256 digests of the tokens are kept, and a presented token is
// compared with every one of them in constant time (CRYPTO_memcmp, no early
// exit), so neither timing nor a memory dump gives a token away. Tokens
// never appear in a log line or an error message. Pure: parse() takes the
// file's text, so it is unit-tested without files.
#pragma once

#include <array>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace jc::protocol {

class ClientTokens {
 public:
  // Tokens shorter than this are refused: they could be guessed online.
  static constexpr std::size_t kMinTokenLength = 16;

  // Parses the file's text. Blank lines and lines starting with '#' are
  // skipped. Throws std::invalid_argument naming the line (never its token)
  // when a line is not `name:token`, a name is not 1-64 of [A-Za-z0-9._-],
  // a token is too short, or a name or token repeats.
  static ClientTokens parse(std::string_view text, const std::string& source);
  // Reads and parses `path`; the same errors, and one for an unreadable file.
  static ClientTokens load(const std::string& path);

  bool enabled() const { return !entries_.empty(); }
  std::size_t size() const { return entries_.size(); }
  // The name whose token this is, or nullopt.
  std::optional<std::string> authenticate(std::string_view token) const;

  // ADMIN_NAMES: comma-separated names, each of which must be in the file.
  // Throws std::invalid_argument otherwise.
  void set_admins(std::string_view comma_separated);
  bool is_admin(const std::string& name) const { return admins_.count(name) > 0; }

 private:
  struct Entry {
    std::string name;
    std::array<unsigned char, 32> digest;
  };
  std::vector<Entry> entries_;
  std::set<std::string> admins_;
};

// Whether a client named `name` (nullopt: tokens are off) may see a job
// owned by `owner`: tokens off, an admin, or the owner itself.
bool may_access(const ClientTokens& tokens, const std::optional<std::string>& name,
                const std::string& owner);

}  // namespace jc::protocol
