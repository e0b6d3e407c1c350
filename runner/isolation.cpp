#include "runner/isolation.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/mount.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <linux/seccomp.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>

#include "common/log.h"
#include "runner/janitor.h"
#include "runner/syscall_filter.h"

// The static job_init program, linked in by runner/init_blob.S.
extern "C" const unsigned char jc_job_init_start[];
extern "C" const unsigned char jc_job_init_end[];

namespace jc::runner {

namespace fs = std::filesystem;

namespace {

// Where, inside a private mount namespace of its own, the helper that builds
// the minimal root mounts it before it makes it the root: any directory will
// do, nothing outside that namespace sees the mount.
constexpr const char* kBuildAt = "/tmp";
// The root's own tmpfs holds only mount points, links and a few small files.
constexpr const char* kRootTmpfs = "size=4m,nr_inodes=4096,mode=0755";
constexpr const char* kHostName = "jobcluster";
// Files of /etc that programs need to start, bound read-only when they exist
// (a link is copied as a link). passwd, group, hosts and nsswitch.conf are
// written instead: the host's list its users and its network.
constexpr const char* kEtcEntries[] = {"ld.so.cache", "ld.so.conf", "ld.so.conf.d",
                                       "alternatives", "localtime"};
// Top-level links of a merged-/usr system, or directories of an older one.
constexpr const char* kTopLevel[] = {"bin", "sbin", "lib", "lib32", "lib64", "libx32"};
constexpr const char* kDevices[] = {"null", "zero", "full", "random", "urandom"};
// A job's tmpfs: inodes in proportion to its size, so that a million empty
// files cannot be made (their removal would take seconds).
constexpr std::uint64_t kInodesPerMegabyte = 256;
constexpr std::uint64_t kMinInodes = 1024;
constexpr std::size_t kStackSize = 256 * 1024;
// Slots beyond this many share network namespaces (each costs the kernel
// some memory; they still hold nothing and let nothing out).
constexpr std::uint32_t kNetworkNamespaces = 256;

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

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

bool exists_no_follow(const std::string& p, struct stat& st) { return ::lstat(p.c_str(), &st) == 0; }

// Ops that make `host` (a file, directory or link) appear at `at` in the root.
void add_entry(std::vector<Op>& ops, const std::string& host, const std::string& at) {
  struct stat st {};
  if (!exists_no_follow(host, st)) return;
  if (S_ISLNK(st.st_mode)) {
    std::error_code ec;
    auto target = fs::read_symlink(host, ec);
    if (!ec) ops.push_back({Op::kSymlink, at, target.string()});
  } else if (S_ISDIR(st.st_mode)) {
    ops.push_back({Op::kMkdir, at, ""});
    ops.push_back({Op::kBindRo, at, host});
  } else {
    ops.push_back({Op::kTouch, at, ""});
    ops.push_back({Op::kBindRo, at, host});
  }
}

// Ops for the parents of `path` under `base` (mkdir -p).
void add_parents(std::vector<Op>& ops, const std::string& base, const std::string& path) {
  std::string so_far;
  fs::path parent = fs::path(path).parent_path();
  for (const auto& part : parent) {
    if (part == "/") continue;
    so_far += "/" + part.string();
    ops.push_back({Op::kMkdir, base + so_far, ""});
  }
}

std::string synthetic_passwd(const IsolationConfig& c, uid_t job_uid, gid_t job_gid,
                             bool groups) {
  std::string out = groups ? "root:x:0:\nnogroup:x:65534:\n"
                           : "root:x:0:0:root:/root:/usr/sbin/nologin\n"
                             "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
  auto line = [&](const std::string& name, std::uint32_t uid, std::uint32_t gid) {
    out += groups ? fmt::format("{}:x:{}:\n", name, gid)
                  : fmt::format("{}:x:{}:{}:{}:/box:/bin/sh\n", name, uid, gid, name);
  };
  if (c.uid_base > 0) {
    for (std::uint32_t i = 0; i < c.slots; ++i) line(fmt::format("job{}", i), c.uid_base + i, c.uid_base + i);
  } else if (job_uid != 65534) {
    line("job", job_uid, job_gid);
  }
  return out;
}

std::vector<Op> root_ops(const IsolationConfig& c, uid_t job_uid, gid_t job_gid) {
  const std::string b = kBuildAt;
  std::vector<Op> ops;
  ops.push_back({Op::kTmpfs, b, kRootTmpfs});
  for (const char* d : {"usr", "etc", "dev", "proc", "tmp", "box"}) ops.push_back({Op::kMkdir, b + "/" + d, ""});
  ops.push_back({Op::kBindRo, b + "/usr", "/usr"});
  for (const char* top : kTopLevel) add_entry(ops, std::string("/") + top, b + "/" + top);
  for (const char* e : kEtcEntries) add_entry(ops, std::string("/etc/") + e, b + "/etc/" + e);
  // Language runtimes' configuration (the JVM cannot start without its
  // jvm.cfg, which Debian keeps in /etc/java-<version>-openjdk).
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/etc", ec)) {
    std::string name = entry.path().filename().string();
    if (name.rfind("java-", 0) == 0) add_entry(ops, entry.path().string(), b + "/etc/" + name);
  }
  ops.push_back({Op::kWrite, b + "/etc/passwd", synthetic_passwd(c, job_uid, job_gid, false)});
  ops.push_back({Op::kWrite, b + "/etc/group", synthetic_passwd(c, job_uid, job_gid, true)});
  ops.push_back({Op::kWrite, b + "/etc/hosts", "127.0.0.1 localhost\n::1 localhost\n"});
  ops.push_back({Op::kWrite, b + "/etc/hostname", std::string(kHostName) + "\n"});
  ops.push_back({Op::kWrite, b + "/etc/nsswitch.conf",
                 "passwd: files\ngroup: files\nshadow: files\nhosts: files\n"});
  for (const char* d : kDevices) {
    std::string host = std::string("/dev/") + d;
    if (::access(host.c_str(), F_OK) != 0) continue;
    ops.push_back({Op::kTouch, b + "/dev/" + d, ""});
    ops.push_back({Op::kBindDev, b + "/dev/" + d, host});
  }
  ops.push_back({Op::kSymlink, b + "/dev/fd", "/proc/self/fd"});
  ops.push_back({Op::kSymlink, b + "/dev/stdin", "/proc/self/fd/0"});
  ops.push_back({Op::kSymlink, b + "/dev/stdout", "/proc/self/fd/1"});
  ops.push_back({Op::kSymlink, b + "/dev/stderr", "/proc/self/fd/2"});
  // POSIX shared memory (shm_open, Python's multiprocessing) lands in the
  // job's /tmp, inside its --disk and its memory.
  ops.push_back({Op::kSymlink, b + "/dev/shm", "/tmp"});
  // JOB_READONLY_PATHS: each at its own path (a link as a link to its
  // target, which is bound too); one inside /usr, or inside another entry,
  // is there already.
  std::vector<std::string> bound{"/usr"};
  auto covered = [&](const std::string& p) {
    for (const auto& done : bound) {
      if (p == done || p.rfind(done + "/", 0) == 0) return true;
    }
    return false;
  };
  std::vector<std::string> paths = c.readonly_paths;
  std::sort(paths.begin(), paths.end(),
            [](const std::string& x, const std::string& y) { return x.size() < y.size(); });
  for (const auto& p : paths) {
    std::error_code canon_ec;
    std::string real = fs::canonical(p, canon_ec).string();
    if (canon_ec) continue;
    if (!covered(real)) {
      add_parents(ops, b, real);
      add_entry(ops, real, b + real);
      bound.push_back(real);
    }
    if (real != p && !covered(p)) {
      add_parents(ops, b, p);
      ops.push_back({Op::kSymlink, b + p, real});
      bound.push_back(p);
    }
  }
  ops.push_back({Op::kRemountRo, b, kRootTmpfs});
  return ops;
}

}  // namespace


