#include "tests/support/run_jobs.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/support/process.h"

namespace jc::test {

long long RunResult::number(const std::string& key) const {
  std::string v = fact(key);
  try {
    return std::stoll(v);
  } catch (...) {
    FAIL_CHECK("result fact " << key << " is not a number: '" << v << "' in " << header);
    return -1;
  }
}

RunResult read_run_result(Client& c, std::chrono::milliseconds timeout) {
  RunResult r;
  auto header = c.line(timeout);
  if (!header || header->rfind("Result: ", 0) != 0) {
    r.header = header.value_or("(none)");
    return r;
  }
  r.header = *header;
  std::istringstream words(*header);
  std::string w;
  words >> w >> w >> r.state;
  while (words >> w) {
    auto eq = w.find('=');
    if (eq != std::string::npos) r.facts[w.substr(0, eq)] = w.substr(eq + 1);
  }
  // The blocks get the same deadline as the header: megabytes of output
  // through a loaded machine may take longer than a line's default.
  auto out = c.bytes(std::stoul(r.facts["stdout_bytes"]) + 1, timeout);
  auto err = c.bytes(std::stoul(r.facts["stderr_bytes"]) + 1, timeout);
  if (!out || !err) return r;
  r.out = out->substr(0, out->size() - 1);
  r.err = err->substr(0, err->size() - 1);
  for (int i = 0; i < std::stoi(r.facts["cases"]); ++i) r.cases.push_back(c.line().value_or(""));
  r.ok = true;
  return r;
}

std::string submit_run(Client& c, const std::string& line) {
  std::string reply = c.command(line);
  REQUIRE_MESSAGE(reply.rfind("Ticket ID: ", 0) == 0, line.substr(0, 200) << " -> " << reply);
  return reply.substr(11);
}

RunResult run_and_wait(Client& c, const std::string& line) {
  std::string t = submit_run(c, line);
  c.send("wait " + t + " 120\n");
  RunResult r = read_run_result(c, std::chrono::seconds(130));
  INFO(line.substr(0, 200) << " -> " << r.header);
  REQUIRE(r.ok);
  return r;
}

RunResult run_script(Client& c, const std::string& options, const std::string& script) {
  std::string body = script;
  if (!body.empty() && body.back() != '\n') body += '\n';
  return run_and_wait(c, "run " + options + " <<END_OF_SCRIPT\n" + body + "END_OF_SCRIPT");
}

std::string node_sandbox(Client& c, const std::string& node_id) {
  for (const auto& line : c.multi("stats")) {
    if (line.rfind("node " + node_id + " ", 0) != 0) continue;
    auto at = line.find(" sandbox=");
    if (at == std::string::npos) return "";
    return line.substr(at + 9, line.find(' ', at + 9) - at - 9);
  }
  return "";
}

bool protection_applies(const std::string& have, const std::string& want) {
  if (have == "full") return true;
  std::istringstream in(have);
  std::string word;
  while (std::getline(in, word, ',')) {
    if (word == want) return true;
  }
  return false;
}

std::vector<int> host_processes_with(const std::string& marker) {
  std::vector<int> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    // Read with read(2): the process may be gone by now (ESRCH), which a
    // stream turns into an exception.
    std::string cmdline;
    int fd = ::open((entry.path() / "cmdline").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    char buffer[4096];
    ssize_t n;
    while ((n = ::read(fd, buffer, sizeof buffer)) > 0) cmdline.append(buffer, static_cast<std::size_t>(n));
    ::close(fd);
    for (char& ch : cmdline) {
      if (ch == '\0') ch = ' ';
    }
    if (cmdline.find(marker) != std::string::npos) out.push_back(std::stoi(name));
  }
  return out;
}

std::string unique_marker() {
  static std::atomic<int> n{0};
  return std::to_string(::getpid() % 100000) + std::to_string(100 + n++);
}

}  // namespace jc::test
