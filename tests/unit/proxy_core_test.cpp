// Unit tests of reverse_proxy/proxy_core.h on a MemoryStore. Between steps the
// stage is committed as the proxy's shell does before it sends anything.
#include "reverse_proxy/proxy_core.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "protocol/auth.h"
#include "protocol/codec.h"
#include "protocol/messages.h"
#include "storage/store.h"
#include "tests/support/store_keys.h"

namespace jc::proxy {
namespace {

using protocol::AckKind;
using protocol::JobState;

// The messages of type T sent to `node` in `out`, in order.
template <class T>
std::vector<T> sent_to(const std::vector<Outgoing>& out, const std::string& node) {
  std::vector<T> found;
  for (const auto& o : out) {
    if (o.node_id == node && std::holds_alternative<T>(o.message)) {
      found.push_back(std::get<T>(o.message));
    }
  }
  return found;
}

protocol::Hello hello(const std::string& id, std::uint32_t slots,
                      std::vector<std::string> held = {}, std::vector<std::string> finished = {}) {
  protocol::Hello h;
  h.node_id = id;
  h.slots = slots;
  h.client_address = "127.0.0.1:7000";
  h.held = std::move(held);
  h.finished = std::move(finished);
  return h;
}

protocol::JobSpec spec(const std::string& ticket, const std::string& origin) {
  protocol::JobSpec s;
  s.ticket = ticket;
  s.kind = protocol::JobKind::kSleep;
  s.sleep_ms = 10;
  s.origin = origin;
  return s;
}

protocol::Submit submit_of(const std::vector<std::string>& tickets, const std::string& origin,
                           std::uint64_t sleep_ms = 10) {
  protocol::Submit s;
  for (const auto& t : tickets) {
    s.jobs.push_back(spec(t, origin));
    s.jobs.back().sleep_ms = sleep_ms;
  }
  return s;
}

protocol::JobReport final_report(const std::string& ticket, const std::string& node,
                                 std::uint32_t attempt, const std::string& text = "done") {
  protocol::JobReport r;
  r.ticket = ticket;
  r.state = JobState::kDone;
  r.node = node;
  r.attempts = attempt;
  r.has_result = true;
  r.result.state = JobState::kDone;
  r.result.node = node;
  r.result.attempt = attempt;
  r.result.text = text;
  return r;
}

std::set<std::string> tickets_of(const std::vector<protocol::Job>& jobs) {
  std::set<std::string> out;
  for (const auto& j : jobs) {
    for (const auto& a : j.jobs) out.insert(a.spec.ticket);
  }
  return out;
}

std::size_t count_jobs(const std::vector<protocol::Job>& jobs) {
  std::size_t n = 0;
  for (const auto& j : jobs) n += j.jobs.size();
  return n;
}

const protocol::NodeStats* node_stats(const protocol::ClusterStats& s, const std::string& id) {
  for (const auto& n : s.nodes) {
    if (n.node_id == id) return &n;
  }
  return nullptr;
}

using jc::test::store_keys;

ProxyOptions options(std::uint32_t prefetch = 0) {
  ProxyOptions o;
  o.proxy_id = "proxy-test";
  o.prefetch = prefetch;
  o.node_timeout_ms = 5000;
  return o;
}

// A proxy core on a MemoryStore, with the shell's commit-then-send step.
struct Proxy {
  explicit Proxy(storage::MemoryStore& store, ProxyOptions o = options())
      : core(store, std::move(o)) {}

  // Commits what is staged and returns what the core wants sent.
  std::vector<Outgoing> flush() {
    REQUIRE(core.staged().commit().ok());
    return core.take_outbox();
  }
  protocol::Welcome join(const std::string& id, std::uint32_t slots, TimeMs now = 0,
                         std::vector<std::string> held = {},
                         std::vector<std::string> finished = {}) {
    protocol::Welcome w = core.on_hello(hello(id, slots, held, finished), "peer-" + id, now);
    last = flush();
    return w;
  }
  std::vector<Outgoing> message(const std::string& node, protocol::Message m, TimeMs now = 0) {
    core.on_message(node, m, now);
    return flush();
  }
  std::vector<Outgoing> dispatch(TimeMs now = 0) {
    core.dispatch(now);
    return flush();
  }
  // `origin` submits sleep jobs with these tickets, then one dispatch round.
  std::vector<Outgoing> submit_and_dispatch(const std::string& origin,
                                            const std::vector<std::string>& tickets) {
    message(origin, submit_of(tickets, origin));
    return dispatch();
  }
  JobState state_of(const std::string& ticket) {
    auto rec = core.find_job(ticket);
    REQUIRE(rec.has_value());
    return rec->state;
  }

  ProxyCore core;
  std::vector<Outgoing> last;
};

}  // namespace

// ---- handshake -------------------------------------------------------------

TEST_CASE("proxy core: hello is accepted and answered with a welcome") {
  storage::MemoryStore store;
  Proxy p(store);
  protocol::Welcome w = p.join("node-a", 2);
  CHECK(w.accepted);
  CHECK(w.reason.empty());
  CHECK(w.proxy_id == "proxy-test");
  CHECK(w.drop.empty());
  auto welcomes = sent_to<protocol::Welcome>(p.last, "node-a");
  REQUIRE(welcomes.size() == 1);
  CHECK(welcomes[0].accepted);
  auto s = p.core.stats(0);
  const auto* n = node_stats(s, "node-a");
  REQUIRE(n != nullptr);
  CHECK(n->connected);
  CHECK(n->slots == 2);
  CHECK(n->address == "127.0.0.1:7000");
}

TEST_CASE("proxy core: a node's sandbox protections are shown as it says, markup never") {
  storage::MemoryStore store;
  Proxy p(store);
  auto h = hello("node-a", 2);
  h.sandbox = "user,net,cgroup";
  REQUIRE(p.core.on_hello(h, "peer", 0).accepted);
  auto b = hello("node-b", 2);
  b.sandbox = "<img src=x onerror=alert(1)>";
  REQUIRE(p.core.on_hello(b, "peer-b", 0).accepted);
  auto s = p.core.stats(0);
  REQUIRE(node_stats(s, "node-a") != nullptr);
  CHECK(node_stats(s, "node-a")->sandbox == "user,net,cgroup");
  REQUIRE(node_stats(s, "node-b") != nullptr);
  CHECK(node_stats(s, "node-b")->sandbox == "?");
}

TEST_CASE("proxy core: hello with another protocol version is refused") {
  storage::MemoryStore store;
  Proxy p(store);
  auto h = hello("node-a", 2);
  h.version = protocol::kProtocolVersion + 1;
  protocol::Welcome w = p.core.on_hello(h, "peer", 0);
  CHECK_FALSE(w.accepted);
  CHECK(w.reason.find("version") != std::string::npos);
  CHECK(p.core.take_outbox().empty());  // the shell sends the refusal itself
  CHECK(p.core.stats(0).nodes.empty());
}

TEST_CASE("proxy core: hello with a bad node id is refused") {
  storage::MemoryStore store;
  Proxy p(store);
  for (std::string bad :
       {std::string(), std::string("has space"), std::string("slash/id"), std::string(65, 'a')}) {
    CAPTURE(bad);
    protocol::Welcome w = p.core.on_hello(hello(bad, 2), "peer", 0);
    CHECK_FALSE(w.accepted);
    CHECK(w.reason.find("node id") != std::string::npos);
  }
  CHECK(p.core.on_hello(hello(std::string(64, 'a'), 2), "peer", 0).accepted);
}

TEST_CASE("proxy core: hello with zero slots is refused") {
  storage::MemoryStore store;
  Proxy p(store);
  protocol::Welcome w = p.core.on_hello(hello("node-a", 0), "peer", 0);
  CHECK_FALSE(w.accepted);
  CHECK(w.reason.find("slot") != std::string::npos);
}

TEST_CASE("proxy core: hello with the id of a connected node is refused") {
  storage::MemoryStore store;
  Proxy p(store);
  REQUIRE(p.join("node-a", 2).accepted);
  protocol::Welcome w = p.core.on_hello(hello("node-a", 3), "other-peer", 1);
  CHECK_FALSE(w.accepted);
  CHECK(w.reason.find("already connected") != std::string::npos);
  // The first connection is untouched.
  const auto* n = node_stats(p.core.stats(1), "node-a");
  REQUIRE(n != nullptr);
  CHECK(n->connected);
  CHECK(n->slots == 2);
  // Once it is gone the id may come back.
  p.core.on_disconnect("node-a", 2);
  CHECK(p.core.on_hello(hello("node-a", 3), "other-peer", 3).accepted);
}

TEST_CASE("proxy core: hello beyond MAX_NUM_NODES is refused") {
  storage::MemoryStore store;
  ProxyOptions o = options();
  o.max_nodes = 2;
  Proxy p(store, o);
  REQUIRE(p.join("node-a", 1).accepted);
  REQUIRE(p.join("node-b", 1).accepted);
  protocol::Welcome w = p.core.on_hello(hello("node-c", 1), "peer", 0);
  CHECK_FALSE(w.accepted);
  CHECK(w.reason.find("MAX_NUM_NODES") != std::string::npos);
  // A free place is taken again.
  p.core.on_disconnect("node-b", 1);
  CHECK(p.core.on_hello(hello("node-c", 1), "peer", 2).accepted);
}

TEST_CASE("proxy core: messages of a node that is not connected are ignored") {
  storage::MemoryStore store;
  Proxy p(store);
  auto out = p.message("stranger", submit_of({"t1"}, "stranger"));
  CHECK(out.empty());
  CHECK_FALSE(p.core.find_job("t1").has_value());
}

// ---- submit and dispatch ---------------------------------------------------

TEST_CASE("proxy core: submit is acknowledged as submitted and queued durably") {
  storage::MemoryStore store;
  Proxy p(store);
  p.join("node-a", 1);
  int synced_before = store.synced_writes();
  auto out = p.message("node-a", submit_of({"t1", "t2"}, "node-a"));
  auto acks = sent_to<protocol::Ack>(out, "node-a");
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].kind == AckKind::kSubmitted);
  CHECK(acks[0].tickets == std::vector<std::string>{"t1", "t2"});
  CHECK(acks[0].superseded.empty());
  CHECK(store.synced_writes() == synced_before + 1);
  CHECK(p.state_of("t1") == JobState::kQueued);
  CHECK(p.state_of("t2") == JobState::kQueued);
  auto s = p.core.stats(0);
  CHECK(s.queue_length == 2);
  CHECK(s.submitted_total == 2);
  CHECK(p.core.has_dispatchable());
}

