// jc_store_floor: what LevelDB alone costs per job, through storage::Store,
// with nothing else running: the floor under the end-to-end figure.
//
// Each process of a job's path writes its records in group commits (one
// synced batch per turn). This program replays those writes, per process
// and batch by batch, on fresh stores in one thread, and reports the CPU
// (user + system, LevelDB's compaction thread included) per job:
//   - "today": the records the four processes write per job now
//     (docs/job-path.md), with their sizes in the e2e run; records of one
//     per commit (q/, n/, u/, e/) are left out: they cost per turn;
//   - "minimal": what durability before every acknowledgement needs at
//     least: the origin writes the job before its ticket and its result
//     before a read, the proxy the job before it is acknowledged and its
//     result before the origin is told; each an overwrite of one key.
// Usage: jc_store_floor [--jobs N] [--batch B] [--dir D]
#include <fmt/format.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "storage/store.h"

namespace {

using jc::storage::Store;
using jc::storage::WriteBatch;

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto s = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return s(ru.ru_utime) + s(ru.ru_stime);
}

// One record operation of a job: a put of `bytes` under `prefix`, or a delete.
struct Op {
  const char* prefix;
  int bytes;  // < 0: delete
};

// The writes one process makes for a job, turn by turn: each step is one
// group commit for every job of the batch (the job is in a later turn at
// each step, as it is in a running cluster).
struct Process {
  const char* name;
  std::vector<std::vector<Op>> steps;
};

std::string ticket(std::uint64_t i) { return fmt::format("n1-{:08}", i); }

// Replays `p` for `jobs` jobs in batches, on a fresh store in `dir`.
// Returns CPU seconds.
double replay(const Process& p, const std::string& dir, int jobs, int batch) {
  std::filesystem::remove_all(dir);
  std::unique_ptr<Store> store;
  if (auto s = jc::storage::open_leveldb(dir, &store); !s.ok()) {
    std::fprintf(stderr, "open %s: %s\n", dir.c_str(), s.message().c_str());
    std::exit(1);
  }
  const std::string payload(512, 'x');
  const double start = cpu_seconds();
  // Turn t commits step s for the jobs of batch t - s: a pipeline.
  const int batches = (jobs + batch - 1) / batch;
  const int steps = static_cast<int>(p.steps.size());
  for (int turn = 0; turn < batches + steps - 1; ++turn) {
    WriteBatch wb;
    for (int s = 0; s < steps; ++s) {
      const int b = turn - s;
      if (b < 0 || b >= batches) continue;
      for (int j = b * batch; j < std::min(jobs, (b + 1) * batch); ++j) {
        for (const Op& op : p.steps[s]) {
          std::string key = std::string(op.prefix) + ticket(j);
          if (op.bytes < 0) {
            wb.del(std::move(key));
          } else {
            // Varied bytes, as records are (snappy would flatten a constant).
            std::string v = fmt::format("{}{}", j * 2654435761u, payload);
            v.resize(op.bytes);
            wb.put(std::move(key), std::move(v));
          }
        }
      }
    }
    if (auto s = store->write(wb, true); !s.ok()) {
      std::fprintf(stderr, "write: %s\n", s.message().c_str());
      std::exit(1);
    }
  }
  store.reset();  // waits for compactions under way
  return cpu_seconds() - start;
}

}  // namespace

int main(int argc, char** argv) {
  int jobs = 300000, batch = 500;
  std::string dir = "/tmp/jc-store-floor";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--jobs")
      jobs = std::atoi(argv[i + 1]);
    else if (a == "--batch")
      batch = std::atoi(argv[i + 1]);
    else if (a == "--dir")
      dir = argv[i + 1];
  }
  if (jobs <= 0 || batch <= 0) {
    std::fprintf(stderr, "usage: jc_store_floor [--jobs N] [--batch B] [--dir D]\n");
    return 2;
  }
  // Sizes: the values of an e2e run's records (0-ms jobs, no files).
  const std::vector<std::pair<const char*, std::vector<Process>>> paths{
      {"today",
       {{"proxy", {{{"s/", 60}}, {{"a/", 45}}, {{"a/", -1}, {"f/", 90}}}},
        {"origin", {{{"o/", 70}}, {{"r/", 60}}}},
        {"running node", {{{"x/", 70}}, {{"d/", 60}}, {{"x/", -1}, {"d/", -1}}}}}},
      {"minimal",
       {{"proxy", {{{"j/", 60}}, {{"j/", 90}}}}, {"origin", {{{"j/", 70}}, {{"j/", 60}}}}}}};
  fmt::print("jc_store_floor: {} jobs, {} per synced batch, LevelDB through storage::Store\n", jobs,
             batch);
  for (const auto& [path, processes] : paths) {
    double total = 0;
    for (const Process& p : processes) {
      const double cpu = replay(p, dir + "/" + path + "-" + p.name, jobs, batch);
      total += cpu;
      fmt::print("  {:8} {:13} {:6.2f} us CPU per job\n", path, p.name, cpu * 1e6 / jobs);
    }
    fmt::print("  {:8} {:13} {:6.2f} us CPU per job\n", path, "all", total * 1e6 / jobs);
  }
  std::filesystem::remove_all(dir);
  return 0;
}
