// The soak scenario's verdict (bench/soak.h): peaks of windows, not single
// samples on LevelDB's sawtooth.
#include <doctest/doctest.h>

#include "bench/soak.h"

namespace jc::bench {
namespace {

// A process whose disk saws between 10 and 20 MB every 20 s and whose RSS
// is flat, sampled every second for 600 s.
std::vector<SoakSample> sawtooth(double growth_after_120 = 0) {
  std::vector<SoakSample> out;
  for (int t = 0; t <= 600; ++t) {
    SoakSample s;
    s.seconds = t;
    double scale = t > 120 ? 1 + growth_after_120 * (t - 120) / 480.0 : 1;
    std::int64_t disk = (10 + (t % 20) / 2) * 1024 * 1024;
    s.processes.push_back({static_cast<std::int64_t>(50000 * scale),
                           static_cast<std::int64_t>(disk * scale)});
    out.push_back(s);
  }
  return out;
}

}  // namespace

TEST_CASE("soak: a steady sawtooth is flat, wherever the samples fall on it") {
  auto summary = summarize_soak({"proxy"}, sawtooth(), 600);
  REQUIRE(summary.processes.size() == 1);
  const auto& p = summary.processes[0];
  CHECK(summary.window_s == 60);
  CHECK(p.base_peak.disk_bytes == p.end_peak.disk_bytes);
  CHECK(p.rss_growth == doctest::Approx(0));
  CHECK(p.met);
  CHECK(summary.all_met());
  CHECK(summary.checkpoints.front().label == "2 min");
}

TEST_CASE("soak: growth after two minutes beyond 10% is not met") {
  auto summary = summarize_soak({"n1"}, sawtooth(0.3), 600);
  const auto& p = summary.processes[0];
  CHECK(p.rss_growth > 0.25);
  CHECK(p.disk_growth > 0.25);
  CHECK_FALSE(p.met);
  auto lines = soak_verdicts(summary);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].find("NOT met") != std::string::npos);
}

TEST_CASE("soak: a process gone from the samples is never a met target") {
  auto samples = sawtooth();
  for (auto& s : samples) {
    if (s.seconds > 500) s.processes[0] = Footprint{};
  }
  auto summary = summarize_soak({"n2"}, samples, 600);
  CHECK_FALSE(summary.processes[0].met);
}

}  // namespace jc::bench