TEST_CASE("proxy core: a resent submit is acknowledged again and kept once") {
  storage::MemoryStore store;
  Proxy p(store);
  p.join("node-a", 1);
  p.message("node-a", submit_of({"t1"}, "node-a"));
  auto out = p.message("node-a", submit_of({"t1"}, "node-a"));
  auto acks = sent_to<protocol::Ack>(out, "node-a");
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].tickets == std::vector<std::string>{"t1"});
  CHECK(p.core.stats(0).queue_length == 1);
  CHECK(p.core.stats(0).submitted_total == 1);
}

TEST_CASE("proxy core: a finished job resent after a reconnect is not queued again") {
  storage::MemoryStore store;
  Proxy p(store);
  p.join("node-a", 1);
  protocol::Submit fresh = submit_of({"t1", "t2"}, "node-a");
  fresh.first = true;  // never sent before: queued without a lookup
  p.message("node-a", fresh);
  p.dispatch();
  p.message("node-a", protocol::Result{{final_report("t1", "node-a", 1)}});
  CHECK(p.state_of("t1") == JobState::kDone);
  // The node did not see the ACK and resends both after reconnecting.
  auto out = p.message("node-a", submit_of({"t1", "t2"}, "node-a"));
  auto acks = sent_to<protocol::Ack>(out, "node-a");
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].tickets == std::vector<std::string>{"t1", "t2"});
  CHECK(p.state_of("t1") == JobState::kDone);
  CHECK(p.core.stats(0).submitted_total == 2);
}

TEST_CASE("proxy core: submit with an invalid ticket is not acknowledged") {
  storage::MemoryStore store;
  Proxy p(store);
  p.join("node-a", 1);
  auto out = p.message("node-a", submit_of({"bad/ticket", "ok-1"}, "node-a"));
  auto acks = sent_to<protocol::Ack>(out, "node-a");
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].tickets == std::vector<std::string>{"ok-1"});
  CHECK_FALSE(p.core.find_job("bad/ticket").has_value());
}

TEST_CASE("proxy core: dispatch balances jobs across two nodes") {
  storage::MemoryStore store;
  Proxy p(store);
  p.join("node-a", 2);
  p.join("node-b", 2);
  p.message("node-a", submit_of({"t1", "t2", "t3", "t4"}, "node-a"));
  auto out = p.dispatch();
  auto to_a = sent_to<protocol::Job>(out, "node-a");
  auto to_b = sent_to<protocol::Job>(out, "node-b");
  CHECK(count_jobs(to_a) == 2);
  CHECK(count_jobs(to_b) == 2);
  auto all = tickets_of(to_a);
  for (const auto& t : tickets_of(to_b)) all.insert(t);
  CHECK(all == std::set<std::string>{"t1", "t2", "t3", "t4"});
  for (const auto& j : to_a) {
    for (const auto& a : j.jobs) {
      CHECK(a.attempt == 1);
      auto rec = p.core.find_job(a.spec.ticket);
      REQUIRE(rec);
      CHECK(rec->state == JobState::kRunning);
      CHECK(rec->node == "node-a");
      CHECK(rec->nodes_tried == std::vector<std::string>{"node-a"});
    }
  }
  auto s = p.core.stats(0);
  CHECK(s.queue_length == 0);
  CHECK(s.held == 4);
  CHECK(s.running == 0);  // what runs comes with the nodes' INFO
  p.message("node-a", protocol::Info{0, 2, 0, 0, 0});
  CHECK(p.core.stats(0).running == 2);
  CHECK(node_stats(s, "node-a")->assigned == 2);
  CHECK(node_stats(s, "node-b")->assigned == 2);
  CHECK_FALSE(p.core.has_dispatchable());
}

TEST_CASE("proxy core: dispatch respects slots and leaves the rest queued") {
  storage::MemoryStore store;
  Proxy p(store);  // prefetch 0
  p.join("node-a", 1);
  p.join("node-b", 1);
  p.message("node-a", submit_of({"t1", "t2", "t3"}, "node-a"));
  auto out = p.dispatch();
  CHECK(count_jobs(sent_to<protocol::Job>(out, "node-a")) == 1);
  CHECK(count_jobs(sent_to<protocol::Job>(out, "node-b")) == 1);
  CHECK(p.core.stats(0).queue_length == 1);
  // In submission order: the first two went out.
  CHECK(p.state_of("t1") == JobState::kRunning);
  CHECK(p.state_of("t2") == JobState::kRunning);
  CHECK(p.state_of("t3") == JobState::kQueued);
  CHECK_FALSE(p.core.has_dispatchable());
  CHECK(sent_to<protocol::Job>(p.dispatch(), "node-a").empty());
}

// A node that answers every job it holds within the millisecond: the
// proxy sees its rate and lets it hold more than slots + DISPATCH_PREFETCH.
// Returns the most it held after a dispatch round.
std::uint32_t most_assigned_with_fast_results(Proxy& p, const std::string& node, TimeMs& now,
                                              TimeMs duration) {
  std::uint32_t most = 0;
  for (TimeMs end = now + duration; now < end; ++now) {
    protocol::Result r;
    for (const auto& job : sent_to<protocol::Job>(p.last, node)) {
      for (const auto& a : job.jobs) r.reports.push_back(final_report(a.spec.ticket, node, 1));
    }
    if (!r.reports.empty()) p.message(node, r, now);
    p.last = p.dispatch(now);
    most = std::max(most, node_stats(p.core.stats(now), node)->assigned);
  }
  return most;
}

TEST_CASE("proxy core: a node that finishes jobs fast may hold more (DISPATCH_PREFETCH_MS)") {
  storage::MemoryStore store;
  ProxyOptions o = options(1);
  o.prefetch_ms = 10;
  Proxy p(store, o);
  p.join("node-a", 1, 1000);
  std::vector<std::string> tickets;
  for (int i = 0; i < 20000; ++i) tickets.push_back("t" + std::to_string(i));
  p.message("node-a", submit_of(tickets, "node-a", 0), 1000);
  TimeMs now = 1000;
  p.last = p.dispatch(now);
  CHECK(node_stats(p.core.stats(now), "node-a")->assigned == 2);  // slots + 1
  std::uint32_t most = most_assigned_with_fast_results(p, "node-a", now, 300);
  CHECK(most > 2);
  CHECK(most <= 1 + 1000);  // slots + the cap of the adaptive prefetch

  SUBCASE("after an idle pause a new burst gets slots + DISPATCH_PREFETCH again") {
    // Everything delivered (the run above drained the queue), then nothing
    // for 20 s, then a burst.
    most_assigned_with_fast_results(p, "node-a", now, 100);
    REQUIRE(p.core.stats(now).queue_length == 0);
    REQUIRE(node_stats(p.core.stats(now), "node-a")->assigned == 0);
    now += 20000;
    std::vector<std::string> burst;
    for (int i = 0; i < 100; ++i) burst.push_back("b" + std::to_string(i));
    p.message("node-a", submit_of(burst, "node-a", 0), now);
    p.last = p.dispatch(now);
    CHECK(node_stats(p.core.stats(now), "node-a")->assigned == 2);
  }

  SUBCASE("long jobs after fast ones are not piled on the fast node") {
    std::vector<std::string> slow;
    for (int i = 0; i < 100; ++i) slow.push_back("s" + std::to_string(i));
    // Submitted right after the fast ones, while the node's rate is high.
    p.message("node-a", submit_of(slow, "node-a", 10000), now);
    p.last = p.dispatch(now);
    auto s = p.core.stats(now);
    CHECK(node_stats(s, "node-a")->assigned == 2);  // slots + DISPATCH_PREFETCH
    CHECK(s.queue_length == 98);
  }
}

TEST_CASE("proxy core: DISPATCH_PREFETCH_MS=0 keeps a node at slots + DISPATCH_PREFETCH") {
  storage::MemoryStore store;
  ProxyOptions o = options(1);
  o.prefetch_ms = 0;
  Proxy p(store, o);
  p.join("node-a", 1, 1000);
  std::vector<std::string> tickets;
  for (int i = 0; i < 2000; ++i) tickets.push_back("t" + std::to_string(i));
  p.message("node-a", submit_of(tickets, "node-a", 0), 1000);
  TimeMs now = 1000;
  p.last = p.dispatch(now);
  CHECK(most_assigned_with_fast_results(p, "node-a", now, 300) == 2);
}

// ---- results ---------------------------------------------------------------

