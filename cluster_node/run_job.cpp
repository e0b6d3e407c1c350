#include "cluster_node/run_job.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/log.h"
#include "common/time.h"

namespace jc::node {

namespace fs = std::filesystem;

RunJob::RunJob(boost::asio::io_context& io, ChildReaper& reaper, const SandboxSettings& settings,
               protocol::Assignment job, uid_t uid, gid_t gid, Done done)
    : io_(io),
      reaper_(reaper),
      settings_(settings),
      job_(std::move(job)),
      done_(std::move(done)),
      uid_(uid),
      gid_(gid) {}

std::string RunJob::prepare_workdir() {
  workdir_ = fmt::format("{}/{}-{}", settings_.work_root, job_.spec.ticket, job_.attempt);
  std::error_code ec;
  fs::remove_all(workdir_, ec);
  if (!fs::create_directory(workdir_, ec)) return "cannot create " + workdir_ + ": " + ec.message();
  chmod(workdir_.c_str(), 0700);
  auto own = [&](const std::string& path) {
    if (settings_.drop_user && chown(path.c_str(), uid_, gid_) != 0) return false;
    return true;
  };
  if (!own(workdir_)) return "cannot hand " + workdir_ + " to the job's user";
  for (const auto& f : job_.spec.files) {
    std::string path = workdir_ + "/" + f.name;
    std::ofstream out(path, std::ios::binary);
    out.write(f.content.data(), static_cast<std::streamsize>(f.content.size()));
    if (!out || !own(path)) return "cannot write " + f.name;
  }
  return "";
}

void RunJob::start() {
  start_ms_ = now_ms();
  if (std::string err = prepare_workdir(); !err.empty()) {
    log::get("sandbox")->error("job set-up failed ticket={} reason=\"{}\"", job_.spec.ticket, err);
    ProcessOutcome o;
    o.start_failed = true;
    o.exit_code = -1;
    o.stderr_data = "jobcluster: " + err + "\n";
    runs_.push_back(o);
    boost::asio::post(io_, [self = shared_from_this()] { self->finish(); });
    return;
  }
  check_done_ = job_.spec.check.empty();
  run_next();
}

void RunJob::run_next() {
  if (cancelled_) {
    finish();
    return;
  }
  const auto& spec = job_.spec;
  ProcessRequest req;
  req.workdir = workdir_;
  req.limits = spec.limits;
  req.uid = uid_;
  req.gid = gid_;
  if (!check_done_) {
    req.script = spec.check;
  } else {
    std::size_t total = spec.cases.empty() ? 1 : spec.cases.size();
    if (runs_.size() >= total) {
      finish();
      return;
    }
    req.script = spec.command;
    req.stdin_data = spec.cases.empty() ? spec.stdin_data : spec.cases[runs_.size()].stdin_data;
  }
  current_ = SandboxProcess::start(
      io_, reaper_, settings_, std::move(req), [self = shared_from_this()](ProcessOutcome o) {
        self->current_.reset();
        if (!self->check_done_) {
          self->check_done_ = true;
          bool failed = o.cancelled || o.exit_code != 0 || o.signal != 0 || o.timed_out;
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
  std::error_code ec;
  if (!workdir_.empty()) fs::remove_all(workdir_, ec);
  protocol::JobResult r =
      summarize(check_ ? &*check_ : nullptr, runs_, job_.spec, job_.spec.limits.memory_mb);
  if (cancelled_) {
    r.state = protocol::JobState::kCancelled;
    r.verdict = "CANCELLED";
    r.text = "cancelled";
  }
  if (!runs_.empty() && runs_.back().start_failed) {
    r.state = protocol::JobState::kFailed;
    r.text = "the node could not start the job: " + runs_.back().stderr_data;
  }
  r.start_ms = start_ms_;
  r.end_ms = now_ms();
  auto done = std::move(done_);
  done_ = nullptr;
  done(std::move(r));
}

}  // namespace jc::node
