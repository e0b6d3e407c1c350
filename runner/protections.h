// Which protections a run job gets on this node (INTERFACE.md section 4),
// decided once at start by Isolation and Cgroups, shown by `stats` for every
// node and in every run result, so a weak sandbox is never mistaken for a
// strong one. Pure.
#pragma once

#include <string>

namespace jc::runner {

struct Protections {
  bool user = false;    // a user id of its own, no capabilities, no_new_privs
  bool fs = false;      // the minimal read-only root; /box and /tmp private, bounded by --disk
  bool pid = false;     // its own PID namespace: sees only its processes, all end with it
  bool ipc = false;     // its own System V IPC and POSIX message queues
  bool uts = false;     // its own host name
  bool net = false;     // no network at all (an empty network namespace)
  bool cgroup = false;  // memory, CPU time and processes of the whole tree, limited and measured
  bool seccomp = false;  // the system calls of runner/syscall_filter.h are denied

  bool full() const { return user && fs && pid && ipc && uts && net && cgroup && seccomp; }
  // "full" when every protection applies, else the ones that do, in the
  // order above ("user,cgroup"), or "none". Where `cgroup` is missing,
  // memory and CPU time are limited per process by rlimits.
  std::string describe() const;
  bool operator==(const Protections&) const = default;
};

// The inverse of describe(); false for a word it does not know.
bool parse_protections(const std::string& text, Protections& out);

}  // namespace jc::runner
