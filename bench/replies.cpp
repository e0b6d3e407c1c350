#include "bench/replies.h"

#include <charconv>

namespace jc::bench {

namespace {

// Where the value of `key` starts in `line`, or npos.
std::size_t value_pos(std::string_view line, std::string_view key) {
  std::string needle = " " + std::string(key) + "=";
  if (line.substr(0, needle.size() - 1) == std::string_view(needle).substr(1)) {
    return needle.size() - 1;
  }
  auto pos = line.find(needle);
  return pos == std::string_view::npos ? pos : pos + needle.size();
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

std::optional<std::int64_t> int_field(std::string_view line, std::string_view key) {
  auto pos = value_pos(line, key);
  if (pos == std::string_view::npos) return std::nullopt;
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(line.data() + pos, line.data() + line.size(), v);
  if (ec != std::errc() || end == line.data() + pos) return std::nullopt;
  return v;
}

std::optional<std::string> word_field(std::string_view line, std::string_view key) {
  auto pos = value_pos(line, key);
  if (pos == std::string_view::npos) return std::nullopt;
  auto end = line.find(' ', pos);
  return std::string(line.substr(pos, end == std::string_view::npos ? end : end - pos));
}

std::optional<ClusterSnapshot> parse_stats(const std::vector<std::string>& lines) {
  if (lines.size() < 2 || !starts_with(lines[0], "Stats: ") || !starts_with(lines[1], "proxy=")) {
    return std::nullopt;
  }
  ClusterSnapshot s;
  const std::string& head = lines[1];
  s.proxy_up = word_field(head, "proxy") == "up";
  s.queue = int_field(head, "queue").value_or(0);
  s.running = int_field(head, "running").value_or(0);
  s.submitted = int_field(head, "submitted").value_or(0);
  s.finished = int_field(head, "finished").value_or(0);
  s.nodes_up = static_cast<int>(int_field(head, "nodes_up").value_or(0));
  for (std::size_t i = 2; i < lines.size(); ++i) {
    std::string_view l = lines[i];
    if (!starts_with(l, "node ")) continue;
    NodeSnapshot n;
    n.id = std::string(l.substr(5, l.find(' ', 5) - 5));
    n.up = word_field(l, "state") == "up";
    n.slots = static_cast<int>(int_field(l, "slots").value_or(0));
    n.running = static_cast<int>(int_field(l, "running").value_or(0));
    n.held = static_cast<int>(int_field(l, "held").value_or(0));
    n.finished = int_field(l, "finished").value_or(0);
    s.nodes.push_back(std::move(n));
  }
  return s;
}

ResultHeader parse_result(std::string_view line) {
  ResultHeader r;
  constexpr std::string_view kPrefix = "Result: ";
  if (!starts_with(line, kPrefix) || starts_with(line, "Result has not been executed")) return r;
  std::string_view body = line.substr(kPrefix.size());
  r.final = true;
  if (line.find(" stdout_bytes=") != std::string_view::npos) {
    // "<ticket> <STATE> verdict=.. node=.. stdout_bytes=.. stderr_bytes=.. cases=.."
    auto first = body.find(' ');
    auto second = body.find(' ', first + 1);
    if (first != std::string_view::npos)
      r.state = std::string(body.substr(first + 1, second - first - 1));
    r.node = word_field(line, "node").value_or("");
    r.framed = true;
    r.stdout_bytes = static_cast<std::size_t>(int_field(line, "stdout_bytes").value_or(0));
    r.stderr_bytes = static_cast<std::size_t>(int_field(line, "stderr_bytes").value_or(0));
    r.cases = static_cast<std::size_t>(int_field(line, "cases").value_or(0));
    return r;
  }
  if (starts_with(body, "Executed Job[")) {
    r.state = "DONE";
    auto pos = body.rfind(" on node ");
    if (pos != std::string_view::npos) r.node = std::string(body.substr(pos + 9));
    return r;
  }
  // "FAILED gave up after ...", "CANCELLED ...", "TIMEOUT ...": the state word first.
  r.state = std::string(body.substr(0, body.find(' ')));
  return r;
}

}  // namespace jc::bench
