// Three replicated proxies (PROXY_PEERS) with real kills: one leads, nodes
// follow it, and whatever proxy dies, no acknowledged job is lost and none
// shows two results. The stores of the proxies end identical.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <set>
#include <thread>

#include "storage/store.h"
#include "protocol/auth.h"
#include "tests/support/cluster.h"
#include "tests/support/rogue_node.h"
#include "tests/support/run_jobs.h"
#include "tests/support/skip.h"
#include "tests/support/small_disk.h"

using namespace jc::test;

namespace {

ClusterOptions three_proxies(int nodes = 3) {
  ClusterOptions o;
  o.proxies = 3;
  o.nodes = nodes;
  o.slots = 2;
  o.proxy_env["RESULT_TTL"] = "0";
  // Nodes wait for the proxies rather than run their jobs alone: these
  // tests check what the proxies do.
  o.node_env["PROXY_GRACE_PERIOD"] = "600000";
  return o;
}

// Every pair of a proxy's store but its own applied index.
std::map<std::string, std::string> store_of(const std::string& dir) {
  std::unique_ptr<jc::storage::Store> store;
  REQUIRE(jc::storage::open_leveldb(dir, &store).ok());
  std::map<std::string, std::string> out;
  store->scan("", [&](std::string_view k, std::string_view v) {
    if (k != "m/raft_applied") out.emplace(k, v);
    return true;
  });
  return out;
}

// Stops the nodes (a node still talking, acknowledging a result, makes the
// leader write after a follower is stopped), waits until every running
// proxy applied the same index and it stays put, then stops them all
// (SIGTERM) and compares their stores: replicated, they are the same.
void check_stores_equal(Cluster& cluster) {
  for (std::size_t i = 0; i < cluster.size(); ++i) cluster.node(i).kill_hard();
  long long applied = -1, before = -2;
  bool same = eventually(
      [&] {
        std::set<long long> seen;
        for (std::size_t k = 0; k < cluster.proxy_count(); ++k) {
          seen.insert(cluster.proxy_applied(k));
        }
        before = std::exchange(applied, *seen.begin());
        return seen.size() == 1 && applied > 0 && applied == before;
      },
      20s, 300ms);
  REQUIRE_MESSAGE(same, "the proxies did not reach the same applied index");
  for (std::size_t k = 0; k < cluster.proxy_count(); ++k) {
    cluster.proxy(k).signal(SIGTERM);
    CHECK(cluster.proxy(k).wait_exit(10s) == 0);
  }
  auto first = store_of(cluster.proxy_data_dir(0));
  CHECK(first.size() > 2);
  for (std::size_t k = 1; k < cluster.proxy_count(); ++k) {
    auto other = store_of(cluster.proxy_data_dir(k));
    // The first key where they differ, to say what diverged.
    std::string differs;
    for (auto a = first.begin(), b = other.begin(); differs.empty();) {
      if (a == first.end() && b == other.end()) break;
      if (b == other.end() || (a != first.end() && a->first < b->first)) {
        differs = "only proxy 1 has " + a->first;
      } else if (a == first.end() || b->first < a->first) {
        differs = "only proxy " + std::to_string(k + 1) + " has " + b->first;
      } else if (a->second != b->second) {
        differs = "different values of " + a->first;
      } else {
        ++a, ++b;
      }
    }
    CHECK_MESSAGE(other == first, "proxy " << k + 1 << "'s store differs from proxy 1's ("
                                           << other.size() << " keys against " << first.size()
                                           << "): " << differs);
  }
}

}  // namespace

