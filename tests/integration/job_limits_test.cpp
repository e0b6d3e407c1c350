// Limits that hold for the whole job, tried with real processes: whatever a
// job prints, the node keeps only what its result shows; --memory bounds
// what a job keeps across its runs (files in /tmp included); a here-document
// carries any bytes; and a node removes only the cgroups it can prove are
// its own. (A CPU of its own per slot is in tests/timing/, which runs alone.)
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/support/cluster.h"
#include "tests/support/run_jobs.h"
#include "tests/support/skip.h"

using namespace jc::test;

namespace {

// A field of /proc/PID/status, in kB (VmHWM: the peak resident set).
long long status_kb(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1));
  }
  return -1;
}

// A job of `cases` cases, each printing 4 MiB on stdout and 4 MiB on stderr
// (exactly --output 4096 on each).
std::string loud_job(int cases) {
  std::string line =
      "run --output 4096 --timeout 120000 --cpu 120000 <<END\n@@ command\n"
      "head -c 4194304 /dev/zero | tr '\\0' a; head -c 4194304 /dev/zero | tr '\\0' b >&2\n";
  for (int i = 0; i < cases; ++i) line += "@@ case\n";
  return line + "END";
}

// Checks one such job's result: the verdicts and figures a job of that many
// cases has always had.
void check_loud_result(Client& c, const std::string& ticket, int cases) {
  c.send("wait " + ticket + " 300\n");
  RunResult r = read_run_result(c, std::chrono::seconds(310));
  INFO(r.header);
  REQUIRE(r.ok);
  CHECK(r.state == "DONE");
  CHECK(r.fact("verdict") == "ACCEPTED");
  CHECK(r.number("cases") == cases);
  CHECK(r.number("passed") == cases);
  CHECK(r.out == std::string(4 << 20, 'a'));
  CHECK(r.err == std::string(4 << 20, 'b'));
  CHECK(r.fact("stdout_truncated") == "0");
  REQUIRE(r.cases.size() == static_cast<std::size_t>(cases));
  CHECK(r.cases.back().rfind("case " + std::to_string(cases) + " ACCEPTED exit=0", 0) == 0);
}

// The directory of the node's group in the memory hierarchy, from its log
// ("cgroup=v1 at DIR" or "cgroup=v2 at DIR"); "" when it has none.
std::string node_cgroup_dir(Process& node) {
  std::string log = node.log_since_start();
  auto at = log.find(" at /sys/fs/cgroup");
  if (at == std::string::npos) return "";
  auto end = log.find_first_of(" \n", at + 4);
  return log.substr(at + 4, end - at - 4);
}

}  // namespace

TEST_CASE("limits: 200 cases printing 4 MiB on each stream cost the node one output, not 200") {
  Cluster cluster({.nodes = 1, .slots = 2});
  REQUIRE(cluster.wait_nodes_up(1));
  pid_t node = cluster.node(0).pid();
  Client c(cluster.node_port(0)), watch(cluster.node_port(0));
  long long before = status_kb(node, "VmRSS");
  std::string a = submit_run(c, loud_job(200));
  std::string b = submit_run(c, loud_job(200));
  // The node's resident memory, sampled while both jobs run (the result of
  // 2 x 4 MiB that each ends with then passes through storage and links,
  // as any job's of that output does, whatever its number of cases).
  long long most = before;
  int samples = 0;
  auto running = [&](const std::string& t) {
    return watch.command("status " + t).find(" RUNNING") != std::string::npos;
  };
  REQUIRE(eventually([&] { return running(a) && running(b); }, 30s));
  while (running(a) && running(b)) {
    most = std::max(most, status_kb(node, "VmRSS"));
    ++samples;
    std::this_thread::sleep_for(20ms);
  }
  check_loud_result(c, a, 200);
  check_loud_result(c, b, 200);
  MESSAGE("node RSS: " << before / 1024 << " MB before, at most " << most / 1024
                       << " MB in " << samples << " samples while two jobs of 200 cases ran "
                       << "(each case 4 MiB + 4 MiB); peak " << status_kb(node, "VmHWM") / 1024
                       << " MB with the results delivered");
  CHECK(samples >= 5);
  // Before this bound, each such job kept every case's output: 1.6 GB.
  // Two jobs' outputs in flight and the allocator's slack are 35 to 66 MB
  // here (the most seen with three tests running at once on two CPUs).
  CHECK(most - before < 128 * 1024);
}

