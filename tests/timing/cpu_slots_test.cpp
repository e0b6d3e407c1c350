// A CPU of its own for every slot, tried as a contest judge needs it: a job
// that starts 64 busy processes must not push an honest job in the other
// slot into TIME_LIMIT_EXCEEDED. Timing tests run alone (RUN_SERIAL in
// tests/CMakeLists.txt): a test beside them would be the neighbour they
// measure.
#include <doctest/doctest.h>
#include <sched.h>

#include <algorithm>
#include <sstream>
#include <thread>

#include "tests/support/cluster.h"
#include "tests/support/run_jobs.h"
#include "tests/support/skip.h"

using namespace jc::test;

namespace {

int cpus_allowed() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  return CPU_COUNT(&set);
}

// The node's `cpus=` in stats ("pinned", "shared"), "" when not listed.
std::string node_cpus(Client& c) {
  for (const auto& line : c.multi("stats")) {
    if (line.rfind("node n1 ", 0) != 0) continue;
    auto at = line.find(" cpus=");
    if (at != std::string::npos) return line.substr(at + 6, line.find(' ', at + 6) - at - 6);
  }
  return "";
}

struct Figures {
  std::vector<long long> wall, cpu;
  std::string text() const {
    std::ostringstream out;
    for (std::size_t i = 0; i < wall.size(); ++i) {
      out << (i ? ", " : "") << wall[i] << "/" << cpu[i];
    }
    return out.str() + " ms (wall/cpu)";
  }
};

// About 0.8 s of CPU on this project's machines: a shell loop, as a
// student's program that computes.
std::string honest(long long limit_ms) {
  return "run --timeout " + std::to_string(limit_ms) + " --cpu " + std::to_string(limit_ms) +
         " i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; echo $i";
}

}  // namespace

TEST_CASE("cpu: 64 busy processes in one slot cannot push an honest job in the other past 2x") {
  if (cpus_allowed() < 2) JC_SKIP("this machine gives this process fewer than two CPUs");
  Cluster cluster({.nodes = 1, .slots = 2});
  REQUIRE(cluster.wait_nodes_up(1));
  Client c(cluster.node_port(0));
  std::string cpus = node_cpus(c);
  if (cpus != "pinned") {
    std::string log = cluster.node(0).log_since_start();
    auto at = log.find("slots share the CPUs (");
    std::string why = at == std::string::npos ? "?" : log.substr(at + 22, log.find(')', at) - at - 22);
    // Without cgroups, or without a cpuset controller, the machine cannot
    // pin; with both, a node that does not is a failure.
    bool machine_cannot = !can_create_cgroups() || why.find("cpuset") != std::string::npos;
    if (machine_cannot) JC_SKIP("this machine cannot keep a slot on a CPU: " + why);
    FAIL("two slots on " << cpus_allowed() << " CPUs are not pinned: " << why);
  }
  Figures alone, beside;
  for (int i = 0; i < 3; ++i) {
    RunResult r = run_and_wait(c, honest(60'000));
    REQUIRE(r.state == "DONE");
    alone.wall.push_back(r.number("wall_ms"));
    alone.cpu.push_back(r.number("cpu_ms"));
  }
  long long limit = 2 * *std::max_element(alone.wall.begin(), alone.wall.end());
  std::string m = unique_marker();
  std::string hog = submit_run(c, "run --timeout 120000 --cpu 300000 for i in $(seq 64); do "
                                  "sh -c 'while :; do :; done' busy" + m + " & done; wait");
  REQUIRE(eventually([&] { return host_processes_with("busy" + m).size() >= 64; }, 30s));
  Client other(cluster.node_port(0));
  for (int i = 0; i < 3; ++i) {
    RunResult r = run_and_wait(other, honest(limit));
    INFO(r.header);
    CHECK(r.state == "DONE");
    CHECK(r.fact("verdict") != "TIME_LIMIT_EXCEEDED");
    beside.wall.push_back(r.number("wall_ms"));
    beside.cpu.push_back(r.number("cpu_ms"));
  }
  MESSAGE("honest job alone: " << alone.text() << "; beside 64 busy processes in the other slot, "
                               << "limit " << limit << " ms: " << beside.text());
  c.command("cancel " + hog);
  CHECK(eventually([&] { return host_processes_with("busy" + m).empty(); }, 10s));
}
