// What may leave before a commit (ProxyCore::take_early, NodeCore::take_early):
// only messages that acknowledge nothing, and only such that a crash before
// the commit loses nothing anyone was told. And the other side of it: a single
// proxy's commit with only ACKs to send waits a moment for the results of the
// JOBs that left (CommitHold, DiskCommit).
#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cluster_node/node_core.h"
#include "common/log.h"
#include "net/storage_retry.h"
#include "protocol/codec.h"
#include "protocol/messages.h"
#include "protocol/retention.h"
#include "reverse_proxy/commit_path.h"
#include "reverse_proxy/proxy_core.h"
#include "storage/store.h"

namespace jc {
namespace {

using protocol::JobState;

protocol::JobSpec sleep_spec(const std::string& ticket = "", const std::string& origin = "") {
  protocol::JobSpec s;
  s.kind = protocol::JobKind::kSleep;
  s.sleep_ms = 10;
  s.ticket = ticket;
  s.origin = origin;
  return s;
}

protocol::Hello hello(const std::string& id, std::uint32_t slots) {
  protocol::Hello h;
  h.node_id = id;
  h.slots = slots;
  h.client_address = "127.0.0.1:7000";
  return h;
}

proxy::ProxyOptions proxy_options() {
  proxy::ProxyOptions o;
  o.proxy_id = "proxy-test";
  o.prefetch = 0;
  o.node_timeout_ms = 5000;
  return o;
}

node::NodeOptions node_options() {
  node::NodeOptions o;
  o.node_id = "node-a";
  o.slots = 2;
  o.client_address = "127.0.0.1:9000";
  return o;
}

protocol::Welcome welcome() {
  protocol::Welcome w;
  w.accepted = true;
  w.proxy_id = "proxy";
  return w;
}

template <class T, class Out>
std::size_t count_of(const std::vector<Out>& out) {
  std::size_t n = 0;
  for (const auto& o : out) {
    if constexpr (std::is_same_v<Out, proxy::Outgoing>) {
      n += std::holds_alternative<T>(o.message);
    } else {
      n += std::holds_alternative<T>(o);
    }
  }
  return n;
}

// The tickets of the SUBMITs in `out`, as the proxy reads them (a node's
// new submissions leave as bytes alone).
std::set<std::string> submitted(const std::vector<protocol::Message>& out) {
  std::set<std::string> t;
  for (const auto& m : out) {
    if (!std::holds_alternative<protocol::Submit>(m)) continue;
    auto read = protocol::decode(protocol::encode(m));
    REQUIRE(std::holds_alternative<protocol::Complete>(read));
    for (const auto& j : std::get<protocol::Submit>(std::get<protocol::Complete>(read).message).jobs) {
      t.insert(j.ticket);
    }
  }
  return t;
}

// node-a and node-b join; their WELCOMEs are taken (committed, sent).
void join_two(proxy::ProxyCore& core) {
  REQUIRE(core.on_hello(hello("node-a", 2), "peer-a", 0).accepted);
  REQUIRE(core.on_hello(hello("node-b", 2), "peer-b", 0).accepted);
  REQUIRE(core.staged().commit().ok());
  core.take_outbox();
}

}  // namespace

TEST_CASE("early sends: the proxy's JOB leaves before the commit, its ACK after") {
  storage::MemoryStore store;
  proxy::ProxyCore core(store, proxy_options());
  join_two(core);

  protocol::Submit s;
  s.jobs = {sleep_spec("t1", "node-a"), sleep_spec("t2", "node-a")};
  core.on_message("node-a", s, 0);
  core.dispatch(0);
  auto early = core.take_early();
  CHECK(count_of<protocol::Job>(early) >= 1);
  CHECK(count_of<protocol::Job>(early) == early.size());  // nothing else
  REQUIRE(core.staged().commit().ok());
  auto rest = core.take_outbox();
  CHECK(count_of<protocol::Job>(rest) == 0);
  CHECK(count_of<protocol::Ack>(rest) == 1);  // the origin's, once durable

  SUBCASE("a node welcomed in this turn gets its JOB after the WELCOME") {
    core.on_disconnect("node-b", 1);
    REQUIRE(core.staged().commit().ok());
    core.take_outbox();
    REQUIRE(core.on_hello(hello("node-b", 2), "peer-b", 2).accepted);
    protocol::Submit more;
    more.jobs = {sleep_spec("t3", "node-a"), sleep_spec("t4", "node-a")};
    core.on_message("node-a", more, 2);
    core.dispatch(2);
    for (const auto& o : core.take_early()) CHECK(o.node_id != "node-b");
    REQUIRE(core.staged().commit().ok());
    bool welcomed = false;
    for (const auto& o : core.take_outbox()) {
      if (o.node_id != "node-b") continue;
      if (std::holds_alternative<protocol::Welcome>(o.message)) welcomed = true;
      if (std::holds_alternative<protocol::Job>(o.message)) CHECK(welcomed);
    }
  }
}

TEST_CASE("early sends: no JOB overtakes a WELCOME still waiting in a log entry in flight") {
  storage::MemoryStore store;
  proxy::ProxyCore core(store, proxy_options());
  join_two(core);  // node-b's WELCOME here stands for one taken, not yet sent (an entry in flight)
  protocol::Submit s;
  s.jobs = {sleep_spec("t1", "node-a"), sleep_spec("t2", "node-a"), sleep_spec("t3", "node-a"),
            sleep_spec("t4", "node-a")};
  core.on_message("node-a", s, 0);
  core.dispatch(0);
  auto early = core.take_early({"node-b"});
  REQUIRE_FALSE(early.empty());
  for (const auto& o : early) CHECK(o.node_id == "node-a");
  bool job_for_b = false;
  for (const auto& o : core.take_outbox()) {
    job_for_b |= o.node_id == "node-b" && std::holds_alternative<protocol::Job>(o.message);
  }
  CHECK(job_for_b);  // with the rest, after its entry
}

TEST_CASE("early sends: a proxy that died before its commit has its jobs submitted again") {
  storage::MemoryStore store;
  {
    proxy::ProxyCore core(store, proxy_options());
    REQUIRE(core.on_hello(hello("node-a", 2), "peer-a", 0).accepted);
    REQUIRE(core.staged().commit().ok());
    core.take_outbox();
    protocol::Submit s;
    s.jobs = {sleep_spec("t1", "node-a")};
    core.on_message("node-a", s, 0);
    core.dispatch(0);
    REQUIRE(count_of<protocol::Job>(core.take_early()) == 1);
    // Killed here: the stage never reaches the store.
  }
  proxy::ProxyCore core(store, proxy_options());
  REQUIRE(core.recover(0).ok());
  CHECK_FALSE(core.find_job("t1").has_value());
  // The node comes back holding the job the proxy never stored: dropped.
  auto h = hello("node-a", 2);
  h.held = {"t1"};
  protocol::Welcome w = core.on_hello(h, "peer-a", 1);
  REQUIRE(w.accepted);
  CHECK(w.drop == std::vector<std::string>{"t1"});
  // The origin, never acknowledged, submits it again: it runs once more.
  protocol::Submit again;
  again.jobs = {sleep_spec("t1", "node-a")};
  again.first = false;
  core.on_message("node-a", again, 1);
  core.dispatch(1);
  REQUIRE(core.staged().commit().ok());
  auto out = core.take_outbox();
  CHECK(count_of<protocol::Job>(out) == 1);
  REQUIRE(core.find_job("t1").has_value());
  CHECK(core.find_job("t1")->state == JobState::kRunning);
}

TEST_CASE("early sends: a node's new submissions leave before its commit") {
  storage::MemoryStore store;
  node::NodeCore core(store, node_options());
  REQUIRE(core.recover().ok());
  REQUIRE(core.staged().commit().ok());
  core.committed(true);

  SUBCASE("not before the node is welcomed") {
    core.submit(sleep_spec(), 0);
    CHECK(core.take_early().empty());
  }
  SUBCASE("once welcomed, SUBMIT goes first and the rest after the commit") {
    core.on_message(welcome(), 0);
    REQUIRE(core.staged().commit().ok());
    core.committed(true);
    core.take_outbox();
    core.submit(sleep_spec(), 0);  // reserves counters (last test case)
    REQUIRE(core.staged().commit().ok());
    core.committed(true);
    core.take_outbox();
    std::string t = core.submit(sleep_spec(), 0);
    auto early = core.take_early();
    CHECK(submitted(early) == std::set<std::string>{t});
    REQUIRE(core.staged().commit().ok());
    core.committed(true);
    CHECK(submitted(core.take_outbox()).empty());  // not twice
  }
}

TEST_CASE("early sends: a node that died before its commit never issues those tickets again") {
  storage::MemoryStore store;
  std::set<std::string> lost;
  {
    node::NodeCore core(store, node_options());
    REQUIRE(core.recover().ok());
    core.on_message(welcome(), 0);
    REQUIRE(core.staged().commit().ok());
    core.committed(true);
    core.take_outbox();
    // The first tickets reserve counters ahead; that reservation is durable.
    core.submit(sleep_spec(), 0);
    REQUIRE(core.staged().commit().ok());
    core.committed(true);
    core.take_outbox();
    for (int i = 0; i < 3; ++i) lost.insert(core.submit(sleep_spec(), 0));
    CHECK(submitted(core.take_early()) == lost);  // sent, then killed: never committed
  }
  node::NodeCore core(store, node_options());
  REQUIRE(core.recover().ok());
  core.on_message(welcome(), 1);
  REQUIRE(core.staged().commit().ok());
  core.committed(true);
  std::uint64_t highest_lost = 0;
  for (const auto& t : lost)
    highest_lost = std::max(highest_lost, protocol::parse_ticket(t)->counter);
  for (int i = 0; i < 5; ++i) {
    auto parts = protocol::parse_ticket(core.submit(sleep_spec(), 1));
    REQUIRE(parts);
    CHECK(parts->counter > highest_lost);
  }
  REQUIRE(core.staged().commit().ok());
  core.take_outbox();

  // The proxy ran the lost jobs: their results are acknowledged and dropped.
  protocol::Result r;
  for (const auto& t : lost) {
    protocol::JobReport rep;
    rep.ticket = t;
    rep.state = JobState::kDone;
    rep.has_result = true;
    rep.result.state = JobState::kDone;
    rep.result.node = "node-b";
    rep.result.attempt = 1;
    r.reports.push_back(rep);
  }
  core.on_message(r, 2);
  REQUIRE(core.staged().commit().ok());
  std::set<std::string> acked;
  for (const auto& m : core.take_outbox()) {
    if (const auto* a = std::get_if<protocol::Ack>(&m))
      acked.insert(a->tickets.begin(), a->tickets.end());
  }
  CHECK(acked == lost);
  for (const auto& t : lost) CHECK(core.lookup(t, 2).state != JobState::kDone);
}

TEST_CASE("early sends: a node whose counter reservation is not committed sends after the commit") {
  storage::MemoryStore store;
  node::NodeCore core(store, node_options());
  REQUIRE(core.recover().ok());
  core.on_message(welcome(), 0);
  REQUIRE(core.staged().commit().ok());
  core.take_outbox();
  // committed() not called since the first ticket reserved counters.
  std::string t = core.submit(sleep_spec(), 0);
  CHECK(core.take_early().empty());
  REQUIRE(core.staged().commit().ok());
  core.committed(true);
  CHECK(submitted(core.take_outbox()) == std::set<std::string>{t});
}

}  // namespace jc

