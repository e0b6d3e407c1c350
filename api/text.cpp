#include "api/text.h"

#include <openssl/evp.h>

#include <algorithm>
#include <ctime>
#include <fmt/format.h>

namespace jc::api {

std::string base64_encode(std::string_view bytes) {
  std::string out;
  // Ruby's encode64: 45 bytes (60 characters) a line, each line ended by "\n".
  constexpr std::size_t kLine = 45;
  unsigned char buffer[64 + 1];
  for (std::size_t at = 0; at < bytes.size(); at += kLine) {
    std::size_t n = std::min(kLine, bytes.size() - at);
    int w = EVP_EncodeBlock(buffer, reinterpret_cast<const unsigned char*>(bytes.data() + at),
                            static_cast<int>(n));
    out.append(reinterpret_cast<const char*>(buffer), static_cast<std::size_t>(w));
    out.push_back('\n');
  }
  return out;
}

std::string base64_decode(std::string_view text) {
  std::string clean;
  clean.reserve(text.size());
  for (char ch : text) {
    bool alphabet = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                    (ch >= '0' && ch <= '9') || ch == '+' || ch == '/';
    if (alphabet) clean.push_back(ch);
  }
  // As Ruby's decode64: what does not make a whole byte is dropped.
  std::size_t usable = clean.size() - clean.size() % 4;
  std::size_t rest = clean.size() % 4;
  std::string tail;
  if (rest >= 2) {
    tail = clean.substr(usable) + std::string(4 - rest, '=');
  }
  clean.resize(usable);
  clean += tail;
  std::string out(clean.size() / 4 * 3 + 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(clean.data()),
                          static_cast<int>(clean.size()));
  if (n < 0) return "";
  std::size_t len = static_cast<std::size_t>(n);
  // EVP_DecodeBlock counts the padding's zero bytes.
  if (!tail.empty()) len -= 4 - rest == 2 ? 2 : (4 - rest == 1 ? 1 : 0);
  out.resize(std::min(len, out.size()));
  return out;
}

std::vector<std::string> split_words(std::string_view text) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  char quote = 0;
  for (char ch : text) {
    if (quote != 0) {
      if (ch == quote) {
        quote = 0;
      } else {
        word.push_back(ch);
      }
      continue;
    }
    if (ch == '\'' || ch == '"') {
      quote = ch;
      in_word = true;
    } else if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else {
      word.push_back(ch);
      in_word = true;
    }
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

std::string shell_quote(std::string_view word) {
  std::string out = "'";
  for (char ch : word) {
    if (ch == '\'') {
      out += "'\\''";
    } else {
      out.push_back(ch);
    }
  }
  return out + "'";
}

std::string iso8601(std::int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  return fmt::format("{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}.{:03d}Z", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     static_cast<int>(ms % 1000));
}

}  // namespace jc::api
