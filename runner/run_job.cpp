#include "runner/run_job.h"

#include "runner/janitor.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/log.h"
#include "common/time.h"
#include "runner/judge.h"

namespace jc::runner {

int make_script_fd(const std::string& script) {
  int fd = ::memfd_create("script", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return -1;
  std::size_t done = 0;
  while (done < script.size()) {
    ssize_t n = ::write(fd, script.data() + done, script.size() - done);
    if (n <= 0) {
      int e = errno;
      ::close(fd);
      errno = e;
      return -1;
    }
    done += static_cast<std::size_t>(n);
  }
  // The job reads it through /dev/fd/3 and can change nothing in it.
  ::fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL);
  return fd;
}

RunJob::RunJob(boost::asio::io_context& io, ChildReaper& reaper, Sandbox& sandbox,
               protocol::Assignment job, std::uint32_t slot, uid_t uid, gid_t gid, Done done)
    : io_(io),
      reaper_(reaper),
      sandbox_(sandbox),
      job_(std::move(job)),
      done_(std::move(done)),
      slot_(slot),
      uid_(uid),
      gid_(gid),
      judge_(job_.spec, sandbox.description()) {}

RunJob::~RunJob() {
  if (command_fd_ >= 0) ::close(command_fd_);
  if (check_fd_ >= 0) ::close(check_fd_);
}

void RunJob::fail_setup(const std::string& why) {
  log::get("sandbox")->error("job set-up failed ticket={} reason=\"{}\"", job_.spec.ticket, why);
  Observation o;
  o.start_failed = true;
  o.exit_code = -1;
  o.stderr_data = "jobcluster: " + why + "\n";
  start_failure_ = why;
  judge_.judge_run(std::move(o));
  boost::asio::post(io_, [self = shared_from_this()] { self->finish(); });
}

void RunJob::start() {
  start_ms_ = now_ms();
  const auto& spec = job_.spec;
  WorkspaceSpec ws;
  ws.name = fmt::format("{}-{}", spec.ticket, job_.attempt);
  ws.disk_bytes = static_cast<std::uint64_t>(spec.limits.disk_mb) << 20;
  ws.uid = uid_;
  ws.gid = gid_;
  ws.files = &spec.files;
  std::size_t runs = (spec.check.empty() ? 0 : 1) + std::max<std::size_t>(1, spec.cases.size());
  if (spec.limits.network && !sandbox_.config().allow_network) {
    // The proxy gives such a job only to a node that offers the network.
    fail_setup("this node does not give jobs the network (JOB_ALLOW_NETWORK)");
    return;
  }
  if (Cgroups* cg = sandbox_.cgroups()) {
    // --memory bounds the job as a whole: every run, and what earlier runs
    // left in its /box and /tmp.
    std::string err;
    JobBounds bounds{static_cast<std::uint64_t>(spec.limits.memory_mb) << 20, slot_, runs};
    job_group_ = cg->make_job(bounds, &err);
    if (!job_group_) {
      fail_setup(err);
      return;
    }
  }
  if (std::string err = sandbox_.isolation().make_workspace(ws, runs, workspace_); !err.empty()) {
    fail_setup(err);
    return;
  }
  command_fd_ = make_script_fd(spec.command);
  if (!spec.check.empty()) check_fd_ = make_script_fd(spec.check);
  if (command_fd_ < 0 || (!spec.check.empty() && check_fd_ < 0)) {
    fail_setup(fmt::format("cannot hold the script: {}", std::strerror(errno)));
    return;
  }
  check_done_ = spec.check.empty();
  run_next();
}

void RunJob::run_next() {
  if (cancelled_) {
    finish();
    return;
  }
  const auto& spec = job_.spec;
  RunRequest req;
  req.workspace = workspace_.get();
  req.job_group = job_group_.get();
  req.limits = spec.limits;
  req.uid = uid_;
  req.gid = gid_;
  req.slot = slot_;
  if (!check_done_) {
    req.script_fd = check_fd_;
    // A compile has limits of its own where the job says so.
    if (spec.check_limits.timeout_ms > 0) req.limits = spec.check_limits;
  } else {
    std::size_t total = spec.cases.empty() ? 1 : spec.cases.size();
    std::size_t next = judge_.runs_judged();
    if (next >= total) {
      finish();
      return;
    }
    req.script_fd = command_fd_;
    req.stdin_data = spec.cases.empty() ? spec.stdin_data : spec.cases[next].stdin_data;
  }
  current_ = SandboxRun::start(io_, reaper_, sandbox_, std::move(req),
                               [self = shared_from_this()](Observation o) {
                                 self->on_run_end(std::move(o));
                               });
}

void RunJob::on_run_end(Observation o) {
  current_.reset();
  if (o.start_failed) {
    // The node's fault, not the job's: judged as a run (its case shows the
    // reason), and the job ends FAILED saying so.
    std::string why = o.stderr_data;
    while (!why.empty() && why.back() == '\n') why.pop_back();
    if (why.rfind("jobcluster: ", 0) == 0) why.erase(0, 12);
    start_failure_ = std::move(why);
    judge_.judge_run(std::move(o));
    finish();
    return;
  }
  if (!check_done_) {
    check_done_ = true;
    if (!judge_.judge_check(std::move(o))) {
      finish();
      return;
    }
  } else {
    judge_.judge_run(std::move(o));
  }
  run_next();
}

void RunJob::cancel() {
  cancelled_ = true;
  if (current_) current_->kill(true);
}

void RunJob::finish() {
  if (!done_) return;
  if (workspace_) workspace_->release();
  // Removed on the janitor's thread, after its runs' groups (given to it
  // before): an rmdir of a group that still has one fails.
  Janitor::instance().dispose(std::move(job_group_));
  protocol::JobResult r = judge_.finish();
  if (cancelled_) {
    r.state = protocol::JobState::kCancelled;
    r.verdict = "CANCELLED";
    r.text = "cancelled";
  }
  if (start_failure_) {
    r.state = protocol::JobState::kFailed;
    r.text = "the job could not be started: " + *start_failure_;
  }
  r.start_ms = start_ms_;
  r.end_ms = now_ms();
  auto done = std::move(done_);
  done_ = nullptr;
  done(std::move(r));
}

}  // namespace jc::runner
