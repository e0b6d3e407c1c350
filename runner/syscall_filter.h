// The system calls a run job may not make, as a seccomp filter built once
// at start (with libseccomp, not by hand) and installed in every run before
// job_init is executed, so it holds for the whole tree. A deny list, as
// isolate's: everything else a program needs stays allowed.
//
// Denied, with EPERM unless said:
//   new user namespaces (clone or unshare with CLONE_NEWUSER): in one a job
//     is root of its own namespaces, a large surface of the kernel;
//   clone3 (ENOSYS: its flags cannot be inspected, and programs fall back to
//     clone, which can);
//   io_uring_setup, io_uring_enter, io_uring_register (ENOSYS);
//   keyctl, add_key, request_key: the kernel keyrings of a user id outlive a
//     job, and the next job of the slot has the same id;
//   bpf, userfaultfd, perf_event_open;
//   sockets of any family but AF_UNIX, AF_INET, AF_INET6 and AF_NETLINK
//     (EAFNOSUPPORT): the others, AF_VSOCK among them, are not scoped by a
//     network namespace;
//   system calls of another ABI (x32, 32-bit): the process is killed.
#pragma once

#include <linux/filter.h>

#include <string>
#include <vector>

namespace jc::runner {

// The filter's program, or empty with the reason in `why`.
std::vector<sock_filter> build_job_filter(std::string* why);

}  // namespace jc::runner
