#include "bench/soak.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "bench/report.h"

namespace jc::bench {

namespace {

constexpr double kTenMinutes = 600;

double growth_of(std::int64_t base, std::int64_t end) {
  if (base < 0 || end < 0) return std::numeric_limits<double>::quiet_NaN();
  if (base == 0) return end == 0 ? 0 : std::numeric_limits<double>::infinity();
  return static_cast<double>(end - base) / static_cast<double>(base);
}

std::string mb_text(std::int64_t value, double unit) {
  return value < 0 ? "-" : fmt::format("{:.1f}", static_cast<double>(value) / unit);
}

}  // namespace

std::string soak_csv(const std::vector<std::string>& names,
                     const std::vector<SoakSample>& samples) {
  std::string out = "seconds,submitted,finished";
  for (const auto& n : names) out += fmt::format(",rss_{}_kb,disk_{}_bytes", n, n);
  out += "\n";
  for (const auto& s : samples) {
    out += fmt::format("{:.3f},{},{}", s.seconds, s.submitted, s.finished);
    for (std::size_t i = 0; i < names.size(); ++i) {
      Footprint f = i < s.processes.size() ? s.processes[i] : Footprint{};
      // A gone process leaves its cells empty: gnuplot skips them.
      out += f.rss_kb < 0 ? "," : fmt::format(",{}", f.rss_kb);
      out += f.disk_bytes < 0 ? "," : fmt::format(",{}", f.disk_bytes);
    }
    out += "\n";
  }
  return out;
}

std::vector<Checkpoint> soak_checkpoints(double duration_s) {
  if (duration_s >= kTenMinutes) {
    std::vector<Checkpoint> out{{120, "2 min"}, {300, "5 min"}, {kTenMinutes, "10 min"}};
    if (duration_s > kTenMinutes)
      out.push_back({duration_s, fmt::format("end ({:.0f} s)", duration_s)});
    return out;
  }
  std::vector<Checkpoint> out;
  for (double f : {0.2, 0.5, 1.0}) {
    out.push_back({f * duration_s, fmt::format("{:.0f}% ({:.0f} s)", f * 100, f * duration_s)});
  }
  return out;
}

const SoakSample* sample_at(const std::vector<SoakSample>& samples, double seconds) {
  const SoakSample* found = nullptr;
  for (const auto& s : samples) {
    if (s.seconds > seconds + 0.5) break;
    found = &s;
  }
  return found;
}

Footprint peak_between(const std::vector<SoakSample>& samples, std::size_t i, double from,
                       double to) {
  Footprint peak;
  for (const auto& s : samples) {
    if (s.seconds < from || s.seconds > to || i >= s.processes.size()) continue;
    peak.rss_kb = std::max(peak.rss_kb, s.processes[i].rss_kb);
    peak.disk_bytes = std::max(peak.disk_bytes, s.processes[i].disk_bytes);
  }
  return peak;
}

bool SoakSummary::all_met() const {
  for (const auto& p : processes) {
    if (!p.met) return false;
  }
  return !processes.empty();
}

SoakSummary summarize_soak(const std::vector<std::string>& names,
                           const std::vector<SoakSample>& samples, double duration_s,
                           double max_growth) {
  SoakSummary summary;
  summary.checkpoints = soak_checkpoints(duration_s);
  summary.max_growth = max_growth;
  // A minute in a run of ten, a tenth of a shorter one.
  summary.window_s = duration_s >= kTenMinutes ? 60 : duration_s / 10;
  auto footprint = [](const SoakSample* s, std::size_t i) {
    return s != nullptr && i < s->processes.size() ? s->processes[i] : Footprint{};
  };
  const SoakSample* last = samples.empty() ? nullptr : &samples.back();
  for (std::size_t i = 0; i < names.size(); ++i) {
    ProcessGrowth p;
    p.name = names[i];
    for (const auto& c : summary.checkpoints) {
      // A run cut short has no sample at its later checkpoints.
      bool reached = last != nullptr && last->seconds + 0.5 >= c.seconds;
      p.at.push_back(reached ? footprint(sample_at(samples, c.seconds), i) : Footprint{});
    }
    p.end = footprint(last, i);
    double base_s = summary.checkpoints.front().seconds;
    double end_s = last != nullptr ? last->seconds : 0;
    p.base_peak = peak_between(samples, i, base_s - summary.window_s, base_s + 0.5);
    p.end_peak = peak_between(samples, i, end_s - summary.window_s, end_s + 0.5);
    p.rss_growth = growth_of(p.base_peak.rss_kb, p.end_peak.rss_kb);
    p.disk_growth = growth_of(p.base_peak.disk_bytes, p.end_peak.disk_bytes);
    // NaN compares false: a missing figure is not a met target.
    p.met = p.rss_growth <= max_growth && p.disk_growth <= max_growth;
    summary.processes.push_back(std::move(p));
  }
  return summary;
}

std::string growth_text(double growth) {
  if (std::isnan(growth)) return "-";
  if (std::isinf(growth)) return "+inf%";
  return fmt::format("{:+.1f}%", 100 * growth);
}

std::string soak_table(const SoakSummary& summary) {
  std::vector<std::string> header{"process", "measure"};
  for (const auto& c : summary.checkpoints) header.push_back(c.label);
  header.push_back(fmt::format("peak of {:.0f} s before {}", summary.window_s,
                               summary.checkpoints.front().label));
  header.push_back(fmt::format("peak of the last {:.0f} s", summary.window_s));
  header.push_back("growth of the peak");
  std::vector<std::vector<std::string>> rows;
  for (const auto& p : summary.processes) {
    std::vector<std::string> rss{p.name, "RSS MB"};
    std::vector<std::string> disk{p.name, "data dir MB"};
    for (const auto& f : p.at) {
      rss.push_back(mb_text(f.rss_kb, 1024.0));
      disk.push_back(mb_text(f.disk_bytes, 1024.0 * 1024.0));
    }
    rss.push_back(mb_text(p.base_peak.rss_kb, 1024.0));
    disk.push_back(mb_text(p.base_peak.disk_bytes, 1024.0 * 1024.0));
    rss.push_back(mb_text(p.end_peak.rss_kb, 1024.0));
    disk.push_back(mb_text(p.end_peak.disk_bytes, 1024.0 * 1024.0));
    rss.push_back(growth_text(p.rss_growth));
    disk.push_back(growth_text(p.disk_growth));
    rows.push_back(std::move(rss));
    rows.push_back(std::move(disk));
  }
  return markdown_table(header, rows);
}

std::vector<std::string> soak_verdicts(const SoakSummary& summary) {
  std::vector<std::string> lines;
  for (const auto& p : summary.processes) {
    lines.push_back(fmt::format(
        "{}: peaks after {}, RSS {} and data dir {}: target (neither grows by more than {:.0f}%) "
        "{}",
        p.name, summary.checkpoints.front().label, growth_text(p.rss_growth),
        growth_text(p.disk_growth), 100 * summary.max_growth, p.met ? "met" : "NOT met"));
  }
  return lines;
}

}  // namespace jc::bench
