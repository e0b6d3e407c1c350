// What a child made by clone() does, in the node's memory and with system
// calls only: it runs the steps of the root or of a workspace, writes the
// job's files, enters the namespaces and executes job_init.
#include "runner/isolation_internal.h"

#include <fcntl.h>
#include <linux/mount.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <linux/seccomp.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>

namespace jc::runner {

namespace {

using detail::kBuildAt;
using detail::kHostName;
using detail::Op;
using Plan = detail::ChildPlan;

int sys_mount_setattr(const char* path, unsigned int flags, mount_attr* attr) {
#ifdef SYS_mount_setattr
  return static_cast<int>(syscall(SYS_mount_setattr, AT_FDCWD, path, flags, attr, sizeof *attr));
#else
  errno = ENOSYS;
  return -1;
#endif
}

// Runs one op; false with errno set on failure. Async-signal-safe.
bool run_op(const Op& op) {
  const char* p = op.path.c_str();
  switch (op.kind) {
    case Op::kTmpfs:
      return ::mount("tmpfs", p, "tmpfs", MS_NOSUID | MS_NODEV, op.arg.c_str()) == 0;
    case Op::kMkdir:
      return ::mkdir(p, 0755) == 0 || errno == EEXIST;
    case Op::kChmod: {
      mode_t mode = 0;
      for (char c : op.arg) mode = mode * 8 + static_cast<mode_t>(c - '0');
      return ::chmod(p, mode) == 0;
    }
    case Op::kSymlink:
      return ::symlink(op.arg.c_str(), p) == 0;
    case Op::kTouch: {
      int fd = ::open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      if (fd < 0) return false;
      ::close(fd);
      return true;
    }
    case Op::kWrite: {
      int fd = ::open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd < 0) return false;
      bool ok = ::write(fd, op.arg.data(), op.arg.size()) == static_cast<ssize_t>(op.arg.size());
      ::close(fd);
      return ok;
    }
    case Op::kBindRo: {
      if (::mount(op.arg.c_str(), p, nullptr, MS_BIND | MS_REC, nullptr) != 0) return false;
      // Read-only all the way down; a kernel before 5.12 makes only the top
      // mount read-only.
      mount_attr attr{};
      attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
      if (sys_mount_setattr(p, AT_RECURSIVE, &attr) == 0) return true;
      return ::mount(nullptr, p, nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV,
                     nullptr) == 0;
    }
    case Op::kBindDev:
      return ::mount(op.arg.c_str(), p, nullptr, MS_BIND, nullptr) == 0 &&
             ::mount(nullptr, p, nullptr, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NOEXEC, nullptr) ==
                 0;
    case Op::kRemountRo:
      return ::mount(nullptr, p, nullptr, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV,
                     op.arg.c_str()) == 0;
    case Op::kBindTmp:
      return ::mount(op.arg.c_str(), "/tmp", nullptr, MS_BIND, nullptr) == 0;
    case Op::kDetach:
      return ::umount2(p, MNT_DETACH) == 0;
    case Op::kFilesAndBox:
      break;  // needs the plan: child_main does it
  }
  errno = EINVAL;
  return false;
}

[[noreturn]] void child_fail(const char** step_out, int* error_out, const char* step) {
  *error_out = errno;
  *step_out = step;
  _exit(126);
}

bool write_files(const char* box_dir, const std::vector<protocol::FileSpec>& files, uid_t uid,
                 gid_t gid) {
  int box = ::open(box_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (box < 0) return false;
  for (const auto& f : files) {
    // A name may be a path ("src/main.c", from a zip): its directories are
    // made first, the job's too. (The child may not allocate: a stack buffer.)
    char dir[256];
    const char* name = f.name.c_str();
    for (std::size_t i = 0; name[i] != '\0' && i < sizeof dir - 1; ++i) {
      if (name[i] != '/') continue;
      std::memcpy(dir, name, i);
      dir[i] = '\0';
      if (::mkdirat(box, dir, 0755) != 0 && errno != EEXIST) {
        ::close(box);
        return false;
      }
      if (::fchownat(box, dir, uid, gid, AT_SYMLINK_NOFOLLOW) != 0) {
        ::close(box);
        return false;
      }
    }
    int fd = ::openat(box, f.name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                      0644);
    if (fd < 0) {
      ::close(box);
      return false;
    }
    std::size_t done = 0;
    while (done < f.content.size()) {
      ssize_t n = ::write(fd, f.content.data() + done, f.content.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        if (n == 0) errno = ENOSPC;
        ::close(fd);
        ::close(box);
        return false;
      }
      done += static_cast<std::size_t>(n);
    }
    if (::fchown(fd, uid, gid) != 0) {
      ::close(fd);
      ::close(box);
      return false;
    }
    ::close(fd);
  }
  ::close(box);
  return true;
}

// Moves `fd` to a number at or above `floor` (close-on-exec), so that dup2()
// onto 0..5 cannot overwrite a source that happens to sit there.
int lift(int fd, int floor) { return fd < 0 ? -1 : ::fcntl(fd, F_DUPFD_CLOEXEC, floor); }

int child_main(void* arg) {
  auto& p = *static_cast<Plan*>(arg);
  const char** step = &p.failed_step;
  int* err = &p.error;
  // The node's handlers must not run here, and what it ignores (SIGPIPE)
  // the job must not.
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    struct sigaction sa {};
    sa.sa_handler = SIG_DFL;
    ::sigaction(sig, &sa, nullptr);
  }
  ::umask(0);
  if (p.root_ops != nullptr) {
    if (::unshare(CLONE_NEWNS) != 0) child_fail(step, err, "unshare(CLONE_NEWNS)");
    // Nothing mounted here may reach the node's namespace, or the host's.
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0)
      child_fail(step, err, "making / a slave mount");
    for (const Op& op : *p.root_ops) {
      if (!run_op(op)) child_fail(step, err, op.path.c_str());
    }
  } else if (p.mnt_fd >= 0) {
    if (::setns(p.mnt_fd, CLONE_NEWNS) != 0) child_fail(step, err, "setns(mount)");
    if (::unshare(CLONE_NEWNS) != 0) child_fail(step, err, "unshare(CLONE_NEWNS)");
    if (p.workspace_ops != nullptr) {
      for (const Op& op : *p.workspace_ops) {
        if (op.kind == Op::kFilesAndBox) {
          // The files go in before /box is bound: the writable tmpfs is
          // still where nothing of the job can see it.
          if (p.files != nullptr && !write_files(op.arg.c_str(), *p.files, p.files_uid, p.files_gid))
            child_fail(step, err, "writing the job's files");
          if (::chown(op.arg.c_str(), p.files_uid, p.files_gid) != 0)
            child_fail(step, err, "giving /box to the job's user");
          if (::mount(op.arg.c_str(), "/box", nullptr, MS_BIND, nullptr) != 0)
            child_fail(step, err, "binding /box");
          continue;
        }
        if (!run_op(op)) child_fail(step, err, op.path.c_str());
      }
    }
  }
  if (p.ns_out != nullptr) {
    *p.ns_out = ::openat(p.proc_fd, "thread-self/ns/mnt", O_RDONLY | O_CLOEXEC);
    if (*p.ns_out < 0) child_fail(step, err, "opening the mount namespace");
  }
  if (p.pivot) {
    if (::chdir(kBuildAt) != 0 || ::syscall(SYS_pivot_root, ".", ".") != 0 ||
        ::umount2(".", MNT_DETACH) != 0 || ::chdir("/") != 0)
      child_fail(step, err, "pivot_root into the minimal root");
  }
  const SpawnSpec* s = p.spawn;
  if (s == nullptr) _exit(0);

