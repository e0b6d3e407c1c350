// Pure text of jc_bench's report: what a scenario found (measures against
// their targets, details, process usage), rendered as markdown tables and
// CSV. No I/O: bench.cpp prints what these functions return.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bench/replies.h"

namespace jc::bench {

// One row of the final table.
struct Measure {
  std::string name;
  std::string target;
  std::string measured;
  std::optional<bool> met;  // nullopt: the scenario failed before a figure
};

// CPU and memory of one process, read from /proc while it still runs.
struct ProcessUsage {
  std::string name;
  double cpu_s = 0;           // user + system of the process itself
  double children_cpu_s = 0;  // of its children it waited for (run jobs)
  double peak_mb = 0;         // VmHWM
  double rss_mb = 0;          // VmRSS now
};

// What one scenario of the suite reports; `error` non-empty when it failed.
struct ScenarioReport {
  std::string name;
  std::vector<Measure> measures;
  std::vector<std::string> details;
  std::vector<ProcessUsage> usage;
  std::map<std::string, double> figures;  // for --compare: "submit_rate", "e2e_rate"
  std::string error;
  double seconds = 0;  // wall time of the scenario, cluster start included
};

// 12345.6 -> "12,346"; rounds to an integer.
std::string grouped(double value);
// "yes" / "no" / "no (failed)".
std::string met_text(std::optional<bool> met);
// A markdown table whose columns are padded to a common width.
std::string markdown_table(const std::vector<std::string>& header,
                           const std::vector<std::vector<std::string>>& rows);
// The suite's summary: measure | target | measured | met?
std::string summary_table(const std::vector<ScenarioReport>& reports);
// jobcluster against beanstalkd: durable submits vs puts ("submit_rate" vs
// "put_rate") and end to end ("e2e_rate" in both); "-" where a figure is missing.
std::string comparison_table(const std::map<std::string, double>& jobcluster,
                             const std::map<std::string, double>& beanstalkd, int puts, int jobs);
// The same against redis (issue 21's table): submits, end to end, idle
// latency and the memory of the end-to-end run, each with its ratio.
std::string redis_table(const std::map<std::string, double>& jobcluster,
                        const std::map<std::string, double>& redis, int pushes, int jobs);
// Indented lines about the processes: one per process, or several per line
// when there are many (the 100-node scenario).
std::vector<std::string> usage_lines(const std::vector<ProcessUsage>& usage);
// The details of one scenario: its details, process usage and error.
std::string scenario_details(const ScenarioReport& report);

// Timeline CSV: seconds,submitted,finished,queue,running_<node>... with one
// row per sample; nodes in the order they first appear.
std::string timeline_csv(const std::vector<ClusterSnapshot>& samples);

}  // namespace jc::bench