TEST_CASE("replicated proxies: one leads, nodes find it, stats name it, and the stores agree") {
  Cluster cluster(three_proxies(2));
  REQUIRE(cluster.wait_nodes_up(2));
  int leader = cluster.leader();
  REQUIRE(leader >= 0);
  Client a(cluster.node_port(0));
  auto tickets = submit_many(a, 40, 10);
  REQUIRE(tickets.size() == 40);
  check_all_finished_once(cluster, tickets);
  // stats lists the three proxies with their roles.
  auto lines = Client(cluster.node_port(1)).multi("stats");
  int leaders = 0, followers = 0;
  for (const auto& l : lines) {
    if (l.rfind("proxy 127.0.0.1:", 0) != 0) continue;
    leaders += l.find("role=leader") != std::string::npos;
    followers += l.find("role=follower") != std::string::npos;
  }
  CHECK(leaders == 1);
  CHECK(followers == 2);
  // A follower turns a node away and names the leader.
  int follower = (leader + 1) % 3;
  CHECK(cluster.proxy_http(follower, "/api/state").find("\"role\":\"follower\"") !=
        std::string::npos);
  CHECK(cluster.proxy_http(leader, "/api/state").find("\"role\":\"leader\"") !=
        std::string::npos);
  // /metrics: the role, the term and, on the leader, each proxy's lag.
  std::string metrics = cluster.proxy_http(leader, "/metrics");
  CHECK(metrics.find("jobcluster_raft_term ") != std::string::npos);
  CHECK(metrics.find("jobcluster_proxy_replication_lag{proxy=\"127.0.0.1:") != std::string::npos);
  CHECK(metrics.find("jobcluster_proxy_leader{proxy=\"127.0.0.1:" +
                     std::to_string(cluster.proxy_port(leader)) + "\"} 1") != std::string::npos);
  CHECK(cluster.proxy_http(follower, "/metrics").find("} 0\n") != std::string::npos);
  // A follower sends job questions to the leader.
  std::string job = cluster.proxy_http(follower, "/api/jobs/" + tickets[0]);
  CHECK(job.find("ask the leader at 127.0.0.1:" + std::to_string(cluster.proxy_port(leader))) !=
        std::string::npos);
  check_stores_equal(cluster);
}

TEST_CASE("kill -9 of the leader under load: every job finishes once, and service comes back") {
  Cluster cluster(three_proxies(3));
  REQUIRE(cluster.wait_nodes_up(3));
  int leader = cluster.leader();
  REQUIRE(leader >= 0);
  Client a(cluster.node_port(0)), b(cluster.node_port(1));
  auto tickets = submit_many(a, 100, 50);
  REQUIRE(tickets.size() == 100);
  REQUIRE(eventually([&] { return cluster.proxy(leader).log_count("dispatch node=") >= 2; }, 10s));
  cluster.kill_proxy(static_cast<std::size_t>(leader));
  auto killed = Clock::now();
  // A job submitted after the kill is served by the new leader.
  std::string after = submit(b, 0);
  REQUIRE(!after.empty());
  REQUIRE(!wait_result(b, after, 30s).empty());
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - killed).count();
  MESSAGE("a job submitted after kill -9 of the leader finished " << ms << " ms after the kill");
  int next = cluster.leader();
  CHECK(next >= 0);
  CHECK(next != leader);
  auto more = submit_many(b, 50, 10);
  REQUIRE(more.size() == 50);
  tickets.insert(tickets.end(), more.begin(), more.end());
  tickets.push_back(after);
  cluster.start_proxy(static_cast<std::size_t>(leader));
  check_all_finished_once(cluster, tickets);
  CHECK(std::set<std::string>(tickets.begin(), tickets.end()).size() == tickets.size());
  check_stores_equal(cluster);
}

