#include "runner/sandbox.h"

#include <sched.h>

#include <fmt/format.h>
#include <fstream>
#include <sstream>

#include "common/log.h"

namespace jc::runner {

namespace {

std::string read_text(const char* path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

std::vector<unsigned> allowed_cpus() {
  std::vector<unsigned> out;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return out;
  for (unsigned c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) out.push_back(c);
  }
  return out;
}

std::unique_ptr<Sandbox> Sandbox::create(const SandboxConfig& config) {
  auto log = log::get("sandbox");
  auto s = std::unique_ptr<Sandbox>(new Sandbox());
  s->config_ = config;
  s->isolation_ = Isolation::create(config.isolation);
  s->protections_ = s->isolation_->protections();
  std::string why;
  s->cgroups_ = Cgroups::open(CgroupFs::system(), read_text("/proc/self/mountinfo"),
                              read_text("/proc/self/cgroup"), config.node_id, config.identity,
                              &why);
  s->protections_.cgroup = s->cgroups_ != nullptr;
  if (!s->cgroups_) {
    log->warn(
        "cannot apply cgroup ({}): memory is limited per process by address space, CPU time per "
        "process, and figures are those of what job_init reaped",
        why);
  }
  s->description_ = s->protections_.describe();
  log->info("run jobs get sandbox={} (of user, fs, pid, ipc, uts, net, cgroup, seccomp){}{}",
            s->description_,
            s->cgroups_ ? fmt::format(" cgroup=v{} at {}", s->cgroups_->version(),
                                      s->cgroups_->group_dirs().front())
                        : "",
            s->protections_.fs ? "" : fmt::format(" work_root={}", config.isolation.work_root));
  s->plan_cpus();
  s->launcher_ = std::make_unique<WorkThreads>(config.isolation.slots,
                                              WorkThreads::AtStop::kDrop, "jc-launcher");
  return s;
}

void Sandbox::plan_cpus() {
  auto log = log::get("sandbox");
  const std::uint32_t slots = config_.isolation.slots;
  std::vector<unsigned> cpus =
      config_.slot_cpus.cpus.empty() ? allowed_cpus() : config_.slot_cpus.cpus;
  std::string why;
  if (!config_.slot_cpus.pin) {
    why = "SLOT_CPUS=off";
  } else if (slots > cpus.size()) {
    why = fmt::format("NODE_SLOTS={} is more than the {} CPUs this node may use", slots,
                      cpus.size());
  } else if (!cgroups_) {
    why = "no cgroups";
  } else {
    cpus.resize(slots);
    cgroups_->pin_slots(cpus, &why);
  }
  if (!why.empty()) {
    log->warn(
        "slots share the CPUs ({}): a busy job slows the jobs beside it, so their wall-clock and "
        "CPU times, and --timeout verdicts near the limit, depend on their neighbours",
        why);
    return;
  }
  slot_cpus_ = cpus;
  cpus_description_ = "pinned";
  std::string plan;
  for (std::uint32_t i = 0; i < slots; ++i) {
    plan += fmt::format("{}{}:{}", i ? "," : "", i, slot_cpus_[i]);
  }
  log->info("each slot runs on a CPU of its own (slot:cpu {})", plan);
}

}  // namespace jc::runner