namespace jc {

// Whatever put the proxy and a node out of step (here: a JOB that overtook
// the WELCOME whose drop list then removed it, the bug fixed in take_early),
// the periodic exchange heals it: the node answers UNKNOWN for a job the
// proxy believes it holds, and the proxy queues the job again.
TEST_CASE("early sends: a job its node does not hold is queued again by the periodic exchange") {
  storage::MemoryStore proxy_store;
  proxy::ProxyCore proxy(proxy_store, proxy_options());
  join_two(proxy);
  protocol::Submit s;
  s.jobs = {sleep_spec("t1", "node-a"), sleep_spec("t2", "node-a"), sleep_spec("t3", "node-a"),
            sleep_spec("t4", "node-a")};
  proxy.on_message("node-a", s, 0);
  proxy.dispatch(0);
  REQUIRE(proxy.staged().commit().ok());
  std::optional<protocol::Job> job;
  for (auto& o : proxy.take_outbox()) {
    if (o.node_id == "node-b" && std::holds_alternative<protocol::Job>(o.message)) {
      job = std::get<protocol::Job>(std::move(o.message));
    }
  }
  REQUIRE(job.has_value());
  REQUIRE_FALSE(job->jobs.empty());
  const std::string t = job->jobs.front().spec.ticket;
  REQUIRE(proxy.find_job(t)->state == JobState::kRunning);

  storage::MemoryStore node_store;
  node::NodeOptions opts = node_options();
  opts.node_id = "node-b";
  node::NodeCore node(node_store, opts);
  REQUIRE(node.recover().ok());
  node.on_message(std::move(*job), 1);  // the JOB first ...
  protocol::Welcome w = welcome();
  w.drop = {t};
  node.on_message(w, 1);  // ... then the WELCOME that drops it
  REQUIRE(node.staged().commit().ok());
  node.committed(true);
  node.take_outbox();

  proxy.exchange_results(2);
  for (auto& o : proxy.take_outbox()) {
    if (o.node_id == "node-b") node.on_message(std::move(o.message), 2);
  }
  REQUIRE(node.staged().commit().ok());
  node.committed(true);
  for (auto& m : node.take_outbox()) proxy.on_message("node-b", std::move(m), 3);
  CHECK(proxy.find_job(t)->state == JobState::kQueued);
}

namespace {

using proxy::CommitHold;
using Decision = CommitHold::Decision;
using namespace std::chrono_literals;

protocol::JobReport done_report(const std::string& ticket, const std::string& node) {
  protocol::JobReport r;
  r.ticket = ticket;
  r.state = JobState::kDone;
  r.node = node;
  r.attempts = 1;
  r.has_result = true;
  r.result.state = JobState::kDone;
  r.result.node = node;
  r.result.attempt = 1;
  r.result.text = "slept";
  return r;
}

// A proxy core with node-a joined, whose turns are committed by DiskCommit
// with a hold of `hold` (none when zero), as the shell does; what leaves
// goes to `sent`, and each flush it arranges for later to `later`.
struct DiskProxy {
  explicit DiskProxy(CommitHold::Clock::duration hold)
      : core(store, proxy_options()),
        retry(io, log::get("test"), [] {}),
        commit(
            store,
            [this](std::vector<proxy::Outgoing> out) {
              for (auto& o : out) sent.push_back(std::move(o));
            },
            0, retry, hold,
            hold > CommitHold::Clock::duration::zero()
                ? proxy::DiskCommit::FlushLater(
                      [this](CommitHold::Clock::duration d) { later.push_back(d); })
                : proxy::DiskCommit::FlushLater{}) {
    REQUIRE(core.recover(0).ok());
    REQUIRE(core.on_hello(hello("node-a", 2), "peer-a", 0).accepted);
    REQUIRE(core.staged().commit().ok());
    core.take_outbox();
    synced_before = store.synced_writes();
  }
  // node-a submits t1, one dispatch round runs, then the turn's flush.
  void submit() {
    protocol::Submit s;
    s.jobs = {sleep_spec("t1", "node-a")};
    core.on_message("node-a", s, 1);
    core.dispatch(1);
    commit.flush(core);
  }
  void result() {
    core.on_message("node-a", protocol::Result{{done_report("t1", "node-a")}}, 2);
    commit.flush(core);
  }
  int synced() const { return store.synced_writes() - synced_before; }
  bool stored(const std::string& key) {
    std::string value;
    return store.get(key, &value).ok();
  }

