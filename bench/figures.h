// Pure figures of jc_bench: percentiles, balance over stats samples, rates.
// No I/O, no clock: callers pass the samples and the durations.
#pragma once

#include <cstdint>
#include <vector>

#include "bench/replies.h"

namespace jc::bench {

// Nearest-rank percentile (p in (0, 1]) of unordered samples; 0 when empty.
double percentile(std::vector<double> samples, double p);

struct Percentiles {
  double p50 = 0, p90 = 0, p99 = 0, max = 0;
  std::size_t count = 0;
};
Percentiles percentiles(std::vector<double> samples);

// Balance over the samples taken under saturating load, that is while jobs
// were queued at the proxy (otherwise idle slots are expected, not a fault).
// Only nodes reported up count.
struct Balance {
  int samples = 0;         // samples under saturating load
  int balanced = 0;        // ... where max - min running across nodes <= 1
  int all_slots_busy = 0;  // ... where every node ran as many jobs as it has slots
  int worst_spread = 0;    // largest max - min seen
  double balanced_fraction() const;
  double busy_fraction() const;
};
Balance balance_of(const std::vector<ClusterSnapshot>& samples);

// Jobs per second between the first and the last sample of `finished`;
// 0 when there are fewer than two samples.
double finished_rate(const std::vector<ClusterSnapshot>& samples);

// Seconds of the first sample that counts a finished job; negative if none.
double first_finished_at(const std::vector<ClusterSnapshot>& samples);
// The longest time between consecutive samples: a busy node answers `stats`
// late, which leaves holes in a timeline.
double longest_gap(const std::vector<ClusterSnapshot>& samples);

// The time (seconds) at which `submitted` first reached `count`, linearly
// interpolated between samples; a negative value when it never did.
double time_submitted_reached(const std::vector<ClusterSnapshot>& samples, std::int64_t count);

double safe_rate(double count, double seconds);

// Jobs submitted in equal batches of `batch` jobs, batch i taking
// batch_seconds[i]: the rates (jobs/s) of the first and of the last `window`
// jobs (whole batches; at least one).
struct FirstLast {
  double first = 0, last = 0;
  double ratio() const { return first > 0 ? last / first : 0; }
};
FirstLast first_last_rates(const std::vector<double>& batch_seconds, int batch, int window);

}  // namespace jc::bench
