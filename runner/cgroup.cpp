#include "runner/cgroup.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <sstream>

namespace jc::runner {

using namespace cgroup_text;

namespace {

constexpr int kV1 = 1;
constexpr int kV2 = 2;
constexpr const char* kGroupPrefix = "jobcluster-";

// Kills every process in the group `dir` (a few rounds: a process may fork
// while it is being killed).
void kill_members(CgroupFs& fs, const std::string& dir) {
  for (int round = 0; round < 100; ++round) {
    auto procs = fs.read_file(dir + "/cgroup.procs");
    if (!procs || procs->empty()) return;
    std::istringstream in(*procs);
    int pid;
    while (in >> pid) ::kill(pid, SIGKILL);
  }
}

// Removes the group `dir` and every group under it, deepest first; with
// `kill`, ends what still runs in them.
void remove_tree(CgroupFs& fs, const std::string& dir, bool kill) {
  for (const auto& sub : fs.list_dirs(dir)) remove_tree(fs, dir + "/" + sub, kill);
  if (kill) kill_members(fs, dir);
  fs.remove_dir(dir);
}

// Removes, in `parent`, the groups an earlier process of this node left:
// jobcluster-<any node id>-<identity>. Only this node's data directory
// holds `identity`, and only one process uses a data directory at a time,
// so such a group is this node's and no live process's.
void remove_stale(CgroupFs& fs, const std::string& parent, const std::string& identity) {
  if (identity.empty()) return;
  const std::string suffix = "-" + identity;
  for (const auto& name : fs.list_dirs(parent)) {
    bool ours = name.rfind(kGroupPrefix, 0) == 0 && name.size() > suffix.size() &&
                name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    if (ours) remove_tree(fs, parent + "/" + name, true);
  }
}

struct Opened {
  GroupDirs dirs;
  std::string subtree;     // v2
  std::string cpuset_why;  // "" when runs can be pinned
};

// v2: the node's group in its own cgroup's directory, with memory and pids
// (and cpu, cpuset where offered) handed down to jobs and runs.
std::optional<Opened> open_v2(CgroupFs& fs, const Mount& m, const std::string& self_path,
                              const std::string& group, const std::string& identity,
                              std::string* why) {
  std::string dir = dir_in(m, self_path);
  auto available = fs.read_file(dir + "/cgroup.controllers");
  if (!available || !has_word(*available, "memory") || !has_word(*available, "pids")) {
    *why = fmt::format("cgroup v2 at {} does not offer the memory and pids controllers", dir);
    return std::nullopt;
  }
  remove_stale(fs, dir, identity);
  // cpu, where offered, shares the CPUs fairly between runs (each run's
  // group has the same weight, however many processes it starts).
  const std::string wanted = has_word(*available, "cpu") ? "+memory +pids +cpu" : "+memory +pids";
  auto enabled = fs.read_file(dir + "/cgroup.subtree_control");
  if (!enabled || !has_word(*enabled, "memory") || !has_word(*enabled, "pids")) {
    int err = fs.write_file(dir + "/cgroup.subtree_control", wanted);
    if (err == EBUSY) {
      // No process may live in a group that hands controllers down: the
      // node moves itself into a leaf of its own, as a delegated service
      // does. Other processes in the same group keep this from working.
      std::string leaf = dir + "/" + group + "-node";
      int mk = fs.make_dir(leaf);
      if (mk != 0 && mk != EEXIST) {
        *why = fmt::format("cannot create {}: {}", leaf, std::strerror(mk));
        return std::nullopt;
      }
      if (int e = fs.write_file(leaf + "/cgroup.procs", std::to_string(::getpid())); e != 0) {
        *why = fmt::format("cannot move the node into {}: {}", leaf, std::strerror(e));
        return std::nullopt;
      }
      err = fs.write_file(dir + "/cgroup.subtree_control", wanted);
    }
    if (err != 0) {
      *why = fmt::format(
          "cannot enable memory and pids in {}/cgroup.subtree_control: {} (run the node in a "
          "cgroup of its own: a delegated systemd unit, or a container with a private cgroup "
          "namespace)",
          dir, std::strerror(err));
      return std::nullopt;
    }
  }
  Opened out;
  out.subtree = wanted;
  std::string mine = dir + "/" + group;
  if (int e = fs.make_dir(mine); e != 0 && e != EEXIST) {
    *why = fmt::format("cannot create {}: {}", mine, std::strerror(e));
    return std::nullopt;
  }
  if (int e = fs.write_file(mine + "/cgroup.subtree_control", wanted); e != 0) {
    *why = fmt::format("cannot enable memory and pids in {}: {}", mine, std::strerror(e));
    fs.remove_dir(mine);
    return std::nullopt;
  }
  // cpuset keeps a job on its slot's CPU; without it slots share the CPUs.
  if (!has_word(*available, "cpuset")) {
    out.cpuset_why = fmt::format("cgroup v2 at {} does not offer the cpuset controller", dir);
  } else {
    enabled = fs.read_file(dir + "/cgroup.subtree_control");
    int e = enabled && has_word(*enabled, "cpuset")
                ? 0
                : fs.write_file(dir + "/cgroup.subtree_control", "+cpuset");
    if (e == 0) e = fs.write_file(mine + "/cgroup.subtree_control", "+cpuset");
    if (e != 0) out.cpuset_why = fmt::format("cannot enable cpuset in {}: {}", dir, std::strerror(e));
  }
  out.dirs = {mine, mine, mine, mine, out.cpuset_why.empty() ? mine : ""};
  return out;
}

// v1: the hierarchy that has `controller`, and this process's group in it.
std::optional<std::string> v1_parent(const std::vector<Mount>& mounts,
                                     const std::vector<std::pair<std::vector<std::string>, std::string>>& self,
                                     const std::string& controller) {
  const Mount* mount = nullptr;
  for (const auto& m : mounts) {
    if (m.fstype == "cgroup" && contains(m.options, controller)) mount = &m;
  }
  const std::string* path = nullptr;
  for (const auto& [controllers, p] : self) {
    if (contains(controllers, controller)) path = &p;
  }
  if (mount == nullptr || path == nullptr) return std::nullopt;
  return dir_in(*mount, *path);
}

// v1's cpuset group of the node: the CPUs and memory nodes of its parent,
// handed to every group made under it (clone_children), so a run's group is
// usable as soon as it exists and a job's needs one write, its CPUs.
std::string setup_v1_cpuset(CgroupFs& fs, const std::string& parent, const std::string& mine) {
  auto cpus = fs.read_file(parent + "/cpuset.cpus");
  auto mems = fs.read_file(parent + "/cpuset.mems");
  if (!cpus || !mems) return fmt::format("cannot read the CPUs of {}", parent);
  int e = fs.write_file(mine + "/cpuset.cpus", *cpus);
  if (e == 0) e = fs.write_file(mine + "/cpuset.mems", *mems);
  if (e == 0) e = fs.write_file(mine + "/cgroup.clone_children", "1");
  if (e != 0) return fmt::format("cannot set up {}: {}", mine, std::strerror(e));
  return "";
}

std::optional<Opened> open_v1(CgroupFs& fs, const std::vector<Mount>& mounts,
                              const std::vector<std::pair<std::vector<std::string>, std::string>>& self,
                              const std::string& group, const std::string& identity,
                              std::string* why) {
  Opened out;
  std::vector<std::string> made;
  auto make = [&](const std::string& parent) -> std::optional<std::string> {
    std::string mine = parent + "/" + group;
    if (std::find(made.begin(), made.end(), mine) != made.end()) return mine;  // co-mounted
    remove_stale(fs, parent, identity);
    if (int e = fs.make_dir(mine); e != 0 && e != EEXIST) {
      *why = fmt::format("cannot create {}: {}", mine, std::strerror(e));
      return std::nullopt;
    }
    made.push_back(mine);
    return mine;
  };
  auto undo = [&] {
    for (auto it = made.rbegin(); it != made.rend(); ++it) fs.remove_dir(*it);
  };
  std::string* required[] = {&out.dirs.memory, &out.dirs.cpuacct, &out.dirs.pids};
  const char* names[] = {"memory", "cpuacct", "pids"};
  for (int i = 0; i < 3; ++i) {
    auto parent = v1_parent(mounts, self, names[i]);
    if (!parent) {
      *why = fmt::format("no cgroup v1 {} hierarchy is mounted", names[i]);
      undo();
      return std::nullopt;
    }
    auto mine = make(*parent);
    if (!mine) {
      undo();
      return std::nullopt;
    }
    *required[i] = *mine;
  }
  // The cpu controller, where mounted: each run in a group of its own gets a
  // fair share of the CPUs, however many processes it starts (co-mounted
  // with cpuacct, cpuacct's groups already are cpu's). Optional, as cpuset.
  if (auto parent = v1_parent(mounts, self, "cpu")) {
    if (auto mine = make(*parent)) out.dirs.cpu = *mine;
  }
  if (auto parent = v1_parent(mounts, self, "cpuset")) {
    auto mine = make(*parent);
    out.cpuset_why = mine ? setup_v1_cpuset(fs, *parent, *mine) : *why;
    if (out.cpuset_why.empty()) {
      out.dirs.cpuset = *mine;
    } else if (mine && !contains(out.dirs.distinct(), *mine)) {
      fs.remove_dir(*mine);  // a hierarchy of its own that jobs will not use
    }
  } else {
    out.cpuset_why = "no cgroup v1 cpuset hierarchy is mounted";
  }
  why->clear();
  return out;
}

}  // namespace

std::string cgroup_group_name(const std::string& node_id, const std::string& identity) {
  return fmt::format("{}{}-{}", kGroupPrefix, node_id, identity);
}

std::vector<std::string> GroupDirs::distinct() const {
  std::vector<std::string> out;
  for (const std::string* d : {&memory, &cpuacct, &pids, &cpu, &cpuset}) {
    if (!d->empty() && std::find(out.begin(), out.end(), *d) == out.end()) out.push_back(*d);
  }
  return out;
}

GroupDirs GroupDirs::child(const std::string& name) const {
  auto sub = [&](const std::string& d) { return d.empty() ? d : d + "/" + name; };
  return {sub(memory), sub(cpuacct), sub(pids), sub(cpu), sub(cpuset)};
}

RunGroup::RunGroup(CgroupFs& fs, int version, GroupDirs dirs, bool drop_cache)
    : fs_(fs), version_(version), dirs_(std::move(dirs)), drop_cache_(drop_cache) {}

RunGroup::~RunGroup() { remove(); }

std::vector<std::string> RunGroup::procs_files() const {
  // v1: the child joins through `tasks` with "0", moving only itself (it has
  // one thread): the kernel then skips the lock for whole thread groups that
  // a write to cgroup.procs takes, and its RCU grace period, milliseconds
  // per write on a busy machine (on the launcher's thread, which waits for
  // the child).
  std::vector<std::string> out;
  for (const auto& d : dirs_.distinct()) {
    out.push_back(d + (version_ == kV2 ? "/cgroup.procs" : "/tasks"));
  }
  return out;
}

std::int64_t RunGroup::cpu_ns() const {
  if (version_ == kV2) {
    std::int64_t us = keyed(fs_.read_file(dirs_.cpuacct + "/cpu.stat"), "usage_usec");
    return us < 0 ? -1 : us * 1000;
  }
  return number(fs_.read_file(dirs_.cpuacct + "/cpuacct.usage"));
}

RunUsage RunGroup::usage() const {
  RunUsage u;
  u.cpu_ns = cpu_ns();
  if (version_ == kV2) {
    u.peak_bytes = number(fs_.read_file(dirs_.memory + "/memory.peak"));
    u.oom_kills = std::max<std::int64_t>(
        0, keyed(fs_.read_file(dirs_.memory + "/memory.events"), "oom_kill"));
  } else {
    u.peak_bytes = number(fs_.read_file(dirs_.memory + "/memory.max_usage_in_bytes"));
    u.oom_kills = std::max<std::int64_t>(
        0, keyed(fs_.read_file(dirs_.memory + "/memory.oom_control"), "oom_kill"));
  }
  return u;
}

void RunGroup::kill_all() {
  if (version_ == kV2 && fs_.write_file(dirs_.memory + "/cgroup.kill", "1") == 0) return;
  kill_members(fs_, dirs_.memory);
}

void RunGroup::remove() {
  if (removed_) return;
  removed_ = true;
  if (drop_cache_) {
    if (version_ == kV2) {
      auto current = fs_.read_file(dirs_.memory + "/memory.current");
      if (current && number(current) > 0) fs_.write_file(dirs_.memory + "/memory.reclaim", *current);
    } else {
      fs_.write_file(dirs_.memory + "/memory.force_empty", "0");
    }
  }
  for (const auto& d : dirs_.distinct()) fs_.remove_dir(d);
}

JobGroup::JobGroup(std::shared_ptr<Cgroups> cgroups, GroupDirs dirs, bool own)
    : cgroups_(std::move(cgroups)), dirs_(std::move(dirs)), own_(own) {}

JobGroup::~JobGroup() { remove(); }

std::unique_ptr<RunGroup> JobGroup::make_run(const RunLimits& limits, std::string* err) {
  return cgroups_->make_run(dirs_, limits, err);
}

void JobGroup::remove() {
  if (removed_ || !own_) return;
  removed_ = true;
  // Its runs' groups are gone; the pages they left in the job's tmpfs stay
  // charged to them (dying) until the tmpfs is freed, which a removal allows.
  for (const auto& d : dirs_.distinct()) cgroups_->fs_.remove_dir(d);
}

Cgroups::Cgroups(CgroupFs& fs, int version, GroupDirs node)
    : fs_(fs), version_(version), node_(std::move(node)) {}

Cgroups::~Cgroups() {
  for (const auto& d : node_.distinct()) remove_tree(fs_, d, false);
}

std::shared_ptr<Cgroups> Cgroups::open(CgroupFs& fs, const std::string& mountinfo,
                                       const std::string& self_cgroup, const std::string& node_id,
                                       const std::string& identity, std::string* why) {
  auto mounts = cgroup_mounts(mountinfo);
  auto self = self_paths(self_cgroup);
  const std::string group = cgroup_group_name(node_id, identity);
  std::optional<Opened> opened;
  int version = 0;
  std::string why_v2;
  for (const auto& m : mounts) {
    if (m.fstype != "cgroup2" || opened) continue;
    for (const auto& [controllers, path] : self) {
      if (!controllers.empty() && !(controllers.size() == 1 && controllers[0].empty())) continue;
      opened = open_v2(fs, m, path, group, identity, &why_v2);
      if (opened) {
        version = kV2;
        break;
      }
    }
  }
  std::string why_v1;
  if (!opened) {
    opened = open_v1(fs, mounts, self, group, identity, &why_v1);
    version = kV1;
  }
  if (!opened) {
    *why = why_v2.empty() ? why_v1 : why_v2 + "; " + why_v1;
    return nullptr;
  }
  auto cg = std::shared_ptr<Cgroups>(new Cgroups(fs, version, std::move(opened->dirs)));
  cg->subtree_ = std::move(opened->subtree);
  cg->cpuset_why_ = std::move(opened->cpuset_why);
  return cg;
}

void Cgroups::check_dying() {
  auto text = fs_.read_file("/proc/cgroups");
  if (!text) return;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string name;
    long long hierarchy = 0, count = 0;
    if (!(words >> name >> hierarchy >> count) || name != "memory") continue;
    if (count > kTooMany) drop_cache_ = true;
    if (count < kEnough) drop_cache_ = false;
  }
}

