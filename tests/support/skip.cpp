#include "tests/support/skip.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

namespace jc::test {

namespace {
bool g_skipped = false;

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}
}  // namespace

void mark_skipped(const std::string& reason) {
  g_skipped = true;
  std::fprintf(stderr, "SKIPPED: %s\n", reason.c_str());
}

bool any_skipped() { return g_skipped; }

bool has_cap_sys_admin() {
  std::istringstream in(read_all("/proc/self/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("CapEff:", 0) == 0) {
      unsigned long long caps = std::stoull(line.substr(7), nullptr, 16);
      return (caps >> 21) & 1;  // CAP_SYS_ADMIN
    }
  }
  return false;
}

bool can_create_cgroups() {
  std::string probe_name = "jobcluster-test-probe-" + std::to_string(::getpid());
  std::istringstream lines(read_all("/proc/self/cgroup"));
  std::string line;
  while (std::getline(lines, line)) {
    auto a = line.find(':');
    auto b = line.find(':', a + 1);
    std::string controllers = line.substr(a + 1, b - a - 1);
    std::string path = line.substr(b + 1);
    std::string dir;
    if (controllers == "memory" || controllers.find("memory,") != std::string::npos ||
        controllers.find(",memory") != std::string::npos) {
      dir = "/sys/fs/cgroup/memory" + path;
    } else if (controllers.empty()) {
      std::string v2 = "/sys/fs/cgroup" + path;
      if (read_all(v2 + "/cgroup.controllers").find("memory") == std::string::npos) continue;
      dir = v2;
    } else {
      continue;
    }
    std::string probe = dir + "/" + probe_name;
    if (::mkdir(probe.c_str(), 0755) == 0) {
      ::rmdir(probe.c_str());
      return true;
    }
  }
  return false;
}

}  // namespace jc::test
