// What the command parser (command.cpp) shares with the builder of a run
// job's spec (run_spec.cpp): a few text helpers. Nothing else includes it.
#pragma once

#include <string>
#include <string_view>
#include <utility>

namespace jc::client::detail {

// `s` without its leading and trailing spaces, tabs, CRs and LFs.
std::string_view trim(std::string_view s);
// Non-empty and only the digits 0-9.
bool all_digits(std::string_view s);
// `s` escaped and quoted for an error message (at most 40 bytes of it).
std::string quote(std::string_view s);
// "word rest": splits off the first word.
std::pair<std::string_view, std::string_view> split_word(std::string_view s);

}  // namespace jc::client::detail
