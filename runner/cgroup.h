// Control groups for run jobs. The node has one group of its own, and in it
// one per slot placed on that slot's CPU where slots are pinned (cpuset,
// written once at start); a job of several runs (a check step, test cases)
// gets a group under its slot's, limited to the job's --memory, and each
// run a fresh leaf under that. So what a run leaves in the job's tmpfs (/box, /tmp)
// stays charged to the job and counts against its later runs, while each
// run's figures (CPU time, peak memory, OOM kills) are its own (a reused
// group would carry the page cache of earlier runs into the next run's
// peak). A job of one run gets no group of its own: its run's leaf carries
// the job's limits (the same bounds, one directory fewer per hierarchy).
//
//   <node's cgroup>/jobcluster-<node>-<identity>/slot-0/job-7/run-8
//                                               /slot-1/run-9   (a job of one run)
//   (without pinning, jobs and runs go in the node's group itself)
//
// cgroup v2 where the node's own cgroup2 directory is writable and offers the
// memory and pids controllers (and cpu: then every run gets the same share
// of the CPUs, however many processes it starts; and cpuset: then a job can
// be kept on its slot's CPU); else the v1 memory, cpuacct and pids
// hierarchies (and cpu and cpuset where they are mounted); else none, and
// the sandbox falls back to rlimits per process (Protections::cgroup false).
//
// The node's group is named after the node and its data directory's
// identity (a random id kept there). At start the node removes the groups
// that carry its identity, left by its own earlier process, and never
// another's: a PID says nothing across PID namespaces (another container's
// node may hold the same number), a data directory is one node's.
//
// Every file access goes through CgroupFs (runner/cgroup_fs.h), so tests
// drive this code on a fake file system. A job's group is made on the
// node's event-loop thread; a run's group on the sandbox's launcher threads
// (common/work_threads.h), and both are removed on the janitor's (runner/janitor.h):
// on a busy host each mkdir or rmdir can wait milliseconds for the kernel.
#pragma once

#include <atomic>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runner/cgroup_fs.h"

namespace jc::runner {

// One group's directories. v2: the same directory in every field; v1: one
// per hierarchy, "" where that hierarchy is not used.
struct GroupDirs {
  std::string memory, cpuacct, pids, cpu, cpuset;
  // The directories in the order above, each once.
  std::vector<std::string> distinct() const;
  // The group `name` under this one, in every hierarchy.
  GroupDirs child(const std::string& name) const;
};

struct RunLimits {
  std::uint64_t memory_bytes = 0;  // 0: none
  std::uint32_t processes = 0;     // 0: none
};

// A job's bounds, for all its runs together.
struct JobBounds {
  std::uint64_t memory_bytes = 0;  // --memory: every run's memory and what the runs left; 0: none
  std::uint32_t slot = 0;          // its slot: the CPU it runs on, where slots are pinned
  std::size_t runs = 1;            // runs it will have (one: no group of its own)
};

// What a run's group measured. -1: not available.
struct RunUsage {
  std::int64_t cpu_ns = -1;
  std::int64_t peak_bytes = -1;
  std::int64_t oom_kills = 0;
};

class RunGroup {
 public:
  // `drop_cache`: empty the memory group before removing it (see Cgroups).
  RunGroup(CgroupFs& fs, int version, GroupDirs dirs, bool drop_cache = false);
  ~RunGroup();
  RunGroup(const RunGroup&) = delete;
  RunGroup& operator=(const RunGroup&) = delete;

  // The cgroup.procs files (one per hierarchy) a child writes to join.
  std::vector<std::string> procs_files() const;
  // CPU time so far (nanoseconds), for the CPU-limit check; -1 on failure.
  std::int64_t cpu_ns() const;
  RunUsage usage() const;
  // Kills every process still in the group (none is left after a run that
  // had its own PID namespace).
  void kill_all();
  // Removes the group's directories; after usage(). Called by the destructor.
  void remove();

 private:
  CgroupFs& fs_;
  int version_;
  GroupDirs dirs_;
  bool drop_cache_ = false;
  bool removed_ = false;
};

class Cgroups;

// A job's place in the hierarchies: its runs' groups are made here. Removed
// (by the destructor) after the last of them.
class JobGroup {
 public:
  ~JobGroup();
  JobGroup(const JobGroup&) = delete;
  JobGroup& operator=(const JobGroup&) = delete;

