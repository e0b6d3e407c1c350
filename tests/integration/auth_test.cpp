// Client credentials (CLIENT_TOKENS, ADMIN_NAMES): a job belongs to the
// name that submitted it, through every node and on the HTTP API; another
// name learns nothing about it, not even that it exists.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/support/cluster.h"

using namespace jc::test;
namespace fs = std::filesystem;

namespace {

const std::string kAlice = "alice-token-5f0c2b91d7e3";
const std::string kBob = "bob-token-0a9e77c41b2d";
const std::string kRoot = "root-token-c3d1e8f02a64";

struct TokenFile {
  TokenFile() {
    path = (fs::temp_directory_path() / ("jc-tokens-" + std::to_string(::getpid()))).string();
    std::ofstream out(path);
    out << "# name:token\nalice:" << kAlice << "\nbob:" << kBob << "\n\nroot:" << kRoot << "\n";
  }
  ~TokenFile() {
    std::error_code ec;
    fs::remove(path, ec);
  }
  std::string path;
};

std::string http_get(std::uint16_t port, const std::string& path, const std::string& token) {
  Client c(port);
  std::string req = "GET " + path + " HTTP/1.0\r\nHost: test\r\n";
  if (!token.empty()) req += "Authorization: Bearer " + token + "\r\n";
  c.send(req + "\r\n");
  return c.until_close().value_or("");
}

// The reply with the ticket replaced, to compare with an unknown ticket's.
std::string masked(std::string reply, const std::string& ticket) {
  for (auto at = reply.find(ticket); at != std::string::npos; at = reply.find(ticket)) {
    reply.replace(at, ticket.size(), "T");
  }
  return reply;
}

}  // namespace

