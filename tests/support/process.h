// A real child process for integration tests: started with fork/exec, its
// stdout and stderr appended to a log file, stopped only by its PID.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace jc::test {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Polls `cond` every `step` until it holds or `timeout` passes.
template <class F>
bool eventually(F&& cond, std::chrono::milliseconds timeout,
                std::chrono::milliseconds step = std::chrono::milliseconds(20));

class Process {
 public:
  Process(std::string binary, std::vector<std::string> args, std::map<std::string, std::string> env,
          std::string log_path);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  void start();
  void signal(int sig);
  // SIGKILL and reap.
  void kill_hard();
  // Waits for the exit; returns the exit code, 128+signal, or -1 on timeout.
  int wait_exit(std::chrono::milliseconds timeout);
  bool running();
  // The port of the first "listening on ADDR:PORT" line logged since the
  // last start() whose line contains `marker`; 0 when none within timeout.
  std::uint16_t wait_listening(const std::string& marker, std::chrono::milliseconds timeout = 10s);
  std::string log_since_start() const;
  // How many times `needle` occurs in log_since_start().
  int log_count(const std::string& needle) const;
  std::map<std::string, std::string>& env() { return env_; }
  pid_t pid() const { return pid_; }

 private:
  std::string binary_;
  std::vector<std::string> args_;
  std::map<std::string, std::string> env_;
  std::string log_path_;
  std::size_t log_offset_ = 0;
  pid_t pid_ = -1;
};

template <class F>
bool eventually(F&& cond, std::chrono::milliseconds timeout, std::chrono::milliseconds step) {
  auto deadline = Clock::now() + timeout;
  while (true) {
    if (cond()) return true;
    if (Clock::now() >= deadline) return false;
    struct timespec ts {
      0, static_cast<long>(std::chrono::duration_cast<std::chrono::nanoseconds>(step).count())
    };
    nanosleep(&ts, nullptr);
  }
}

}  // namespace jc::test