  // A fresh group for the next run; nullptr and `err` on failure. Called on
  // the sandbox's launcher threads (common/work_threads.h) while the job lives.
  std::unique_ptr<RunGroup> make_run(const RunLimits& limits, std::string* err);
  // Whether the job has a group of its own (several runs).
  bool own() const { return own_; }
  // Where its runs' groups go: its own group, or (one run) its slot's.
  const GroupDirs& dirs() const { return dirs_; }
  void remove();

 private:
  friend class Cgroups;
  JobGroup(std::shared_ptr<Cgroups> cgroups, GroupDirs dirs, bool own);
  std::shared_ptr<Cgroups> cgroups_;
  GroupDirs dirs_;
  bool own_;
  bool removed_ = false;
};

// Shared by the sandbox and every job's group, so that it outlives the last
// (a job's group may be released after the sandbox, at shutdown).
class Cgroups : public std::enable_shared_from_this<Cgroups> {
 public:
  // Finds the hierarchies (from /proc/self/mountinfo and /proc/self/cgroup
  // texts), removes the groups an earlier process of this node left (those
  // named jobcluster-*-<identity>), and makes the node's own group,
  // jobcluster-<node_id>-<identity>, in each. nullptr with the reason in
  // `why` when no usable hierarchy was found.
  static std::shared_ptr<Cgroups> open(CgroupFs& fs, const std::string& mountinfo,
                                       const std::string& self_cgroup, const std::string& node_id,
                                       const std::string& identity, std::string* why);
  ~Cgroups();

  int version() const { return version_; }
  // Where the node's group is, one directory per hierarchy (for logs).
  std::vector<std::string> group_dirs() const { return node_.distinct(); }
  // Whether runs can be kept on given CPUs (the cpuset controller), and if
  // not, why.
  bool can_pin() const { return cpuset_why_.empty(); }
  const std::string& cannot_pin_because() const { return cpuset_why_; }
  // Makes a group per slot on its CPU (slot i on cpus[i]), under which that
  // slot's jobs go. False, with `why`, when they cannot be made: then jobs
  // go in the node's group and share its CPUs.
  bool pin_slots(const std::vector<unsigned>& cpus, std::string* why);
  bool pinned() const { return !slots_.empty(); }
  // The place of a job with these bounds; nullptr and `err` on failure.
  std::unique_ptr<JobGroup> make_job(const JobBounds& bounds, std::string* err);
  // Whether removed groups are emptied first (many dying groups are left).
  bool dropping_cache() const { return drop_cache_; }

  // A removed memory group lives on, dying, while page cache it was charged
  // for stays (on kernels that do not hand it to the parent), and the kernel
  // has at most 65535 memory groups. Every kCheckEvery runs the count in
  // /proc/cgroups is read: past kTooMany, each run's group is emptied
  // (memory.force_empty, or memory.reclaim on v2) before it is removed,
  // which costs re-reading files later; below kEnough that stops.
  static constexpr std::uint64_t kCheckEvery = 256;
  static constexpr std::int64_t kTooMany = 20'000;
  static constexpr std::int64_t kEnough = 10'000;

 private:
  friend class JobGroup;
  Cgroups(CgroupFs& fs, int version, GroupDirs node);
  void check_dying();
  // Makes the group `name` under `parent` in every hierarchy, with these
  // limits and CPUs (written before any process joins); on failure removes
  // what it made and says why in `err`.
  bool make_group(const GroupDirs& parent, const std::string& name, std::uint64_t memory_bytes,
                  std::uint32_t processes, const std::string& cpus, bool hands_down,
                  GroupDirs& out, std::string* err);
  std::unique_ptr<RunGroup> make_run(const GroupDirs& parent, const RunLimits& limits,
                                     std::string* err);

  CgroupFs& fs_;
  int version_;
  GroupDirs node_;
  std::vector<GroupDirs> slots_;  // pinned: slot i's group
  std::string subtree_;     // v2: the controllers a job's group hands to its runs
  std::string cpuset_why_;  // why runs cannot be pinned; "" when they can
  // Atomic: runs' groups are made on the sandbox's launcher threads (common/work_threads.h),
  // jobs' on the event loop.
  std::atomic<std::uint64_t> next_{1};  // names job-N and run-N
  std::atomic<std::uint64_t> runs_{0};
  std::atomic<bool> drop_cache_{false};
};

// The node's group name: "jobcluster-<node_id>-<identity>".
std::string cgroup_group_name(const std::string& node_id, const std::string& identity);

}  // namespace jc::runner
