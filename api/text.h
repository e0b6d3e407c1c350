// Text as judge0's attributes carry it, for requests and answers alike:
// Base64, words of a command line, and times.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace jc::api {

// Base64 as judge0 writes it (Ruby's encode64: lines of 60, each ended by
// "\n") and reads it (anything outside the alphabet is skipped).
std::string base64_encode(std::string_view bytes);
std::string base64_decode(std::string_view text);

// Splits compiler options or program arguments into words as a shell would
// (blanks separate, '...' and "..." group), and quotes each for a shell
// script, so that they reach the program as arguments and nothing else.
std::vector<std::string> split_words(std::string_view text);
std::string shell_quote(std::string_view word);

// ISO 8601 in UTC with milliseconds, as judge0 writes times.
std::string iso8601(std::int64_t ms);

}  // namespace jc::api
