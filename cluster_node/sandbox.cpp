#include "cluster_node/sandbox.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <tuple>
#include <vector>

#include "common/log.h"

namespace jc::node {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

// After the command exits, its pipes may still be held by a process that left
// its group; this long at most we wait for their end.
constexpr std::chrono::milliseconds kPipeGrace{500};

// Makes one empty network namespace (only a loopback that is down) and
// returns a descriptor that keeps it alive, or -1. Jobs enter it with
// setns(): creating a namespace per job costs about 1.4 ms, entering one
// almost nothing.
int make_empty_network_namespace() {
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    char ok = unshare(CLONE_NEWNET) == 0 ? 1 : 0;
    if (write(ready[1], &ok, 1) != 1) _exit(1);
    pause();
    _exit(0);
  }
  ::close(ready[1]);
  int fd = -1;
  char ok = 0;
  if (pid > 0 && read(ready[0], &ok, 1) == 1 && ok == 1) {
    std::string path = "/proc/" + std::to_string(pid) + "/ns/net";
    fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  }
  ::close(ready[0]);
  if (pid > 0) {
    ::kill(pid, SIGKILL);  // the descriptor keeps the namespace
    waitpid(pid, nullptr, 0);
  }
  return fd;
}

void set_limit(int resource, rlim_t value) {
  rlimit l{value, value};
  setrlimit(resource, &l);
}

}  // namespace

SandboxSettings probe_sandbox(const std::string& work_root, const std::string& job_user,
                              uid_t uid_base, std::uint32_t slots) {
  auto log = log::get("sandbox");
  SandboxSettings s;
  s.work_root = work_root;
  std::error_code ec;
  std::filesystem::create_directories(work_root, ec);
  // Others may pass through to their own job directory, not list the rest.
  chmod(work_root.c_str(), 0711);
  std::vector<std::string> missing;
  if (geteuid() == 0) {
    passwd* pw = getpwnam(job_user.c_str());
    if (uid_base > 0) {
      s.drop_user = true;
      s.uid_base = uid_base;
      s.user = "uids " + std::to_string(uid_base) + ".." + std::to_string(uid_base + slots - 1);
      s.limit_processes = true;
    } else if (pw != nullptr) {
      s.drop_user = true;
      s.uid = pw->pw_uid;
      s.gid = pw->pw_gid;
      s.user = job_user;
      s.limit_processes = true;
    } else {
      missing.push_back("user (JOB_USER '" + job_user + "' does not exist; jobs run as root)");
    }
    s.network_fd = make_empty_network_namespace();
    s.isolate_network = s.network_fd >= 0;
    if (!s.isolate_network)
      missing.push_back("network isolation (unshare(CLONE_NEWNET) is not permitted)");
  } else {
    missing.push_back("another user (the node does not run as root)");
    missing.push_back("network isolation (needs root)");
    missing.push_back("process limit (RLIMIT_NPROC would count the node's own user)");
  }
  log->info("applied work_root={} user={} network={} rlimits=as,cpu,fsize,core{}", work_root,
            s.drop_user ? s.user : std::string("(node's own)"),
            s.isolate_network ? "none" : "shared", s.limit_processes ? ",nproc" : "");
  for (const auto& m : missing) log->warn("cannot apply {}", m);
  return s;
}

ChildReaper::ChildReaper(asio::io_context& io) : signals_(io, SIGCHLD) { wait_signal(); }

void ChildReaper::watch(pid_t pid, OnExit on_exit) {
  children_[pid] = std::move(on_exit);
  // It may have exited before we watched it: look once it is registered,
  // from the event loop (callbacks may start new children).
  boost::asio::post(signals_.get_executor(), [this] { reap(); });
}

void ChildReaper::wait_signal() {
  signals_.async_wait([this](const error_code& ec, int) {
    if (ec) return;
    reap();
    wait_signal();
  });
}