TEST_CASE("after kill -9 and restart of the leader, a job submitted through one node is at once "
          "answered through another") {
  // As the containers' test does it: nodes with the default
  // PROXY_GRACE_PERIOD, a `wait` on another node right after the submit.
  ClusterOptions o = three_proxies(3);
  o.node_env.erase("PROXY_GRACE_PERIOD");
  const std::string secret(64, 'a');
  o.proxy_env["CLUSTER_SECRET"] = secret;
  o.node_env["CLUSTER_SECRET"] = secret;
  Cluster cluster(o);
  REQUIRE(cluster.wait_nodes_up(3));
  Client first(cluster.node_port(0)), third(cluster.node_port(2));
  for (int round = 0; round < 3; ++round) {
    int leader = cluster.leader();
    REQUIRE(leader >= 0);
    auto tickets = submit_many(first, 20, 300);
    REQUIRE(tickets.size() == 20);
    cluster.kill_proxy(static_cast<std::size_t>(leader));
    cluster.start_proxy(static_cast<std::size_t>(leader));
    for (const auto& t : tickets) CHECK_MESSAGE(!wait_result(third, t).empty(), t);
    std::string t = submit(first, 0);
    REQUIRE(!t.empty());
    std::string r = third.command("wait " + t + " 60", 65s);
    CHECK_MESSAGE(r.rfind("Result: ", 0) == 0, "round " << round << ": " << r);
  }
}

TEST_CASE("proxies named by a host name find each other through its look-up, and the library's "
          "bytes behind a PEER_HELLO wait for it") {
  // `localhost`: looked up (asynchronously) as a container's name is, and
  // a peer sends the library's bytes right behind its PEER_HELLO.
  ClusterOptions o = three_proxies(2);
  o.peer_host = "localhost";
  Cluster cluster(o);
  REQUIRE(cluster.wait_nodes_up(2));
  int leader = cluster.leader();
  REQUIRE(leader >= 0);
  Client a(cluster.node_port(0));
  auto tickets = submit_many(a, 20, 10);
  REQUIRE(tickets.size() == 20);
  check_all_finished_once(cluster, tickets);
  for (std::size_t k = 0; k < cluster.proxy_count(); ++k) {
    CHECK(cluster.proxy(k).log_count("handshake expected") == 0);
    CHECK(cluster.proxy(k).log_count("refused peer proxy") == 0);
  }
  // A leader killed and back: elected again through the names.
  cluster.kill_proxy(static_cast<std::size_t>(leader));
  cluster.start_proxy(static_cast<std::size_t>(leader));
  std::string after = submit(a, 0);
  REQUIRE(!after.empty());
  Client b(cluster.node_port(1));
  CHECK(!wait_result(b, after, 30s).empty());
  check_stores_equal(cluster);
}