TEST_CASE("proxy core: a final result is acknowledged and pushed to the origin") {
  storage::MemoryStore store;
  Proxy p(store);
  p.join("origin", 1);
  p.join("runner", 1);
  p.message("origin", submit_of({"t0", "t1"}, "origin"));
  p.dispatch();  // one job each
  std::string ticket;
  for (const auto& t : {"t0", "t1"}) {
    auto rec = p.core.find_job(t);
    REQUIRE(rec);
    REQUIRE(rec->state == JobState::kRunning);
    if (rec->node == "runner") ticket = t;
  }
  REQUIRE_FALSE(ticket.empty());
  const std::string runner = "runner";

  int synced_before = store.synced_writes();
  auto out = p.message(runner, protocol::Result{{final_report(ticket, runner, 1, "slept")}});
  auto acks = sent_to<protocol::Ack>(out, runner);
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].kind == AckKind::kResults);
  CHECK(acks[0].tickets == std::vector<std::string>{ticket});
  CHECK(acks[0].superseded.empty());
  CHECK(store.synced_writes() == synced_before + 1);

  CHECK(sent_to<protocol::Result>(out, runner).empty());
  auto results = sent_to<protocol::Result>(out, "origin");
  REQUIRE(results.size() == 1);
  REQUIRE(results[0].reports.size() == 1);
  const auto& r = results[0].reports[0];
  CHECK(r.ticket == ticket);
  CHECK(r.state == JobState::kDone);
  CHECK(r.has_result);
  CHECK(r.result.text == "slept");
  CHECK(r.result.node == runner);

  auto done = p.core.find_job(ticket);
  REQUIRE(done);
  CHECK(done->state == JobState::kDone);
  CHECK(done->result.text == "slept");
  CHECK(p.core.stats(0).finished_total == 1);
}

TEST_CASE("proxy core: the result reaches the origin when the runner is the origin too") {
  storage::MemoryStore store;
  Proxy p(store);
  p.join("node-a", 1);
  p.submit_and_dispatch("node-a", {"t1"});
  auto out = p.message("node-a", protocol::Result{{final_report("t1", "node-a", 1)}});
  CHECK(sent_to<protocol::Ack>(out, "node-a").size() == 1);
  CHECK(sent_to<protocol::Result>(out, "node-a").size() == 1);
}

TEST_CASE("proxy core: the same result twice is acknowledged again") {
  storage::MemoryStore store;
  Proxy p(store);
  p.join("node-a", 1);
  p.submit_and_dispatch("node-a", {"t1"});
  p.message("node-a", protocol::Result{{final_report("t1", "node-a", 1)}});
  auto out = p.message("node-a", protocol::Result{{final_report("t1", "node-a", 1)}});
  auto acks = sent_to<protocol::Ack>(out, "node-a");
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].kind == AckKind::kResults);
  CHECK(acks[0].tickets == std::vector<std::string>{"t1"});
  CHECK(acks[0].superseded.empty());
  CHECK(p.core.stats(0).finished_total == 1);
}

TEST_CASE("proxy core: another run's result for a finished job is superseded") {
  storage::MemoryStore store;
  Proxy p(store);
  p.join("node-a", 1);
  p.join("node-b", 1);
  p.submit_and_dispatch("node-a", {"t1"});
  std::string runner = p.core.find_job("t1")->node;
  std::string other = runner == "node-a" ? "node-b" : "node-a";
  p.message(runner, protocol::Result{{final_report("t1", runner, 1, "first")}});
  auto out = p.message(other, protocol::Result{{final_report("t1", other, 2, "second")}});
  auto acks = sent_to<protocol::Ack>(out, other);
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].tickets.empty());
  CHECK(acks[0].superseded == std::vector<std::string>{"t1"});
  // The first result stays.
  CHECK(p.core.find_job("t1")->result.text == "first");
}

TEST_CASE("proxy core: a result from a node the job was not given to is refused") {
  storage::MemoryStore store;
  Proxy p(store);
  p.join("node-a", 1);
  p.submit_and_dispatch("node-a", {"t1"});
  REQUIRE(p.core.find_job("t1")->node == "node-a");
  p.join("rogue", 1);
  // A forged verdict for a job it was never given: refused, the job runs on.
  auto out = p.message("rogue", protocol::Result{{final_report("t1", "rogue", 1, "forged")}});
  auto acks = sent_to<protocol::Ack>(out, "rogue");
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].tickets.empty());
  CHECK(acks[0].superseded == std::vector<std::string>{"t1"});
  CHECK(p.state_of("t1") == JobState::kRunning);
  // Nor for an attempt it was not given, nor by naming the right node.
  p.message("rogue", protocol::Result{{final_report("t1", "node-a", 1, "forged")}});
  p.message("node-a", protocol::Result{{final_report("t1", "node-a", 2, "wrong attempt")}});
  CHECK(p.state_of("t1") == JobState::kRunning);
  // The node it was given to finishes it.
  p.message("node-a", protocol::Result{{final_report("t1", "node-a", 1, "real")}});
  auto rec = p.core.find_job("t1");
  CHECK(rec->result.text == "real");
  CHECK(rec->result.node == "node-a");
}

TEST_CASE("proxy core: a result names the node that sent it, whatever it says") {
  storage::MemoryStore store;
  Proxy p(store);
  p.join("node-a", 1);
  p.submit_and_dispatch("node-a", {"t1"});
  p.message("node-a", protocol::Result{{final_report("t1", "somebody-else", 1)}});
  CHECK(p.core.find_job("t1")->result.node == "node-a");
}

TEST_CASE("proxy core: an earlier attempt's result still counts while the job is not final") {
  storage::MemoryStore store;
  Proxy p(store, options());
  p.join("node-a", 1);
  p.submit_and_dispatch("node-a", {"t1"});
  // node-a is lost; the job goes to node-b as attempt 2.
  p.core.on_disconnect("node-a", 0);
  p.flush();
  p.join("node-b", 1, 6000);
  p.dispatch(6000);
  REQUIRE(p.core.find_job("t1")->node == "node-b");
  // node-a comes back with its result of attempt 1, which it was given.
  p.join("node-a", 1, 6100, {}, {"t1"});
  p.message("node-a", protocol::Result{{final_report("t1", "node-a", 1, "from a")}}, 6100);
  CHECK(p.core.find_job("t1")->result.text == "from a");
}

TEST_CASE("proxy core: an origin's results ack clears its pending notifications") {
  storage::MemoryStore store;
  Proxy p(store);
  p.join("node-a", 1);
  p.submit_and_dispatch("node-a", {"t1"});
  p.message("node-a", protocol::Result{{final_report("t1", "node-a", 1)}});
  std::string v;
  CHECK(store.get("n/node-a/t1", &v).ok());
  // Unacknowledged: the periodic exchange repeats it, but not at once after
  // the push (it is on its way): after 30 exchanges.
  std::vector<protocol::ResReq> rr;
  for (int i = 1; i < 30; ++i) {
    p.core.exchange_results(0);
    rr = sent_to<protocol::ResReq>(p.flush(), "node-a");
    REQUIRE(rr.size() == 1);
    CHECK(rr[0].reports.empty());
  }
  p.core.exchange_results(0);
  rr = sent_to<protocol::ResReq>(p.flush(), "node-a");
  REQUIRE(rr.size() == 1);
  REQUIRE(rr[0].reports.size() == 1);
  CHECK(rr[0].reports[0].ticket == "t1");

  protocol::Ack ack{AckKind::kResults, {"t1"}, {}};
  p.message("node-a", ack);
  CHECK(store.get("n/node-a/t1", &v).is_not_found());
  p.core.exchange_results(0);
  rr = sent_to<protocol::ResReq>(p.flush(), "node-a");
  REQUIRE(rr.size() == 1);
  CHECK(rr[0].reports.empty());
}

// ---- node loss -------------------------------------------------------------

TEST_CASE("proxy core: a disconnect requeues held jobs for the other node, attempt 2") {
  storage::MemoryStore store;
  Proxy p(store);
  p.join("node-a", 2);
  p.message("node-a", submit_of({"t1", "t2"}, "node-a"));
  auto out = p.dispatch();
  REQUIRE(count_jobs(sent_to<protocol::Job>(out, "node-a")) == 2);
  p.join("node-b", 2);

  p.core.on_disconnect("node-a", 10);
  p.flush();
  CHECK(p.state_of("t1") == JobState::kQueued);
  CHECK(p.state_of("t2") == JobState::kQueued);
  CHECK(p.core.find_job("t1")->node.empty());
  auto s = p.core.stats(10);
  CHECK(s.queue_length == 2);
  CHECK(s.redispatched_total == 2);
  CHECK_FALSE(node_stats(s, "node-a")->connected);

  out = p.dispatch(11);
  CHECK(sent_to<protocol::Job>(out, "node-a").empty());
  auto to_b = sent_to<protocol::Job>(out, "node-b");
  CHECK(tickets_of(to_b) == std::set<std::string>{"t1", "t2"});
  for (const auto& j : to_b) {
    for (const auto& a : j.jobs) CHECK(a.attempt == 2);
  }
  auto rec = p.core.find_job("t1");
  CHECK(rec->node == "node-b");
  CHECK(rec->attempts == 2);
  CHECK(rec->nodes_tried == std::vector<std::string>{"node-a", "node-b"});
}

