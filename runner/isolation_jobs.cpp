// What a job asks of the sandbox: its workspace, the first process of each
// of its runs, and the end of what it leaves behind.
#include "runner/isolation_internal.h"

#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>

#include "runner/janitor.h"

namespace jc::runner {

namespace fs = std::filesystem;

namespace {

using detail::Op;
using detail::workspace_ops;
using Plan = detail::ChildPlan;

std::string workspace_error(const std::string& error, int err) {
  if (err == ENOSPC) return "the job's files do not fit in its --disk space";
  return "the node could not make the job's workspace: " + error;
}

}  // namespace

Workspace::~Workspace() { release(); }

void Workspace::release() {
  int fd = ns_fd_;
  std::string dir = std::move(dir_);
  ns_fd_ = -1;
  dir_.clear();
  if (fd < 0 && dir.empty()) return;
  Janitor::instance().post([fd, dir] {
    if (fd >= 0) ::close(fd);
    if (!dir.empty()) {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  });
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
  char* top = detail::child_stack_top();
  if (top == nullptr) return;
  pid_t pid = ::clone(body, top, CLONE_VM | CLONE_VFORK | SIGCHLD, &k);
  if (pid > 0) ::waitpid(pid, nullptr, __WALL);
}

}  // namespace jc::runner