  if (p.fs) {
    if (::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
      child_fail(step, err, "mounting /proc");
  }
  if (::chdir(p.workdir) != 0) child_fail(step, err, "entering the working directory");
  if (p.net && ::setns(p.net_fd, CLONE_NEWNET) != 0) child_fail(step, err, "setns(network)");
  if (p.uts && ::sethostname(kHostName, std::strlen(kHostName)) != 0)
    child_fail(step, err, "sethostname");
  for (int fd : s->cgroup_fds) {
    if (::write(fd, "0", 1) != 1) child_fail(step, err, "joining the run's cgroup");
  }
  auto limit = [&](int resource, std::uint64_t value, const char* what) {
    if (value == 0) return;
    rlimit l{static_cast<rlim_t>(value), static_cast<rlim_t>(value)};
    if (::setrlimit(resource, &l) != 0) child_fail(step, err, what);
  };
  limit(RLIMIT_AS, s->address_space_bytes, "RLIMIT_AS");
  if (s->cpu_seconds > 0) {
    // The soft limit sends SIGXCPU, the hard one a second later SIGKILL.
    rlimit l{static_cast<rlim_t>(s->cpu_seconds), static_cast<rlim_t>(s->cpu_seconds + 1)};
    if (::setrlimit(RLIMIT_CPU, &l) != 0) child_fail(step, err, "RLIMIT_CPU");
  }
  limit(RLIMIT_FSIZE, s->file_size_bytes, "RLIMIT_FSIZE");
  limit(RLIMIT_NPROC, s->processes, "RLIMIT_NPROC");
  limit(RLIMIT_STACK, s->stack_bytes, "RLIMIT_STACK");
  limit(RLIMIT_NOFILE, s->open_files, "RLIMIT_NOFILE");
  rlimit none{0, 0};
  ::setrlimit(RLIMIT_CORE, &none);
  // 0, 1, 2: the job's streams; 3: the script; 4: job_init's report;
  // 5: job_init itself (close-on-exec, executed through execveat).
  int src[6] = {lift(s->stdin_fd, 64),  lift(s->stdout_fd, 64), lift(s->stderr_fd, 64),
                lift(s->script_fd, 64), lift(s->status_fd, 64), lift(p.init_fd, 64)};
  for (int i = 0; i < 6; ++i) {
    if (src[i] < 0) child_fail(step, err, "arranging descriptors");
  }
  for (int i = 0; i < 5; ++i) {
    if (::dup2(src[i], i) != i) child_fail(step, err, "arranging descriptors");
  }
  if (::dup3(src[5], 5, O_CLOEXEC) != 5) child_fail(step, err, "arranging descriptors");
  if (::syscall(SYS_close_range, 6U, ~0U, 0U) != 0) {
    for (int fd = 6; fd < 65536; ++fd) ::close(fd);
  }
  ::umask(022);
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) child_fail(step, err, "no_new_privs");
  if (p.drop_user) {
    // No capability can come back: empty bounding and ambient sets, then a
    // user id that is not 0 (which clears the rest).
    for (int cap = 0; ::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0; ++cap) {
    }
    ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    if (::syscall(SYS_setgroups, 0, nullptr) != 0) child_fail(step, err, "setgroups");
    if (::syscall(SYS_setresgid, s->gid, s->gid, s->gid) != 0) child_fail(step, err, "setresgid");
    if (::syscall(SYS_setresuid, s->uid, s->uid, s->uid) != 0) child_fail(step, err, "setresuid");
  }
  // Should the node die, so does the run.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (p.filter != nullptr &&
      ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, p.filter, 0, 0) != 0)
    child_fail(step, err, "installing the system call filter");
  sigset_t none_blocked;
  sigemptyset(&none_blocked);
  ::sigprocmask(SIG_SETMASK, &none_blocked, nullptr);
  ::syscall(SYS_execveat, 5, "", p.argv, p.envp, AT_EMPTY_PATH);
  child_fail(step, err, "executing job_init");
}

}  // namespace

pid_t Isolation::clone_child(Plan& plan, int extra_flags, std::string& error) {
  char* top = detail::child_stack_top();
  if (top == nullptr) {
    error = fmt::format("cannot map a stack for the child: {}", std::strerror(errno));
    return -1;
  }
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = ::clone(child_main, top, CLONE_VM | CLONE_VFORK | SIGCHLD | extra_flags, &plan);
  int clone_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) {
    error = fmt::format("clone: {}", std::strerror(clone_errno));
    return -1;
  }
  if (plan.failed_step != nullptr) {
    int status = 0;
    ::waitpid(pid, &status, __WALL);
    error = fmt::format("{}: {}", plan.failed_step, std::strerror(plan.error));
    return -1;
  }
  return pid;
}

}  // namespace jc::runner
