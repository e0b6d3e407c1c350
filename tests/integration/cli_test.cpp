// Start-up contract: --help, --version, and exit code 2 with one clear line
// for a bad argument or environment value.
#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>

#include "tests/support/process.h"

using namespace jc::test;

namespace {
struct Run {
  int code;
  std::string output;
};

Run run(const std::string& binary, std::vector<std::string> args,
        std::map<std::string, std::string> env = {}) {
  std::string dir = (std::filesystem::temp_directory_path() / "jc-cli-XXXXXX").string();
  REQUIRE(mkdtemp(dir.data()) != nullptr);
  env.emplace("DATA_DIR", dir + "/data");
  Process p(std::string(JC_BIN_DIR) + "/" + binary, std::move(args), env, dir + "/out.log");
  p.start();
  int code = p.wait_exit(10s);
  Run r{code, p.log_since_start()};
  std::filesystem::remove_all(dir);
  return r;
}
}  // namespace

TEST_CASE("--help and --version exit 0") {
  for (std::string bin : {"reverse_proxy", "cluster_node"}) {
    auto help = run(bin, {"--help"});
    CHECK(help.code == 0);
    CHECK(help.output.find("usage: " + bin) != std::string::npos);
    auto version = run(bin, {"--version"});
    CHECK(version.code == 0);
    CHECK(version.output.find(bin + " (jobcluster) ") != std::string::npos);
  }
}

TEST_CASE("a bad environment value exits 2 naming the variable, the value and what is expected") {
  auto r = run("reverse_proxy", {"0"}, {{"DISPATCH_PERIOD", "abc"}});
  CHECK(r.code == 2);
  CHECK(r.output ==
        "reverse_proxy: DISPATCH_PERIOD must be a positive integer up to 3600000 (milliseconds), "
        "got 'abc'\n");
  auto n = run("cluster_node", {"127.0.0.1", "8080"}, {{"NODE_SLOTS", "0"}});
  CHECK(n.code == 2);
  CHECK(n.output.find("NODE_SLOTS must be a positive integer") != std::string::npos);
  auto l = run("cluster_node", {"127.0.0.1", "8080"}, {{"LOG_LEVEL", "loud"}});
  CHECK(l.code == 2);
  CHECK(l.output.find("LOG_LEVEL must be one of error, warn, info, debug, got 'loud'") !=
        std::string::npos);
}

TEST_CASE("bad run-job settings exit 2 with what would be right") {
  auto node = [](std::map<std::string, std::string> env) {
    return run("cluster_node", {"127.0.0.1", "8080"}, std::move(env));
  };
  auto relative = node({{"JOB_READONLY_PATHS", "opt/jdk"}});
  CHECK(relative.code == 2);
  CHECK(relative.output ==
        "cluster_node: JOB_READONLY_PATHS must be absolute paths (not /) that exist, "
        "comma-separated, got 'opt/jdk'\n");
  auto missing = node({{"JOB_READONLY_PATHS", "/usr,/no/such/dir"}});
  CHECK(missing.code == 2);
  CHECK(missing.output.find("got '/no/such/dir'") != std::string::npos);
  auto own = node({{"JOB_READONLY_PATHS", "/proc/self"}});
  CHECK(own.code == 2);
  CHECK(own.output.find("must not name /proc") != std::string::npos);
  auto disk = node({{"JOB_DISK_MB", "9000"}});
  CHECK(disk.code == 2);
  CHECK(disk.output.find("JOB_DISK_MB must be") != std::string::npos);
  CHECK(disk.output.find("at most JOB_MAX_DISK_MB") != std::string::npos);
  auto processes = node({{"JOB_PROCESSES", "0"}});
  CHECK(processes.code == 2);
  CHECK(processes.output.find("JOB_PROCESSES must be") != std::string::npos);
}

TEST_CASE("bad arguments exit 2") {
  CHECK(run("reverse_proxy", {"80800"}).code == 2);
  CHECK(run("reverse_proxy", {"1", "2"}).code == 2);
  CHECK(run("cluster_node", {"only-host"}).code == 2);
  auto r = run("cluster_node", {"127.0.0.1", "x"});
  CHECK(r.code == 2);
  CHECK(r.output.find("PROXY_PORT must be a port number") != std::string::npos);
}
