#include "bench/figures.h"

#include <algorithm>
#include <cmath>

namespace jc::bench {

namespace {
// Nearest rank in samples already sorted.
double ranked(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}
}  // namespace

double percentile(std::vector<double> samples, double p) {
  std::sort(samples.begin(), samples.end());
  return ranked(samples, p);
}

Percentiles percentiles(std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());  // once for the four ranks
  Percentiles p;
  p.count = samples.size();
  p.p50 = ranked(samples, 0.50);
  p.p90 = ranked(samples, 0.90);
  p.p99 = ranked(samples, 0.99);
  p.max = ranked(samples, 1.0);
  return p;
}

double Balance::balanced_fraction() const {
  return samples == 0 ? 0 : static_cast<double>(balanced) / samples;
}

double Balance::busy_fraction() const {
  return samples == 0 ? 0 : static_cast<double>(all_slots_busy) / samples;
}

Balance balance_of(const std::vector<ClusterSnapshot>& samples) {
  Balance b;
  for (const auto& s : samples) {
    if (s.queue <= 0) continue;
    int lo = 0, hi = 0;
    bool any = false, busy = true;
    for (const auto& n : s.nodes) {
      if (!n.up) continue;
      lo = any ? std::min(lo, n.running) : n.running;
      hi = any ? std::max(hi, n.running) : n.running;
      any = true;
      busy = busy && n.running >= n.slots;
    }
    if (!any) continue;
    ++b.samples;
    if (hi - lo <= 1) ++b.balanced;
    if (busy) ++b.all_slots_busy;
    b.worst_spread = std::max(b.worst_spread, hi - lo);
  }
  return b;
}

double finished_rate(const std::vector<ClusterSnapshot>& samples) {
  if (samples.size() < 2) return 0;
  const auto& a = samples.front();
  const auto& b = samples.back();
  return safe_rate(static_cast<double>(b.finished - a.finished), b.seconds - a.seconds);
}

double first_finished_at(const std::vector<ClusterSnapshot>& samples) {
  for (const auto& s : samples) {
    if (s.finished > 0) return s.seconds;
  }
  return -1;
}

double longest_gap(const std::vector<ClusterSnapshot>& samples) {
  double gap = 0;
  for (std::size_t i = 1; i < samples.size(); ++i) {
    gap = std::max(gap, samples[i].seconds - samples[i - 1].seconds);
  }
  return gap;
}

double time_submitted_reached(const std::vector<ClusterSnapshot>& samples, std::int64_t count) {
  for (std::size_t i = 0; i < samples.size(); ++i) {
    if (samples[i].submitted < count) continue;
    if (i == 0) return samples[0].seconds;
    const auto& a = samples[i - 1];
    const auto& b = samples[i];
    double part = static_cast<double>(count - a.submitted) /
                  static_cast<double>(std::max<std::int64_t>(1, b.submitted - a.submitted));
    return a.seconds + part * (b.seconds - a.seconds);
  }
  return -1;
}

double safe_rate(double count, double seconds) { return seconds > 0 ? count / seconds : 0; }

FirstLast first_last_rates(const std::vector<double>& batch_seconds, int batch, int window) {
  FirstLast r;
  if (batch_seconds.empty() || batch <= 0) return r;
  std::size_t k = std::clamp<std::size_t>(static_cast<std::size_t>(std::max(1, window / batch)), 1,
                                          batch_seconds.size());
  double first = 0, last = 0;
  for (std::size_t i = 0; i < k; ++i) {
    first += batch_seconds[i];
    last += batch_seconds[batch_seconds.size() - 1 - i];
  }
  double jobs = static_cast<double>(k) * batch;
  r.first = safe_rate(jobs, first);
  r.last = safe_rate(jobs, last);
  return r;
}

}  // namespace jc::bench
