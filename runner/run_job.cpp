#include "runner/run_job.h"

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
      gid_(gid) {}

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
  runs_.push_back(std::move(o));
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
  req.limits = spec.limits;
  req.uid = uid_;
  req.gid = gid_;
  req.slot = slot_;
  if (!check_done_) {
    req.script_fd = check_fd_;
  } else {
    std::size_t total = spec.cases.empty() ? 1 : spec.cases.size();
    if (runs_.size() >= total) {
      finish();
      return;
    }
    req.script_fd = command_fd_;
    req.stdin_data = spec.cases.empty() ? spec.stdin_data : spec.cases[runs_.size()].stdin_data;
  }
  current_ = SandboxRun::start(
      io_, reaper_, sandbox_, std::move(req), [self = shared_from_this()](Observation o) {
        self->current_.reset();
        if (o.start_failed) {
          self->runs_.push_back(std::move(o));
          self->finish();
          return;
        }
        if (!self->check_done_) {
          self->check_done_ = true;
          bool failed = check_failed(o, self->job_.spec.limits);
          self->check_ = std::move(o);
          if (failed) {
            self->finish();
            return;
          }
        } else {
          self->runs_.push_back(std::move(o));
        }
        self->run_next();
      });
}

void RunJob::cancel() {
  cancelled_ = true;
  if (current_) current_->kill(true);
}

void RunJob::finish() {
  if (!done_) return;
  if (workspace_) workspace_->release();
  protocol::JobResult r = summarize(check_ ? &*check_ : nullptr, runs_, job_.spec,
                                    sandbox_.description());
  if (cancelled_) {
    r.state = protocol::JobState::kCancelled;
    r.verdict = "CANCELLED";
    r.text = "cancelled";
  }
  if (!runs_.empty() && runs_.back().start_failed) {
    r.state = protocol::JobState::kFailed;
    std::string why = runs_.back().stderr_data;
    while (!why.empty() && why.back() == '\n') why.pop_back();
    r.text = "the job could not be started: " + why;
  }
  r.start_ms = start_ms_;
  r.end_ms = now_ms();
  auto done = std::move(done_);
  done_ = nullptr;
  done(std::move(r));
}

}  // namespace jc::runner