TEST_CASE("limits: --memory bounds the whole job, files that earlier runs left in /tmp included") {
  Cluster cluster({.nodes = 1, .slots = 1});
  REQUIRE(cluster.wait_nodes_up(1));
  Client c(cluster.node_port(0));
  std::string have = node_sandbox(c, "n1");
  for (const char* p : {"cgroup", "fs"}) {
    if (protection_applies(have, p)) continue;
    if (std::string(p) == "cgroup" ? can_create_cgroups() : (::geteuid() == 0 && has_cap_sys_admin()))
      FAIL("the node applies sandbox=" << have << " without " << p << ", which this machine allows");
    JC_SKIP(std::string("this machine does not allow the ") + p + " protection");
  }
  // Each case adds 50 MB to /tmp, which stays for the next case.
  auto job = [&](int memory_mb) {
    std::string script =
        "@@ command\nf=$(mktemp) && dd if=/dev/zero of=$f bs=1M count=50 2>/dev/null && "
        "du -sm /tmp | cut -f1\n";
    for (int i = 0; i < 8; ++i) script += "@@ case\n";
    return run_and_wait(c, "run --memory " + std::to_string(memory_mb) +
                               " --disk 1024 --timeout 20000 <<END\n" + script + "END");
  };
  RunResult bounded = job(64);
  INFO(bounded.header);
  CHECK(bounded.fact("verdict") == "MEMORY_LIMIT_EXCEEDED");
  CHECK(bounded.state == "FAILED");
  REQUIRE(bounded.cases.size() == 8);
  CHECK(bounded.cases[0].rfind("case 1 ACCEPTED", 0) == 0);
  CHECK(bounded.cases[1].rfind("case 2 MEMORY_LIMIT_EXCEEDED", 0) == 0);
  // peak_kb stays the run's own: the first case's 50 MB file, and under the
  // limit for the second, which found 50 MB already taken.
  auto peak = [](const std::string& line) {
    auto at = line.find("peak_kb=");
    return std::stoll(line.substr(at + 8));
  };
  CHECK(peak(bounded.cases[0]) > 50 * 1024);
  CHECK(peak(bounded.cases[1]) < 64 * 1024);
  // With room for all of it, the same job passes: the verdict was memory's.
  RunResult roomy = job(512);
  INFO(roomy.header);
  CHECK(roomy.fact("verdict") == "ACCEPTED");
  CHECK(roomy.number("passed") == 8);
}

TEST_CASE("limits: a counted here-document section carries any file, and its lines stay in it") {
  Cluster cluster({.nodes = 1, .slots = 1});
  REQUIRE(cluster.wait_nodes_up(1));
  Client c(cluster.node_port(0));
  // A diff, lines that read as sections and as the terminator, CR LF, NUL
  // and high bytes, a line far longer than a command line may be.
  std::string file = "--- a/sum.py\n+++ b/sum.py\n@@ -1,2 +1,2 @@\n-print(1)\n+print(2)\n";
  file += "@@ command\nrm -rf /box\n@@ case\nEND\r\n";
  file += std::string("\0\x01\xfe\xff", 4);
  file += std::string(200'000, 'L') + "\nno newline at the end";
  std::string doc = "run <<END\n@@ command\ncat fix.patch\n@@ file fix.patch " +
                    std::to_string(file.size()) + "\n" + file + "\nEND";
  RunResult r = run_and_wait(c, doc);
  INFO(r.header);
  CHECK(r.state == "DONE");
  CHECK(r.number("cases") == 0);
  CHECK(r.out == file);
  // A second command, as a pasted file in the old form would give, is refused.
  std::string twice = c.command("run <<END\n@@ command\necho 1\n@@ command\necho 2\nEND");
  CHECK(twice.rfind("ERR line 3 of the here-document: a second '@@ command'", 0) == 0);
  // And the connection goes on.
  CHECK(c.command("format text") == "OK format text");
}

TEST_CASE("limits: a node removes only the cgroups its data directory proves are its own") {
  if (!can_create_cgroups()) JC_SKIP("this machine does not let this process create cgroups");
  Cluster cluster({.nodes = 1, .slots = 1});
  REQUIRE(cluster.wait_nodes_up(1));
  std::string mine = node_cgroup_dir(cluster.node(0));
  REQUIRE_MESSAGE(!mine.empty(), cluster.node(0).log_since_start());
  std::string parent = mine.substr(0, mine.rfind('/'));
  std::string identity = mine.substr(mine.rfind('-') + 1);
  REQUIRE(identity.size() == 16);
  // What a killed earlier process of this node left (under another node
  // id), and what other nodes have: one named the old way after a PID that
  // is not alive here (another container's PID namespace), one of another
  // data directory.
  std::string own_stale = parent + "/jobcluster-renamed-" + identity;
  std::string other_pid = parent + "/jobcluster-n9-" + std::to_string(5'000'000 + ::getpid() % 100'000);
  std::string other_dir = parent + "/jobcluster-n9-" + std::string(16, 'e');
  for (const auto& d : {own_stale, own_stale + "/job-1", own_stale + "/job-1/run-2", other_pid,
                        other_pid + "/run-1", other_dir}) {
    REQUIRE_MESSAGE(::mkdir(d.c_str(), 0755) == 0, d);
  }
  cluster.restart_node(0);  // kill -9, then the same data directory again
  REQUIRE(cluster.wait_nodes_up(1));
  CHECK(node_cgroup_dir(cluster.node(0)) == mine);
  CHECK_FALSE(std::filesystem::exists(own_stale));
  CHECK(std::filesystem::exists(other_pid + "/run-1"));
  CHECK(std::filesystem::exists(other_dir));
  ::rmdir((other_pid + "/run-1").c_str());
  ::rmdir(other_pid.c_str());
  ::rmdir(other_dir.c_str());
  // And it still runs jobs in its group.
  Client c(cluster.node_port(0));
  CHECK(run_and_wait(c, "run true").state == "DONE");
}