TEST_CASE("proxy core: after MAX attempts a job ends FAILED naming the nodes") {
  storage::MemoryStore store;
  ProxyOptions o = options();
  o.max_attempts = 2;
  Proxy p(store, o);
  p.join("node-a", 1);
  p.submit_and_dispatch("node-a", {"t1"});
  p.join("node-b", 1);
  p.core.on_disconnect("node-a", 1);
  p.flush();
  auto out = p.dispatch(2);
  REQUIRE(count_jobs(sent_to<protocol::Job>(out, "node-b")) == 1);

  p.core.on_disconnect("node-b", 3);
  p.flush();
  auto rec = p.core.find_job("t1");
  REQUIRE(rec);
  CHECK(rec->state == JobState::kFailed);
  CHECK(rec->result.state == JobState::kFailed);
  CHECK(rec->result.attempt == 2);
  CHECK(rec->result.text.find("node-a") != std::string::npos);
  CHECK(rec->result.text.find("node-b") != std::string::npos);
  CHECK(rec->result.text.find("2 attempts") != std::string::npos);
  CHECK(p.core.stats(3).queue_length == 0);
  CHECK_FALSE(p.core.has_dispatchable());

  // The origin learns the outcome when it comes back.
  p.join("node-a", 1, 4);
  auto results = sent_to<protocol::Result>(p.last, "node-a");
  REQUIRE(results.size() == 1);
  REQUIRE(results[0].reports.size() == 1);
  CHECK(results[0].reports[0].ticket == "t1");
  CHECK(results[0].reports[0].state == JobState::kFailed);
  CHECK(results[0].reports[0].has_result);
}

TEST_CASE("proxy core: an UNKNOWN report from the holder requeues the job") {
  storage::MemoryStore store;
  Proxy p(store);
  p.join("node-a", 1);
  p.submit_and_dispatch("node-a", {"t1"});
  protocol::JobReport unknown;
  unknown.ticket = "t1";
  unknown.state = JobState::kUnknown;
  p.message("node-a", protocol::Result{{unknown}});
  CHECK(p.state_of("t1") == JobState::kQueued);
}

namespace {
// What the proxy answers `asker` about `ticket` (RES_REQ's question).
protocol::JobReport ask(Proxy& p, const std::string& asker, const std::string& ticket) {
  auto out = p.message(asker, protocol::RequestOfRes{{ticket}});
  auto results = sent_to<protocol::Result>(out, asker);
  REQUIRE(results.size() == 1);
  REQUIRE(results[0].reports.size() == 1);
  return results[0].reports[0];
}
}  // namespace

TEST_CASE("proxy core: a ticket never received whose prefix's node is away names that node, "
          "also after a restart") {
  storage::MemoryStore store;
  const std::string next = "pa-2-BBBBBBBBBBB";  // what node-a would issue next
  {
    Proxy p(store);
    p.join("node-a", 1);
    p.join("node-b", 1);
    p.message("node-a", submit_of({"pa-1-AAAAAAAAAAA"}, "node-a"));
    // node-a connected: what it has not sent is not on its way (the asking
    // node's short grace covers a submit in flight).
    auto r = ask(p, "node-b", next);
    CHECK(r.state == JobState::kUnknown);
    CHECK(r.node.empty());
    p.core.on_disconnect("node-a", 10);
    p.flush();
    r = ask(p, "node-b", next);
    CHECK(r.state == JobState::kUnknown);
    CHECK(r.node == "node-a");
    // Another prefix, or a ticket not shaped as nodes issue them: unknown.
    CHECK(ask(p, "node-b", "pz-2-BBBBBBBBBBB").node.empty());
    CHECK(ask(p, "node-b", "plain").node.empty());
    // A ticket it has: its own report, whoever is away.
    CHECK(ask(p, "node-b", "pa-1-AAAAAAAAAAA").state == JobState::kQueued);
    // A cancel on another client's behalf (CLIENT_TOKENS) says the same.
    auto out = p.message("node-b", protocol::Cancel{{next}, "alice"});
    auto results = sent_to<protocol::Result>(out, "node-b");
    REQUIRE(results.size() == 1);
    REQUIRE(results[0].reports.size() == 1);
    CHECK(results[0].reports[0].state == JobState::kUnknown);
    CHECK(results[0].reports[0].node == "node-a");
    // Another node's SUBMIT cannot claim the prefix.
    p.message("node-b", submit_of({"pa-9-CCCCCCCCCCC"}, "node-b"));
    CHECK(ask(p, "node-b", next).node == "node-a");
    p.join("node-a", 1, 20);
    CHECK(ask(p, "node-b", next).node.empty());
  }
  // A restarted proxy knows the prefix from the jobs it recovers.
  Proxy p(store);
  REQUIRE(p.core.recover(100).ok());
  p.join("node-b", 1, 100);
  auto r = ask(p, "node-b", next);
  CHECK(r.state == JobState::kUnknown);
  CHECK(r.node == "node-a");
  // A node that drained and left has nothing on its way: unknown is unknown.
  p.join("node-a", 1, 110);
  p.message("node-a", protocol::Leave{{}, true});
  p.core.on_disconnect("node-a", 120);
  p.flush();
  CHECK(ask(p, "node-b", next).node.empty());
}

// ---- recovery and reconciliation ----------------------------------------------

TEST_CASE("proxy core: a restarted core recovers queued and held jobs") {
  storage::MemoryStore store;
  {
    Proxy p(store);
    p.join("node-a", 1);
    p.submit_and_dispatch("node-a", {"t1", "t2", "t3"});
    REQUIRE(p.state_of("t1") == JobState::kRunning);
  }
  Proxy p(store);
  REQUIRE(p.core.recover(100).ok());
  CHECK(p.state_of("t1") == JobState::kRunning);
  CHECK(p.core.find_job("t1")->node == "node-a");
  CHECK(p.state_of("t2") == JobState::kQueued);
  CHECK(p.state_of("t3") == JobState::kQueued);
  auto s = p.core.stats(100);
  CHECK(s.queue_length == 2);
  const auto* a = node_stats(s, "node-a");
  REQUIRE(a != nullptr);
  CHECK_FALSE(a->connected);
  CHECK(a->assigned == 1);

  // The queue keeps its order: t2 goes out before t3.
  p.join("node-b", 1, 101);
  auto out = p.dispatch(102);
  CHECK(tickets_of(sent_to<protocol::Job>(out, "node-b")) == std::set<std::string>{"t2"});
}

TEST_CASE("proxy core: recovery keeps only what was committed") {
  storage::MemoryStore store;
  {
    Proxy p(store);
    p.join("node-a", 1);
    p.core.on_message("node-a", submit_of({"t1"}, "node-a"), 0);
    // Crash before the commit: nothing was acknowledged, nothing is kept.
  }
  Proxy p(store);
  REQUIRE(p.core.recover(0).ok());
  CHECK_FALSE(p.core.find_job("t1").has_value());
}

TEST_CASE("proxy core: reconciliation keeps, drops and requeues held tickets") {
  storage::MemoryStore store;
  {
    Proxy p(store);
    p.join("node-a", 2);
    p.join("node-b", 2);
    p.submit_and_dispatch("node-a", {"t1", "t2", "t3", "t4"});
  }
  Proxy p(store);
  REQUIRE(p.core.recover(0).ok());
  std::vector<std::string> of_a, of_b;
  for (const auto& t : {"t1", "t2", "t3", "t4"}) {
    auto rec = p.core.find_job(t);
    REQUIRE(rec);
    REQUIRE(rec->state == JobState::kRunning);
    (rec->node == "node-a" ? of_a : of_b).push_back(t);
  }
  REQUIRE(of_a.size() == 2);
  REQUIRE(of_b.size() == 2);
  // node-a comes back with one of its own, one of node-b's, and "ghost" which
  // the proxy never had; it lost the other of its own.
  protocol::Welcome w = p.join("node-a", 2, 1, {of_a[0], of_b[0], "ghost"});
  REQUIRE(w.accepted);
  std::set<std::string> drop(w.drop.begin(), w.drop.end());
  CHECK(drop == std::set<std::string>{of_b[0], "ghost"});
  // Its own ticket stays with it.
  CHECK(p.state_of(of_a[0]) == JobState::kRunning);
  CHECK(p.core.find_job(of_a[0])->node == "node-a");
  // The one it no longer has goes back to the queue.
  CHECK(p.state_of(of_a[1]) == JobState::kQueued);
  // node-b's ticket is still node-b's.
  CHECK(p.core.find_job(of_b[0])->node == "node-b");
  CHECK(p.core.stats(1).queue_length == 1);
  CHECK(node_stats(p.core.stats(1), "node-a")->assigned == 1);
}

TEST_CASE("proxy core: first dispatches are lines of one h/ record a commit, read back after a restart") {
  storage::MemoryStore store;
  const std::vector<std::string> rest{"t2", "t3", "t4"};
  {
    Proxy p(store);
    p.join("node-a", 2);
    p.join("node-b", 2);
    p.submit_and_dispatch("node-a", {"t1", "t2", "t3", "t4"});
    // No a/ record: one h/ record for the commit, a line for each job.
    CHECK(store_keys(store, "a/").empty());
    CHECK(store_keys(store, "q/").empty());
    auto h = store_keys(store, "h/");
    REQUIRE(h.size() == 1);
    std::string value;
    REQUIRE(store.get(h[0], &value).ok());
    CHECK(std::count(value.begin(), value.end(), '\n') == 4);
    // One finishes: the record stays while the others are held.
    auto t1 = p.core.find_job("t1");
    REQUIRE(t1);
    p.message(t1->node, protocol::Result{{final_report("t1", t1->node, 1)}}, 1);
    CHECK(p.state_of("t1") == JobState::kDone);
    CHECK(store_keys(store, "h/") == h);
  }
  {
    // After a restart each job is where its line says, and the finished
    // one, whose line is still there, stays finished.
    Proxy p(store);
    REQUIRE(p.core.recover(2).ok());
    CHECK(p.state_of("t1") == JobState::kDone);
    for (const auto& t : rest) {
      auto rec = p.core.find_job(t);
      REQUIRE(rec);
      CHECK(rec->state == JobState::kRunning);
      CHECK(rec->attempts == 1);
      CHECK(rec->nodes_tried == std::vector<std::string>{rec->node});
    }
    CHECK(node_stats(p.core.stats(2), "node-a")->assigned +
              node_stats(p.core.stats(2), "node-b")->assigned ==
          3);
    // The nodes come back without them: each is queued again, now with an
    // a/ record (a second attempt to come), and the h/ record goes.
    p.join("node-a", 2, 3);
    p.join("node-b", 2, 3);
    for (const auto& t : rest) CHECK(p.state_of(t) == JobState::kQueued);
    CHECK(store_keys(store, "h/").empty());
    CHECK(store_keys(store, "a/").size() == 3);
  }
  Proxy p(store);
  REQUIRE(p.core.recover(4).ok());
  for (const auto& t : rest) {
    auto rec = p.core.find_job(t);
    REQUIRE(rec);
    CHECK(rec->state == JobState::kQueued);
    CHECK(rec->attempts == 1);
  }
  CHECK(p.core.stats(4).queue_length == 3);
}

