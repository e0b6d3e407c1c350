// Pipelined client work over one connection, as a real client of the line
// protocol does it: commands are sent ahead of their replies (at most
// `window` unanswered, under the node's limit of 20,000), replies are read
// in order, and every read has the scenario's deadline. Runs on the calling
// thread; one Client per thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "tests/support/client.h"

namespace jc::bench {

using Deadline = std::chrono::steady_clock::time_point;

// Sends command(i) (the bytes of command i, its line end included) for i in
// [0, count) and calls read_reply(i) for each reply in order; read_reply
// returns "" or why it failed. Sends too stop at the deadline. Returns ""
// or the first failure.
std::string pipeline(jc::test::Client& client, std::size_t count, std::size_t window,
                     Deadline deadline, const std::function<std::string(std::size_t)>& command,
                     const std::function<std::string(std::size_t)>& read_reply);

// The time left until `deadline` (at least 1 ms, so a read still polls once).
std::chrono::milliseconds left(Deadline deadline);

// Submits `count` copies of `job_line` ("0", "run true"); appends the tickets.
std::string submit_jobs(jc::test::Client& client, std::size_t count, const std::string& job_line,
                        std::size_t window, Deadline deadline, std::vector<std::string>& tickets);

// How the awaited jobs ended.
struct Outcomes {
  std::map<std::string, int> by_node;   // node id -> jobs it ran
  std::map<std::string, int> by_state;  // DONE, FAILED, ...
};

// `wait`s for every ticket (a run job's framed result is read whole).
std::string await_jobs(jc::test::Client& client, const std::vector<std::string>& tickets,
                       std::size_t window, Deadline deadline, Outcomes& outcomes);

}  // namespace jc::bench
