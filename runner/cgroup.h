// Control groups for run jobs: every run gets a fresh leaf group under one
// group of the node's own, so the limits (memory, number of processes) hold
// for the whole process tree and the figures (CPU time, peak memory, OOM
// kills) are the tree's and this run's alone (a reused group would carry
// the page cache of earlier runs into the next run's peak).
//
// cgroup v2 where the node's own cgroup2 directory is writable and offers the
// memory and pids controllers (and cpu: then every run gets the same share
// of the CPUs, however many processes it starts); else the v1 memory,
// cpuacct and pids hierarchies (and cpu where it is mounted); else none, and
// the sandbox falls back to rlimits per process (Protections::cgroup false).
//
// Every file access goes through CgroupFs, so tests drive this code on a fake
// file system. Runs on the node's event-loop thread; nothing here blocks for
// long (a few small reads and writes per run).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace jc::runner {

// The file operations cgroups need (the real one is CgroupFs::system()).
class CgroupFs {
 public:
  virtual ~CgroupFs() = default;
  // 0 or an errno value.
  virtual int make_dir(const std::string& path) = 0;
  virtual int remove_dir(const std::string& path) = 0;
  virtual int write_file(const std::string& path, const std::string& text) = 0;
  virtual std::optional<std::string> read_file(const std::string& path) = 0;
  virtual bool exists(const std::string& path) = 0;
  // Names of the sub-directories of `path`.
  virtual std::vector<std::string> list_dirs(const std::string& path) = 0;
  // A descriptor open for writing (close-on-exec), or -1: the spawned child
  // writes "0" to cgroup.procs through it to join its group before exec.
  virtual int open_for_write(const std::string& path) = 0;

  static CgroupFs& system();
};

struct RunLimits {
  std::uint64_t memory_bytes = 0;  // 0: none
  std::uint32_t processes = 0;     // 0: none
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
  RunGroup(CgroupFs& fs, int version, std::vector<std::string> dirs, bool drop_cache = false);
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
  std::vector<std::string> dirs_;  // v1: memory, cpuacct, pids (and cpu); v2: one
  bool drop_cache_ = false;
  bool removed_ = false;
};

class Cgroups {
 public:
  // Finds the hierarchies (from /proc/self/mountinfo and /proc/self/cgroup
  // texts), makes the node's own group `group_name` in each, and removes
  // stale groups of earlier processes of this program (`jobcluster-*-<pid>`
  // whose pid is gone, as `alive` tells). nullptr with the reason in `why`
  // when no usable hierarchy was found.
  static std::unique_ptr<Cgroups> open(CgroupFs& fs, const std::string& mountinfo,
                                       const std::string& self_cgroup,
                                       const std::string& group_name,
                                       bool (*alive)(int pid), std::string* why);
  ~Cgroups();

  int version() const { return version_; }
  // Where the node's group is, one directory per hierarchy (for logs).
  const std::vector<std::string>& group_dirs() const { return group_dirs_; }
  // A fresh group for one run with these limits; nullptr and `err` on failure.
  std::unique_ptr<RunGroup> make_run(const RunLimits& limits, std::string* err);
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
  Cgroups(CgroupFs& fs, int version, std::vector<std::string> group_dirs);
  void check_dying();
  CgroupFs& fs_;
  int version_;
  std::vector<std::string> group_dirs_;
  std::uint64_t next_run_ = 1;
  bool drop_cache_ = false;
};

// The group name for this process: "jobcluster-<name>-<pid>".
std::string cgroup_group_name(const std::string& node_id, int pid);

}  // namespace jc::runner
