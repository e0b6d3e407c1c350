#include "runner/sandbox_run.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <thread>
#include <utility>

#include "common/log.h"
#include "runner/init/init_report.h"
#include "runner/janitor.h"

namespace jc::runner {

namespace asio = boost::asio;
using boost::system::error_code;
using std::chrono::milliseconds;

namespace {

// Without a PID namespace, a process that escaped job_init may still hold
// the job's pipes after it exits; this long at most we wait for their end,
// then read what they hold and close them. (With one, every writer is gone
// when job_init is, and the pipes are read to their end, however busy the
// node is.)
constexpr milliseconds kPipeGrace{500};
// Without a PID namespace job_init gets SIGTERM first (it then ends what the
// shell left); past this, SIGKILL.
constexpr milliseconds kEscalate{1000};
// The CPU-time check runs when the limit could first be reached (at full
// use of every CPU), and never more often than this.
constexpr std::int64_t kMinCpuCheckMs = 5;
// A stream's buffer grows by doubling up to this size, then takes --output.
constexpr std::size_t kSmallOutput = 64 * 1024;
// The size asked of the output pipes (the kernel's default most a process
// may ask, /proc/sys/fs/pipe-max-size, is 1 MiB).
constexpr int kPipeBytes = 1 << 20;

unsigned cpu_count() { return std::max(1u, std::thread::hardware_concurrency()); }

}  // namespace

SandboxRun::SandboxRun(asio::io_context& io, Sandbox& sandbox, RunRequest request, Done done)
    : io_(io),
      sandbox_(sandbox),
      request_(std::move(request)),
      done_(std::move(done)),
      in_(io),
      out_(io),
      err_(io),
      report_(io),
      deadline_(io),
      cpu_timer_(io),
      grace_(io),
      escalate_(io) {}

SandboxRun::~SandboxRun() {
  // A run whose spawn never happened (the launcher stopped first).
  for (int fd : child_fds_) ::close(fd);
  for (int fd : spawn_spec_.cgroup_fds) ::close(fd);
  for (int fd : {stdin_w_, stdout_r_, stderr_r_, report_r_}) {
    if (fd >= 0) ::close(fd);
  }
}

std::shared_ptr<SandboxRun> SandboxRun::start(asio::io_context& io, ChildReaper& reaper,
                                              Sandbox& sandbox, RunRequest request, Done done) {
  auto run = std::make_shared<SandboxRun>(io, sandbox, std::move(request), std::move(done));
  run->launch(reaper);
  return run;
}

void SandboxRun::fail(const std::string& why) {
  observed_.start_failed = true;
  observed_.stderr_data = "jobcluster: " + why + "\n";
  observed_.exit_code = -1;
  exited_ = true;
  asio::post(io_, [self = shared_from_this()] { self->finish(); });
}

void SandboxRun::launch(ChildReaper& reaper) {
  started_ = std::chrono::steady_clock::now();
  const auto& lim = request_.limits;
  const auto& config = sandbox_.config();
  output_limit_ = static_cast<std::size_t>(lim.output_kb) * 1024;
  const std::uint64_t memory = static_cast<std::uint64_t>(lim.memory_mb) << 20;
  const std::uint32_t processes = lim.processes > 0 ? lim.processes : config.processes;
  // The CPU time at which the run is ended: --cpu, or judge0's extra time
  // past it (the verdict is still at --cpu).
  const std::uint64_t cpu_end_ms = static_cast<std::uint64_t>(lim.cpu_ms) + lim.cpu_extra_ms;
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, rep[2] = {-1, -1};
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 ||
      ::pipe2(err, O_CLOEXEC) != 0 || ::pipe2(rep, O_CLOEXEC) != 0) {
    const int e = errno;
    // Out of descriptors, say: the pipes made before the one that failed go.
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1], rep[0], rep[1]}) {
      if (fd >= 0) ::close(fd);
    }
    fail(std::string("pipe: ") + std::strerror(e));
    return;
  }
  // Room for a megabyte of output while the node is busy elsewhere, so a
  // job is not held up (its wall clock running) by a node that reads late.
  for (int fd : {out[0], err[0]}) ::fcntl(fd, F_SETPIPE_SZ, kPipeBytes);
  SpawnSpec& spec = spawn_spec_;
  spec.workspace = request_.workspace;
  spec.slot = request_.slot;
  spec.uid = request_.uid;
  spec.gid = request_.gid;
  spec.stdin_fd = in[0];
  spec.stdout_fd = out[1];
  spec.stderr_fd = err[1];
  spec.script_fd = request_.script_fd;
  spec.status_fd = rep[1];
  // The run's group is made on the launcher's thread (see below).
  const bool grouped = request_.job_group != nullptr;
  // Without a cgroup, memory can only be bounded by address space, per
  // process (what reserves much and touches little then fails).
  spec.address_space_bytes = grouped ? 0 : memory;
  // The cgroup check ends the tree at --cpu; the rlimit is a second line
  // per process, a second later. Without a cgroup it is the only line.
  std::uint64_t cpu_s = (cpu_end_ms + 999) / 1000;
  spec.cpu_seconds = grouped ? cpu_s + 1 : cpu_s;
  // With its own tmpfs a job's files are bounded by --disk, and a write
  // past it fails with ENOSPC as a full disk does. Without, each file is.
  if (!sandbox_.protections().fs) spec.file_size_bytes = static_cast<std::uint64_t>(lim.disk_mb) << 20;
  if (lim.file_kb > 0) spec.file_size_bytes = static_cast<std::uint64_t>(lim.file_kb) << 10;
  // RLIMIT_NPROC counts every process of the user id: a second line only
  // where each job has an id of its own.
  if (std::string(sandbox_.isolation().init_mode()) != "tree" &&
      sandbox_.config().isolation.uid_base > 0) {
    spec.processes = processes;
  }
  // With a cgroup, stack is reserved, not used, until touched: as much as
  // the memory (deep recursion, as judges allow). With address-space limits
  // every thread's stack would be reserved at that size and count: the
  // node's own stack limit stays.
  if (grouped) spec.stack_bytes = memory;
  if (lim.stack_kb > 0) spec.stack_bytes = static_cast<std::uint64_t>(lim.stack_kb) << 10;
  spec.network = lim.network;
  spec.open_files = config.open_files;
  stdin_w_ = in[1];
  stdout_r_ = out[0];
  stderr_r_ = err[0];
  report_r_ = rep[0];
  child_fds_ = {in[0], out[1], err[1], rep[1]};
  // The launcher's thread makes the run's group (mkdir in each hierarchy)
  // and spawns: both wait on the kernel. Until it posts the result back
  // here it alone touches spawn_spec_ (and the run's JobGroup and
  // workspace, which outlive the run).
  launching_ = true;
  auto self = shared_from_this();
  WorkThreads& launcher = sandbox_.launcher();
  launcher.post([self, reaper = &reaper, memory, processes, alive = launcher.alive()] {
    auto spawn_start = std::chrono::steady_clock::now();
    std::string error;
    std::unique_ptr<RunGroup> group;
    pid_t pid = -1;
    try {
      if (self->make_group(memory, processes, group, error)) {
        pid = self->sandbox_.isolation().spawn(self->spawn_spec_, error);
      }
    } catch (const std::exception& e) {
      error = e.what();
    }
    auto spawn_us = std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::steady_clock::now() - spawn_start)
                        .count();
    asio::post(self->io_, [self, reaper, pid, error = std::move(error), spawn_us, alive,
                           group = std::move(group)]() mutable {
      if (alive.expired()) {
        // The node's executor is going: its reaper and sandbox may be gone.
        // The child has had its PR_SET_PDEATHSIG from the launcher's end.
        if (pid > 0) ::kill(pid, SIGKILL);
        return;
      }
      self->group_ = std::move(group);
      self->spawned(*reaper, pid, error, spawn_us);
    });
  });
}