TEST_CASE("tokens: a job is its owner's through every node and on the HTTP API") {
  TokenFile tokens;
  std::map<std::string, std::string> env{{"CLIENT_TOKENS", tokens.path},
                                         {"ADMIN_NAMES", "root"}};
  auto proxy_env = env;
  proxy_env["STATUS_PORT"] = "0";
  Cluster cluster({.nodes = 2, .slots = 1, .proxy_env = proxy_env, .node_env = env});
  std::uint16_t http = cluster.proxy().wait_listening("for status");
  REQUIRE(http != 0);

  Client alice(cluster.node_port(0));
  CHECK(alice.command("stats") == "ERR auth required: send auth <token> first");
  CHECK(alice.command("auth not-a-token-at-all-0000") == "ERR auth failed: wrong token");
  CHECK(alice.command("auth " + kAlice) == "OK auth alice");
  // Both nodes up before the first job: the short job below must find the
  // second node's free slot, not wait behind the long one as node 0's prefetch.
  REQUIRE(eventually(
      [&] {
        auto lines = alice.multi("stats");
        return lines.size() >= 3 && lines[1].find("nodes_up=2") != std::string::npos &&
               lines[1].find("proxy=up") != std::string::npos;
      },
      15s));
  std::string running = alice.command("run --timeout 60000 sleep 30");
  REQUIRE(running.rfind("Ticket ID: ", 0) == 0);
  running = running.substr(11);
  std::string done = alice.command("5");
  REQUIRE(done.rfind("Ticket ID: ", 0) == 0);
  done = done.substr(11);
  REQUIRE(alice.command("wait " + done + " 30").rfind("Result: ", 0) == 0);

  // Bob, on the other node, gets for alice's tickets exactly what he gets
  // for a ticket that does not exist.
  Client bob(cluster.node_port(1));
  CHECK(bob.command("auth " + kBob) == "OK auth bob");
  const std::string nobody = "zzzzzz-1-AAAAAAAAAAA";
  for (const std::string& verb : {std::string("r"), std::string("status "),
                                  std::string("wait "), std::string("cancel ")}) {
    std::string suffix = verb == "wait " ? " 1" : "";
    std::string theirs = bob.command(verb + done + suffix);
    std::string none = bob.command(verb + nobody + suffix);
    INFO(verb, ": ", theirs);
    CHECK(theirs.rfind("ERR ", 0) == 0);
    CHECK(masked(theirs, done) == masked(none, nobody));
  }
  CHECK(masked(bob.command("cancel " + running), running) ==
        masked(bob.command("cancel " + nobody), nobody));
  CHECK(alice.command("status " + running).find("CANCELLED") == std::string::npos);
  CHECK(cluster.proxy().log_count("refused cancel ticket=" + running) == 1);
  // getall lists one's own jobs only; drain needs an admin.
  Client bob_home(cluster.node_port(0));
  REQUIRE(bob_home.command("auth " + kBob) == "OK auth bob");
  CHECK(bob_home.multi("getall") == std::vector<std::string>{"Jobs: 0"});
  CHECK(alice.multi("getall").size() == 3);
  CHECK(bob_home.command("drain") == "ERR drain needs a name listed in ADMIN_NAMES");

  // The HTTP API: a token is needed, and only the owner's (or an admin's) shows the job.
  std::string path = "/api/jobs/" + done;
  CHECK(http_get(http, path, "").find("HTTP/1.0 401") == 0);
  CHECK(http_get(http, path, "").find("WWW-Authenticate: Bearer") != std::string::npos);
  CHECK(http_get(http, path, kBob).find("HTTP/1.0 404") == 0);
  std::string mine = http_get(http, path, kAlice);
  CHECK(mine.find("HTTP/1.0 200") == 0);
  CHECK(mine.find(done) != std::string::npos);
  CHECK(http_get(http, path, kRoot).find("HTTP/1.0 200") == 0);
  // The dashboard's recent jobs name tickets and owners: an admin's only.
  CHECK(http_get(http, "/api/state", "").find("\"recent_jobs\"") == std::string::npos);
  CHECK(http_get(http, "/api/state", kAlice).find("\"recent_jobs\"") == std::string::npos);
  std::string state = http_get(http, "/api/state", kRoot);
  CHECK(state.find("\"recent_jobs\"") != std::string::npos);
  CHECK(state.find("\"ticket\":\"" + done + "\"") != std::string::npos);
  CHECK(state.find("\"owner\":\"alice\"") != std::string::npos);

  // An admin reads and cancels anyone's job.
  Client root(cluster.node_port(1));
  REQUIRE(root.command("auth " + kRoot) == "OK auth root");
  CHECK(root.command("r" + done).rfind("Result: ", 0) == 0);
  CHECK(root.command("cancel " + running).find("ERR") != 0);
  CHECK(eventually(
      [&] { return alice.command("status " + running).find("CANCELLED") != std::string::npos; },
      20s));

  // Three wrong tokens close the connection; no token is ever logged.
  Client guesser(cluster.node_port(0));
  guesser.command("auth guess-number-one-000000");
  guesser.command("auth guess-number-two-000000");
  CHECK(guesser.command("auth guess-number-three-0000").find("closing") != std::string::npos);
  CHECK(guesser.closed_by_peer(5s));
  for (Process* p : {&cluster.proxy(), &cluster.node(0), &cluster.node(1)}) {
    std::string log = p->log_since_start();
    CHECK(log.find(kAlice) == std::string::npos);
    CHECK(log.find(kBob) == std::string::npos);
    CHECK(log.find(kRoot) == std::string::npos);
    CHECK(log.find("guess-number") == std::string::npos);
  }
}

TEST_CASE("tokens: a bad CLIENT_TOKENS file or ADMIN_NAMES stops the start with the line at fault") {
  auto dir = fs::temp_directory_path() / ("jc-badtokens-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto start = [&](const std::string& content, const std::string& admins) {
    std::ofstream((dir / "tokens").string()) << content;
    std::map<std::string, std::string> env{{"CLIENT_TOKENS", (dir / "tokens").string()},
                                           {"DATA_DIR", (dir / "data").string()}};
    if (!admins.empty()) env["ADMIN_NAMES"] = admins;
    Process p(std::string(JC_BIN_DIR) + "/reverse_proxy", {"0"}, env, (dir / "log").string());
    p.start();
    int code = p.wait_exit(10s);
    return std::make_pair(code, p.log_since_start());
  };
  auto [c1, l1] = start("alice:short\n", "");
  CHECK(c1 == 2);
  CHECK(l1.find("line 1: the token of 'alice' is shorter than 16 characters") != std::string::npos);
  CHECK(l1.find("short\n") == std::string::npos);
  auto [c2, l2] = start("alice:" + kAlice + "\nno colon here\n", "");
  CHECK(c2 == 2);
  CHECK(l2.find("line 2: expected name:token") != std::string::npos);
  auto [c3, l3] = start("alice:" + kAlice + "\n", "mallory");
  CHECK(c3 == 2);
  CHECK(l3.find("ADMIN_NAMES: 'mallory' has no token in CLIENT_TOKENS") != std::string::npos);
  std::error_code ec;
  fs::remove_all(dir, ec);
}