TEST_CASE("proxy core: a JOB sent ahead of a commit lost in a crash: the node that claims it finishes it") {
  storage::MemoryStore store;
  {
    Proxy p(store);
    p.join("node-a", 1);
    p.message("node-a", submit_of({"t1"}, "node-a"));
    // The dispatch round's JOB goes out before its commit (take_early);
    // the proxy dies before that commit lands.
    p.core.dispatch(1);
    REQUIRE(count_jobs(sent_to<protocol::Job>(p.core.take_outbox(), "node-a")) +
                count_jobs(sent_to<protocol::Job>(p.core.take_early(), "node-a")) ==
            1);
  }
  Proxy p(store);
  REQUIRE(p.core.recover(2).ok());
  CHECK(p.state_of("t1") == JobState::kQueued);
  // node-a ran attempt 1, which the proxy never recorded, and claims it.
  REQUIRE(p.join("node-a", 1, 3, {"t1"}).accepted);
  CHECK(p.state_of("t1") == JobState::kRunning);
  auto out = p.message("node-a", protocol::Result{{final_report("t1", "node-a", 1, "ran")}}, 4);
  auto acks = sent_to<protocol::Ack>(out, "node-a");
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].tickets == std::vector<std::string>{"t1"});
  CHECK(acks[0].superseded.empty());
  auto rec = p.core.find_job("t1");
  REQUIRE(rec);
  CHECK(rec->state == JobState::kDone);
  CHECK(rec->result.text == "ran");
  CHECK(rec->result.attempt == 1);
}

TEST_CASE("proxy core: a finished-but-unacknowledged ticket in hello is not requeued") {
  storage::MemoryStore store;
  {
    Proxy p(store);
    p.join("node-a", 1);
    p.submit_and_dispatch("node-a", {"t1"});
  }
  Proxy p(store);
  REQUIRE(p.core.recover(0).ok());
  protocol::Welcome w = p.join("node-a", 1, 1, {}, {"t1"});
  CHECK(w.drop.empty());
  CHECK(p.state_of("t1") == JobState::kRunning);
  auto out = p.message("node-a", protocol::Result{{final_report("t1", "node-a", 1)}}, 2);
  REQUIRE(sent_to<protocol::Ack>(out, "node-a").size() == 1);
  CHECK(p.state_of("t1") == JobState::kDone);
}

TEST_CASE("proxy core: a node back before redispatch keeps the jobs it still holds") {
  storage::MemoryStore store;
  Proxy p(store);
  p.join("node-a", 1);
  p.submit_and_dispatch("node-a", {"t1"});
  p.core.on_disconnect("node-a", 1);
  p.flush();
  REQUIRE(p.state_of("t1") == JobState::kQueued);
  protocol::Welcome w = p.join("node-a", 1, 2, {"t1"});
  CHECK(w.drop.empty());
  CHECK(p.state_of("t1") == JobState::kRunning);
  CHECK(p.core.find_job("t1")->node == "node-a");
  CHECK(p.core.stats(2).queue_length == 0);
  // It is not sent out a second time.
  p.join("node-b", 1, 3);
  CHECK(sent_to<protocol::Job>(p.dispatch(4), "node-b").empty());
}

TEST_CASE("proxy core: a node back after redispatch is told to drop the job") {
  storage::MemoryStore store;
  Proxy p(store);
  p.join("node-a", 1);
  p.submit_and_dispatch("node-a", {"t1"});
  p.join("node-b", 1);
  p.core.on_disconnect("node-a", 1);
  p.flush();
  p.dispatch(2);
  REQUIRE(p.core.find_job("t1")->node == "node-b");
  protocol::Welcome w = p.join("node-a", 1, 3, {"t1"});
  CHECK(w.drop == std::vector<std::string>{"t1"});
  CHECK(p.core.find_job("t1")->node == "node-b");
}

TEST_CASE("proxy core: expire_absent_nodes requeues jobs of a node that never came back") {
  storage::MemoryStore store;
  ProxyOptions o = options();
  o.node_timeout_ms = 1000;
  {
    Proxy p(store, o);
    p.join("node-a", 1);
    p.submit_and_dispatch("node-a", {"t1"});
  }
  Proxy p(store, o);
  REQUIRE(p.core.recover(5000).ok());
  p.core.expire_absent_nodes(5999);
  p.flush();
  CHECK(p.state_of("t1") == JobState::kRunning);
  p.core.expire_absent_nodes(6000);
  p.flush();
  CHECK(p.state_of("t1") == JobState::kQueued);
  CHECK(p.core.find_job("t1")->node.empty());
  p.join("node-b", 1, 6001);
  auto out = p.dispatch(6002);
  auto to_b = sent_to<protocol::Job>(out, "node-b");
  REQUIRE(count_jobs(to_b) == 1);
  CHECK(to_b[0].jobs[0].spec.ticket == "t1");
  CHECK(to_b[0].jobs[0].attempt == 2);
}

TEST_CASE("proxy core: expire_absent_nodes spares a node that came back") {
  storage::MemoryStore store;
  ProxyOptions o = options();
  o.node_timeout_ms = 1000;
  {
    Proxy p(store, o);
    p.join("node-a", 1);
    p.submit_and_dispatch("node-a", {"t1"});
  }
  Proxy p(store, o);
  REQUIRE(p.core.recover(0).ok());
  p.join("node-a", 1, 10, {"t1"});
  p.core.expire_absent_nodes(100000);
  p.flush();
  CHECK(p.state_of("t1") == JobState::kRunning);
  CHECK(p.core.find_job("t1")->node == "node-a");
}

// ---- requests ----------------------------------------------------------------

TEST_CASE("proxy core: REQUEST_OF_RES reports queue position, and UNKNOWN for strangers") {
  storage::MemoryStore store;
  Proxy p(store);
  p.join("node-a", 1);
  p.message("node-a", submit_of({"t1", "t2", "t3"}, "node-a"));
  p.dispatch();  // t1 runs, t2 and t3 wait
  auto out = p.message("node-a", protocol::RequestOfRes{{"t3", "t2", "t1", "nope"}});
  auto results = sent_to<protocol::Result>(out, "node-a");
  REQUIRE(results.size() == 1);
  const auto& reports = results[0].reports;
  REQUIRE(reports.size() == 4);
  CHECK(reports[0].ticket == "t3");
  CHECK(reports[0].state == JobState::kQueued);
  CHECK(reports[0].queue_position == 1);
  CHECK_FALSE(reports[0].has_result);
  CHECK(reports[1].ticket == "t2");
  CHECK(reports[1].state == JobState::kQueued);
  CHECK(reports[1].queue_position == 0);
  CHECK(reports[2].state == JobState::kRunning);
  CHECK(reports[2].node == "node-a");
  CHECK(reports[2].attempts == 1);
  CHECK(reports[3].ticket == "nope");
  CHECK(reports[3].state == JobState::kUnknown);
  CHECK_FALSE(reports[3].has_result);
}

TEST_CASE("proxy core: a node that asked about a job is told when it finishes") {
  storage::MemoryStore store;
  Proxy p(store);
  p.join("node-a", 1);
  p.join("node-b", 1);
  p.submit_and_dispatch("node-a", {"t1"});
  std::string runner = p.core.find_job("t1")->node;
  // The origin asking is answered, and not made a watcher: it is told anyway.
  auto answer =
      sent_to<protocol::Result>(p.message("node-a", protocol::RequestOfRes{{"t1"}}), "node-a");
  REQUIRE(answer.size() == 1);
  CHECK(answer[0].reports.at(0).state == JobState::kRunning);
  CHECK(p.core.watched_jobs() == 0);
  p.join("watcher", 1);
  p.message("watcher", protocol::RequestOfRes{{"t1"}});
  CHECK(p.core.watched_jobs() == 1);
  auto out = p.message(runner, protocol::Result{{final_report("t1", runner, 1)}});
  CHECK(sent_to<protocol::Result>(out, "watcher").size() == 1);
  auto to_origin = sent_to<protocol::Result>(out, "node-a");
  REQUIRE(to_origin.size() == 1);
  CHECK(to_origin[0].reports.size() == 1);
  CHECK(to_origin[0].reports[0].state == JobState::kDone);
  CHECK(p.core.watched_jobs() == 0);
}

TEST_CASE("proxy core: REQUEST_OF_RES of a finished job carries the result") {
  storage::MemoryStore store;
  Proxy p(store);
  p.join("node-a", 1);
  p.submit_and_dispatch("node-a", {"t1"});
  p.message("node-a", protocol::Result{{final_report("t1", "node-a", 1, "slept 10")}});
  auto out = p.message("node-a", protocol::RequestOfRes{{"t1"}});
  auto results = sent_to<protocol::Result>(out, "node-a");
  REQUIRE(results.size() == 1);
  REQUIRE(results[0].reports.size() == 1);
  CHECK(results[0].reports[0].state == JobState::kDone);
  CHECK(results[0].reports[0].has_result);
  CHECK(results[0].reports[0].result.text == "slept 10");
}