TEST_CASE("a proxy address that accepts and then says nothing holds a node a few seconds, not a "
          "minute: it joins through the next one") {
  // A listening socket that never accepts: the kernel completes the TCP
  // handshake, and then nothing comes, as from a stalled proxy.
  int silent = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(silent >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(silent, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(silent, 16) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(silent, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  ClusterOptions o;
  o.nodes = 1;
  // The silent address first, then the real proxy (the arguments).
  o.node_env["PROXY_ADDRESSES"] = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  Cluster cluster(o);
  // Before the WELCOME a replicated link gives up after 5 s of silence; the
  // old minute-long wait would fail this.
  CHECK(cluster.wait_nodes_up(1, 30s));
  CHECK(cluster.node(0).log_count("connected to proxy peer=127.0.0.1:" +
                                  std::to_string(ntohs(addr.sin_port))) >= 1);
  ::close(silent);
}

TEST_CASE("a follower killed and back catches up, and with two proxies down nothing is served, "
          "then all of it") {
  Cluster cluster(three_proxies(2));
  REQUIRE(cluster.wait_nodes_up(2));
  int leader = cluster.leader();
  REQUIRE(leader >= 0);
  std::size_t f1 = (leader + 1) % 3, f2 = (leader + 2) % 3;
  Client a(cluster.node_port(0));
  cluster.kill_proxy(f1);
  auto tickets = submit_many(a, 30, 10);
  REQUIRE(tickets.size() == 30);
  check_all_finished_once(cluster, tickets);  // one follower is enough
  // Without a majority: the leader steps down, and nodes keep their jobs.
  cluster.kill_proxy(f2);
  REQUIRE(eventually(
      [&] { return cluster.proxy(leader).log_count("stepped down") >= 1; }, 10s));
  auto waiting = submit_many(a, 10, 10);
  REQUIRE(waiting.size() == 10);
  REQUIRE(eventually(
      [&] { return cluster.stats_line(0).find("proxy=unreachable") != std::string::npos; }, 10s));
  Client c(cluster.node_port(1));
  for (const auto& t : waiting) {
    CHECK(c.command("status " + t).find(" DONE") == std::string::npos);
  }
  cluster.start_proxy(f1);
  cluster.start_proxy(f2);
  tickets.insert(tickets.end(), waiting.begin(), waiting.end());
  check_all_finished_once(cluster, tickets);
  check_stores_equal(cluster);
}

TEST_CASE("every proxy restarted in turn under load: nothing lost, nothing twice") {
  Cluster cluster(three_proxies(3));
  REQUIRE(cluster.wait_nodes_up(3));
  std::vector<std::string> tickets;
  Client a(cluster.node_port(0)), b(cluster.node_port(2));
  for (std::size_t k = 0; k < 3; ++k) {
    auto batch = submit_many(k % 2 ? a : b, 40, 20);
    REQUIRE(batch.size() == 40);
    tickets.insert(tickets.end(), batch.begin(), batch.end());
    cluster.kill_proxy(k);
    cluster.start_proxy(k);
    REQUIRE(cluster.leader() >= 0);
  }
  check_all_finished_once(cluster, tickets);
  CHECK(std::set<std::string>(tickets.begin(), tickets.end()).size() == tickets.size());
  check_stores_equal(cluster);
}

TEST_CASE("a proxy away while the log was compacted catches up from a snapshot") {
  ClusterOptions o = three_proxies(2);
  o.proxy_env["RAFT_SNAPSHOT_THRESHOLD"] = "32";
  o.proxy_env["RAFT_SNAPSHOT_TRAILING"] = "8";
  Cluster cluster(o);
  REQUIRE(cluster.wait_nodes_up(2));
  int leader = cluster.leader();
  REQUIRE(leader >= 0);
  std::size_t away = (leader + 1) % 3;
  cluster.kill_proxy(away);
  Client a(cluster.node_port(0)), b(cluster.node_port(1));
  std::vector<std::string> tickets;
  // Many small group commits (each round trip is at least one entry), until
  // the leader's log was compacted well past where the absent proxy stopped.
  for (int i = 0; i < 2000 && cluster.proxy(leader).log_count("snapshot index=") < 3; ++i) {
    std::string t = submit(i % 2 ? a : b, 0);
    REQUIRE(!t.empty());
    tickets.push_back(t);
    if (i % 20 == 19) REQUIRE(!wait_result(a, t, 20s).empty());
  }
  REQUIRE(cluster.proxy(leader).log_count("snapshot index=") >= 3);
  check_all_finished_once(cluster, tickets);
  cluster.start_proxy(away);
  REQUIRE(eventually(
      [&] { return cluster.proxy(away).log_count("restoring a snapshot") >= 1; }, 20s));
  // It now serves as leader: the others go, one at a time, and it leads
  // with the third.
  cluster.kill_proxy(static_cast<std::size_t>(leader));
  REQUIRE(cluster.leader() >= 0);
  check_all_finished_once(cluster, tickets);
  cluster.start_proxy(static_cast<std::size_t>(leader));
  check_stores_equal(cluster);
}

TEST_CASE("a proxy whose disk fills up hands leadership over, service goes on, and it catches up "
          "once there is room") {
  if (!has_cap_sys_admin()) JC_SKIP("needs CAP_SYS_ADMIN to mount a small tmpfs");
  SmallDisk disk(96);
  if (!disk.mounted) JC_SKIP("cannot mount a tmpfs here");
  ClusterOptions o = three_proxies(2);
  // Proxy 1, on the small disk, times out first and so leads from the start.
  o.proxy_env_each = {{{"DATA_DIR", disk.dir + "/proxy1"}, {"RAFT_ELECTION_TIMEOUT", "100"}},
                      {{"RAFT_ELECTION_TIMEOUT", "1000"}},
                      {{"RAFT_ELECTION_TIMEOUT", "1000"}}};
  Cluster cluster(o);
  REQUIRE(cluster.wait_nodes_up(2));
  int leader = cluster.leader();
  REQUIRE(leader >= 0);
  Client a(cluster.node_port(0));
  auto tickets = submit_many(a, 20, 10);
  REQUIRE(tickets.size() == 20);
  check_all_finished_once(cluster, tickets);
  disk.fill();
  auto more = submit_many(a, 40, 10);
  REQUIRE(more.size() == 40);
  tickets.insert(tickets.end(), more.begin(), more.end());
  // Served by the two others whatever proxy 1 was.
  check_all_finished_once(cluster, tickets);
  CHECK(cluster.proxy(0).log_count("cannot apply log entry") >= 1);
  if (leader == 0) {
    CHECK(cluster.proxy(0).log_count("handing leadership over") >= 1);
    CHECK(cluster.leader() != 0);
  }
  // Room again: it applies what it missed and its store matches the others'.
  std::filesystem::remove(disk.dir + "/filler");
  REQUIRE(disk.resize(512));
  auto last = submit_many(a, 10, 10);
  REQUIRE(last.size() == 10);
  tickets.insert(tickets.end(), last.begin(), last.end());
  check_all_finished_once(cluster, tickets);
  CHECK(eventually([&] { return cluster.proxy(0).log_count("applying again: the store is at index") >= 1; },
                   20s, 100ms));
  check_stores_equal(cluster);
}

TEST_CASE("a connection posing as a peer proxy is refused: a wrong proof, or an entry that is "
          "not another proxy's") {
  ClusterOptions o = three_proxies(1);
  o.proxy_env["CLUSTER_SECRET"] = "replication-test-secret";
  o.node_env["CLUSTER_SECRET"] = "replication-test-secret";
  Cluster cluster(o);
  REQUIRE(cluster.wait_nodes_up(1));
  std::string second = "127.0.0.1:" + std::to_string(cluster.proxy_port(1));
  std::string first = "127.0.0.1:" + std::to_string(cluster.proxy_port(0));
  auto attempt = [&](std::uint64_t id, const std::string& address, bool prove) {
    RogueNode rogue(cluster.proxy_port(0), "127.0.0.1", "", "replication-test-secret");
    REQUIRE(rogue.tls_ok());
    auto challenge = rogue.next<jc::protocol::Challenge>();
    REQUIRE(challenge);
    jc::protocol::PeerHello hello;
    hello.id = id;
    hello.address = address;
    hello.auth = prove ? jc::protocol::join_proof("replication-test-secret", challenge->nonce,
                                                  "proxy:" + address)
                       : "not a proof";
    REQUIRE(rogue.send(hello));
    // Refused: the proxy closes the link, and nothing else comes.
    CHECK_FALSE(rogue.next<jc::protocol::PeerData>(3s));
  };
  attempt(2, second, false);
  CHECK(eventually(
      [&] { return cluster.proxy(0).log_count("peer proxy failed to prove CLUSTER_SECRET") >= 1; },
      5s));
  attempt(1, first, true);  // its own entry
  attempt(7, second, true);  // no such entry
  CHECK(eventually(
      [&] { return cluster.proxy(0).log_count("is not another entry of PROXY_PEERS") >= 2; }, 5s));
  // The real proxies still replicate: a job goes through.
  Client c(cluster.node_port(0));
  std::string t = submit(c, 0);
  REQUIRE(!t.empty());
  CHECK(!wait_result(c, t, 20s).empty());
}

TEST_CASE("a burst of submits holds node links back while the log catches up, and with the leader "
          "killed in it every job still finishes once") {
  ClusterOptions o = three_proxies(3);
  // Small entries: the burst then fills all four entry slots and the next
  // entry many times over.
  o.proxy_env["RAFT_ENTRY_WRITES"] = "16";
  Cluster cluster(o);
  REQUIRE(cluster.wait_nodes_up(3));
  int leader = cluster.leader();
  REQUIRE(leader >= 0);
  // Each node takes its burst at once (tickets come after its own synced
  // write), so the leader receives jobs faster than it commits them.
  constexpr int kPerNode = 2000;
  std::vector<std::vector<std::string>> batches(3);
  {
    std::vector<std::thread> clients;
    for (std::size_t i = 0; i < 3; ++i) {
      clients.emplace_back([&, i] {
        Client c(cluster.node_port(i));
        batches[i] = submit_many(c, kPerNode, 0);
      });
    }
    for (auto& t : clients) t.join();
  }
  std::vector<std::string> tickets;
  for (const auto& batch : batches) {
    REQUIRE(batch.size() == kPerNode);
    tickets.insert(tickets.end(), batch.begin(), batch.end());
  }
  REQUIRE(eventually(
      [&] { return cluster.proxy(leader).log_count("holding node links back") >= 1; }, 20s));
  // Killed during or right after the burst: what its entries in flight held
  // was not acknowledged, and the nodes send it again to the next leader.
  cluster.kill_proxy(static_cast<std::size_t>(leader));
  cluster.start_proxy(static_cast<std::size_t>(leader));
  check_all_finished_once(cluster, tickets);
  CHECK(std::set<std::string>(tickets.begin(), tickets.end()).size() == tickets.size());
  check_stores_equal(cluster);
}

TEST_CASE("dispatch by capability with three proxies: a job waits for its label through a leader's "
          "kill -9, is still taken, and runs when its node is back") {
  Cluster cluster(three_proxies(1));
  cluster.add_node({{"NODE_LABELS", "gpu"}});
  REQUIRE(cluster.wait_nodes_up(2));
  int leader = cluster.leader();
  REQUIRE(leader >= 0);
  Client c(cluster.node_port(0));
  RunResult warm = run_and_wait(c, "run --needs gpu echo warm");
  CHECK(warm.fact("node") == "n2");
  // Its only node away, jobs that need it wait and say so.
  cluster.node(1).kill_hard();
  std::vector<std::string> tickets;
  for (int i = 0; i < 4; ++i) tickets.push_back(submit_run(c, "run --needs gpu echo " + std::to_string(i)));
  CHECK(eventually(
      [&] { return c.command("status " + tickets[0]).find(" waiting_for=label:gpu") != std::string::npos; },
      10s));
  // A new leader knows the label was offered (it is in the replicated
  // store), so it still takes such jobs, and keeps them waiting.
  cluster.kill_proxy(static_cast<std::size_t>(leader));
  REQUIRE(eventually([&] { int l = cluster.leader(1s); return l >= 0 && l != leader; }, 20s));
  std::string after;
  REQUIRE(eventually(
      [&] {
        std::string reply = c.command("run --needs gpu echo after");
        if (reply.rfind("Ticket ID: ", 0) == 0) after = reply.substr(11);
        return !after.empty();
      },
      20s, 100ms));
  tickets.push_back(after);
  CHECK(eventually(
      [&] { return c.command("status " + after).find(" waiting_for=label:gpu") != std::string::npos; },
      10s));
  CHECK(c.command("run --needs tpu true") ==
        "ERR no node of this cluster offers tpu (NODE_LABELS): the job could never run");
  cluster.start_proxy(static_cast<std::size_t>(leader));
  cluster.restart_node(1, false);
  for (const auto& t : tickets) {
    c.send("wait " + t + " 60\n");
    RunResult r = read_run_result(c);
    REQUIRE(r.ok);
    CHECK(r.fact("node") == "n2");
  }
  check_stores_equal(cluster);
}
