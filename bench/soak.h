// Pure figures of the soak scenario: the samples it takes every second (jobs
// submitted and finished, and each process's memory and data directory), the
// CSV scripts/bench-chart --soak draws, and the verdict "after the first two
// minutes, neither RSS nor disk grows by more than 10%". No I/O, no clock:
// suite_soak.cpp takes the samples and prints what these functions return.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace jc::bench {

// One process at one sample; -1 where it could not be read (the process
// was gone).
struct Footprint {
  std::int64_t rss_kb = -1;      // VmRSS
  std::int64_t disk_bytes = -1;  // files under its DATA_DIR
};

struct SoakSample {
  double seconds = 0;  // since the load started
  std::int64_t submitted = 0;
  std::int64_t finished = 0;
  std::vector<Footprint> processes;  // in the order of the names given with them
};

// seconds,submitted,finished,rss_<name>_kb,disk_<name>_bytes,... one row
// per sample; `names` are the processes' ("proxy", "n1", ...).
std::string soak_csv(const std::vector<std::string>& names, const std::vector<SoakSample>& samples);

// Where the table looks: 2, 5 and 10 minutes into a run of 10 minutes or
// more (and its end when longer), else 20%, 50% and 100% of the run. The
// first is the base that growth is measured from.
struct Checkpoint {
  double seconds = 0;
  std::string label;  // "2 min", "20% (6 s)", "end (900 s)"
};
std::vector<Checkpoint> soak_checkpoints(double duration_s);

// The last sample taken at or before `seconds` (with half a second of
// slack for a late tick); nullptr when there is none.
const SoakSample* sample_at(const std::vector<SoakSample>& samples, double seconds);

// The largest RSS and disk of process `i` among the samples in
// [from, to] seconds (-1 where none).
Footprint peak_between(const std::vector<SoakSample>& samples, std::size_t i, double from,
                       double to);

// How one process fared from the base checkpoint to the end. LevelDB's
// files grow and shrink in a sawtooth (a write-ahead log fills up to its
// memtable's size, becomes a table, and compactions merge tables), and so
// does memory with the memtable: growth compares the peaks of the window
// before the base checkpoint and of the last window of the run (the same
// length: a minute in a 10-minute run), not two samples that may fall
// anywhere on the teeth.
struct ProcessGrowth {
  std::string name;
  std::vector<Footprint> at;  // at each checkpoint (-1 where no sample)
  Footprint end;              // the last sample
  Footprint base_peak;        // the peak of the window ending at the base checkpoint
  Footprint end_peak;         // the peak of the run's last window
  // (end_peak - base_peak) / base_peak; +infinity when the base is 0 and
  // the end is not, NaN when either is missing.
  double rss_growth = 0;
  double disk_growth = 0;
  bool met = false;  // both known and <= the limit
};

struct SoakSummary {
  std::vector<Checkpoint> checkpoints;
  double window_s = 0;  // the length of the windows whose peaks are compared
  std::vector<ProcessGrowth> processes;
  double max_growth = 0.10;
  bool all_met() const;
};
SoakSummary summarize_soak(const std::vector<std::string>& names,
                           const std::vector<SoakSample>& samples, double duration_s,
                           double max_growth = 0.10);

// "+4.2%", "+inf%", "-" for NaN.
std::string growth_text(double growth);
// A markdown table: process | measure | each checkpoint | growth, two rows
// (RSS MB, data dir MB) per process.
std::string soak_table(const SoakSummary& summary);
// One line per process: its growth after the base and whether it is within the limit.
std::vector<std::string> soak_verdicts(const SoakSummary& summary);

}  // namespace jc::bench