void SandboxRun::remove_group() {
  if (!group_) return;
  // rmdir in each hierarchy, 1 to 30 ms on a busy host: the janitor's
  // thread does it (~RunGroup), in order, so before its job's group
  // (RunJob::finish).
  Janitor::instance().dispose(std::move(group_));
}

bool SandboxRun::make_group(std::uint64_t memory, std::uint32_t processes,
                            std::unique_ptr<RunGroup>& group, std::string& error) {
  JobGroup* job = request_.job_group;
  if (job == nullptr) return true;
  group = job->make_run({memory, processes}, &error);
  if (!group) return false;
  for (const auto& path : group->procs_files()) {
    int fd = CgroupFs::system().open_for_write(path);
    if (fd < 0) {
      error = fmt::format("cannot open {}: {}", path, std::strerror(errno));
      return false;
    }
    spawn_spec_.cgroup_fds.push_back(fd);
  }
  return true;
}

void SandboxRun::spawned(ChildReaper& reaper, pid_t pid, const std::string& error,
                         std::int64_t spawn_us) {
  launching_ = false;
  log::get("sandbox")->debug("spawned pid={} in {} us (off the event loop)", pid, spawn_us);
  for (int fd : child_fds_) ::close(fd);
  child_fds_.clear();
  for (int fd : spawn_spec_.cgroup_fds) ::close(fd);
  spawn_spec_.cgroup_fds.clear();
  in_.assign(std::exchange(stdin_w_, -1));
  out_.assign(std::exchange(stdout_r_, -1));
  err_.assign(std::exchange(stderr_r_, -1));
  report_.assign(std::exchange(report_r_, -1));
  if (pid < 0) {
    error_code ignored;
    in_.close(ignored);
    out_.close(ignored);
    err_.close(ignored);
    report_.close(ignored);
    remove_group();
    fail(error);
    return;
  }
  pid_ = pid;
  out_open_ = err_open_ = report_open_ = true;
  auto self = shared_from_this();
  reaper.watch(pid, [self](int status) { self->on_exit(status); });
  auto input = std::make_shared<std::string>(std::move(request_.stdin_data));
  asio::async_write(in_, asio::buffer(*input), [self, input](const error_code&, std::size_t) {
    error_code ignored;
    self->in_.close(ignored);  // EOF for the job; EPIPE when it did not read is fine
  });
  read_stream(out_, observed_.stdout_data, observed_.stdout_truncated, out_open_, buffer_out_);
  read_stream(err_, observed_.stderr_data, observed_.stderr_truncated, err_open_, buffer_err_);
  read_report();
  const auto& lim = request_.limits;
  deadline_.expires_after(milliseconds(lim.timeout_ms));
  deadline_.async_wait([self](const error_code& ec) {
    if (ec || self->exited_) return;
    self->observed_.killed_at_timeout = true;
    self->end_processes();
  });
  if (group_ && lim.cpu_ms > 0) check_cpu(0);
  if (kill_pending_) end_processes();
}