TEST_CASE("proxy core: stats requests are answered with the request id") {
  storage::MemoryStore store;
  Proxy p(store);
  p.join("node-a", 3);
  auto out = p.message("node-a", protocol::StatsRequest{42});
  auto replies = sent_to<protocol::StatsReply>(out, "node-a");
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].id == 42);
  REQUIRE(replies[0].stats.nodes.size() == 1);
  CHECK(replies[0].stats.nodes[0].slots == 3);
}

}  // namespace jc::proxy

namespace jc::proxy {

TEST_CASE("proxy core: higher priority first, in arrival order within one, and a delayed job waits") {
  storage::MemoryStore store;
  Proxy p(store);
  p.join("node-a", 1);
  protocol::Submit s = submit_of({"low", "mid1", "high", "mid2", "later"}, "node-a");
  s.jobs[0].priority = -5;
  s.jobs[2].priority = 7;
  s.jobs[4].priority = 100;
  s.jobs[4].not_before_ms = 1000;
  p.message("node-a", s, 0);
  auto asked = p.message("node-a", protocol::RequestOfRes{{"later"}}, 0);
  auto reports = sent_to<protocol::Result>(asked, "node-a");
  REQUIRE(reports.size() == 1);
  CHECK(reports[0].reports[0].state == JobState::kQueued);
  CHECK(reports[0].reports[0].priority == 100);
  CHECK(reports[0].reports[0].not_before_ms == 1000);
  CHECK(p.core.stats(0).queue_length == 5);
  std::vector<std::string> order;
  auto next = [&](TimeMs now) -> std::string {
    auto jobs = sent_to<protocol::Job>(p.dispatch(now), "node-a");
    if (jobs.empty()) return "";
    std::string t = jobs[0].jobs.at(0).spec.ticket;
    p.message("node-a", protocol::Result{{final_report(t, "node-a", 1)}}, now);
    return t;
  };
  for (int i = 0; i < 4; ++i) order.push_back(next(0));
  CHECK(order == std::vector<std::string>{"high", "mid1", "mid2", "low"});
  CHECK(next(999).empty());  // its time has not come, whatever its priority
  CHECK(p.core.next_delayed() == std::optional<TimeMs>(1000));
  CHECK(next(1000) == "later");
  CHECK_FALSE(p.core.next_delayed());
}

TEST_CASE("proxy core: a delayed job stays delayed across a restart, and a cancel removes it") {
  storage::MemoryStore store;
  {
    Proxy p(store);
    p.join("node-a", 1);
    protocol::Submit s = submit_of({"d1", "d2"}, "node-a");
    s.jobs[0].not_before_ms = 5000;
    s.jobs[1].not_before_ms = 6000;
    p.message("node-a", s, 0);
  }
  Proxy p(store);
  REQUIRE(p.core.recover(100).ok());
  CHECK(p.core.stats(100).queue_length == 2);
  CHECK(p.core.next_delayed() == std::optional<TimeMs>(5000));
  p.join("node-a", 1, 150);
  p.message("node-a", protocol::Cancel{{"d1"}, ""}, 200);
  CHECK(p.state_of("d1") == JobState::kCancelled);
  CHECK(p.core.next_delayed() == std::optional<TimeMs>(6000));
  CHECK(sent_to<protocol::Job>(p.dispatch(300), "node-a").empty());
  auto jobs = sent_to<protocol::Job>(p.dispatch(6000), "node-a");
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0].jobs.at(0).spec.ticket == "d2");
}

TEST_CASE("proxy core: a job the node finished while away is not run again after it reconnects") {
  storage::MemoryStore store;
  Proxy p(store);
  p.join("node-a", 1);
  p.message("node-a", submit_of({"t1"}, "node-a"));
  auto first = sent_to<protocol::Job>(p.dispatch(), "node-a");
  REQUIRE(count_jobs(first) == 1);
  p.core.on_disconnect("node-a", 10);
  p.flush();
  // Back, saying it finished t1 and the result is on its way.
  p.join("node-a", 1, 20, {}, {"t1"});
  CHECK(count_jobs(sent_to<protocol::Job>(p.dispatch(), "node-a")) == 0);
  auto out = p.message("node-a", protocol::Result{{final_report("t1", "node-a", 1)}});
  auto acks = sent_to<protocol::Ack>(out, "node-a");
  REQUIRE(!acks.empty());
  CHECK(acks[0].tickets == std::vector<std::string>{"t1"});
  CHECK(p.state_of("t1") == JobState::kDone);
}

}  // namespace jc::proxy

namespace jc::proxy {

TEST_CASE("proxy core: with CLUSTER_SECRET only a node with the right proof joins") {
  storage::MemoryStore store;
  ProxyOptions o = options();
  o.secret = "s3cret";
  Proxy p(store, o);
  auto h = hello("node-a", 1);
  CHECK_FALSE(p.core.on_hello(h, "peer", 0, "nonce-1").accepted);  // no proof
  h.auth = protocol::join_proof("wrong", "nonce-1", "node-a");
  CHECK_FALSE(p.core.on_hello(h, "peer", 0, "nonce-1").accepted);
  h.auth = protocol::join_proof("s3cret", "nonce-0", "node-a");  // another challenge's proof
  CHECK_FALSE(p.core.on_hello(h, "peer", 0, "nonce-1").accepted);
  h.auth = protocol::join_proof("s3cret", "nonce-1", "node-a");
  CHECK(p.core.on_hello(h, "peer", 0, "nonce-1").accepted);
}

}  // namespace jc::proxy

namespace jc::proxy {

TEST_CASE("proxy core: a job run by its origin while away is adopted, and one shown there never runs again") {
  storage::MemoryStore store;
  {
    Proxy p(store);
    p.join("origin", 1);
    p.join("other", 1);
    protocol::Submit s = submit_of({"shown", "running"}, "origin");
    s.local = {"shown", "running"};
    s.local_finished = {"shown"};  // its result is on the origin's clients' screens
    p.message("origin", s);
    CHECK(p.state_of("shown") == JobState::kRunning);
    CHECK(p.state_of("running") == JobState::kRunning);
    // The origin is lost: the job still running there goes to another node,
    // the one whose result was shown waits for its node.
    p.core.on_disconnect("origin", 10);
    p.flush();
    CHECK(p.state_of("running") == JobState::kQueued);
    auto out = p.dispatch(20);
    CHECK(tickets_of(sent_to<protocol::Job>(out, "other")) == std::set<std::string>{"running"});
    CHECK(p.state_of("shown") == JobState::kRunning);
    CHECK(p.core.find_job("shown")->node == "origin");
    p.core.expire_absent_nodes(100000);
    p.flush();
    CHECK(p.state_of("shown") == JobState::kRunning);
  }
  // Pinned across a restart too, and its result is taken when its node returns.
  Proxy again(store);
  REQUIRE(again.core.recover(0).ok());
  again.flush();
  again.core.expire_absent_nodes(100000);
  again.flush();
  CHECK(again.state_of("shown") == JobState::kRunning);
  // Back without naming it in HELLO (it comes by SUBMIT): still pinned to it.
  again.join("origin", 1, 100000);
  CHECK(again.state_of("shown") == JobState::kRunning);
  CHECK(again.core.find_job("shown")->node == "origin");
  auto out = again.message("origin", protocol::Result{{final_report("shown", "origin", 1, "mine")}});
  auto acks = sent_to<protocol::Ack>(out, "origin");
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].tickets == std::vector<std::string>{"shown"});
  CHECK(again.core.find_job("shown")->result.text == "mine");
}

// ---- what a job needs of a node ------------------------------------------

TEST_CASE("proxy core: a job goes only to a node that offers what it needs, in queue order") {
  storage::MemoryStore store;
  Proxy p(store);
  p.join("n1", 2);
  protocol::Hello gpu = hello("n2", 2);
  gpu.offers = {"lang:71", "label:gpu"};
  p.core.on_hello(gpu, "peer-n2", 0);
  p.flush();
  protocol::Submit s = submit_of({"plain-1", "needs-1", "plain-2", "needs-2"}, "n1");
  s.jobs[1].needs = {"label:gpu"};
  s.jobs[3].needs = {"lang:71", "label:gpu"};
  p.message("n1", s);
  auto out = p.dispatch();
  std::set<std::string> to_n1 = tickets_of(sent_to<protocol::Job>(out, "n1"));
  std::set<std::string> to_n2 = tickets_of(sent_to<protocol::Job>(out, "n2"));
  CHECK(to_n1.count("needs-1") == 0);
  CHECK(to_n1.count("needs-2") == 0);
  CHECK(to_n2.count("needs-1") == 1);
  CHECK(to_n2.count("needs-2") == 1);
  CHECK(to_n1.size() + to_n2.size() == 4);
}

