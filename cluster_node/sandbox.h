// Runs one shell command of a run job in a sandbox, without blocking the
// event loop: its own session (process group), rlimits on address space,
// CPU time, file size, processes and core dumps, a minimal environment, a
// working directory of its own, stdout and stderr captured separately and
// cut at the output limit, and, where the node has the privilege, another
// user (JOB_USER, default nobody) and no network (a new network namespace).
// A wall-clock timer and cancel kill the whole process group.
//
// What the node cannot apply is decided once by probe_sandbox() and logged.
// Children are reaped by ChildReaper (SIGCHLD + wait4), so no zombies stay.
// Runs on the node's io_context thread.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "cluster_node/judge.h"
#include "net/asio.h"

namespace jc::node {

struct SandboxSettings {
  std::string work_root;  // per-job working directories are made below it
  bool drop_user = false;
  uid_t uid = 0;  // JOB_USER's, when jobs share one user
  gid_t gid = 0;
  std::string user;
  // Each running job gets a user id of its own, uid_base + its slot, so that
  // one job's fork bomb exhausts only its own process limit, and jobs cannot
  // signal or read each other's files. 0: all jobs run as JOB_USER.
  uid_t uid_base = 0;
  bool isolate_network = false;
  int network_fd = -1;  // an empty network namespace that jobs enter
  bool limit_processes = false;
  std::uint32_t max_processes = 256;  // RLIMIT_NPROC of the job's user
};

// Decides what this process can apply; logs once what it cannot.
SandboxSettings probe_sandbox(const std::string& work_root, const std::string& job_user,
                              uid_t uid_base, std::uint32_t slots);

class ChildReaper {
 public:
  using OnExit = std::function<void(int status, const rusage& usage)>;
  explicit ChildReaper(boost::asio::io_context& io);
  void watch(pid_t pid, OnExit on_exit);
  void stop() { signals_.cancel(); }

 private:
  void wait_signal();
  void reap();
  boost::asio::signal_set signals_;
  std::unordered_map<pid_t, OnExit> children_;
};

struct ProcessRequest {
  std::string script;
  std::string stdin_data;
  std::string workdir;
  protocol::Limits limits;  // all set (no zero = default here)
  uid_t uid = 0;            // used when the settings drop the user
  gid_t gid = 0;
};

class SandboxProcess : public std::enable_shared_from_this<SandboxProcess> {
 public:
  using Done = std::function<void(ProcessOutcome)>;
  static std::shared_ptr<SandboxProcess> start(boost::asio::io_context& io, ChildReaper& reaper,
                                               const SandboxSettings& settings,
                                               ProcessRequest request, Done done);
  // Kills the process group; the outcome says cancelled when `cancelled`.
  void kill(bool cancelled);

  SandboxProcess(boost::asio::io_context& io, ProcessRequest request, Done done);

 private:
  void launch(ChildReaper& reaper, const SandboxSettings& settings);
  void read_stream(boost::asio::posix::stream_descriptor& d, std::string& into, bool& truncated,
                   bool& open);
  void on_exit(int status, const rusage& usage);
  void maybe_finish();
  void finish();
  void fail(const std::string& why);

  boost::asio::io_context& io_;
  ProcessRequest request_;
  Done done_;
  pid_t pid_ = -1;
  boost::asio::posix::stream_descriptor in_, out_, err_;
  boost::asio::steady_timer deadline_, grace_;
  std::chrono::steady_clock::time_point started_;
  ProcessOutcome outcome_;
  std::size_t output_limit_ = 0;
  bool out_open_ = false, err_open_ = false, exited_ = false, finished_ = false;
  std::array<char, 16384> buffer_out_{}, buffer_err_{};
};

}  // namespace jc::node
