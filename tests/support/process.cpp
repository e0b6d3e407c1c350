#include "tests/support/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>

namespace jc::test {

Process::Process(std::string binary, std::vector<std::string> args,
                 std::map<std::string, std::string> env, std::string log_path)
    : binary_(std::move(binary)),
      args_(std::move(args)),
      env_(std::move(env)),
      log_path_(std::move(log_path)) {}

Process::~Process() { kill_hard(); }

void Process::start() {
  std::error_code ec;
  log_offset_ =
      std::filesystem::exists(log_path_, ec) ? std::filesystem::file_size(log_path_, ec) : 0;
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv = *e;
    std::string key = kv.substr(0, kv.find('='));
    if (!env_.count(key)) env_strings.push_back(kv);
  }
  for (const auto& [k, v] : env_) env_strings.push_back(k + "=" + v);
  std::vector<char*> argv{const_cast<char*>(binary_.c_str())};
  for (auto& a : args_) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  // A process started from the main thread dies with the test binary, even
  // when that is killed from outside (ctest's timeout): no cluster process
  // outlives its test on a shared machine. The signal comes when the forking
  // *thread* ends, so processes started from other threads (the chaos
  // test's) are left without it, and the destructor ends them as before.
  const pid_t parent = ::getpid();
  const bool main_thread = ::gettid() == parent;
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    if (main_thread) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) _exit(127);  // the parent died before the prctl
    }
    int fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    execve(binary_.c_str(), argv.data(), envp.data());
    _exit(127);
  }
}

void Process::signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

void Process::kill_hard() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

int Process::wait_exit(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  int code = -1;
  bool done = eventually(
      [&] {
        int status = 0;
        pid_t r = waitpid(pid_, &status, WNOHANG);
        if (r != pid_) return false;
        code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return true;
      },
      timeout, 10ms);
  if (done) pid_ = -1;
  return done ? code : -1;
}

bool Process::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

std::string Process::log_since_start() const {
  std::ifstream in(log_path_, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string all = ss.str();
  return log_offset_ < all.size() ? all.substr(log_offset_) : std::string();
}

int Process::log_count(const std::string& needle) const {
  std::string log = log_since_start();
  int n = 0;
  for (auto pos = log.find(needle); pos != std::string::npos; pos = log.find(needle, pos + 1)) ++n;
  return n;
}

std::uint16_t Process::wait_listening(const std::string& marker,
                                      std::chrono::milliseconds timeout) {
  static const std::regex kListening("listening on [^ ]*:([0-9]+)");
  std::uint16_t port = 0;
  eventually(
      [&] {
        std::istringstream lines(log_since_start());
        std::string line;
        while (std::getline(lines, line)) {
          std::smatch m;
          if (line.find(marker) != std::string::npos && std::regex_search(line, m, kListening)) {
            port = static_cast<std::uint16_t>(std::stoi(m[1]));
            return true;
          }
        }
        return !running();
      },
      timeout);
  return port;
}

}  // namespace jc::test
