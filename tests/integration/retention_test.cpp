// RESULT_TTL with real processes: expired tickets answer ERR at once from
// every node and every read command, their records leave LevelDB on the
// proxy and the nodes, the files shrink, and counters never go back.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "storage/store.h"
#include "tests/support/cluster.h"

using namespace jc::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

constexpr auto kTtl = 1500ms;

std::map<std::string, std::string> ttl_env() {
  return {{"RESULT_TTL", std::to_string(kTtl.count())}, {"REQUEST_RESULT_PERIOD", "200"}};
}

bool expired_reply(const std::string& reply, const std::string& ticket) {
  return reply == "ERR ticket '" + ticket + "' expired: its job ended more than RESULT_TTL ago";
}

// Polls `r` until it says the ticket expired; false at the deadline.
bool wait_expired(Client& c, const std::string& ticket, std::chrono::milliseconds deadline = 20s) {
  auto until = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < until) {
    if (expired_reply(c.command("r" + ticket), ticket)) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

// The whole HTTP/1.0 response to GET `path`.
std::string http_get(std::uint16_t port, const std::string& path) {
  Client c(port);
  c.send("GET " + path + " HTTP/1.0\r\nHost: test\r\n\r\n");
  return c.until_close().value_or("");
}

// Keys under `prefix` in a stopped process's DATA_DIR.
std::size_t count_keys(const std::string& dir, std::string_view prefix) {
  std::unique_ptr<jc::storage::Store> store;
  REQUIRE(jc::storage::open_leveldb(dir, &store).ok());
  std::size_t n = 0;
  store->scan(prefix, [&](std::string_view, std::string_view) {
    ++n;
    return true;
  });
  return n;
}

// The bytes of LevelDB's tables and logs (not its text LOG of events).
std::uintmax_t dir_bytes(const std::string& dir) {
  std::uintmax_t total = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    auto name = e.path().filename().string();
    if (name == "LOG" || name == "LOG.old") continue;
    auto size = e.file_size(ec);
    if (!ec) total += size;
  }
  return total;
}

}  // namespace

TEST_CASE("retention: an expired ticket answers ERR at once from r, status, wait, cancel and every node") {
  auto proxy_env = ttl_env();
  proxy_env.emplace("STATUS_PORT", "0");
  Cluster cluster({.nodes = 2, .slots = 2, .proxy_env = proxy_env, .node_env = ttl_env()});
  std::uint16_t http = cluster.proxy().wait_listening("for status");
  REQUIRE(http != 0);
  REQUIRE(cluster.wait_nodes_up(2));
  Client c0(cluster.node_port(0));
  Client c1(cluster.node_port(1));
  std::string t = submit(c0, 10);
  REQUIRE(!t.empty());
  REQUIRE(!wait_result(c0, t, 30s).empty());
  // Through the other node too, while it lasts (it caches the result).
  CHECK(c1.command("r" + t).rfind("Result: Executed Job[" + t + "]", 0) == 0);

  REQUIRE(wait_expired(c0, t));
  // From now on every read, through every node, says so at once.
  CHECK(expired_reply(c0.command("status " + t), t));
  CHECK(expired_reply(c0.command("wait " + t + " 30", 5s), t));
  CHECK(expired_reply(c1.command("r" + t), t));
  CHECK(expired_reply(c1.command("status " + t), t));
  CHECK(expired_reply(c1.command("wait " + t, 5s), t));
  CHECK(expired_reply(c1.command("cancel " + t), t));
  c0.send("format json\n");
  CHECK(c0.line() == "OK format json");
  CHECK(c0.command("r" + t) ==
        "{\"error\":\"ticket '" + t + "' expired: its job ended more than RESULT_TTL ago\"}");
  c0.send("format text\n");
  CHECK(c0.line() == "OK format text");
  // getall lists it no more.
  auto all = c0.multi("getall");
  REQUIRE(!all.empty());
  CHECK(all[0] == "Jobs: 0");

  // The HTTP API says Gone, and /metrics counts it once the proxy swept it.
  std::string gone = http_get(http, "/api/jobs/" + t);
  CHECK(gone.substr(0, gone.find('\r')) == "HTTP/1.0 410 Gone");
  CHECK(gone.find("expired") != std::string::npos);
  auto until = std::chrono::steady_clock::now() + 20s;
  while (http_get(http, "/metrics").find("\njobcluster_jobs_expired_total 1\n") ==
             std::string::npos &&
         std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(100ms);
  }
  CHECK(http_get(http, "/metrics").find("\njobcluster_jobs_expired_total 1\n") !=
        std::string::npos);

  // A ticket that was never given, of another node's shape, is still unknown.
  CHECK(c1.command("rzzzzzz-1-AAAAAAAAAAA", 15s) == "ERR unknown ticket 'zzzzzz-1-AAAAAAAAAAA'");
}

