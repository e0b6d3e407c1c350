#include "bench/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <utility>

namespace jc::bench {

std::string grouped(double value) {
  auto v = static_cast<long long>(std::llround(value));
  std::string digits = std::to_string(v < 0 ? -v : v);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return v < 0 ? "-" + out : out;
}

std::string met_text(std::optional<bool> met) {
  if (!met) return "no (failed)";
  return *met ? "yes" : "no";
}

std::string markdown_table(const std::vector<std::string>& header,
                           const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width(header.size(), 3);
  auto widen = [&](const std::vector<std::string>& row) {
    for (std::size_t i = 0; i < row.size() && i < width.size(); ++i) {
      width[i] = std::max(width[i], row[i].size());
    }
  };
  widen(header);
  for (const auto& r : rows) widen(r);
  auto render = [&](const std::vector<std::string>& row) {
    std::string line = "|";
    for (std::size_t i = 0; i < width.size(); ++i) {
      std::string cell = i < row.size() ? row[i] : "";
      line += " " + cell + std::string(width[i] - cell.size(), ' ') + " |";
    }
    return line + "\n";
  };
  std::string out = render(header);
  out += "|";
  for (auto w : width) out += std::string(w + 2, '-') + "|";
  out += "\n";
  for (const auto& r : rows) out += render(r);
  return out;
}

std::string summary_table(const std::vector<ScenarioReport>& reports) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : reports) {
    for (const auto& m : r.measures)
      rows.push_back({m.name, m.target, m.measured, met_text(m.met)});
  }
  return markdown_table({"measure", "target", "measured", "met?"}, rows);
}

std::string comparison_table(const std::map<std::string, double>& jobcluster,
                             const std::map<std::string, double>& beanstalkd, int puts, int jobs) {
  auto figure = [](const std::map<std::string, double>& m, const std::string& key) {
    auto it = m.find(key);
    return it == m.end() ? std::optional<double>() : std::optional<double>(it->second);
  };
  auto row = [&](std::string name, const std::string& jc_key, const std::string& bs_key,
                 const std::string& unit) {
    auto a = figure(jobcluster, jc_key);
    auto b = figure(beanstalkd, bs_key);
    std::string ratio = a && b && *b > 0 ? fmt::format("{:.2f}", *a / *b) : "-";
    return std::vector<std::string>{std::move(name), a ? grouped(*a) + unit : "-",
                                    b ? grouped(*b) + unit : "-", ratio};
  };
  return markdown_table(
      {"measure", "jobcluster", "beanstalkd", "jobcluster / beanstalkd"},
      {row(fmt::format("durable submits (put), {}, 1 client pipelining, fsync per write/group",
                       grouped(puts)),
           "submit_rate", "put_rate", "/s"),
       row(fmt::format("end to end, {} jobs: 3 clients submit+wait / 3 producers + 3 workers "
                       "reserve+delete",
                       grouped(jobs)),
           "e2e_rate", "e2e_rate", "/s")});
}

std::string redis_table(const std::map<std::string, double>& jobcluster,
                        const std::map<std::string, double>& redis, int pushes, int jobs) {
  auto figure = [](const std::map<std::string, double>& m, const std::string& key) {
    auto it = m.find(key);
    return it == m.end() ? std::optional<double>() : std::optional<double>(it->second);
  };
  auto row = [&](std::string name, const std::string& key, const std::string& unit, int digits) {
    auto a = figure(jobcluster, key);
    auto b = figure(redis, key == "submit_rate" ? "push_rate" : key);
    auto text = [&](double v) {
      return digits == 0 ? grouped(v) + unit : fmt::format("{:.{}f}{}", v, digits, unit);
    };
    std::string ratio = a && b && *b > 0 ? fmt::format("{:.2f}", *a / *b) : "-";
    return std::vector<std::string>{std::move(name), a ? text(*a) : "-", b ? text(*b) : "-", ratio};
  };
  return markdown_table(
      {"measure", "jobcluster", "redis", "jobcluster / redis"},
      {row(fmt::format("durable submits, {}, 1 client pipelining (LPUSH, appendfsync always)",
                       grouped(pushes)),
           "submit_rate", "/s", 0),
       row(fmt::format("end to end, {} jobs: 3 clients submit+wait / 3 producers LPUSH + 3 "
                       "workers BLMOVE+LREM",
                       grouped(jobs)),
           "e2e_rate", "/s", 0),
       row("idle latency p50, one job at a time", "latency_p50_ms", " ms", 2),
       row("idle latency p99", "latency_p99_ms", " ms", 2),
       row("peak RSS during end to end (jobcluster: proxy and 3 nodes)", "e2e_rss_mb", " MB", 1)});
}

std::vector<std::string> usage_lines(const std::vector<ProcessUsage>& usage) {
  std::vector<std::string> lines;
  // Up to a handful of processes, one line each; beyond that (100 nodes) a
  // short form, six per line, and a total, so the report stays readable.
  constexpr std::size_t kOnePerLine = 8;
  if (usage.size() <= kOnePerLine) {
    for (const auto& u : usage) {
      std::string s = fmt::format("  {} cpu={:.2f}s", u.name, u.cpu_s);
      if (u.children_cpu_s >= 0.005) s += fmt::format(" (+{:.2f}s children)", u.children_cpu_s);
      lines.push_back(s + fmt::format(" peak_rss={:.1f}MB", u.peak_mb));
    }
    return lines;
  }
  lines.push_back("  (name cpu_seconds/peak_rss_MB)");
  double cpu = 0, rss = 0;
  std::string line;
  for (std::size_t i = 0; i < usage.size(); ++i) {
    const ProcessUsage& u = usage[i];
    cpu += u.cpu_s + u.children_cpu_s;
    rss += u.peak_mb;
    line += fmt::format("  {} {:.2f}/{:.1f}", u.name, u.cpu_s + u.children_cpu_s, u.peak_mb);
    if (i % 6 == 5 || i + 1 == usage.size()) lines.push_back(std::exchange(line, {}));
  }
  lines.push_back(fmt::format("  all {} processes: cpu={:.2f}s, sum of peak_rss={:.1f}MB",
                              usage.size(), cpu, rss));
  return lines;
}

std::string scenario_details(const ScenarioReport& report) {
  std::string out = fmt::format("### {} ({:.1f} s)\n", report.name, report.seconds);
  if (!report.error.empty()) out += "  FAILED: " + report.error + "\n";
  for (const auto& d : report.details) out += "  " + d + "\n";
  if (!report.usage.empty()) out += "  processes (CPU seconds, peak memory):\n";
  for (const auto& l : usage_lines(report.usage)) out += "  " + l + "\n";
  return out;
}

std::string timeline_csv(const std::vector<ClusterSnapshot>& samples) {
  std::vector<std::string> ids;
  for (const auto& s : samples) {
    for (const auto& n : s.nodes) {
      if (std::find(ids.begin(), ids.end(), n.id) == ids.end()) ids.push_back(n.id);
    }
  }
  std::string out = "seconds,submitted,finished,queue";
  for (const auto& id : ids) out += ",running_" + id;
  out += "\n";
  for (const auto& s : samples) {
    out += fmt::format("{:.3f},{},{},{}", s.seconds, s.submitted, s.finished, s.queue);
    for (const auto& id : ids) {
      auto it = std::find_if(s.nodes.begin(), s.nodes.end(),
                             [&](const NodeSnapshot& n) { return n.id == id; });
      out += it == s.nodes.end() ? "," : fmt::format(",{}", it->running);
    }
    out += "\n";
  }
  return out;
}

}  // namespace jc::bench
