#include "runner/protections.h"

#include <array>
#include <utility>

namespace jc::runner {

namespace {

using Member = bool Protections::*;
constexpr std::array<std::pair<const char*, Member>, 8> kNames = {{
    {"user", &Protections::user},
    {"fs", &Protections::fs},
    {"pid", &Protections::pid},
    {"ipc", &Protections::ipc},
    {"uts", &Protections::uts},
    {"net", &Protections::net},
    {"cgroup", &Protections::cgroup},
    {"seccomp", &Protections::seccomp},
}};

}  // namespace

std::string Protections::describe() const {
  if (full()) return "full";
  std::string out;
  for (const auto& [name, member] : kNames) {
    if (!(this->*member)) continue;
    if (!out.empty()) out += ',';
    out += name;
  }
  return out.empty() ? "none" : out;
}

bool parse_protections(const std::string& text, Protections& out) {
  out = Protections{};
  if (text == "full") {
    for (const auto& [name, member] : kNames) out.*member = true;
    return true;
  }
  if (text == "none") return true;
  std::size_t at = 0;
  while (at <= text.size()) {
    std::size_t comma = text.find(',', at);
    std::string word = text.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    bool known = false;
    for (const auto& [name, member] : kNames) {
      if (word == name) {
        out.*member = true;
        known = true;
      }
    }
    if (!known) return false;
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return true;
}

}  // namespace jc::runner
