// A data directory written by an earlier release opens with today's
// binaries and shows what it held: tests/fixtures/format4 (see its README).
#include <doctest/doctest.h>

#include <chrono>
#include <ctime>
#include <unistd.h>
#include <filesystem>
#include <string>

#include "tests/support/cluster.h"
#include "tests/support/run_jobs.h"

using namespace jc::test;
namespace fs = std::filesystem;

namespace {

const std::string kFirst = "47bxam-1-t5NJX4HV2e-";
const std::string kSecond = "47bxam-2-dw4UlQzgANr";
const std::string kRun = "47bxam-3-qhDZ1Rp_45F";
const std::string kDelayed = "47bxam-4-9e-gfPtmxcm";
// 2026-12-29T23:25:37.018Z, the delayed job's not_before.
constexpr std::int64_t kDelayedNotBeforeMs = 1798586737018;

// A copy of the fixture, since a process writes into its DATA_DIR.
std::string copy_fixture(const std::string& name) {
  fs::path from = fs::path(JC_SOURCE_DIR) / "tests/fixtures/format4" / name;
  fs::path to = fs::temp_directory_path() / ("jc-fixture-" + name + "-" +
                                             std::to_string(::getpid()));
  fs::remove_all(to);
  fs::copy(from, to, fs::copy_options::recursive);
  return to.string();
}

}  // namespace

TEST_CASE("upgrade: a format-4 DATA_DIR opens, with its results, its queue and its counter") {
  std::string proxy_dir = copy_fixture("proxy");
  std::string node_dir = copy_fixture("fx1");
  {
    // Kept forever: the fixture's jobs ended on 2026-11-29.
    Cluster cluster(
        {.nodes = 0, .slots = 1, .proxy_env = {{"DATA_DIR", proxy_dir}, {"RESULT_TTL", "0"}}});
    cluster.add_node(
        {{"DATA_DIR", node_dir}, {"NODE_ID", "fx1"}, {"NODE_SLOTS", "1"}, {"RESULT_TTL", "0"}});
    REQUIRE(cluster.wait_nodes_up(1));
    Client c(cluster.node_port(0));
    CHECK(c.command("r" + kFirst) ==
          "Result: Executed Job[" + kFirst +
              "] for 10 milliseconds from 2026-11-29 23:25:37.043 to 2026-11-29 23:25:37.053 on "
              "node fx1");
    CHECK(c.command("status " + kSecond).rfind("Status: " + kSecond + " DONE node=fx1", 0) == 0);
    c.send("r" + kRun + "\n");
    auto run = read_run_result(c, std::chrono::seconds(15));
    REQUIRE(run.ok);
    CHECK(run.state == "DONE");
    CHECK(run.out == "fixture-output\n");
    auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
    if (now_ms < kDelayedNotBeforeMs) {
      CHECK(c.command("status " + kDelayed) ==
            "Status: " + kDelayed +
                " QUEUED node=- attempt=0 priority=0 not_before=2026-12-29T23:25:37.018Z");
    } else {  // its time has come since the fixture was made
      CHECK(!wait_result(c, kDelayed, 30s).empty());
    }
    // The node's counter went on from where it was: no ticket is given twice.
    std::string fresh = c.command("5");
    CHECK(fresh.rfind("Ticket ID: 47bxam-5-", 0) == 0);
  }
  fs::remove_all(proxy_dir);
  fs::remove_all(node_dir);
}

TEST_CASE("upgrade: a format-4 DATA_DIR's finished jobs expire by RESULT_TTL from their end") {
  std::string proxy_dir = copy_fixture("proxy");
  std::string node_dir = copy_fixture("fx1");
  {
    // An hour: the fixture's jobs ended at 2026-11-29 23:25, more than an
    // hour before this test was written.
    const std::string hour = "3600000";
    Cluster cluster(
        {.nodes = 0, .slots = 1, .proxy_env = {{"DATA_DIR", proxy_dir}, {"RESULT_TTL", hour}}});
    cluster.add_node(
        {{"DATA_DIR", node_dir}, {"NODE_ID", "fx1"}, {"NODE_SLOTS", "1"}, {"RESULT_TTL", hour}});
    REQUIRE(cluster.wait_nodes_up(1));
    Client c(cluster.node_port(0));
    auto expired = [](const std::string& t) {
      return "ERR ticket '" + t + "' expired: its job ended more than RESULT_TTL ago";
    };
    CHECK(c.command("r" + kFirst) == expired(kFirst));
    CHECK(c.command("status " + kSecond) == expired(kSecond));
    CHECK(c.command("r" + kRun) == expired(kRun));
    // The delayed job is not final: it stays whatever its age.
    CHECK(c.command("status " + kDelayed).rfind("Status: " + kDelayed + " ", 0) == 0);
  }
  fs::remove_all(proxy_dir);
  fs::remove_all(node_dir);
}