TEST_CASE("retention: expired jobs leave LevelDB on the proxy and the nodes, and the files shrink") {
  Cluster cluster({.nodes = 1, .slots = 4, .proxy_env = ttl_env(), .node_env = ttl_env()});
  REQUIRE(cluster.wait_nodes_up(1));
  Client c(cluster.node_port(0));
  // Jobs with a few kilobytes of output each, so records weigh on the files.
  std::vector<std::string> tickets;
  std::string payload(3000, 'x');
  for (int i = 0; i < 300; ++i) {
    c.send("run --timeout 5000 printf %s " + payload + "\n");
  }
  for (int i = 0; i < 300; ++i) {
    auto reply = c.line(30s);
    REQUIRE(reply);
    REQUIRE(reply->rfind("Ticket ID: ", 0) == 0);
    tickets.push_back(reply->substr(11));
  }
  std::string proxy_dir = cluster.dir() + "/proxy";
  std::string node_dir = cluster.dir() + "/n1";
  // The largest the files were (early jobs may expire while later ones run).
  std::uintmax_t proxy_full = 0, node_full = 0;
  for (const auto& t : tickets) {
    proxy_full = std::max(proxy_full, dir_bytes(proxy_dir));
    node_full = std::max(node_full, dir_bytes(node_dir));
    auto until = std::chrono::steady_clock::now() + 120s;
    // DONE, or already expired (RESULT_TTL is short here).
    for (std::string reply = c.command("status " + t);
         reply.rfind("Status: " + t + " DONE", 0) != 0 && !expired_reply(reply, t);
         reply = c.command("status " + t)) {
      REQUIRE(std::chrono::steady_clock::now() < until);
      std::this_thread::sleep_for(50ms);
    }
  }
  proxy_full = std::max(proxy_full, dir_bytes(proxy_dir));
  node_full = std::max(node_full, dir_bytes(node_dir));

  for (const auto& t : {tickets.front(), tickets.back()}) REQUIRE(wait_expired(c, t, 30s));
  // The sweeps run every RESULT_TTL; compaction follows in the background.
  auto until = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < until &&
         (dir_bytes(proxy_dir) * 2 > proxy_full || dir_bytes(node_dir) * 2 > node_full)) {
    std::this_thread::sleep_for(200ms);
  }
  INFO("proxy " << proxy_full << " -> " << dir_bytes(proxy_dir) << " bytes, node " << node_full
                << " -> " << dir_bytes(node_dir));
  CHECK(dir_bytes(proxy_dir) * 2 <= proxy_full);
  CHECK(dir_bytes(node_dir) * 2 <= node_full);

  // What is left in the stores: no record of any of the jobs.
  cluster.proxy().kill_hard();
  cluster.node(0).kill_hard();
  CHECK(count_keys(proxy_dir, "f/") == 0);
  CHECK(count_keys(proxy_dir, "a/") == 0);
  CHECK(count_keys(proxy_dir, "q/") == 0);
  CHECK(count_keys(proxy_dir, "h/") == 0);
  CHECK(count_keys(proxy_dir, "n/") == 0);
  CHECK(count_keys(proxy_dir, "e/") == 0);
  CHECK(count_keys(node_dir, "o/") == 0);
  CHECK(count_keys(node_dir, "x/") == 0);
  CHECK(count_keys(node_dir, "e/") == 0);

  // After restarts: still expired, and the next ticket's counter goes on
  // (from m/counter, reserved ahead: past every counter handed out).
  cluster.restart_proxy(false);
  cluster.restart_node(0, false);
  REQUIRE(cluster.wait_nodes_up(1));
  Client again(cluster.node_port(0));
  CHECK(expired_reply(again.command("r" + tickets[7]), tickets[7]));
  std::string fresh = submit(again, 1);
  REQUIRE(!fresh.empty());
  auto counter = [](const std::string& t) {
    auto a = t.find('-');
    return std::stoull(t.substr(a + 1, t.find('-', a + 1) - a - 1));
  };
  CHECK(counter(fresh) > counter(tickets.back()));
}

TEST_CASE("retention: nodes follow the proxy's RESULT_TTL, and say so, when theirs differs") {
  // The nodes keep the default (7 days): their reads must still agree with the proxy's.
  Cluster cluster({.nodes = 1, .slots = 1, .proxy_env = ttl_env()});
  REQUIRE(cluster.wait_nodes_up(1));
  Client c(cluster.node_port(0));
  std::string t = submit(c, 1);
  REQUIRE(!t.empty());
  REQUIRE(!wait_result(c, t, 30s).empty());
  CHECK(wait_expired(c, t));
  CHECK(cluster.node(0).log_since_start().find("following the proxy's") != std::string::npos);
}
