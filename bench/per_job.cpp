#include "bench/per_job.h"

#include <fmt/format.h>
#include <signal.h>

#include <fstream>
#include <sstream>

#include "bench/probe.h"

namespace jc::bench {

namespace {

constexpr std::string_view kMarker = "counters frames_out=";

// The values of the last `counters ...` line of a process's log.
std::map<std::string, double> parse_counters(const std::string& log) {
  std::map<std::string, double> out;
  auto at = log.rfind(kMarker);
  if (at == std::string::npos) return out;
  auto end = log.find('\n', at);
  std::istringstream words(log.substr(at + 9, end == std::string::npos ? std::string::npos
                                                                        : end - at - 9));
  std::string word;
  while (words >> word) {
    auto eq = word.find('=');
    if (eq == std::string::npos) continue;
    try {
      out[word.substr(0, eq)] = std::stod(word.substr(eq + 1));
    } catch (const std::exception&) {
      // "allocations=unknown": left out
    }
  }
  return out;
}

// Bytes the process caused to be written to storage (/proc/<pid>/io).
double disk_bytes(pid_t pid) {
  std::ifstream io("/proc/" + std::to_string(pid) + "/io");
  std::string key;
  double value = 0;
  while (io >> key >> value) {
    if (key == "write_bytes:") return value;
  }
  return 0;
}

ProcessCounters ask(const std::string& name, jc::test::Process& p) {
  ProcessCounters c;
  c.name = name;
  const int seen = p.log_count(std::string(kMarker));
  p.signal(SIGUSR1);
  if (jc::test::eventually([&] { return p.log_count(std::string(kMarker)) > seen; },
                           std::chrono::milliseconds(1000), std::chrono::milliseconds(5))) {
    c.values = parse_counters(p.log_since_start());
  }
  c.values["cpu_us"] = usage_of(name, p.pid()).cpu_s * 1e6;
  c.values["disk_bytes"] = disk_bytes(p.pid());
  return c;
}

}  // namespace

std::vector<ProcessCounters> snapshot_counters(jc::test::Cluster& cluster) {
  std::vector<ProcessCounters> out;
  for (std::size_t k = 0; k < cluster.proxy_count(); ++k) {
    out.push_back(ask(cluster.proxy_count() > 1 ? fmt::format("reverse_proxy {}", k + 1)
                                                : std::string("reverse_proxy"),
                      cluster.proxy(k)));
  }
  for (std::size_t i = 0; i < cluster.size(); ++i) {
    out.push_back(ask("node " + cluster.node_id(i), cluster.node(i)));
  }
  return out;
}

std::vector<std::string> per_job_lines(const std::vector<ProcessCounters>& before,
                                       const std::vector<ProcessCounters>& after, double jobs) {
  std::vector<std::string> lines;
  if (jobs <= 0 || before.size() != after.size()) return lines;
  lines.push_back(
      "  per job (messages and bytes sent on the links; LevelDB writes, of them synced, and their "
      "bytes; bytes written to disk; CPU; allocations):");
  std::map<std::string, double> nodes;
  std::size_t node_count = 0;
  auto line = [&](const std::string& name, const std::map<std::string, double>& d) {
    auto v = [&](const char* k) {
      auto it = d.find(k);
      return it == d.end() ? 0.0 : it->second / jobs;
    };
    lines.push_back(fmt::format(
        "    {}: {:.2f} messages, {:.0f} B; {:.2f} writes ({:.3f} synced), {:.0f} B; disk {:.0f} B; "
        "{:.1f} us CPU; {:.1f} allocations",
        name, v("frames_out"), v("link_bytes_out"), v("store_writes"), v("store_synced_writes"),
        v("store_bytes"), v("disk_bytes"), v("cpu_us"), v("allocations")));
  };
  for (std::size_t i = 0; i < after.size(); ++i) {
    std::map<std::string, double> d;
    for (const auto& [k, value] : after[i].values) {
      auto b = before[i].values.find(k);
      if (b != before[i].values.end()) d[k] = value - b->second;
    }
    line(after[i].name, d);
    if (after[i].name.rfind("node ", 0) == 0) {
      ++node_count;
      for (const auto& [k, value] : d) nodes[k] += value;
    }
  }
  if (node_count > 1) line(fmt::format("the {} nodes together", node_count), nodes);
  return lines;
}

}  // namespace jc::bench
