// Helpers shared by the tests of client/command.h (command_test.cpp,
// run_spec_test.cpp).
#pragma once

#include <doctest/doctest.h>

#include <string>
#include <string_view>

#include "client/command.h"

namespace jc::client::test {

// The parser's error for `line`, which must be one (and say something).
inline std::string error_of(std::string_view line) {
  Command c = parse_command(line);
  INFO("line: ", std::string(line));
  REQUIRE(std::holds_alternative<CmdError>(c));
  std::string msg = std::get<CmdError>(c).message;
  CHECK_FALSE(msg.empty());
  return msg;
}

inline bool contains(const std::string& s, std::string_view part) {
  return s.find(part) != std::string::npos;
}

}  // namespace jc::client::test