TEST_CASE("proxy core: a job whose capable nodes are all away waits, and runs when one joins") {
  storage::MemoryStore store;
  Proxy p(store);
  p.join("n1", 2);
  protocol::Submit s = submit_of({"wants-gpu"}, "n1");
  s.jobs[0].needs = {"label:gpu"};
  p.message("n1", s);
  CHECK(count_jobs(sent_to<protocol::Job>(p.dispatch(), "n1")) == 0);
  CHECK(p.state_of("wants-gpu") == JobState::kQueued);
  // Asked, it says what it waits for.
  auto told = sent_to<protocol::Result>(p.message("n1", protocol::RequestOfRes{{"wants-gpu"}}), "n1");
  REQUIRE(told.size() == 1);
  REQUIRE(told[0].reports.size() == 1);
  CHECK(told[0].reports[0].waiting_for == "label:gpu");
  protocol::Hello gpu = hello("n2", 1);
  gpu.offers = {"label:gpu"};
  p.core.on_hello(gpu, "peer-n2", 0);
  auto joined = p.flush();
  // Every node learns what the cluster offers now.
  auto offers = sent_to<protocol::Offers>(joined, "n1");
  REQUIRE(!offers.empty());
  CHECK(offers.back().offered == std::vector<std::string>{"label:gpu"});
  CHECK(offers.back().available == std::vector<std::string>{"label:gpu"});
  CHECK(tickets_of(sent_to<protocol::Job>(p.dispatch(), "n2")) == std::set<std::string>{"wants-gpu"});
  // Gone, it is no longer available, though still offered.
  p.core.on_disconnect("n2", 10);
  auto after = sent_to<protocol::Offers>(p.flush(), "n1");
  REQUIRE(!after.empty());
  CHECK(after.back().offered == std::vector<std::string>{"label:gpu"});
  CHECK(after.back().available.empty());
}

TEST_CASE("proxy core: MAX_QUEUE tells the nodes the queue is full, and when it has room again") {
  storage::MemoryStore store;
  ProxyOptions o = options();
  o.max_queue = 10;
  Proxy p(store, o);
  p.join("n1", 1);
  auto first = sent_to<protocol::Offers>(p.last, "n1");
  REQUIRE(!first.empty());
  CHECK(first.back().max_queue == 10);
  CHECK_FALSE(first.back().queue_full);
  std::vector<std::string> nine, tenth{"t-10"};
  for (int i = 1; i <= 9; ++i) nine.push_back("t-" + std::to_string(i));
  CHECK(sent_to<protocol::Offers>(p.message("n1", submit_of(nine, "n1")), "n1").empty());
  auto full = sent_to<protocol::Offers>(p.message("n1", submit_of(tenth, "n1")), "n1");
  REQUIRE(full.size() == 1);
  CHECK(full[0].queue_full);
  CHECK(p.core.stats(0).recent_events.back().find("queue is full (10 jobs, MAX_QUEUE)") != std::string::npos);
  // One job leaves for the node (1 slot): 9 queued, still within the
  // tenth below the limit, so nodes are not told twice while it hovers.
  auto out = p.dispatch();
  CHECK(count_jobs(sent_to<protocol::Job>(out, "n1")) == 1);
  CHECK(sent_to<protocol::Offers>(out, "n1").empty());
  CHECK(p.core.queue_length() == 9);
  // Under nine tenths: room again.
  p.message("n1", protocol::Result{{final_report(*tickets_of(sent_to<protocol::Job>(out, "n1")).begin(), "n1", 1)}});
  out = p.dispatch();
  CHECK(p.core.queue_length() == 8);
  auto room = sent_to<protocol::Offers>(out, "n1");
  REQUIRE(room.size() == 1);
  CHECK_FALSE(room[0].queue_full);
}

TEST_CASE("proxy core: what a node offered stays offered across a restart while it is away") {
  storage::MemoryStore store;
  {
    Proxy p(store);
    protocol::Hello gpu = hello("n2", 1);
    gpu.offers = {"label:gpu", "lang:71"};
    p.core.on_hello(gpu, "peer-n2", 0);
    p.flush();
  }
  Proxy again(store);
  REQUIRE(again.core.recover(0).ok());
  again.join("n1", 1);
  auto offers = sent_to<protocol::Offers>(again.last, "n1");
  REQUIRE(!offers.empty());
  CHECK(offers.back().offered == std::vector<std::string>{"label:gpu", "lang:71"});
  CHECK(offers.back().available.empty());
}

TEST_CASE("proxy core: a node's offers are kept only as plain words") {
  storage::MemoryStore store;
  Proxy p(store);
  protocol::Hello h = hello("n1", 1);
  h.offers = {"lang:71", "<script>", "", std::string(200, 'x'), "label:ok"};
  p.core.on_hello(h, "peer-n1", 0);
  p.flush();
  const auto* n = node_stats(p.core.stats(0), "n1");
  REQUIRE(n != nullptr);
  CHECK(n->offers == std::vector<std::string>{"label:ok", "lang:71"});
}

// ---- the spec, written once ------------------------------------------------

// A MemoryStore that counts the reads and the writes of each key.
class CountingStore : public storage::MemoryStore {
 public:
  Status get(std::string_view key, std::string* value) override {
    ++reads[std::string(key)];
    return MemoryStore::get(key, value);
  }
  Status write_ops(const storage::WriteBatch::Ops& ops, bool sync) override {
    for (const auto& [key, value] : ops) ++writes[key];
    return MemoryStore::write_ops(ops, sync);
  }
  std::map<std::string, int> reads, writes;
};

protocol::JobSpec judged_spec(const std::string& ticket, const std::string& source) {
  protocol::JobSpec s;
  s.ticket = ticket;
  s.kind = protocol::JobKind::kRun;
  s.command = "exec python3 main.py\n";
  s.origin = "origin";
  s.owner = "alice";
  s.priority = 7;
  s.files = {{"main.py", source}};
  s.cases = {{"1", "stdin of case 1", true, "expected of case 1"}};
  s.needs = {"lang:71"};
  s.is_api = true;
  s.api.language_id = 71;
  return s;
}

// The spec stored as s/<ticket>.
protocol::JobSpec stored_spec(storage::MemoryStore& store, const std::string& ticket) {
  std::string bytes;
  REQUIRE(store.get("s/" + ticket, &bytes).ok());
  protocol::JobSpec spec;
  REQUIRE(protocol::from_record(bytes, spec));
  return spec;
}

// A node "origin" that runs Python (lang:71) joined to `p`.
void join_python_origin(Proxy& p) {
  protocol::Hello h = hello("origin", 1);
  h.offers = {"lang:71"};
  REQUIRE(p.core.on_hello(h, "peer", 0).accepted);
  p.flush();
}

TEST_CASE("proxy core: a spec that came in a frame is stored as the bytes it came in") {
  CountingStore store;
  Proxy p(store);
  join_python_origin(p);
  protocol::Submit sub;
  sub.jobs.push_back(judged_spec("t1", std::string(500, 's')));
  sub.first = true;
  auto decoded = protocol::decode(protocol::encode(protocol::Message{sub}));
  auto* done = std::get_if<protocol::Complete>(&decoded);
  REQUIRE(done != nullptr);
  REQUIRE(std::get<protocol::Submit>(done->message).spec_records.size() == 1);
  p.message("origin", std::move(done->message));
  std::string bytes;
  REQUIRE(store.get("s/t1", &bytes).ok());
  CHECK(bytes == protocol::to_record(sub.jobs[0]));
  CHECK(stored_spec(store, "t1") == sub.jobs[0]);
  auto jobs = sent_to<protocol::Job>(p.dispatch(10), "origin");
  REQUIRE(count_jobs(jobs) == 1);
  CHECK(jobs[0].jobs[0].spec == sub.jobs[0]);
}

TEST_CASE("proxy core: a job's spec is written once, its other records keep only the head") {
  CountingStore store;
  Proxy p(store);
  join_python_origin(p);
  const std::string source(3000, 's');
  protocol::Submit sub;
  sub.jobs.push_back(judged_spec("t1", source));
  sub.first = true;
  p.message("origin", sub);

  CHECK(stored_spec(store, "t1") == judged_spec("t1", source));
  // Queued: no a/ record yet, a line in its commit's q/ batch.
  std::string bytes;
  CHECK(store.get("a/t1", &bytes).is_not_found());
  REQUIRE(store.get(JobBook::queued_key(1), &bytes).ok());
  CHECK(bytes == "t1 1\n");

  // Dispatched with the whole spec, and from memory: its s/ record is not
  // read back. Its first dispatch is a line in its commit's h/ batch, not
  // an a/ record: ticket, node, sequence.
  store.reads.clear();
  auto out = p.dispatch(10);
  CHECK(store.reads["s/t1"] == 0);
  CHECK(store.reads["a/t1"] == 0);
  auto jobs = sent_to<protocol::Job>(out, "origin");
  REQUIRE(count_jobs(jobs) == 1);
  CHECK(jobs[0].jobs[0].spec == judged_spec("t1", source));
  CHECK(jobs[0].jobs[0].attempt == 1);
  CHECK(store.get("a/t1", &bytes).is_not_found());
  REQUIRE(store.get("h/t1", &bytes).ok());
  CHECK(bytes == "t1 origin 1\n");
  CHECK(store.get(JobBook::queued_key(1), &bytes).is_not_found());
  // It reads as held: that node, that attempt.
  auto held = p.core.find_job("t1");
  REQUIRE(held);
  CHECK(held->state == JobState::kRunning);
  CHECK(held->node == "origin");
  CHECK(held->attempts == 1);
  CHECK(held->nodes_tried == std::vector<std::string>{"origin"});

  // Its result decodes neither s/ nor a record of its own: memory holds
  // its record's head.
  store.reads.clear();
  p.message("origin", protocol::Result{{final_report("t1", "origin", 1, "ran")}}, 20);
  CHECK(store.reads["s/t1"] == 0);
  CHECK(store.reads["a/t1"] == 0);
  REQUIRE(store.get("f/t1", &bytes).ok());
  CHECK(bytes.size() < 150);
  CHECK(bytes.find(source) == std::string::npos);
  CHECK(store.get("a/t1", &bytes).is_not_found());
  CHECK(store.get("h/t1", &bytes).is_not_found());

  // The head answers for the finished job (its owner), the details read the spec.
  auto rec = p.core.find_job("t1");
  REQUIRE(rec);
  CHECK(rec->state == JobState::kDone);
  CHECK(rec->spec == judged_spec("t1", source));
  CHECK(rec->result.text == "ran");
  CHECK(rec->nodes_tried == std::vector<std::string>{"origin"});
  CHECK(store.writes["s/t1"] == 1);
  CHECK(store.writes["a/t1"] == 0);  // never: an h/ line, then f/

  // And after a restart.
  Proxy again(store);
  REQUIRE(again.core.recover(30).ok());
  auto back = again.core.find_job("t1");
  REQUIRE(back);
  CHECK(back->spec == judged_spec("t1", source));
  CHECK(back->spec.owner == "alice");
}