bool Cgroups::make_group(const GroupDirs& parent, const std::string& name,
                         std::uint64_t memory_bytes, std::uint32_t processes,
                         const std::string& cpus, bool hands_down, GroupDirs& out,
                         std::string* err) {
  out = parent.child(name);
  std::vector<std::string> made;
  auto undo = [&] {
    for (auto it = made.rbegin(); it != made.rend(); ++it) fs_.remove_dir(*it);
    return false;
  };
  for (const auto& d : out.distinct()) {
    if (int e = fs_.make_dir(d); e != 0) {
      *err = fmt::format("cannot create cgroup {}: {}", d, std::strerror(e));
      return undo();
    }
    made.push_back(d);
  }
  err->clear();
  auto set = [&](const std::string& file, const std::string& value, bool optional) {
    if (!err->empty()) return;
    // A limit write may meet the kernel busy (EBUSY while it drains per-CPU
    // charges, EINTR): tried again a few times before the run fails.
    int e = fs_.write_file(file, value);
    for (int again = 0; again < 3 && (e == EBUSY || e == EINTR); ++again) {
      e = fs_.write_file(file, value);
    }
    if (e != 0 && !(optional && e == ENOENT)) {
      *err = fmt::format("cannot write {} to {}: {}", value, file, std::strerror(e));
    }
  };
  std::string memory = std::to_string(memory_bytes);
  if (version_ == kV2) {
    if (memory_bytes > 0) {
      set(out.memory + "/memory.max", memory, false);
      set(out.memory + "/memory.swap.max", "0", true);
    }
    // One allocation over the limit ends the whole run, not one process.
    if (!hands_down) set(out.memory + "/memory.oom.group", "1", true);
    if (processes > 0) set(out.pids + "/pids.max", std::to_string(processes), false);
  } else {
    if (memory_bytes > 0) {
      set(out.memory + "/memory.limit_in_bytes", memory, false);
      set(out.memory + "/memory.memsw.limit_in_bytes", memory, true);  // no swapping past it
    }
    if (processes > 0) set(out.pids + "/pids.max", std::to_string(processes), false);
  }
  if (!cpus.empty() && !out.cpuset.empty()) set(out.cpuset + "/cpuset.cpus", cpus, false);
  if (hands_down && version_ == kV2) set(out.memory + "/cgroup.subtree_control", subtree_, false);
  return err->empty() ? true : undo();
}

