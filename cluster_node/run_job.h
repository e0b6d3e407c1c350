// One run job on this node: makes its fresh working directory, writes its
// files, runs the check step once and then the command once per test case
// (or once), each in the sandbox under the same limits, judges, and removes
// the directory. cancel() kills what runs and ends the job CANCELLED.
// Runs on the node's io_context thread.
#pragma once

#include <functional>
#include <memory>

#include "cluster_node/sandbox.h"
#include "protocol/messages.h"

namespace jc::node {

class RunJob : public std::enable_shared_from_this<RunJob> {
 public:
  using Done = std::function<void(protocol::JobResult)>;
  RunJob(boost::asio::io_context& io, ChildReaper& reaper, const SandboxSettings& settings,
         protocol::Assignment job, uid_t uid, gid_t gid, Done done);
  void start();
  void cancel();

 private:
  void run_next();
  void finish();
  std::string prepare_workdir();

  boost::asio::io_context& io_;
  ChildReaper& reaper_;
  const SandboxSettings& settings_;
  protocol::Assignment job_;
  Done done_;
  uid_t uid_;
  gid_t gid_;
  std::string workdir_;
  std::shared_ptr<SandboxProcess> current_;
  std::optional<ProcessOutcome> check_;
  std::vector<ProcessOutcome> runs_;
  std::int64_t start_ms_ = 0;
  bool cancelled_ = false;
  bool check_done_ = false;
};

}  // namespace jc::node