  boost::asio::io_context io;
  storage::MemoryStore store;
  proxy::ProxyCore core;
  net::StorageRetry retry;
  std::vector<proxy::Outgoing> sent;
  std::vector<CommitHold::Clock::duration> later;
  proxy::DiskCommit commit;
  int synced_before = 0;
};

}  // namespace

TEST_CASE("commit hold: only a turn that sent jobs and has only ACKs to send waits") {
  CommitHold hold(500us);
  auto t0 = CommitHold::Clock::now();
  CHECK(hold.decide(false, true, true, t0) == Decision::kCommit);  // sent no job
  CHECK(hold.decide(true, false, true, t0) == Decision::kCommit);  // nothing to sync
  CHECK(hold.decide(true, true, false, t0) == Decision::kCommit);  // a RESULT waits
  CHECK(hold.decide(true, true, true, t0) == Decision::kStartHold);
  CHECK(hold.decide(false, true, true, t0 + 100us) == Decision::kHold);
  CHECK(hold.decide(true, true, true, t0 + 200us) == Decision::kHold);  // not extended

  SUBCASE("a turn with something else to send ends the hold") {
    CHECK(hold.decide(false, true, false, t0 + 300us) == Decision::kCommit);
    // The next one may start again.
    CHECK(hold.decide(true, true, true, t0 + 400us) == Decision::kStartHold);
  }
  SUBCASE("the hold runs out") {
    CHECK(hold.decide(false, true, true, t0 + 500us) == Decision::kCommit);
    CHECK(hold.decide(false, true, true, t0 + 600us) == Decision::kCommit);
  }
  SUBCASE("stopping commits at once, from then on") {
    hold.stop();
    CHECK(hold.decide(false, true, true, t0 + 300us) == Decision::kCommit);
    CHECK(hold.decide(true, true, true, t0 + 400us) == Decision::kCommit);
  }
  SUBCASE("no hold configured") {
    CommitHold none(0us);
    CHECK(none.decide(true, true, true, t0) == Decision::kCommit);
  }
}

TEST_CASE("commit hold: a job's submit and its result within the hold share one synced write") {
  DiskProxy p(500ms);
  p.submit();
  // JOB left; the ACK waits with the stage, and a flush is arranged.
  CHECK(count_of<protocol::Job>(p.sent) == 1);
  CHECK(count_of<protocol::Ack>(p.sent) == 0);
  CHECK(p.later.size() == 1);
  CHECK(p.synced() == 0);
  CHECK_FALSE(p.stored("s/t1"));

  SUBCASE("the result comes within the hold: one synced write for both") {
    p.result();
    CHECK(p.synced() == 1);
    CHECK(p.stored("s/t1"));
    CHECK(p.stored("f/t1"));
    CHECK(count_of<protocol::Ack>(p.sent) == 2);  // the submission's, the result's
    CHECK(count_of<protocol::Result>(p.sent) == 1);
    REQUIRE(p.core.find_job("t1").has_value());
    CHECK(p.core.find_job("t1")->state == JobState::kDone);
  }
  SUBCASE("the job outlasts the hold: the arranged flush commits the submission") {
    // The hold is 500 ms: the flush that flush_later arranges comes after it.
    auto deadline = CommitHold::Clock::now() + 10s;
    while (p.synced() == 0 && CommitHold::Clock::now() < deadline) {
      std::this_thread::sleep_for(20ms);
      p.commit.flush(p.core);
    }
    CHECK(p.synced() == 1);
    CHECK(p.stored("s/t1"));
    CHECK(count_of<protocol::Ack>(p.sent) == 1);
    CHECK(count_of<protocol::Result>(p.sent) == 0);
  }
  SUBCASE("the proxy stops during the hold: the stage is committed") {
    p.commit.flush_at_stop(p.core);
    CHECK(p.synced() == 1);
    CHECK(p.stored("s/t1"));
    CHECK(count_of<protocol::Ack>(p.sent) == 1);
  }
}

TEST_CASE("commit hold: without it, the submission's commit is synced at once") {
  DiskProxy p(0us);
  p.submit();
  CHECK(p.synced() == 1);
  CHECK(count_of<protocol::Ack>(p.sent) == 1);
  CHECK(p.later.empty());
  p.result();
  CHECK(p.synced() == 2);  // two fsyncs in a row
}

}  // namespace jc
