// Helpers for tests of run jobs: submitting them, reading their framed
// results, asking a node which protections its jobs get, and looking for a
// job's processes on the host.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "tests/support/client.h"

namespace jc::test {

struct RunResult {
  std::string header;
  std::map<std::string, std::string> facts;  // key=value of the header
  std::string state;
  std::string out, err;
  std::vector<std::string> cases;
  bool ok = false;
  std::string fact(const std::string& key) const {
    auto it = facts.find(key);
    return it == facts.end() ? "" : it->second;
  }
  long long number(const std::string& key) const;
};

// Reads one framed run result: header, stdout block, stderr block, case lines.
RunResult read_run_result(Client& c,
                          std::chrono::milliseconds timeout = std::chrono::seconds(60));
// Submits `line` (a `run` command, or one with a here-document); the ticket.
std::string submit_run(Client& c, const std::string& line);
// Submits and waits for the result (REQUIREs that it came).
RunResult run_and_wait(Client& c, const std::string& line);
// `run [options] <<END`, then `script` (lines), then END; waits for the result.
RunResult run_script(Client& c, const std::string& options, const std::string& script);

// The protections node `node_id` reports in `stats` ("full", "user,cgroup"),
// "" when it is not listed.
std::string node_sandbox(Client& c, const std::string& node_id);
// Whether the protections `have` ("full" or a list) include `want`.
bool protection_applies(const std::string& have, const std::string& want);

// PIDs of the host's processes whose command line contains `marker`.
std::vector<int> host_processes_with(const std::string& marker);
// A marker no other test or run uses: jobs put it in their command lines
// (`sleep 300.<marker digits>`) so the host can look for them.
std::string unique_marker();

}  // namespace jc::test
