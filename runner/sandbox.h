// The sandbox of run jobs, the node's part: which protections apply
// (decided once at start and logged), the isolation and the cgroups every
// run shares, which CPU each slot's jobs run on, and the launcher's threads
// that start runs (common/work_threads.h). One run is a SandboxRun
// (runner/sandbox_run.h).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runner/cgroup.h"
#include "runner/isolation.h"
#include "common/work_threads.h"
#include "runner/protections.h"

namespace jc::runner {

// Which CPU each slot's jobs run on (SLOT_CPUS).
struct SlotCpus {
  bool pin = true;  // false: slots share the node's CPUs
  // Slot i runs on cpus[i]; empty: the CPUs the node may use, in order
  // (pinned only where there are at least as many as slots).
  std::vector<unsigned> cpus;
};

struct SandboxConfig {
  IsolationConfig isolation;
  std::string node_id;   // names the node's cgroup
  std::string identity;  // its data directory's identity: names the node's cgroup too
  SlotCpus slot_cpus;
  std::uint32_t processes = 256;   // JOB_PROCESSES: processes (and threads) of one run
  std::uint32_t open_files = 1024;  // descriptors per process
  bool allow_network = false;       // JOB_ALLOW_NETWORK: jobs may ask for the node's network
};

// The CPUs this process may run on (its affinity, which a container's
// cpuset narrows), in order.
std::vector<unsigned> allowed_cpus();

class Sandbox {
 public:
  // Probes and prepares; logs once what applies and what cannot.
  static std::unique_ptr<Sandbox> create(const SandboxConfig& config);

  const Protections& protections() const { return protections_; }
  const std::string& description() const { return description_; }
  const SandboxConfig& config() const { return config_; }
  Isolation& isolation() { return *isolation_; }
  Cgroups* cgroups() { return cgroups_.get(); }
  // Where runs are started, off the event loop: one thread per slot.
  WorkThreads& launcher() { return *launcher_; }
  // "pinned" (each slot on a CPU of its own) or "shared", for stats.
  const std::string& cpus_description() const { return cpus_description_; }

 private:
  SandboxConfig config_;
  std::unique_ptr<Isolation> isolation_;
  std::shared_ptr<Cgroups> cgroups_;
  void plan_cpus();

  Protections protections_;
  std::string description_;
  std::vector<unsigned> slot_cpus_;  // slot i runs on slot_cpus_[i]; empty: not pinned
  std::string cpus_description_ = "shared";
  // Last: its threads end (finishing a spawn in progress) before the
  // isolation they spawn with goes.
  std::unique_ptr<WorkThreads> launcher_;
};

}  // namespace jc::runner
