// What the files of the sandbox's privileged part (isolation*.cpp) share, and
// nothing else includes: the steps that build the minimal root or a job's
// workspace, and the plan a child made by clone() follows.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "runner/isolation.h"

namespace jc::runner::detail {

// Where, inside a private mount namespace of its own, the helper that builds
// the minimal root mounts it before it makes it the root: any directory will
// do, nothing outside that namespace sees the mount.
constexpr const char* kBuildAt = "/tmp";
constexpr const char* kHostName = "jobcluster";

// One step of building the root or a workspace, done by a child in its own
// mount namespace. Strings are prepared by the parent: the child only reads
// them.
struct Op {
  enum Kind {
    kTmpfs,
    kMkdir,
    kChmod,
    kSymlink,
    kTouch,
    kWrite,
    kBindRo,
    kBindDev,
    kRemountRo,
    // A workspace's own steps (the child needs the plan's files for them).
    kFilesAndBox,  // write the job's files into <path>/box, then bind it at /box
    kBindTmp,      // bind <path>/tmp at /tmp
    kDetach,       // unmount <path> (the binds keep the tmpfs)
  };
  Kind kind;
  std::string path;
  std::string arg;  // symlink target, bind source, file content, tmpfs options
};

// Everything a child needs, prepared by the parent; the child reads it and
// writes only `failed_step` and `error` (and `*ns_out`).
struct ChildPlan {
  // Building the root: `root_ops` in a new mount namespace, then pivot_root.
  const std::vector<Op>* root_ops = nullptr;
  bool pivot = false;
  // Else: enter `mnt_fd` and a new mount namespace of its own, then run
  // `workspace_ops` (making a job's tmpfs) when set.
  int mnt_fd = -1;
  const std::vector<Op>* workspace_ops = nullptr;
  const std::vector<protocol::FileSpec>* files = nullptr;
  uid_t files_uid = 0;
  gid_t files_gid = 0;
  // With CLONE_FILES the descriptor opened here lands in the parent's table.
  int proc_fd = -1;
  int* ns_out = nullptr;
  // Running job_init (else the child exits after the mounts).
  const SpawnSpec* spawn = nullptr;
  bool fs = false, net = false, uts = false, drop_user = false;
  int net_fd = -1, init_fd = -1;
  const sock_fprog* filter = nullptr;  // installed last, when set
  const char* workdir = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  // Out.
  const char* failed_step = nullptr;
  int error = 0;
};

// The top of this thread's stack for vfork-style children (clone with
// CLONE_VM | CLONE_VFORK), mapped at its first use: runs are spawned on the
// launcher threads (common/work_threads.h) while the node's event loop makes
// workspaces and probes, so each thread has its own. The calling thread is
// suspended while its child runs on it, so one per thread is enough.
// nullptr (errno set) when it cannot be mapped.
char* child_stack_top();

// isolation_mounts.cpp: the steps of the minimal root, and of a job's tmpfs.
std::vector<Op> root_ops(const IsolationConfig& c, uid_t job_uid, gid_t job_gid);
std::vector<Op> workspace_ops(const WorkspaceSpec& s);

}  // namespace jc::runner::detail
