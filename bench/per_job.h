// Per-job figures of a run (issue 21, point 3): what each process of the
// cluster did between two snapshots, divided by the jobs of the run. The
// counters come from the process itself (SIGUSR1 logs them, common/counters.h),
// CPU and bytes written to disk from /proc.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "tests/support/cluster.h"

namespace jc::bench {

struct ProcessCounters {
  std::string name;
  std::map<std::string, double> values;  // counters' names, cpu_us, disk_bytes
};

// Every process of the cluster, each asked for its counters; a process
// that does not answer within a second has none.
std::vector<ProcessCounters> snapshot_counters(jc::test::Cluster& cluster);

// One line per process and one for the nodes together: messages (frames
// out), bytes on the links (out), synced writes, LevelDB writes and their
// bytes, bytes written to disk, CPU microseconds and allocations, per job.
std::vector<std::string> per_job_lines(const std::vector<ProcessCounters>& before,
                                       const std::vector<ProcessCounters>& after, double jobs);

}  // namespace jc::bench