TEST_CASE("proxy core: a job record of version 6 keeps working, its spec moved out at its next write") {
  CountingStore store;
  const std::string source(2000, 'v');
  {
    JobRecord rec;
    rec.spec = judged_spec("t1", source);
    rec.seq = 1;
    storage::WriteBatch b;
    b.put("a/t1", std::string{protocol::kRecordMarker, 6} + protocol::to_bytes_at(rec, 6));
    JobRecord done;
    done.spec = judged_spec("t2", source);
    done.state = JobState::kDone;
    done.node = "elsewhere";
    done.attempts = 1;
    done.seq = 2;
    done.nodes_tried = {"elsewhere"};
    done.result.text = "old result";
    done.result.final_ms = 5;
    b.put("f/t2", std::string{protocol::kRecordMarker, 6} + protocol::to_bytes_at(done, 6));
    REQUIRE(store.write(b, true).ok());
  }
  Proxy p(store);
  REQUIRE(p.core.recover(0).ok());
  p.flush();
  auto queued = p.core.find_job("t1");
  REQUIRE(queued);
  CHECK(queued->state == JobState::kQueued);
  CHECK(queued->spec == judged_spec("t1", source));
  auto finished = p.core.find_job("t2");
  REQUIRE(finished);
  CHECK(finished->spec == judged_spec("t2", source));
  CHECK(finished->result.text == "old result");

  protocol::Hello h = hello("n1", 1);
  h.offers = {"lang:71"};
  REQUIRE(p.core.on_hello(h, "peer", 0).accepted);
  p.flush();
  auto jobs = sent_to<protocol::Job>(p.dispatch(10), "n1");
  REQUIRE(count_jobs(jobs) == 1);
  CHECK(jobs[0].jobs[0].spec == judged_spec("t1", source));
  // Its first write in version 7 moved the spec to s/.
  CHECK(stored_spec(store, "t1") == judged_spec("t1", source));
  std::string bytes;
  REQUIRE(store.get("a/t1", &bytes).ok());
  CHECK(static_cast<unsigned char>(bytes[1]) == protocol::kRecordVersion);
  CHECK(bytes.find(source) == std::string::npos);

  p.message("n1", protocol::Result{{final_report("t1", "n1", 1, "new result")}}, 20);
  auto done = p.core.find_job("t1");
  REQUIRE(done);
  CHECK(done->result.text == "new result");
  CHECK(done->spec == judged_spec("t1", source));
  CHECK(store.writes["s/t1"] == 1);
}

}  // namespace jc::proxy


// ---- results in batches, specs as stored -----------------------------------

namespace jc::proxy {

TEST_CASE("proxy core: the results of one frame go to each origin in one RESULT, in order with the runner's ACK") {
  storage::MemoryStore store;
  Proxy p(store);
  p.join("node-a", 4);
  p.join("node-b", 4);
  p.message("node-a", submit_of({"a1", "a2"}, "node-a"));
  p.message("node-b", submit_of({"b1", "b2"}, "node-b"));
  auto out = p.dispatch();
  // Every job's runner reports it; the results come in one frame per runner.
  std::map<std::string, std::vector<protocol::JobReport>> by_runner;
  for (const auto& o : out) {
    if (auto* job = std::get_if<protocol::Job>(&o.message)) {
      for (const auto& a : job->jobs) {
        by_runner[o.node_id].push_back(final_report(a.spec.ticket, o.node_id, a.attempt));
      }
    }
  }
  REQUIRE(by_runner.size() == 2);
  for (auto& [runner, reports] : by_runner) {
    auto sent = p.message(runner, protocol::Result{reports});
    for (const std::string origin : {"node-a", "node-b"}) {
      auto results = sent_to<protocol::Result>(sent, origin);
      std::set<std::string> got, of_origin;
      for (const auto& res : results) {
        for (const auto& r : res.reports) got.insert(r.ticket);
      }
      for (const auto& r : reports) {
        if (r.ticket[0] == origin.back()) of_origin.insert(r.ticket);
      }
      CHECK(got == of_origin);
      CHECK(results.size() == (of_origin.empty() ? 0u : 1u));  // together, not one per job
    }
    // A runner that is an origin too gets its RESULT before the ACK, as each
    // message to one node keeps its order.
    std::vector<std::size_t> ack_at, result_at;
    for (std::size_t i = 0; i < sent.size(); ++i) {
      if (sent[i].node_id != runner) continue;
      if (std::holds_alternative<protocol::Ack>(sent[i].message)) ack_at.push_back(i);
      if (std::holds_alternative<protocol::Result>(sent[i].message)) result_at.push_back(i);
    }
    REQUIRE(ack_at.size() == 1);
    for (auto i : result_at) CHECK(i < ack_at[0]);
  }
}

TEST_CASE("proxy core: a dispatched job carries its spec as stored, from memory or from s/") {
  storage::MemoryStore store;
  ProxyOptions o = options();
  Proxy p(store, o);
  p.join("node-a", 1);
  // The submit comes as a frame, as from a node: its spec records are kept.
  protocol::Submit sub = submit_of({"j1", "j2"}, "node-a");
  sub.first = true;
  std::string frame = protocol::encode(protocol::Message{sub});
  auto decoded = std::get<protocol::Complete>(protocol::decode(frame));
  p.message("node-a", std::move(decoded.message));
  auto check_sent = [&](const std::vector<Outgoing>& out, const std::string& t) {
    auto jobs = sent_to<protocol::Job>(out, "node-a");
    REQUIRE(jobs.size() == 1);
    REQUIRE(jobs[0].jobs.size() == 1);
    const auto& a = jobs[0].jobs[0];
    CHECK(a.spec.ticket == t);
    std::string stored;
    REQUIRE(store.get("s/" + t, &stored).ok());
    CHECK(a.spec_bytes == stored.substr(protocol::kRecordHeaderBytes));
    CHECK(a.spec_bytes == protocol::to_bytes(a.spec));
  };
  check_sent(p.dispatch(), "j1");  // from memory
  // After a restart nothing is in memory: j2's bytes come from s/.
  Proxy again(store, o);
  REQUIRE(again.core.recover(0).ok());
  again.join("node-a", 2, 0, {"j1"});
  check_sent(again.dispatch(), "j2");
}


TEST_CASE("proxy core: WELCOME comes first even when the node's return ends a job of its clients") {
  storage::MemoryStore store;
  ProxyOptions o = options();
  o.max_attempts = 1;
  {
    Proxy p(store, o);
    p.join("node-a", 1);
    p.message("node-a", submit_of({"j1"}, "node-a"));
    REQUIRE(sent_to<protocol::Job>(p.dispatch(), "node-a").size() == 1);
  }
  // A restarted proxy; node-a comes back without j1, which had its one attempt.
  Proxy again(store, o);
  REQUIRE(again.core.recover(0).ok());
  protocol::Welcome w = again.core.on_hello(hello("node-a", 1), "peer-node-a", 0);
  REQUIRE(w.accepted);
  auto out = again.flush();
  std::vector<const protocol::Message*> to_a;
  for (const auto& m : out) {
    if (m.node_id == "node-a") to_a.push_back(&m.message);
  }
  REQUIRE_FALSE(to_a.empty());
  CHECK(std::holds_alternative<protocol::Welcome>(*to_a.front()));
  // Its clients still learn the job's end, after the WELCOME.
  bool told = false;
  for (const auto& r : sent_to<protocol::Result>(out, "node-a")) {
    for (const auto& rep : r.reports) told = told || (rep.ticket == "j1" && rep.state == JobState::kFailed);
  }
  CHECK(told);
}

TEST_CASE("outbox: results gathered for a node leave as one RESULT before its next message, and only JOBs leave early") {
  Outbox box;
  auto report = [](const std::string& t) {
    protocol::JobReport r;
    r.ticket = t;
    return r;
  };
  box.push_result("n1", report("a"));
  box.push_result("n1", report("b"));
  CHECK_FALSE(box.only_acks());
  box.send("n1", protocol::Ack{protocol::AckKind::kResults, {"c"}, {}});
  box.send("n2", protocol::Job{});
  box.send("n3", protocol::Welcome{});
  box.send("n3", protocol::Job{});
  auto early = box.take_early({});
  REQUIRE(early.size() == 1);  // n3's JOB waits for its WELCOME
  CHECK(early[0].node_id == "n2");
  auto rest = box.take();
  REQUIRE(rest.size() == 4);
  CHECK(rest[0].node_id == "n1");
  REQUIRE(std::holds_alternative<protocol::Result>(rest[0].message));
  CHECK(std::get<protocol::Result>(rest[0].message).reports.size() == 2);
  CHECK(std::holds_alternative<protocol::Ack>(rest[1].message));
  CHECK(std::holds_alternative<protocol::Welcome>(rest[2].message));
  CHECK(std::holds_alternative<protocol::Job>(rest[3].message));
  CHECK(box.take().empty());
  box.send("n1", protocol::Ack{protocol::AckKind::kResults, {"d"}, {}});
  CHECK(box.only_acks());
  box.push_result("n4", report("e"));
  box.drop_results("n4");  // its connection is gone
  CHECK(box.only_acks());
}

}  // namespace jc::proxy
