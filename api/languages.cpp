#include "api/languages.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <regex>

extern char** environ;

namespace jc::api {

namespace {

using nlohmann::json;

// A version command gets this long; its output is read up to this size.
constexpr std::chrono::milliseconds kProbeTimeout{5000};
constexpr std::size_t kProbeOutputBytes = 16 * 1024;

bool is_project(const json& e) {
  return e.contains("is_project") && e["is_project"].is_boolean() && e["is_project"].get<bool>();
}

std::string field_error(const json& entry, std::size_t index, const std::string& what) {
  std::string id = entry.is_object() && entry.contains("id") ? entry["id"].dump() : "?";
  return fmt::format("languages[{}] (id {}): {}", index, id, what);
}

}  // namespace

std::string parse_languages(std::string_view text, std::vector<Language>& out) {
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded()) return "not JSON";
  if (!doc.is_object() || !doc.contains("languages") || !doc["languages"].is_array()) {
    return "expected an object with a \"languages\" array";
  }
  std::vector<Language> parsed;
  std::size_t index = 0;
  for (const json& e : doc["languages"]) {
    Language l;
    auto str = [&](const char* key, std::string& into, bool required) -> std::string {
      if (!e.contains(key) || e[key].is_null()) return required ? fmt::format("no \"{}\"", key) : "";
      if (!e[key].is_string()) return fmt::format("\"{}\" must be a string", key);
      into = e[key].get<std::string>();
      return "";
    };
    auto strings = [&](const char* key, std::vector<std::string>& into) -> std::string {
      if (!e.contains(key)) return "";
      if (!e[key].is_array()) return fmt::format("\"{}\" must be an array of strings", key);
      for (const json& s : e[key]) {
        if (!s.is_string()) return fmt::format("\"{}\" must be an array of strings", key);
        into.push_back(s.get<std::string>());
      }
      return "";
    };
    if (!e.is_object()) return field_error(e, index, "not an object");
    if (!e.contains("id") || !e["id"].is_number_integer() || e["id"].get<long long>() <= 0 ||
        e["id"].get<long long>() > 1'000'000) {
      return field_error(e, index, "\"id\" must be a positive integer");
    }
    l.id = e["id"].get<int>();
    std::string compile;
    for (std::string err :
         {str("name", l.name, true), str("source_file", l.source_file, !is_project(e)),
          str("run_cmd", l.run_cmd, true), str("compile_cmd", compile, false),
          str("version_regex", l.version_regex, false),
          str("version_label", l.version_label, false), strings("requires", l.required),
          strings("version_cmd", l.version_cmd), strings("readonly_paths", l.readonly_paths)}) {
      if (!err.empty()) return field_error(e, index, err);
    }
    if (!compile.empty()) l.compile_cmd = compile;
    if (e.contains("is_project")) {
      if (!e["is_project"].is_boolean()) return field_error(e, index, "\"is_project\" must be true or false");
      l.is_project = e["is_project"].get<bool>();
    }
    if (!l.version_regex.empty()) {
      try {
        std::regex check(l.version_regex);
      } catch (const std::regex_error&) {
        return field_error(e, index, "\"version_regex\" is not a regular expression");
      }
    }
    for (const auto& p : parsed) {
      if (p.id == l.id) return field_error(e, index, "the id is given twice");
    }
    l.full_name = l.name;
    parsed.push_back(std::move(l));
    ++index;
  }
  out = std::move(parsed);
  return "";
}

void merge_languages(std::vector<Language>& base, std::vector<Language> extra) {
  for (auto& l : extra) {
    auto it = std::find_if(base.begin(), base.end(), [&](const Language& b) { return b.id == l.id; });
    if (it != base.end()) {
      *it = std::move(l);
    } else {
      base.push_back(std::move(l));
    }
  }
  std::sort(base.begin(), base.end(), [](const Language& a, const Language& b) { return a.id < b.id; });
}

void name_with_version(Language& l, std::string_view output) {
  l.full_name = l.name;
  if (l.version_regex.empty()) return;
  std::smatch m;
  std::string text(output);
  try {
    if (!std::regex_search(text, m, std::regex(l.version_regex)) || m.size() < 2) return;
  } catch (const std::regex_error&) {
    return;
  }
  std::string version = m[1].str();
  if (version.empty()) return;
  l.full_name = l.version_label.empty()
                    ? fmt::format("{} ({})", l.name, version)
                    : fmt::format("{} ({} {})", l.name, l.version_label, version);
}

std::vector<Language> detect_languages(const std::vector<Language>& table, const Probe& probe,
                                       bool versions) {
  std::vector<Language> out;
  for (const Language& l : table) {
    bool present = std::all_of(l.required.begin(), l.required.end(),
                               [&](const std::string& path) { return probe.exists(path); });
    if (!present) continue;
    Language found = l;
    found.full_name = found.name;
    if (versions && !found.version_cmd.empty()) {
      if (auto output = probe.run(found.version_cmd)) name_with_version(found, *output);
    }
    out.push_back(std::move(found));
  }
  std::sort(out.begin(), out.end(), [](const Language& a, const Language& b) { return a.id < b.id; });
  return out;
}

namespace {

std::optional<std::string> run_with_deadline(const std::vector<std::string>& argv) {
  if (argv.empty()) return std::nullopt;
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return std::nullopt;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, out[1], 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  if (rc != 0) {
    ::close(out[0]);
    return std::nullopt;
  }
  std::string text;
  auto deadline = std::chrono::steady_clock::now() + kProbeTimeout;
  char buffer[4096];
  while (text.size() < kProbeOutputBytes) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{out[0], POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    ssize_t n = ::read(out[0], buffer, sizeof buffer);
    if (n <= 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(out[0]);
  ::kill(pid, SIGKILL);  // gone already, or wedged
  int status = 0;
  ::waitpid(pid, &status, 0);
  return text;
}

}  // namespace

Probe system_probe() {
  return Probe{[](const std::string& path) { return ::access(path.c_str(), F_OK) == 0; },
               run_with_deadline};
}

}  // namespace jc::api
