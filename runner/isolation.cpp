// The sandbox at start: it maps the children's stack, prepares the init
// program, probes every protection for real and builds the minimal root.
#include "runner/isolation_internal.h"

#include <fcntl.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <linux/seccomp.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>

#include "common/log.h"
#include "runner/syscall_filter.h"

// The static job_init program, linked in by runner/init_blob.S.
extern "C" const unsigned char jc_job_init_start[];
extern "C" const unsigned char jc_job_init_end[];

namespace jc::runner {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kStackSize = 256 * 1024;
// Slots beyond this many share network namespaces (each costs the kernel
// some memory; they still hold nothing and let nothing out).
constexpr std::uint32_t kNetworkNamespaces = 256;

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

using detail::root_ops;
using Plan = detail::ChildPlan;

}  // namespace

std::unique_ptr<Isolation> Isolation::create(const IsolationConfig& config) {
  std::unique_ptr<Isolation> iso(new Isolation());
  iso->config_ = config;
  if (detail::child_stack_top() == nullptr)
    throw std::runtime_error("cannot map a stack for job children");
  iso->proc_fd_ = ::open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
  iso->probe(config);
  return iso;
}

Isolation::~Isolation() {
  for (int fd : {root_ns_fd_, init_fd_, proc_fd_}) {
    if (fd >= 0) ::close(fd);
  }
  for (int fd : net_fds_) ::close(fd);
}

char* detail::child_stack_top() {
  struct Stack {
    void* base = MAP_FAILED;
    ~Stack() {
      if (base != MAP_FAILED) ::munmap(base, kStackSize);
    }
  };
  thread_local Stack stack;
  if (stack.base == MAP_FAILED) {
    stack.base = ::mmap(nullptr, kStackSize, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack.base == MAP_FAILED) return nullptr;
  }
  return static_cast<char*>(stack.base) + kStackSize;
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
  char* stack_top = detail::child_stack_top();  // mapped by create()
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

}  // namespace jc::runner
