// One run of a job's script in the sandbox (its check step, one test case,
// or its only run): it starts it in a fresh cgroup under its job's
// (runner/cgroup.h), feeds its stdin, reads its stdout and stderr (cut at
// --output, which also ends the run), ends it at --timeout (wall clock) and
// at --cpu (the tree's CPU time, checked as it accrues), and reports what
// it observed. The judge, not the sandbox, turns that into a verdict.
//
// Runs on the node's io_context thread, which it never blocks on the kernel:
// the run's cgroup and its child are made on the sandbox's launcher threads
// (common/work_threads.h), and its cgroup removed on the janitor's.
#pragma once

#include <array>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "net/asio.h"
#include "protocol/job.h"
#include "runner/cgroup.h"
#include "runner/child_reaper.h"
#include "runner/isolation.h"
#include "runner/observation.h"
#include "runner/sandbox.h"

namespace jc::runner {

struct RunRequest {
  const Workspace* workspace = nullptr;
  JobGroup* job_group = nullptr;  // where its cgroup goes; none without cgroups
  int script_fd = -1;             // a sealed memfd with the script
  std::string stdin_data;
  protocol::Limits limits;  // all set (no zero = default here)
  uid_t uid = 0;
  gid_t gid = 0;
  std::uint32_t slot = 0;
};

class SandboxRun : public std::enable_shared_from_this<SandboxRun> {
 public:
  using Done = std::function<void(Observation)>;
  static std::shared_ptr<SandboxRun> start(boost::asio::io_context& io, ChildReaper& reaper,
                                           Sandbox& sandbox, RunRequest request, Done done);
  // Ends the run; it is reported cancelled when `cancelled`.
  void kill(bool cancelled);

  SandboxRun(boost::asio::io_context& io, Sandbox& sandbox, RunRequest request, Done done);
  ~SandboxRun();

 private:
  void launch(ChildReaper& reaper);
  // Back on the event loop once the launcher has spawned job_init (`pid`,
  // or -1 and `error`) in `spawn_us`.
  void spawned(ChildReaper& reaper, pid_t pid, const std::string& error, std::int64_t spawn_us);
  // Hands the run's cgroup to the janitor's thread for removal.
  void remove_group();
  // On the launcher's thread: the run's cgroup, when the job has one, and
  // its cgroup.procs files opened into spawn_spec_.
  bool make_group(std::uint64_t memory, std::uint32_t processes, std::unique_ptr<RunGroup>& group,
                  std::string& error);
  void read_stream(boost::asio::posix::stream_descriptor& d, std::string& into, bool& truncated,
                   bool& open, std::array<char, 16384>& buffer);
  void read_report();
  // Reads what a pipe holds now, without waiting.
  void drain(boost::asio::posix::stream_descriptor& d, std::string& into, bool& truncated);
  void append_output(std::string& into, bool& truncated, const char* data, std::size_t n);
  void check_cpu(std::int64_t used_ns);
  void end_processes();
  void on_exit(int status);
  void maybe_finish();
  void finish();
  void fail(const std::string& why);

  boost::asio::io_context& io_;
  Sandbox& sandbox_;
  RunRequest request_;
  Done done_;
  pid_t pid_ = -1;
  int init_status_ = 0;
  // While the launcher spawns: what it spawns with, the pipes' two ends
  // (the child's are closed once it has them) and the cgroup files it joins.
  SpawnSpec spawn_spec_;
  int stdin_w_ = -1, stdout_r_ = -1, stderr_r_ = -1, report_r_ = -1;
  std::vector<int> child_fds_;
  bool launching_ = false;
  bool kill_pending_ = false;  // kill() came while launching
  std::unique_ptr<RunGroup> group_;
  RunUsage usage_;
  boost::asio::posix::stream_descriptor in_, out_, err_, report_;
  boost::asio::steady_timer deadline_, cpu_timer_, grace_, escalate_;
  std::chrono::steady_clock::time_point started_;
  Observation observed_;
  std::string report_bytes_;
  std::size_t output_limit_ = 0;
  bool out_open_ = false, err_open_ = false, report_open_ = false;
  bool exited_ = false, finished_ = false, killing_ = false;
  bool giving_up_ = false;  // the grace after job_init's end is over
  std::array<char, 16384> buffer_out_{}, buffer_err_{};
  std::array<char, 256> buffer_report_{};
};

}  // namespace jc::runner