// Everything a child needs, prepared by the parent; the child reads it and
// writes only `failed_step` and `error` (and `*ns_out`).
struct detail::ChildPlan {
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

namespace {

using Plan = detail::ChildPlan;

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
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  char* top = static_cast<char*>(stack_) + stack_size_;
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

Workspace::~Workspace() { release(); }

void Workspace::release() {
  int fd = ns_fd_;
  std::string dir = std::move(dir_);
  ns_fd_ = -1;
  dir_.clear();
  if (fd < 0 && dir.empty()) return;
  Janitor::instance().defer([fd, dir] {
    if (fd >= 0) ::close(fd);
    if (!dir.empty()) {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  });
}

std::unique_ptr<Isolation> Isolation::create(const IsolationConfig& config) {
  std::unique_ptr<Isolation> iso(new Isolation());
  iso->config_ = config;
  iso->stack_size_ = kStackSize;
  iso->stack_ = ::mmap(nullptr, kStackSize, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (iso->stack_ == MAP_FAILED) throw std::runtime_error("cannot map a stack for job children");
  iso->proc_fd_ = ::open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
  iso->probe(config);
  return iso;
}

Isolation::~Isolation() {
  for (int fd : {root_ns_fd_, init_fd_, proc_fd_}) {
    if (fd >= 0) ::close(fd);
  }
  for (int fd : net_fds_) ::close(fd);
  if (stack_ != nullptr && stack_ != MAP_FAILED) ::munmap(stack_, stack_size_);
}

namespace {

// The embedded job_init in a sealed memfd: executable from inside any mount
// namespace, and invisible there.
int make_init_memfd(std::string& why) {
  int fd = static_cast<int>(::syscall(SYS_memfd_create, "jobcluster-init",
                                      MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC));
  if (fd < 0 && errno == EINVAL) {
    fd = static_cast<int>(
        ::syscall(SYS_memfd_create, "jobcluster-init", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  }
  if (fd < 0) {
    why = fmt::format("memfd_create: {}", std::strerror(errno));
    return -1;
  }
  const unsigned char* p = jc_job_init_start;
  std::size_t left = static_cast<std::size_t>(jc_job_init_end - jc_job_init_start);
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n <= 0) {
      why = fmt::format("writing the init program: {}", std::strerror(errno));
      ::close(fd);
      return -1;
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  ::fchmod(fd, 0755);
  ::fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL);
  return fd;
}

struct NetProbe {
  int proc_fd;
  int fd;
  int err;
};

int net_child(void* arg) {
  auto* probe = static_cast<NetProbe*>(arg);
  if (::unshare(CLONE_NEWNET) != 0) {
    probe->err = errno;
    _exit(1);
  }
  // Its own namespace: opening it needs no right over another process
  // (which a container without CAP_SYS_PTRACE lacks). The descriptor lands
  // in the parent's table (CLONE_FILES) and keeps the namespace.
  probe->fd = ::openat(probe->proc_fd, "thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (probe->fd < 0) probe->err = errno;
  _exit(0);
}

// One empty network namespace (a loopback that is down), kept by a
// descriptor: jobs enter it with setns(), which costs almost nothing, where
// making a network namespace per job costs about a millisecond and more to
// tear down. -1 with the reason in `why`.
int make_empty_network_namespace(int proc_fd, void* stack_top, std::string& why) {
  NetProbe probe{proc_fd, -1, 0};
  pid_t pid =
      ::clone(net_child, stack_top, CLONE_VM | CLONE_VFORK | CLONE_FILES | SIGCHLD, &probe);
  if (pid < 0) {
    why = fmt::format("clone: {}", std::strerror(errno));
    return -1;
  }
  ::waitpid(pid, nullptr, __WALL);
  if (probe.fd < 0) why = fmt::format("unshare(CLONE_NEWNET): {}", std::strerror(probe.err));
  return probe.fd;
}

int trivial_child(void*) { _exit(0); }

// Whether clone() with these namespace flags is permitted here.
bool can_clone(int flags, void* stack_top) {
  pid_t pid = ::clone(trivial_child, stack_top, CLONE_VM | CLONE_VFORK | SIGCHLD | flags, nullptr);
  if (pid < 0) return false;
  ::waitpid(pid, nullptr, __WALL);
  return true;
}

int filter_child(void* arg) {
  auto* program = static_cast<const sock_fprog*>(arg);
  bool ok = ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
            ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, program, 0, 0) == 0;
  _exit(ok ? 0 : 1);
}

// Whether this kernel takes the filter (a child tries it).
bool can_filter(const sock_fprog& program, void* stack_top) {
  pid_t pid = ::clone(filter_child, stack_top, CLONE_VM | CLONE_VFORK | SIGCHLD,
                      const_cast<sock_fprog*>(&program));
  if (pid < 0) return false;
  int status = 0;
  ::waitpid(pid, &status, __WALL);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

struct IdProbe {
  uid_t uid;
  int ok;
};

int setuid_child(void* arg) {
  auto* probe = static_cast<IdProbe*>(arg);
  probe->ok = ::syscall(SYS_setgroups, 0, nullptr) == 0 &&
              ::syscall(SYS_setresgid, probe->uid, probe->uid, probe->uid) == 0 &&
              ::syscall(SYS_setresuid, probe->uid, probe->uid, probe->uid) == 0;
  _exit(0);
}

}  // namespace

void Isolation::probe(const IsolationConfig& config) {
  auto log = log::get("sandbox");
  std::vector<std::string> missing;
  char* stack_top = static_cast<char*>(stack_) + stack_size_;
  std::string why;
  init_fd_ = make_init_memfd(why);
  if (init_fd_ < 0) throw std::runtime_error("cannot prepare the job init program: " + why);

  bool root = ::geteuid() == 0;
  if (root) {
    if (config.uid_base == 0) {
      passwd* pw = ::getpwnam(config.job_user.c_str());
      if (pw == nullptr) {
        missing.push_back(
            fmt::format("user (JOB_USER '{}' does not exist: jobs run as the node's user)",
                        config.job_user));
      } else {
        job_uid_ = pw->pw_uid;
        job_gid_ = pw->pw_gid;
      }
    }
    IdProbe id{config.uid_base > 0 ? config.uid_base : job_uid_, 0};
    if (id.uid != 0) {
      pid_t pid = ::clone(setuid_child, stack_top, CLONE_VM | CLONE_VFORK | SIGCHLD, &id);
      if (pid > 0) ::waitpid(pid, nullptr, __WALL);
      protections_.user = id.ok == 1;
      if (!protections_.user) missing.push_back("user (setresuid is not permitted: no CAP_SETUID)");
    }
  } else {
    missing.push_back("user (the node does not run as root: jobs run as the node's user)");
  }
  protections_.pid = can_clone(CLONE_NEWPID, stack_top);
  protections_.ipc = can_clone(CLONE_NEWIPC, stack_top);
  protections_.uts = can_clone(CLONE_NEWUTS, stack_top);
  for (auto [ok, name] : {std::pair{protections_.pid, "pid"}, std::pair{protections_.ipc, "ipc"},
                          std::pair{protections_.uts, "uts"}}) {
    if (!ok) missing.push_back(fmt::format("{} (a new {} namespace is not permitted)", name, name));
  }
  filter_ = build_job_filter(&why);
  if (!filter_.empty()) {
    filter_program_.len = static_cast<unsigned short>(filter_.size());
    filter_program_.filter = filter_.data();
    protections_.seccomp = can_filter(filter_program_, stack_top);
    if (!protections_.seccomp) why = "the kernel refused it";
  }
  if (!protections_.seccomp)
    missing.push_back(fmt::format("seccomp (no system call filter: {})", why));
  why = "needs root";
  if (root) {
    std::uint32_t wanted = std::min<std::uint32_t>(std::max<std::uint32_t>(config.slots, 1),
                                                   kNetworkNamespaces);
    for (std::uint32_t i = 0; i < wanted; ++i) {
      int fd = make_empty_network_namespace(proc_fd_, stack_top, why);
      if (fd < 0) break;
      net_fds_.push_back(fd);
    }
  }
  protections_.net = !net_fds_.empty();
  if (!protections_.net)
    missing.push_back(fmt::format("net (no empty network namespace: {}; jobs share the node's network)", why));
  if (build_root(config, why)) {
    protections_.fs = true;
  } else {
    missing.push_back(fmt::format(
        "fs (cannot build the minimal root: {}; jobs see the node's file system and work in {})",
        why, config.work_root));
  }
  if (!protections_.fs) {
    std::error_code ec;
    fs::create_directories(config.work_root, ec);
    // Others may pass through to their own directory, not list the rest.
    ::chmod(config.work_root.c_str(), 0711);
  }
  for (const auto& m : missing) log->warn("cannot apply {}", m);
}

bool Isolation::build_root(const IsolationConfig& config, std::string& why) {
  if (::geteuid() != 0) {
    why = "needs root";
    return false;
  }
  for (const auto& p : config.readonly_paths) {
    if (!fs::path(p).is_absolute() || ::access(p.c_str(), F_OK) != 0) {
      why = fmt::format("JOB_READONLY_PATHS entry '{}' does not exist", p);
      return false;
    }
  }
  uid_t uid = config.uid_base > 0 ? config.uid_base : job_uid_;
  auto ops = root_ops(config, uid, config.uid_base > 0 ? config.uid_base : job_gid_);
  Plan plan;
  plan.root_ops = &ops;
  plan.proc_fd = proc_fd_;
  plan.ns_out = &root_ns_fd_;
  plan.pivot = true;
  std::string error;
  pid_t pid = clone_child(plan, CLONE_FILES, error);
  if (pid < 0) {
    why = error;
    return false;
  }
  int status = 0;
  ::waitpid(pid, &status, __WALL);
  if (root_ns_fd_ < 0) {
    why = "the helper did not report its mount namespace";
    return false;
  }
  return true;
}

uid_t Isolation::slot_uid(std::uint32_t slot) const {
  if (!protections_.user) return ::geteuid();
  return config_.uid_base > 0 ? config_.uid_base + slot : job_uid_;
}

gid_t Isolation::slot_gid(std::uint32_t slot) const {
  if (!protections_.user) return ::getegid();
  return config_.uid_base > 0 ? config_.uid_base + slot : job_gid_;
}

const char* Isolation::init_mode() const {
  if (protections_.pid) return "pid1";
  if (protections_.user && config_.uid_base > 0) return "uid";
  return "tree";
}

namespace {

std::string workspace_error(const std::string& error, int err) {
  if (err == ENOSPC) return "the job's files do not fit in its --disk space";
  return "the node could not make the job's workspace: " + error;
}

std::vector<Op> workspace_ops(const WorkspaceSpec& s) {
  std::uint64_t mb = std::max<std::uint64_t>(1, s.disk_bytes >> 20);
  std::string options = fmt::format("size={},nr_inodes={},mode=0755", s.disk_bytes,
                                    std::max(kMinInodes, mb * kInodesPerMegabyte));
  // The tmpfs goes up at /proc (empty now: the run mounts its own proc
  // later), /box and /tmp are bound from it, and it comes down from /proc
  // again: both on one tmpfs, one --disk for the two.
  return {{Op::kTmpfs, "/proc", options},
          {Op::kMkdir, "/proc/box", ""},
          {Op::kChmod, "/proc/box", "0700"},
          {Op::kMkdir, "/proc/tmp", ""},
          {Op::kChmod, "/proc/tmp", "1777"},
          {Op::kFilesAndBox, "/proc", "/proc/box"},
          {Op::kBindTmp, "/tmp", "/proc/tmp"},
          {Op::kDetach, "/proc", ""}};
}

}  // namespace

std::string Isolation::make_workspace(const WorkspaceSpec& spec, std::size_t runs,
                                      std::unique_ptr<Workspace>& out) {
  out = std::make_unique<Workspace>();
  out->spec_ = spec;
  if (!protections_.fs) {
    out->dir_ = fmt::format("{}/{}", config_.work_root, spec.name);
    std::error_code ec;
    fs::remove_all(out->dir_, ec);
    if (!fs::create_directory(out->dir_, ec))
      return fmt::format("cannot create {}: {}", out->dir_, ec.message());
    ::chmod(out->dir_.c_str(), 0700);
    bool chown_ok = !protections_.user || ::chown(out->dir_.c_str(), spec.uid, spec.gid) == 0;
    if (!chown_ok) return "cannot hand " + out->dir_ + " to the job's user";
    if (spec.files != nullptr) {
      for (const auto& f : *spec.files) {
        std::string path = out->dir_ + "/" + f.name;
        if (auto slash = f.name.rfind('/'); slash != std::string::npos) {
          std::error_code dir_ec;
          fs::create_directories(out->dir_ + "/" + f.name.substr(0, slash), dir_ec);
        }
        std::ofstream file(path, std::ios::binary);
        file.write(f.content.data(), static_cast<std::streamsize>(f.content.size()));
        if (!file || (protections_.user && ::chown(path.c_str(), spec.uid, spec.gid) != 0))
          return "cannot write " + f.name;
      }
    }
    return "";
  }
  if (runs <= 1) {
    // The one run makes it in its own mount namespace: one clone fewer, and
    // the tmpfs goes with that namespace when the run ends.
    out->ephemeral_ = true;
    return "";
  }
  auto ops = workspace_ops(spec);
  Plan plan;
  plan.mnt_fd = root_ns_fd_;
  plan.workspace_ops = &ops;
  plan.files = spec.files;
  plan.files_uid = spec.uid;
  plan.files_gid = spec.gid;
  plan.proc_fd = proc_fd_;
  plan.ns_out = &out->ns_fd_;
  std::string error;
  pid_t pid = clone_child(plan, CLONE_FILES, error);
  if (pid < 0) return workspace_error(error, plan.error);
  ::waitpid(pid, nullptr, __WALL);
  return "";
}

pid_t Isolation::spawn(const SpawnSpec& spec, std::string& error) {
  const Workspace& ws = *spec.workspace;
  Plan plan;
  plan.spawn = &spec;
  plan.fs = protections_.fs;
  plan.net = protections_.net && !spec.network;
  plan.uts = protections_.uts;
  plan.drop_user = protections_.user;
  plan.net_fd = net_fds_.empty() ? -1 : net_fds_[spec.slot % net_fds_.size()];
  plan.init_fd = init_fd_;
  plan.proc_fd = proc_fd_;
  if (protections_.seccomp) plan.filter = &filter_program_;
  std::vector<Op> ops;
  if (protections_.fs) {
    plan.mnt_fd = ws.ns_fd_ >= 0 ? ws.ns_fd_ : root_ns_fd_;
    if (ws.ns_fd_ < 0) {
      ops = workspace_ops(ws.spec_);
      plan.workspace_ops = &ops;
      plan.files = ws.spec_.files;
      plan.files_uid = ws.spec_.uid;
      plan.files_gid = ws.spec_.gid;
    }
    plan.workdir = "/box";
  } else {
    plan.workdir = ws.dir_.c_str();
  }
  std::string home = "HOME=" + (protections_.fs ? std::string("/box") : ws.dir_);
  std::string tmp = "TMPDIR=" + (protections_.fs ? std::string("/tmp") : ws.dir_);
  const char* envp[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", home.c_str(),
                        tmp.c_str(), nullptr};
  const char* argv[] = {"jobcluster-init", init_mode(), nullptr};
  plan.argv = const_cast<char* const*>(argv);
  plan.envp = const_cast<char* const*>(envp);
  int flags = (protections_.pid ? CLONE_NEWPID : 0) | (protections_.ipc ? CLONE_NEWIPC : 0) |
              (protections_.uts ? CLONE_NEWUTS : 0);
  pid_t pid = clone_child(plan, flags, error);
  if (pid < 0 && plan.error == ENOSPC) error = workspace_error(error, ENOSPC);
  return pid;
}

void Isolation::kill_user(uid_t uid) {
  if (!protections_.user || uid == 0) return;
  struct Killer {
    uid_t uid;
  } k{uid};
  auto body = [](void* arg) -> int {
    uid_t u = static_cast<Killer*>(arg)->uid;
    if (::syscall(SYS_setresuid, u, u, u) == 0) ::kill(-1, SIGKILL);
    _exit(0);
  };
  char* top = static_cast<char*>(stack_) + stack_size_;
  pid_t pid = ::clone(body, top, CLONE_VM | CLONE_VFORK | SIGCHLD, &k);
  if (pid > 0) ::waitpid(pid, nullptr, __WALL);
}

}  // namespace jc::runner
