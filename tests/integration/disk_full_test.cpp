// A node and a proxy whose DATA_DIR fills up: both keep running, refuse new
// jobs with a clear ERR, answer reads, restart read-only, and resume by
// themselves once the file system is enlarged, losing nothing acknowledged.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/cluster.h"
#include "tests/support/skip.h"
#include "tests/support/small_disk.h"

using namespace jc::test;
namespace fs = std::filesystem;


TEST_CASE("full disk: refused with ERR, reads go on, read-only restart, then service resumes") {
  if (!has_cap_sys_admin()) JC_SKIP("needs CAP_SYS_ADMIN to mount a small tmpfs");
  SmallDisk disk(16);
  if (!disk.mounted) JC_SKIP("cannot mount a tmpfs here");
  Cluster cluster({.nodes = 0, .slots = 2, .proxy_env = {{"DATA_DIR", disk.dir + "/proxy"}}});
  cluster.add_node({{"DATA_DIR", disk.dir + "/n1"}});
  REQUIRE(cluster.wait_nodes_up(1));
  Client c(cluster.node_port(0));
  std::vector<std::string> acknowledged = submit_many(c, 20, 1);
  REQUIRE(acknowledged.size() == 20);
  for (const auto& t : acknowledged) REQUIRE(!wait_result(c, t, 30s).empty());

  disk.fill();
  // Submits: a ticket while the last pages still take the record (it is
  // durable then), no reply while the write is retried (the ticket comes
  // once it is durable), then ERR.
  std::vector<std::unique_ptr<Client>> pending;
  bool refused = false;
  for (int i = 0; i < 200 && !refused; ++i) {
    auto client = std::make_unique<Client>(cluster.node_port(0));
    std::string reply = client->command("5", 1s);
    if (reply.rfind("Ticket ID: ", 0) == 0) {
      acknowledged.push_back(reply.substr(11));
    } else if (reply.empty()) {
      pending.push_back(std::move(client));
    } else {
      CHECK(reply == "ERR storage full, try again later");
      refused = true;
    }
  }
  REQUIRE(refused);
  CHECK(cluster.node(0).log_count("storage write failed: ") == 1);
  // Reads go on, and both processes run.
  CHECK(c.command("r" + acknowledged.front()).rfind("Result: ", 0) == 0);
  CHECK(c.command("status " + acknowledged.front()).find(" DONE ") != std::string::npos);
  CHECK(cluster.node(0).running());
  CHECK(cluster.proxy().running());

  // Killed while the disk is full, both come back read-only and say so.
  cluster.restart_proxy();
  cluster.restart_node(0);
  CHECK(cluster.proxy().log_count("started read-only") == 1);
  CHECK(cluster.node(0).log_count("started read-only") == 1);
  Client after(cluster.node_port(0));
  CHECK(eventually([&] { return after.command("5") == "ERR storage full, try again later"; }, 10s));
  // The node answers from what it holds (its clients' results).
  CHECK(eventually(
      [&] { return after.command("r" + acknowledged.front()).rfind("Result: ", 0) == 0; }, 15s));

  // More room: service resumes by itself and nothing acknowledged is lost.
  REQUIRE(disk.resize(256));
  std::string fresh;
  REQUIRE(eventually(
      [&] {
        std::string reply = after.command("5");
        if (reply.rfind("Ticket ID: ", 0) == 0) fresh = reply.substr(11);
        return !fresh.empty();
      },
      30s));
  acknowledged.push_back(fresh);
  for (const auto& t : acknowledged) {
    INFO("ticket ", t);
    CHECK(!wait_result(after, t, 60s).empty());
  }
  CHECK(eventually(
      [&] {
        return cluster.node(0).log_count("storage writable again") >= 1 &&
               cluster.proxy().log_count("storage writable again") >= 1;
      },
      30s));
}
