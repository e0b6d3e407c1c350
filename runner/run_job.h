// One run job on this node: its writable space (Workspace), its check step
// once, then its command once per test case (or once), each a SandboxRun
// under the job's limits, judged (JobJudge) as it ends so that only what the
// result shows is kept; then the job's result. cancel() ends what runs and
// the job ends CANCELLED. Runs on the node's io_context thread.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "protocol/messages.h"
#include "runner/judge.h"
#include "runner/sandbox_run.h"

namespace jc::runner {

class RunJob : public std::enable_shared_from_this<RunJob> {
 public:
  using Done = std::function<void(protocol::JobResult)>;
  RunJob(boost::asio::io_context& io, ChildReaper& reaper, Sandbox& sandbox,
         protocol::Assignment job, std::uint32_t slot, uid_t uid, gid_t gid, Done done);
  ~RunJob();
  void start();
  void cancel();

 private:
  void run_next();
  void finish();
  void fail_setup(const std::string& why);
  void on_run_end(Observation o);

  boost::asio::io_context& io_;
  ChildReaper& reaper_;
  Sandbox& sandbox_;
  protocol::Assignment job_;
  Done done_;
  std::uint32_t slot_;
  uid_t uid_;
  gid_t gid_;
  std::unique_ptr<Workspace> workspace_;
  int command_fd_ = -1;  // the scripts, sealed memfds
  int check_fd_ = -1;
  std::unique_ptr<JobGroup> job_group_;  // its cgroup, where the node has cgroups
  std::shared_ptr<SandboxRun> current_;
  JobJudge judge_;  // after job_, whose spec it reads
  std::optional<std::string> start_failure_;  // the node could not start a run: why
  std::int64_t start_ms_ = 0;
  bool cancelled_ = false;
  bool check_done_ = false;
};

// A sealed memfd holding `script`, or -1 (errno set).
int make_script_fd(const std::string& script);

}  // namespace jc::runner
