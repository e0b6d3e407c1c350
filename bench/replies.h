// Pure parsers of what a cluster node answers jc_bench: the text reply of
// `stats` and the first line of a `wait` reply. No I/O; the formats are the
// README's ("Client protocol").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace jc::bench {

// One node line of `stats`: node <id> state=.. slots=.. running=.. held=.. finished=..
struct NodeSnapshot {
  std::string id;
  bool up = false;
  int slots = 0;
  int running = 0;  // from the node's last INFO report
  int held = 0;     // jobs the proxy has given it (running and prefetched)
  std::int64_t finished = 0;
};

// The whole `stats` reply, stamped with when it was taken.
struct ClusterSnapshot {
  double seconds = 0;  // since the run started
  bool proxy_up = false;
  std::int64_t queue = 0;
  std::int64_t running = 0;
  std::int64_t submitted = 0;
  std::int64_t finished = 0;
  int nodes_up = 0;
  std::vector<NodeSnapshot> nodes;
};

// The integer after " key=" (or "key=" at the start) in a line.
std::optional<std::int64_t> int_field(std::string_view line, std::string_view key);
// The word after " key=" (up to the next space).
std::optional<std::string> word_field(std::string_view line, std::string_view key);

// `lines` as Client::multi returns them ("Stats: N" first); nullopt when the
// reply is not a text stats reply.
std::optional<ClusterSnapshot> parse_stats(const std::vector<std::string>& lines);

// The first line of a reply to `wait` or `r`.
struct ResultHeader {
  bool final = false;  // "Result: ..." with a final state
  std::string state;   // DONE, FAILED, TIMEOUT, CANCELLED
  std::string node;    // the node that ran it, "" when unknown
  // A run job's result is framed: stdout_bytes bytes and "\n", stderr_bytes
  // bytes and "\n", then `cases` lines follow the header.
  bool framed = false;
  std::size_t stdout_bytes = 0;
  std::size_t stderr_bytes = 0;
  std::size_t cases = 0;
};
ResultHeader parse_result(std::string_view line);

}  // namespace jc::bench