void SandboxRun::check_cpu(std::int64_t used_ns) {
  const auto& lim = request_.limits;
  const std::int64_t end_ms = static_cast<std::int64_t>(lim.cpu_ms) + lim.cpu_extra_ms;
  std::int64_t left_ms = end_ms - used_ns / 1'000'000;
  std::int64_t wait_ms = std::max<std::int64_t>(kMinCpuCheckMs, left_ms / cpu_count());
  cpu_timer_.expires_after(milliseconds(wait_ms));
  cpu_timer_.async_wait([self = shared_from_this()](const error_code& ec) {
    if (ec || self->exited_ || !self->group_) return;
    std::int64_t used = self->group_->cpu_ns();
    const auto& l = self->request_.limits;
    if (used >= (static_cast<std::int64_t>(l.cpu_ms) + l.cpu_extra_ms) * 1'000'000) {
      self->observed_.killed_at_cpu_limit = true;
      self->end_processes();
      return;
    }
    self->check_cpu(std::max<std::int64_t>(0, used));
  });
}

void SandboxRun::read_stream(asio::posix::stream_descriptor& d, std::string& into, bool& truncated,
                             bool& open, std::array<char, 16384>& buffer) {
  d.async_read_some(asio::buffer(buffer), [this, self = shared_from_this(), &d, &into, &truncated,
                                           &open, &buffer](const error_code& ec, std::size_t n) {
    if (!ec) append_output(into, truncated, buffer.data(), n);
    if (ec || giving_up_) {
      // The end, or the grace period is over: what the pipe still holds is
      // read now (a cancelled read leaves it there), then it is closed.
      if (giving_up_) drain(d, into, truncated);
      open = false;
      maybe_finish();
      return;
    }
    read_stream(d, into, truncated, open, buffer);
  });
}

void SandboxRun::append_output(std::string& into, bool& truncated, const char* data,
                               std::size_t n) {
  std::size_t room = output_limit_ > into.size() ? output_limit_ - into.size() : 0;
  std::size_t take = std::min(n, room);
  if (into.size() + take > into.capacity()) {
    // Small outputs grow as a string would; past kSmallOutput the buffer
    // takes --output at once (pages are resident only once written). A
    // loud stream so costs the node one buffer of --output, not a series of
    // doubling copies each left to the allocator, run after run.
    std::size_t want = std::max(into.size() + take, 2 * into.capacity());
    into.reserve(want <= kSmallOutput ? want : output_limit_);
  }
  into.append(data, take);
  if (n > room && !truncated) {
    // A flood never fills the node: cut, flag, and end the run.
    truncated = true;
    observed_.output_exceeded = true;
    end_processes();
  }
}

void SandboxRun::read_report() {
  report_.async_read_some(
      asio::buffer(buffer_report_), [self = shared_from_this()](const error_code& ec, std::size_t n) {
        if (!ec && self->report_bytes_.size() < 1024)
          self->report_bytes_.append(self->buffer_report_.data(), n);
        if (ec || self->giving_up_) {
          if (self->giving_up_) {
            bool ignored = false;
            self->drain(self->report_, self->report_bytes_, ignored);
          }
          self->report_open_ = false;
          self->maybe_finish();
          return;
        }
        self->read_report();
      });
}