void ChildReaper::reap() {
  // Collect first, call after: a callback may start (and watch) a new child.
  std::vector<std::tuple<OnExit, int, rusage>> exited;
  for (auto it = children_.begin(); it != children_.end();) {
    int status = 0;
    rusage usage{};
    pid_t r = wait4(it->first, &status, WNOHANG, &usage);
    if (r == it->first || (r < 0 && errno == ECHILD)) {
      exited.emplace_back(std::move(it->second), r < 0 ? 0 : status, usage);
      it = children_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& [cb, status, usage] : exited) cb(status, usage);
}

SandboxProcess::SandboxProcess(asio::io_context& io, ProcessRequest request, Done done)
    : io_(io),
      request_(std::move(request)),
      done_(std::move(done)),
      in_(io),
      out_(io),
      err_(io),
      deadline_(io),
      grace_(io) {}

std::shared_ptr<SandboxProcess> SandboxProcess::start(asio::io_context& io, ChildReaper& reaper,
                                                      const SandboxSettings& settings,
                                                      ProcessRequest request, Done done) {
  auto p = std::make_shared<SandboxProcess>(io, std::move(request), std::move(done));
  p->launch(reaper, settings);
  return p;
}

void SandboxProcess::fail(const std::string& why) {
  outcome_.start_failed = true;
  outcome_.stderr_data = "jobcluster: " + why + "\n";  // as RunJob reports its set-up failures
  outcome_.exit_code = -1;
  exited_ = true;
  asio::post(io_, [self = shared_from_this()] { self->finish(); });
}

void SandboxProcess::launch(ChildReaper& reaper, const SandboxSettings& settings) {
  started_ = std::chrono::steady_clock::now();
  output_limit_ = static_cast<std::size_t>(request_.limits.output_kb) * 1024;
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    fail(std::string("pipe: ") + std::strerror(errno));
    return;
  }
  // Everything the child needs is prepared before fork: after it, only
  // async-signal-safe calls.
  std::string home = "HOME=" + request_.workdir;
  std::string tmp = "TMPDIR=" + request_.workdir;
  const char* envp[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", home.c_str(),
                        tmp.c_str(), nullptr};
  const char* argv[] = {"sh", "-c", request_.script.c_str(), nullptr};
  const auto& lim = request_.limits;
  rlim_t as = static_cast<rlim_t>(lim.memory_mb) << 20;
  rlim_t cpu = (static_cast<rlim_t>(lim.cpu_ms) + 999) / 1000;
  rlim_t fsize = std::max<rlim_t>(static_cast<rlim_t>(lim.output_kb) << 10, 1 << 20);
  pid_t pid = fork();
  if (pid < 0) {
    fail(std::string("fork: ") + std::strerror(errno));
    return;
  }
  if (pid == 0) {
    setsid();
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (settings.isolate_network && setns(settings.network_fd, CLONE_NEWNET) != 0) _exit(126);
    set_limit(RLIMIT_AS, as);
    rlimit cpu_limit{cpu, cpu + 1};
    setrlimit(RLIMIT_CPU, &cpu_limit);
    set_limit(RLIMIT_FSIZE, fsize);
    set_limit(RLIMIT_CORE, 0);
    if (settings.limit_processes) set_limit(RLIMIT_NPROC, settings.max_processes);
    if (chdir(request_.workdir.c_str()) != 0) _exit(126);
    if (settings.drop_user) {
      if (setgroups(0, nullptr) != 0 || setgid(request_.gid) != 0 || setuid(request_.uid) != 0) {
        _exit(126);
      }
    }
    execve("/bin/sh", const_cast<char* const*>(argv), const_cast<char* const*>(envp));
    _exit(127);
  }
  pid_ = pid;
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  in_.assign(in[1]);
  out_.assign(out[0]);
  err_.assign(err[0]);
  out_open_ = err_open_ = true;
  auto self = shared_from_this();
  reaper.watch(pid, [self](int status, const rusage& usage) { self->on_exit(status, usage); });
  auto input = std::make_shared<std::string>(request_.stdin_data);
  asio::async_write(in_, asio::buffer(*input), [self, input](const error_code&, std::size_t) {
    error_code ignored;
    self->in_.close(ignored);  // EOF for the job; EPIPE when it did not read is fine
  });
  read_stream(out_, outcome_.stdout_data, outcome_.stdout_truncated, out_open_);
  read_stream(err_, outcome_.stderr_data, outcome_.stderr_truncated, err_open_);
  deadline_.expires_after(std::chrono::milliseconds(lim.timeout_ms));
  deadline_.async_wait([self](const error_code& ec) {
    if (ec || self->exited_) return;
    self->outcome_.timed_out = true;
    self->kill(false);
  });
}

void SandboxProcess::read_stream(asio::posix::stream_descriptor& d, std::string& into,
                                 bool& truncated, bool& open) {
  auto& buffer = &d == &out_ ? buffer_out_ : buffer_err_;
  d.async_read_some(asio::buffer(buffer), [this, self = shared_from_this(), &d, &into, &truncated,
                                           &open, &buffer](const error_code& ec, std::size_t n) {
    if (ec) {
      open = false;
      maybe_finish();
      return;
    }
    std::size_t room = output_limit_ > into.size() ? output_limit_ - into.size() : 0;
    into.append(buffer.data(), std::min(n, room));
    if (n > room && !truncated) {
      // A flood never fills the node: cut, flag, and stop the job.
      truncated = true;
      outcome_.output_exceeded = true;
      kill(false);
    }
    read_stream(d, into, truncated, open);
  });
}

void SandboxProcess::kill(bool cancelled) {
  if (cancelled) outcome_.cancelled = true;
  if (pid_ > 0) ::kill(-pid_, SIGKILL);  // the whole group, grandchildren too
}

void SandboxProcess::on_exit(int status, const rusage& usage) {
  exited_ = true;
  deadline_.cancel();
  if (WIFEXITED(status)) {
    outcome_.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    outcome_.signal = WTERMSIG(status);
    outcome_.exit_code = 128 + outcome_.signal;
  }
  outcome_.cpu_ms = (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000 +
                    (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1000;
  outcome_.peak_kb = usage.ru_maxrss;
  if (outcome_.signal == SIGXCPU ||
      (outcome_.signal == SIGKILL && !outcome_.timed_out && !outcome_.cancelled &&
       !outcome_.output_exceeded && outcome_.cpu_ms >= request_.limits.cpu_ms)) {
    outcome_.cpu_exceeded = true;
  }
  if (outcome_.exit_code == 126 && outcome_.stderr_data.empty() && outcome_.signal == 0) {
    // Our own set-up in the child failed (chdir, setuid, unshare).
    outcome_.stderr_data = "jobcluster: could not set up the sandbox for this job\n";
  }
  // Whatever the command left running in its group goes with it.
  ::kill(-pid_, SIGKILL);
  pid_ = -1;
  grace_.expires_after(kPipeGrace);
  grace_.async_wait([self = shared_from_this()](const error_code& ec) {
    if (!ec) self->finish();
  });
  maybe_finish();
}

void SandboxProcess::maybe_finish() {
  if (exited_ && !out_open_ && !err_open_) finish();
}

void SandboxProcess::finish() {
  if (finished_) return;
  finished_ = true;
  error_code ignored;
  grace_.cancel();
  deadline_.cancel();
  in_.close(ignored);
  out_.close(ignored);
  err_.close(ignored);
  outcome_.wall_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::steady_clock::now() - started_)
                         .count();
  auto done = std::move(done_);
  done_ = nullptr;
  if (done) done(std::move(outcome_));
}

}  // namespace jc::node
