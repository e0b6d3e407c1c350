#include "runner/syscall_filter.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>

namespace jc::runner {

namespace {

struct Rule {
  const char* name;
  int errno_value;
};

// Denied outright.
constexpr Rule kDenied[] = {
    {"clone3", ENOSYS},           {"io_uring_setup", ENOSYS}, {"io_uring_enter", ENOSYS},
    {"io_uring_register", ENOSYS}, {"keyctl", EPERM},         {"add_key", EPERM},
    {"request_key", EPERM},       {"bpf", EPERM},             {"userfaultfd", EPERM},
    {"perf_event_open", EPERM},
};

}  // namespace

std::vector<sock_filter> build_job_filter(std::string* why) {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr) {
    *why = "seccomp_init failed";
    return {};
  }
  auto fail = [&](const std::string& what, int rc) {
    *why = fmt::format("{}: {}", what, std::strerror(-rc));
    seccomp_release(ctx);
    return std::vector<sock_filter>{};
  };
  // The node sets no_new_privs itself, just before.
  if (int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0); rc != 0)
    return fail("seccomp_attr_set", rc);
  for (const Rule& r : kDenied) {
    int nr = seccomp_syscall_resolve_name(r.name);
    if (nr == __NR_SCMP_ERROR) continue;  // not on this architecture
    if (int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(r.errno_value), nr, 0); rc != 0)
      return fail(fmt::format("denying {}", r.name), rc);
  }
  // Sockets only of the families a network namespace scopes: AF_VSOCK, for
  // one, is not, and would reach the host's and other jobs' ports (and a
  // hypervisor). AF_UNIX, AF_INET, AF_INET6, AF_NETLINK stay.
  for (const char* name : {"socket", "socketpair"}) {
    int nr = seccomp_syscall_resolve_name(name);
    // The kernel's families are below 64 (AF_MAX is 46 in 6.x): each of
    // them but the four, one rule each.
    for (int family = 0; family < 64; ++family) {
      if (family == AF_UNIX || family == AF_INET || family == AF_INET6 || family == AF_NETLINK)
        continue;
      if (int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), nr, 1,
                                    SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(family)));
          rc != 0)
        return fail(fmt::format("denying {} of family {}", name, family), rc);
    }
    // And anything beyond what a kernel knows today.
    if (int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), nr, 1,
                                  SCMP_A0(SCMP_CMP_GE, 64));
        rc != 0)
      return fail(fmt::format("denying {} of unknown families", name), rc);
  }
  for (const char* name : {"clone", "unshare"}) {
    int nr = seccomp_syscall_resolve_name(name);
    // Both take the flags as their first argument on x86-64.
    if (int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 1,
                                  SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER));
        rc != 0)
      return fail(fmt::format("denying {} of a user namespace", name), rc);
  }
  // Export through a memfd: the version Debian 12 has no export to memory.
  int fd = ::memfd_create("seccomp", MFD_CLOEXEC);
  if (fd < 0) return fail("memfd_create", -errno);
  if (int rc = seccomp_export_bpf(ctx, fd); rc != 0) {
    ::close(fd);
    return fail("seccomp_export_bpf", rc);
  }
  seccomp_release(ctx);
  struct stat st {};
  ::fstat(fd, &st);
  std::vector<sock_filter> program(static_cast<std::size_t>(st.st_size) / sizeof(sock_filter));
  ssize_t n = ::pread(fd, program.data(), program.size() * sizeof(sock_filter), 0);
  ::close(fd);
  if (program.empty() || n != static_cast<ssize_t>(program.size() * sizeof(sock_filter))) {
    *why = "the exported filter could not be read back";
    return {};
  }
  return program;
}

}  // namespace jc::runner
