// The languages a node can run, in judge0 CE's terms (the same ids, named
// with the version installed here: "C++ (GCC 12.2.0)"). The table is a data
// file shipped with the project (data/languages.json, built into the
// binary); LANGUAGES_FILE adds entries or replaces them by id. At start the
// node keeps the languages whose binaries exist here and asks each for its
// version.
//
// Pure but for SystemProbe: parsing, merging, naming and the choice of what
// a node has are unit-tested with a fake probe.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace jc::api {

struct Language {
  int id = 0;
  std::string name;  // "C++"; with its version once probed (full_name)
  std::string source_file;
  std::optional<std::string> compile_cmd;  // {compiler_options} marks where options go
  std::string run_cmd;                     // {args} marks where arguments go
  std::vector<std::string> required;       // files (binaries, headers) that must exist on the node
  std::vector<std::string> readonly_paths;  // host paths its toolchain reads (/etc/php), shown to jobs
  std::vector<std::string> version_cmd;
  std::string version_regex;  // its first group is the version
  std::string version_label;  // "GCC": "C++ (GCC 12.2.0)"; "": "Python (3.11.2)"
  bool is_project = false;    // 89, Multi-file program: `compile` and `run` scripts in its files
  std::string full_name;      // the name judge0 shows; set by name_with_version()
};

// Parses a table ({"languages": [...]}); "" or what is wrong, naming the entry.
std::string parse_languages(std::string_view json, std::vector<Language>& out);
// The table built into the binary (data/languages.json).
std::string_view builtin_languages_json();
// `extra` over `base`: an entry whose id is in `base` replaces it.
void merge_languages(std::vector<Language>& base, std::vector<Language> extra);
// Sets `full_name` from the version command's output: "C++ (GCC 12.2.0)",
// or the bare name when the version cannot be read from it.
void name_with_version(Language& language, std::string_view version_output);

// What the node asks of its machine.
struct Probe {
  std::function<bool(const std::string& path)> exists;
  // The command's stdout and stderr, or nullopt when it could not run.
  std::function<std::optional<std::string>(const std::vector<std::string>& argv)> run;
};
// The real one: access(F_OK), and the command run with a deadline of a few
// seconds (a wedged toolchain does not hold the node's start).
Probe system_probe();

// The languages of `table` whose required files are all here, in id order;
// `versions`: each named with the version it reports (a command run each).
std::vector<Language> detect_languages(const std::vector<Language>& table, const Probe& probe,
                                       bool versions = true);

}  // namespace jc::api