void SandboxRun::kill(bool cancelled) {
  if (cancelled) observed_.cancelled = true;
  if (launching_) {
    kill_pending_ = true;  // ended as soon as it is there (spawned())
    return;
  }
  end_processes();
}

void SandboxRun::end_processes() {
  if (pid_ <= 0 || exited_) return;
  if (sandbox_.protections().pid) {
    // job_init is process 1 of the run's PID namespace: when it goes, the
    // kernel ends every process of the namespace.
    ::kill(pid_, SIGKILL);
    return;
  }
  if (killing_) return;
  killing_ = true;
  // job_init kills the shell and then what it left; should it not manage,
  // SIGKILL, and the leftovers are found by user id or cgroup in on_exit.
  ::kill(pid_, SIGTERM);
  escalate_.expires_after(kEscalate);
  escalate_.async_wait([self = shared_from_this()](const error_code& ec) {
    if (!ec && !self->exited_ && self->pid_ > 0) ::kill(self->pid_, SIGKILL);
  });
}

void SandboxRun::on_exit(int status) {
  exited_ = true;
  init_status_ = status;
  deadline_.cancel();
  cpu_timer_.cancel();
  escalate_.cancel();
  const Protections& prot = sandbox_.protections();
  if (!prot.pid) {
    // Whatever a killed job_init could not end.
    if (std::string(sandbox_.isolation().init_mode()) == "uid") {
      sandbox_.isolation().kill_user(request_.uid);
    }
    if (group_) group_->kill_all();
  }
  if (group_) {
    usage_ = group_->usage();
    remove_group();
  }
  pid_ = -1;
  if (!prot.pid) {
    grace_.expires_after(kPipeGrace);
    grace_.async_wait([self = shared_from_this()](const error_code& ec) {
      if (ec) return;
      // Stop waiting for an end that a leftover may hold off: each pending
      // read completes (with data, or cancelled), reads what is left, and
      // closes; the run finishes when all three have.
      self->giving_up_ = true;
      error_code ignored;
      self->out_.cancel(ignored);
      self->err_.cancel(ignored);
      self->report_.cancel(ignored);
    });
  }
  maybe_finish();
}

void SandboxRun::drain(asio::posix::stream_descriptor& d, std::string& into, bool& truncated) {
  if (!d.is_open()) return;
  error_code ec;
  d.non_blocking(true, ec);
  std::array<char, 16384> buffer{};
  while (true) {
    std::size_t n = d.read_some(asio::buffer(buffer), ec);
    if (ec || n == 0) break;
    append_output(into, truncated, buffer.data(), n);
    if (truncated) break;
  }
}

void SandboxRun::maybe_finish() {
  if (exited_ && !out_open_ && !err_open_ && !report_open_) finish();
}

void SandboxRun::finish() {
  if (finished_) return;
  finished_ = true;
  error_code ignored;
  grace_.cancel();
  deadline_.cancel();
  cpu_timer_.cancel();
  escalate_.cancel();
  in_.close(ignored);
  out_.close(ignored);
  err_.close(ignored);
  report_.close(ignored);
  Observation& o = observed_;
  o.wall_ms = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - started_)
                  .count();
  if (!o.start_failed) {
    jc_init_report report{};
    bool reported = report_bytes_.size() >= sizeof report;
    if (reported) std::memcpy(&report, report_bytes_.data(), sizeof report);
    reported = reported && report.magic == JC_INIT_REPORT_MAGIC;
    if (reported && report.start_errno != 0) {
      o.start_failed = true;
      o.exit_code = -1;
    } else if (reported) {
      int st = report.wait_status;
      if (WIFEXITED(st)) {
        o.exit_code = WEXITSTATUS(st);
      } else if (WIFSIGNALED(st)) {
        o.signal = WTERMSIG(st);
        o.exit_code = 128 + o.signal;
      }
    } else {
      // job_init ended before the shell did: killed, by the sandbox (a
      // limit, a cancel) or by the kernel (out of memory).
      int st = init_status_;
      o.signal = WIFSIGNALED(st) ? WTERMSIG(st) : SIGKILL;
      o.exit_code = 128 + o.signal;
    }
    o.cpu_ms = usage_.cpu_ns >= 0 ? usage_.cpu_ns / 1'000'000 : (reported ? report.cpu_us / 1000 : 0);
    o.peak_kb = usage_.peak_bytes >= 0 ? usage_.peak_bytes / 1024 : (reported ? report.maxrss_kb : 0);
    o.oom_kills = usage_.oom_kills;
  }
  auto done = std::move(done_);
  done_ = nullptr;
  if (done) done(std::move(o));
}

}  // namespace jc::runner
