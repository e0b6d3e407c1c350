// The privileged part of the sandbox, in one place: namespaces, mounts, the
// job's own user id, and starting the first process of a run (the static
// program runner/init/job_init.c, embedded in the node) inside them.
//
// What it needs: root, or in a container CAP_SYS_ADMIN (namespaces, mounts),
// CAP_SETUID and CAP_SETGID (the job's user id). What it does without them:
// create() tries every protection for real at start, logs once what it
// cannot apply, and leaves it out of protections(); runs then go on with
// what remains: a working directory on the node's disk (under
// JOB_WORK_DIR), the node's network, the node's own user, a subreaper
// instead of a PID namespace to end what a job leaves.
//
// What a run sees with every protection (Protections::full()):
//   /usr (read-only), the merged-/usr links /bin /lib /lib64 /sbin, a few
//   files of /etc, /dev/null zero full random urandom, its own /proc,
//   JOB_READONLY_PATHS (read-only), /box (its working directory) and /tmp,
//   both on one tmpfs of --disk megabytes that is gone when the job ends;
//   new mount, PID, IPC and UTS namespaces and its slot's empty network
//   namespace; a user id of its own, no capabilities, no_new_privs, a
//   seccomp filter.
//
// Threads: spawn() is called on the sandbox's launcher threads (common/work_threads.h),
// everything else on the node's event-loop thread; nothing here changes
// after create(). Children are made with clone(CLONE_VM | CLONE_VFORK), as
// posix_spawn does: the node's memory is not copied (on a large node,
// copying its page tables is what costs), and the calling thread waits
// while the child joins its cgroups, enters its namespaces and executes
// job_init (1 to 3 ms on an idle host, 5 to 60 ms on a busy one; the node
// logs each at debug). Each thread has a stack of its own for its children.
// The child runs in the node's memory, so it only
// makes system calls: no allocation, no locks, and no glibc set*id (those
// signal every thread of the process).
#pragma once

#include <linux/filter.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "protocol/job.h"
#include "runner/protections.h"

namespace jc::runner {

namespace detail {
struct ChildPlan;  // isolation_internal.h: what a child made by clone() does
}

struct IsolationConfig {
  std::uint32_t slots = 1;
  // Run jobs in slot i run as user id uid_base + i (and group id the same);
  // 0: every job runs as job_user.
  std::uint32_t uid_base = 0;
  std::string job_user = "nobody";
  std::vector<std::string> readonly_paths;  // JOB_READONLY_PATHS, absolute, existing
  std::string work_root;                    // working directories without the fs protection
};

// A job's writable space, for all its runs: /box and /tmp on one tmpfs of
// `disk_bytes` (fs protection), or a directory on the node's disk.
struct WorkspaceSpec {
  std::string name;  // unique on this node: <ticket>-<attempt>
  std::uint64_t disk_bytes = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  const std::vector<protocol::FileSpec>* files = nullptr;  // written into /box
};

class Workspace {
 public:
  Workspace() = default;
  ~Workspace();
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  // Hands what is left to free to the janitor thread: closing the last
  // reference to a tmpfs, or removing a directory, takes as long as the job
  // made it big, and never on the event loop.
  void release();

 private:
  friend class Isolation;
  WorkspaceSpec spec_;
  bool ephemeral_ = false;  // fs protection, one run: that run makes it in its own namespace
  int ns_fd_ = -1;          // fs protection, several runs: the job's mount namespace
  std::string dir_;         // no fs protection: the host directory
};

struct SpawnSpec {
  const Workspace* workspace = nullptr;
  std::uint32_t slot = 0;  // its network namespace
  uid_t uid = 0;
  gid_t gid = 0;
  int stdin_fd = -1, stdout_fd = -1, stderr_fd = -1;
  int script_fd = -1;  // read by the shell as /dev/fd/3
  int status_fd = -1;  // job_init's report (runner/init/init_report.h)
  std::vector<int> cgroup_fds;  // cgroup.procs files to join, or none
  // Second-line limits per process (rlimits); 0 = not set.
  std::uint64_t address_space_bytes = 0;  // only where no cgroup limits memory
  std::uint64_t cpu_seconds = 0;
  std::uint64_t file_size_bytes = 0;
  std::uint64_t processes = 0;
  std::uint64_t stack_bytes = 0;
  std::uint64_t open_files = 0;
  bool network = false;  // the node's network, not its slot's empty one (JOB_ALLOW_NETWORK)
};

class Isolation {
 public:
  // Probes and prepares what every run shares: the minimal root (a mount
  // namespace kept by a descriptor), the empty network namespace, the init
  // program in a sealed memfd. Logs once what it cannot apply.
  static std::unique_ptr<Isolation> create(const IsolationConfig& config);
  ~Isolation();

  const Protections& protections() const { return protections_; }
  // The user id of slot i.
  uid_t slot_uid(std::uint32_t slot) const;
  gid_t slot_gid(std::uint32_t slot) const;
  // How job_init ends what the shell leaves ("pid1", "uid", "tree").
  const char* init_mode() const;

  // The writable space of one job, for `runs` runs. "" or an error a user
  // can read (the files do not fit in --disk, or the node failed).
  std::string make_workspace(const WorkspaceSpec& spec, std::size_t runs,
                             std::unique_ptr<Workspace>& out);
  // Starts job_init for one run; the pid, or -1 with `error` set. The
  // caller owns the child (reaps it, kills it with SIGKILL).
  pid_t spawn(const SpawnSpec& spec, std::string& error);
  // Without a PID namespace: kills every process of `uid` (as that user,
  // kill(-1)), for what a killed job_init could not end.
  void kill_user(uid_t uid);

 private:
  Isolation() = default;
  pid_t clone_child(detail::ChildPlan& plan, int extra_flags, std::string& error);
  void probe(const IsolationConfig& config);
  bool build_root(const IsolationConfig& config, std::string& why);

  IsolationConfig config_;
  Protections protections_;
  uid_t job_uid_ = 0;  // with uid_base == 0
  gid_t job_gid_ = 0;
  int root_ns_fd_ = -1;  // the minimal root's mount namespace
  // Empty network namespaces, one per slot (up to kNetworkNamespaces): jobs
  // running at once share none (abstract unix sockets, ports and
  // /proc/net are per namespace), and nothing outlives a job in its slot's.
  std::vector<int> net_fds_;
  int init_fd_ = -1;     // job_init, sealed memfd
  int proc_fd_ = -1;     // the node's /proc
  std::vector<sock_filter> filter_;  // runner/syscall_filter.h
  sock_fprog filter_program_{};
};

}  // namespace jc::runner