std::unique_ptr<RunGroup> Cgroups::make_run(const GroupDirs& parent, const RunLimits& limits,
                                            std::string* err) {
  if (++runs_ % kCheckEvery == 0) check_dying();
  GroupDirs dirs;
  if (!make_group(parent, fmt::format("run-{}", next_++), limits.memory_bytes, limits.processes,
                  "", false, dirs, err)) {
    return nullptr;
  }
  return std::make_unique<RunGroup>(fs_, version_, std::move(dirs), drop_cache_);
}

bool Cgroups::pin_slots(const std::vector<unsigned>& cpus, std::string* why) {
  if (!can_pin()) {
    *why = cpuset_why_;
    return false;
  }
  for (std::size_t i = 0; i < cpus.size(); ++i) {
    GroupDirs dirs;
    if (!make_group(node_, fmt::format("slot-{}", i), 0, 0, std::to_string(cpus[i]), true, dirs,
                    why)) {
      for (auto it = slots_.rbegin(); it != slots_.rend(); ++it) {
        for (const auto& d : it->distinct()) fs_.remove_dir(d);
      }
      slots_.clear();
      return false;
    }
    slots_.push_back(std::move(dirs));
  }
  return true;
}

std::unique_ptr<JobGroup> Cgroups::make_job(const JobBounds& bounds, std::string* err) {
  const GroupDirs& parent = slots_.empty() ? node_ : slots_[bounds.slot % slots_.size()];
  if (bounds.runs <= 1) {
    return std::unique_ptr<JobGroup>(new JobGroup(shared_from_this(), parent, false));
  }
  GroupDirs dirs;
  if (!make_group(parent, fmt::format("job-{}", next_++), bounds.memory_bytes, 0, "", true, dirs,
                  err)) {
    return nullptr;
  }
  return std::unique_ptr<JobGroup>(new JobGroup(shared_from_this(), std::move(dirs), true));
}

}  // namespace jc::runner
