// Unit tests of cluster_node/node_core.h on a MemoryStore. Between steps the
// stage is committed as the node's shell does before it sends anything.
#include "cluster_node/node_core.h"

#include "protocol/auth.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "protocol/auth.h"
#include "protocol/codec.h"
#include "protocol/job.h"
#include "protocol/messages.h"
#include "storage/store.h"
#include "tests/support/node_turn.h"
#include "tests/support/read_counting_store.h"

namespace jc::node {
namespace {

using protocol::AckKind;
using protocol::JobState;

// The time of lookups: within the default RESULT_TTL of every result here.
constexpr TimeMs kNow = 1'000'000;

// The messages of type T, as the proxy reads them: a node's new
// submissions leave as bytes alone (Submit::spec_bytes), which the frame
// turns into jobs.
template <class T>
std::vector<T> of_type(const std::vector<protocol::Message>& out) {
  std::vector<T> found;
  for (const auto& m : out) {
    if (!std::holds_alternative<T>(m)) continue;
    auto read = protocol::decode(protocol::encode(m));
    REQUIRE(std::holds_alternative<protocol::Complete>(read));
    found.push_back(std::get<T>(std::get<protocol::Complete>(read).message));
  }
  return found;
}

std::set<std::string> submitted_tickets(const std::vector<protocol::Message>& out) {
  std::set<std::string> t;
  for (const auto& s : of_type<protocol::Submit>(out)) {
    for (const auto& j : s.jobs) t.insert(j.ticket);
  }
  return t;
}

NodeOptions options(std::uint32_t slots = 2) {
  NodeOptions o;
  o.node_id = "node-a";
  o.slots = slots;
  o.client_address = "127.0.0.1:9000";
  return o;
}

protocol::JobSpec sleep_spec(std::uint64_t ms = 10) {
  protocol::JobSpec s;
  s.kind = protocol::JobKind::kSleep;
  s.sleep_ms = ms;
  return s;
}

protocol::Assignment assignment(const std::string& ticket, std::uint32_t attempt = 1,
                                const std::string& origin = "node-z") {
  protocol::Assignment a;
  a.spec = sleep_spec();
  a.spec.ticket = ticket;
  a.spec.origin = origin;
  a.attempt = attempt;
  return a;
}

protocol::Welcome welcome(std::vector<std::string> drop = {}) {
  protocol::Welcome w;
  w.accepted = true;
  w.proxy_id = "proxy";
  w.drop = std::move(drop);
  return w;
}

protocol::JobResult done_result(const std::string& text = "slept") {
  protocol::JobResult r;
  r.state = JobState::kDone;
  r.text = text;
  return r;
}

// A final report from the proxy: `node` ran attempt `attempt` of `ticket`.
protocol::JobReport proxy_report(const std::string& ticket, const std::string& node,
                                 std::uint32_t attempt, const std::string& text) {
  protocol::JobReport r;
  r.ticket = ticket;
  r.state = JobState::kDone;
  r.node = node;
  r.attempts = attempt;
  r.has_result = true;
  r.result = done_result(text);
  r.result.node = node;
  r.result.attempt = attempt;
  return r;
}

// A node core on a MemoryStore, with the shell's commit-then-send step.
struct Node {
  explicit Node(storage::MemoryStore& store, NodeOptions o = options())
      : core(store, std::move(o)) {
    REQUIRE(core.recover().ok());
    flush();
  }
  std::vector<protocol::Message> flush() { return test::node_turn(core); }
  std::vector<protocol::Message> receive(protocol::Message m) {
    core.on_message(m);
    return flush();
  }
  std::vector<protocol::Message> connect(std::vector<std::string> drop = {}) {
    return receive(welcome(std::move(drop)));
  }
  std::vector<protocol::Message> reconnect() {
    core.on_disconnected();
    return connect();
  }
  std::string submit(TimeMs now = 0) {
    std::string t = core.submit(sleep_spec(), now);
    flush();
    return t;
  }
  std::string start() {
    auto a = core.next_job();
    REQUIRE(a.has_value());
    flush();
    return a->spec.ticket;
  }
  // Two REQUEST_RESULT_PERIOD ticks: every x/ and d/ record that waited in
  // memory has outlived a whole round, and is written.
  void rounds_pass() {
    core.age_records();
    core.age_records();
    flush();
  }

  NodeCore core;
};

}  // namespace

// ---- client side ---------------------------------------------------------------

TEST_CASE("node core: submit returns unique valid tickets") {
  storage::MemoryStore store;
  Node n(store);
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    std::string t = n.core.submit(sleep_spec(), i);
    CAPTURE(t);
    CHECK(protocol::is_valid_ticket(t));
    CHECK(seen.insert(t).second);
  }
}

TEST_CASE("node core: a ticket is prefix, counter and an unguessable part, at most 32 long") {
  storage::MemoryStore store;
  NodeOptions o = options();
  int calls = 0;
  o.random_part = [&] { return "RANDOM" + std::to_string(calls++) + "xxxx"; };
  Node n(store, o);
  std::string first = n.core.submit(sleep_spec(), 0);
  std::string second = n.core.submit(sleep_spec(), 1);
  CHECK(calls == 2);
  auto dash = first.find('-');
  REQUIRE(dash == 6);
  CHECK(first.substr(dash) == "-1-RANDOM0xxxx");
  CHECK(second.substr(dash) == "-2-RANDOM1xxxx");
  // getall orders by the counter, not by the random part.
  n.flush();
  auto all = n.core.getall(kNow);
  REQUIRE(all.size() == 2);
  CHECK(all[0].ticket == first);
}

TEST_CASE("node core: the random part has 66 bits of [A-Za-z0-9_-] and repeats nothing") {
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) {
    std::string r = protocol::random_ticket_part();
    REQUIRE(r.size() == 11);
    CHECK(r.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
          std::string::npos);
    CHECK(seen.insert(r).second);
  }
  // The longest ticket a node makes below 10^13 jobs still fits.
  std::string longest = "abcdef-" + std::string(13, '9') + "-" + protocol::random_ticket_part();
  CHECK(longest.size() == protocol::kMaxTicketLength);
  CHECK(protocol::is_valid_ticket(longest));
}

TEST_CASE("node core: tickets stay unique across a restart") {
  storage::MemoryStore store;
  std::set<std::string> seen;
  {
    Node n(store);
    for (int i = 0; i < 50; ++i) seen.insert(n.submit());
  }
  REQUIRE(seen.size() == 50);
  {
    Node n(store);
    for (int i = 0; i < 50; ++i) {
      std::string t = n.submit();
      CAPTURE(t);
      CHECK(protocol::is_valid_ticket(t));
      CHECK(seen.insert(t).second);
    }
  }
  // And once more.
  Node n(store);
  CHECK(seen.insert(n.submit()).second);
}

TEST_CASE("node core: submit stages a synced write with the job") {
  storage::MemoryStore store;
  Node n(store);
  int before = store.synced_writes();
  std::string t = n.core.submit(sleep_spec(), 1234);
  CHECK_FALSE(n.core.staged().empty());
  REQUIRE(n.core.staged().commit().ok());
  CHECK(store.synced_writes() == before + 1);
  std::string v;
  CHECK(store.get("o/" + t, &v).ok());
  CHECK(store.get("u/" + t, &v).ok());
}

TEST_CASE("node core: a job's record and what the proxy is sent share one encoding of its spec") {
  // The record made from the spec's bytes is the one encoding it whole
  // makes, for a plain job and for one with every part set.
  protocol::JobSpec api = sleep_spec();
  api.kind = protocol::JobKind::kRun;
  api.command = "exec /bin/bash script.sh\n";
  api.files = {{"script.sh", "echo hi"}};
  api.cases = {{}};
  api.needs = {"lang:46"};
  api.is_api = true;
  api.api.language_id = 46;
  api.api.callback_url = "http://example.com/cb";
  for (const protocol::JobSpec& spec : {sleep_spec(), api}) {
    OriginRecord rec;
    rec.spec = spec;
    CHECK(fresh_origin_record(protocol::to_bytes(spec)) == protocol::to_record(rec));
  }
  // Likewise the running node's x/ record, from the bytes its JOB brought.
  for (const protocol::JobSpec& spec : {sleep_spec(), api}) {
    ExecRecord rec;
    rec.spec = spec;
    rec.attempt = 3;
    rec.local = true;
    CHECK(exec_record_from(protocol::to_bytes(spec), rec) == protocol::to_record(rec));
    rec.state = JobState::kDone;
    rec.result = done_result("finished");
    CHECK(exec_record_from(protocol::to_bytes(spec), rec) == protocol::to_record(rec));
  }
  storage::MemoryStore store;
  Node n(store);
  n.connect();
  std::string t = n.core.submit(api, 1234);
  auto out = n.flush();
  // The job leaves as the bytes it was encoded into, without a spec.
  auto sent = std::find_if(out.begin(), out.end(), [](const protocol::Message& m) {
    return std::holds_alternative<protocol::Submit>(m);
  });
  REQUIRE(sent != out.end());
  CHECK(std::get<protocol::Submit>(*sent).jobs.empty());
  REQUIRE(std::get<protocol::Submit>(*sent).spec_bytes.size() == 1);
  auto subs = of_type<protocol::Submit>(out);
  REQUIRE(subs.size() == 1);
  REQUIRE(subs[0].jobs.size() == 1);
  // The bytes sent are the spec as stored, which is the job as accepted.
  CHECK(std::get<protocol::Submit>(*sent).spec_bytes[0] == protocol::to_bytes(subs[0].jobs[0]));
  std::string stored;
  REQUIRE(store.get("o/" + t, &stored).ok());
  OriginRecord back;
  REQUIRE(protocol::from_record(stored, back));
  CHECK(back.spec == subs[0].jobs[0]);
  CHECK(back.spec.ticket == t);
  CHECK(back.state == JobState::kQueued);
  CHECK_FALSE(back.has_result);
}

TEST_CASE("node core: a submitted job is QUEUED in lookups and getall") {
  storage::MemoryStore store;
  Node n(store);
  std::string t = n.submit();
  auto r = n.core.lookup(t, kNow);
  CHECK(r.ticket == t);
  CHECK(r.state == JobState::kQueued);
  CHECK_FALSE(r.has_result);
  auto all = n.core.getall(kNow);
  REQUIRE(all.size() == 1);
  CHECK(all[0].ticket == t);
  CHECK(all[0].state == JobState::kQueued);
  CHECK(all[0].job == "sleep 10");
}

TEST_CASE("node core: lookup of an unknown ticket is UNKNOWN") {
  storage::MemoryStore store;
  Node n(store);
  auto r = n.core.lookup("nobody-1", kNow);
  CHECK(r.ticket == "nobody-1");
  CHECK(r.state == JobState::kUnknown);
  CHECK_FALSE(r.has_result);
}

// ---- forwarding -----------------------------------------------------------

TEST_CASE("node core: nothing is sent before the proxy welcomes the node") {
  storage::MemoryStore store;
  Node n(store);
  n.core.submit(sleep_spec(), 0);
  CHECK(n.flush().empty());
  CHECK_FALSE(n.core.connected());
}

TEST_CASE("node core: a refused welcome does not connect") {
  storage::MemoryStore store;
  Node n(store);
  n.submit();
  protocol::Welcome w;
  w.accepted = false;
  w.reason = "no";
  CHECK(n.receive(w).empty());
  CHECK_FALSE(n.core.connected());
}

TEST_CASE("node core: welcome forwards the jobs not yet forwarded") {
  storage::MemoryStore store;
  Node n(store);
  std::string t1 = n.submit(100);
  std::string t2 = n.submit(200);
  auto out = n.connect();
  CHECK(n.core.connected());
  auto submits = of_type<protocol::Submit>(out);
  REQUIRE(submits.size() == 1);
  REQUIRE(submits[0].jobs.size() == 2);
  CHECK(submits[0].jobs[0].ticket == t1);  // in submission order
  CHECK(submits[0].jobs[1].ticket == t2);
  CHECK(submits[0].jobs[0].origin == "node-a");
  CHECK(submits[0].jobs[0].submitted_ms == 100);
  CHECK(submits[0].jobs[0].sleep_ms == 10);
  // And a load report.
  CHECK(of_type<protocol::Info>(out).size() == 1);
  CHECK(of_type<protocol::Info>(out)[0].pending_forward == 2);
}

TEST_CASE("node core: a submit while connected is sent at once") {
  storage::MemoryStore store;
  Node n(store);
  n.connect();
  std::string t = n.core.submit(sleep_spec(), 0);
  auto out = n.flush();
  CHECK(submitted_tickets(out) == std::set<std::string>{t});
}

TEST_CASE("node core: ACK submitted clears the jobs, which are not resent") {
  storage::MemoryStore store;
  Node n(store);
  std::string t1 = n.submit();
  std::string t2 = n.submit();
  n.connect();
  n.receive(protocol::Ack{AckKind::kSubmitted, {t1}, {}});
  std::string v;
  CHECK(store.get("u/" + t1, &v).is_not_found());
  CHECK(store.get("u/" + t2, &v).ok());
  CHECK(submitted_tickets(n.reconnect()) == std::set<std::string>{t2});

  n.receive(protocol::Ack{AckKind::kSubmitted, {t2}, {}});
  CHECK(of_type<protocol::Submit>(n.reconnect()).empty());
  CHECK(n.core.info().pending_forward == 0);
}

TEST_CASE("node core: acknowledged jobs are not resent after a restart") {
  storage::MemoryStore store;
  std::string t1, t2;
  {
    Node n(store);
    t1 = n.submit();
    t2 = n.submit();
    n.connect();
    n.receive(protocol::Ack{AckKind::kSubmitted, {t1}, {}});
  }
  Node n(store);
  CHECK(submitted_tickets(n.connect()) == std::set<std::string>{t2});
}

// ---- running jobs -----------------------------------------------------------

TEST_CASE("node core: JOB messages are started up to the slots, not beyond") {
  storage::MemoryStore store;
  Node n(store, options(2));
  n.connect();
  n.receive(protocol::Job{{assignment("j1"), assignment("j2"), assignment("j3")}});
  CHECK(n.core.take_events().work);
  auto a1 = n.core.next_job();
  auto a2 = n.core.next_job();
  REQUIRE(a1);
  REQUIRE(a2);
  CHECK(a1->spec.ticket == "j1");
  CHECK(a2->spec.ticket == "j2");
  CHECK_FALSE(n.core.next_job().has_value());
  CHECK(n.core.running() == 2);
  auto info = n.core.info();
  CHECK(info.running == 2);
  CHECK(info.queued == 1);
  CHECK(info.free_slots == 0);
  // A finished job frees a slot for the third.
  n.core.job_finished("j1", done_result());
  auto a3 = n.core.next_job();
  REQUIRE(a3);
  CHECK(a3->spec.ticket == "j3");
  CHECK_FALSE(n.core.next_job().has_value());
}

TEST_CASE("node core: the same job sent twice is held once") {
  storage::MemoryStore store;
  Node n(store, options(4));
  n.connect();
  n.receive(protocol::Job{{assignment("j1")}});
  n.receive(protocol::Job{{assignment("j1"), assignment("bad/ticket")}});
  CHECK(n.core.next_job().has_value());
  CHECK_FALSE(n.core.next_job().has_value());
  CHECK(n.core.hello().held == std::vector<std::string>{"j1"});
}

TEST_CASE("node core: a running job is RUNNING in lookups and reports") {
  storage::MemoryStore store;
  Node n(store);
  n.connect();
  n.receive(protocol::Job{{assignment("j1", 2)}});
  n.start();
  auto r = n.core.lookup("j1", kNow);
  CHECK(r.state == JobState::kRunning);
  CHECK(r.node == "node-a");
  CHECK(r.attempts == 2);
  CHECK_FALSE(r.has_result);
  auto out = n.receive(protocol::RequestOfRes{{"j1", "other"}});
  auto results = of_type<protocol::Result>(out);
  REQUIRE(results.size() == 1);
  REQUIRE(results[0].reports.size() == 2);
  CHECK(results[0].reports[0].state == JobState::kRunning);
  CHECK(results[0].reports[1].ticket == "other");
  CHECK(results[0].reports[1].state == JobState::kUnknown);
}

TEST_CASE("node core: job_finished sends a RESULT with the node id and attempt") {
  storage::MemoryStore store;
  Node n(store);
  n.connect();
  n.receive(protocol::Job{{assignment("j1", 3)}});
  n.start();
  n.core.job_finished("j1", done_result("slept 10"));
  auto out = n.flush();
  auto results = of_type<protocol::Result>(out);
  REQUIRE(results.size() == 1);
  REQUIRE(results[0].reports.size() == 1);
  const auto& r = results[0].reports[0];
  CHECK(r.ticket == "j1");
  CHECK(r.state == JobState::kDone);
  CHECK(r.node == "node-a");
  CHECK(r.attempts == 3);
  CHECK(r.has_result);
  CHECK(r.result.node == "node-a");
  CHECK(r.result.attempt == 3);
  CHECK(r.result.text == "slept 10");
  CHECK(n.core.running() == 0);
  CHECK(n.core.info().finished_total == 1);
}

// The shell's step with the time given (NodeServer::hold_turn): a busy
// node's results may wait to travel together.
std::vector<protocol::Result> results_at(Node& n, TimeMs now) {
  REQUIRE(n.core.staged().commit().ok());
  n.core.committed(false);
  return of_type<protocol::Result>(n.core.take_outbox(now));
}

TEST_CASE("node core: a busy node's results wait to travel together, kResultHoldMs at most") {
  storage::MemoryStore store;
  Node n(store, options(1));
  n.connect();
  n.receive(protocol::Job{{assignment("j1"), assignment("j2"), assignment("j3")}});
  n.start();
  n.core.job_finished("j1", done_result());
  REQUIRE(n.core.next_job());  // j2 runs in j1's slot: every slot is busy
  CHECK(results_at(n, 1000).empty());
  REQUIRE(n.core.results_due().has_value());
  CHECK(*n.core.results_due() == 1000 + NodeCore::kResultHoldMs);
  n.core.job_finished("j2", done_result());
  REQUIRE(n.core.next_job());
  // Held since the first was: the second does not push the time back.
  CHECK(results_at(n, 1000 + NodeCore::kResultHoldMs - 1).empty());
  CHECK(*n.core.results_due() == 1000 + NodeCore::kResultHoldMs);
  auto due = results_at(n, 1000 + NodeCore::kResultHoldMs);
  REQUIRE(due.size() == 1);
  REQUIRE(due[0].reports.size() == 2);
  CHECK(due[0].reports[0].ticket == "j1");
  CHECK(due[0].reports[1].ticket == "j2");
  CHECK_FALSE(n.core.results_due().has_value());
  // j3 ends with j4 in its slot: its result is held, at 2000.
  auto hold_j3 = [&] {
    n.receive(protocol::Job{{assignment("j4")}});
    n.core.job_finished("j3", done_result());
    REQUIRE(n.core.next_job());  // j4
    CHECK(results_at(n, 2000).empty());
    CHECK(n.core.results_due().has_value());
  };
  SUBCASE("the last job's result leaves at once: its slot stays free") {
    n.core.job_finished("j3", done_result());
    auto last = results_at(n, 2000);
    REQUIRE(last.size() == 1);
    REQUIRE(last[0].reports.size() == 1);
    CHECK(last[0].reports[0].ticket == "j3");
  }
  SUBCASE("without a time (the node stops, tests) every result leaves") {
    hold_j3();
    auto out = of_type<protocol::Result>(n.flush());
    REQUIRE(out.size() == 1);
    REQUIRE(out[0].reports.size() == 1);
    CHECK(out[0].reports[0].ticket == "j3");
  }
  SUBCASE("a link that drops forgets the held results and their time") {
    hold_j3();
    n.core.on_disconnected();
    CHECK_FALSE(n.core.results_due().has_value());
  }
}

TEST_CASE("node core: a batch of kResultBatch results leaves without waiting") {
  storage::MemoryStore store;
  Node n(store, options(1));
  n.connect();
  protocol::Job job;
  for (std::size_t i = 0; i <= NodeCore::kResultBatch; ++i) {
    job.jobs.push_back(assignment("j" + std::to_string(i)));
  }
  n.receive(job);
  REQUIRE(n.core.next_job());
  for (std::size_t i = 0; i < NodeCore::kResultBatch; ++i) {
    n.core.job_finished("j" + std::to_string(i), done_result());
    REQUIRE(n.core.next_job());  // its slot is busy again at once
    if (i + 1 < NodeCore::kResultBatch) CHECK(results_at(n, 1000).empty());
  }
  auto out = results_at(n, 1000);
  REQUIRE(out.size() == 1);
  CHECK(out[0].reports.size() == NodeCore::kResultBatch);
}

TEST_CASE("node core: a result that frees a slot nothing here can fill leaves at once") {
  // Two slots, a long job in one: the other's result tells the proxy it
  // may send the next job, which a node holding it back would wait for.
  storage::MemoryStore store;
  Node n(store, options(2));
  n.connect();
  n.receive(protocol::Job{{assignment("long"), assignment("short")}});
  REQUIRE(n.core.next_job());
  REQUIRE(n.core.next_job());
  n.core.job_finished("short", done_result());
  CHECK_FALSE(n.core.next_job().has_value());
  auto out = results_at(n, 1000);
  REQUIRE(out.size() == 1);
  REQUIRE(out[0].reports.size() == 1);
  CHECK(out[0].reports[0].ticket == "short");
  CHECK_FALSE(n.core.results_due().has_value());
}

TEST_CASE("node core: a job's x/ is written once, a round after it came: its start writes nothing, its end writes d/") {
  test::ReadCountingStore store;
  Node n(store);
  n.connect();
  n.receive(protocol::Job{{assignment("j1", 2)}});
  std::string bytes;
  // The proxy holds it durably: its record waits in memory for a round.
  CHECK(store.get("x/j1", &bytes).is_not_found());
  n.core.age_records();
  n.flush();
  CHECK(store.get("x/j1", &bytes).is_not_found());  // came during that round
  n.core.age_records();
  n.flush();
  REQUIRE(store.get("x/j1", &bytes).ok());  // outlived a whole one
  const std::string assigned = bytes;
  n.start();
  ExecRecord rec;
  REQUIRE(store.get("x/j1", &bytes).ok());
  CHECK(bytes == assigned);  // a run lost to a restart runs again, as a queued job
  REQUIRE(protocol::from_record(bytes, rec));
  CHECK(rec.state == JobState::kQueued);
  CHECK(rec.attempt == 2);
  CHECK(rec.spec == assignment("j1", 2).spec);
  n.core.job_finished("j1", done_result("slept 10"));
  n.flush();
  CHECK(store.get("d/j1", &bytes).is_not_found());  // it waits a round too
  n.rounds_pass();
  REQUIRE(store.get("x/j1", &bytes).ok());
  CHECK(bytes == assigned);  // the job as given, never rewritten
  REQUIRE(store.get("d/j1", &bytes).ok());
  ExecOutcome outcome;
  REQUIRE(protocol::from_record(bytes, outcome));
  CHECK(outcome.state == JobState::kDone);
  CHECK(outcome.result.text == "slept 10");
  CHECK(outcome.result.attempt == 2);
  // Every read of them was this test's: the node works from memory.
  CHECK(store.reads["x/j1"] == 5);
  CHECK(store.reads["d/j1"] == 2);

  // After a restart its result is still owed to the proxy.
  Node again(store);
  CHECK(again.core.hello().finished == std::vector<std::string>{"j1"});
}

TEST_CASE("node core: a job given and delivered within a round writes nothing at all") {
  storage::MemoryStore store;
  Node n(store);
  n.connect();
  const std::size_t before = store.size();
  n.receive(protocol::Job{{assignment("j1"), assignment("j2")}});
  n.start();
  n.core.job_finished("j1", done_result("slept 10"));
  n.flush();
  n.core.age_records();  // one tick: what came since waits on
  n.flush();
  CHECK(n.core.hello().finished == std::vector<std::string>{"j1"});
  CHECK(n.core.hello().held == std::vector<std::string>{"j2"});
  n.receive(protocol::Ack{AckKind::kResults, {"j1"}, {}});
  CHECK(store.size() == before);
  std::string v;
  for (const char* k : {"x/j1", "d/j1", "x/j2"}) CHECK(store.get(k, &v).is_not_found());
  // j2 is still held; a round later it is on disk.
  n.rounds_pass();
  CHECK(store.get("x/j2", &v).ok());
}

TEST_CASE("node core: a kill -9 within a round loses its waiting records: the node names none of them, and takes them when given again") {
  storage::MemoryStore store;
  {
    Node n(store, options(1));
    n.connect();
    n.receive(protocol::Job{{assignment("j1", 3), assignment("j2")}});
    n.start();
    n.core.job_finished("j1", done_result());
    n.flush();
  }
  // Back without them: its HELLO names neither, so the proxy gives both
  // again (a result it never accepted was never shown).
  Node again(store, options(1));
  CHECK(again.core.hello().held.empty());
  CHECK(again.core.hello().finished.empty());
  again.connect();
  again.receive(protocol::Job{{assignment("j1", 4)}});
  auto a = again.core.next_job();
  REQUIRE(a);
  CHECK(a->spec.ticket == "j1");
  CHECK(a->attempt == 4);
}

TEST_CASE("node core: records waiting in memory are written when the proxy goes away, and when the node stops") {
  storage::MemoryStore store;
  {
    Node n(store, options(1));
    n.connect();
    n.receive(protocol::Job{{assignment("j1"), assignment("j2")}});
    n.start();
    n.core.job_finished("j1", done_result("slept 10"));
    n.flush();
    n.core.on_disconnected();  // the node goes on alone: it must hold them itself
    n.flush();
  }
  {
    Node n(store, options(1));
    CHECK(n.core.hello().finished == std::vector<std::string>{"j1"});
    CHECK(n.core.hello().held == std::vector<std::string>{"j2"});
    auto results = of_type<protocol::Result>(n.connect());
    REQUIRE(results.size() == 1);
    CHECK(results[0].reports.at(0).result.text == "slept 10");
    n.receive(protocol::Job{{assignment("j3")}});
    n.core.on_stop();  // SIGTERM: the last commit writes what waits
    n.flush();
  }
  Node n(store, options(1));
  protocol::Hello h = n.core.hello();
  CHECK(std::set<std::string>(h.held.begin(), h.held.end()) == std::set<std::string>{"j2", "j3"});
}

TEST_CASE("node core: a job given under the ticket of an unreadable x/ record is written over it at once") {
  storage::MemoryStore store;
  storage::WriteBatch b;
  b.put("x/j1", "not a record");
  REQUIRE(store.write(b, true).ok());
  Node n(store);
  n.connect();
  n.receive(protocol::Job{{assignment("j1")}});
  std::string v;
  REQUIRE(store.get("x/j1", &v).ok());
  ExecRecord rec;
  CHECK(protocol::from_record(v, rec));
  n.start();
  n.core.job_finished("j1", done_result());
  n.flush();
  n.receive(protocol::Ack{AckKind::kResults, {"j1"}, {}});
  CHECK(store.get("x/j1", &v).is_not_found());
}

TEST_CASE("node core: a job given here and then claimed while the proxy is away is written as the claim") {
  storage::MemoryStore store;
  Node n(store, options(1));
  std::string t = n.submit();
  n.connect();
  // The proxy gives this node its own job before it acknowledges the submit.
  protocol::Assignment a = assignment(t, 1, "node-a");
  n.receive(protocol::Job{{a}});
  std::string v;
  CHECK(store.get("x/" + t, &v).is_not_found());
  n.core.on_disconnected();
  n.core.set_local_mode(true);
  n.flush();
  REQUIRE(store.get("x/" + t, &v).ok());
  ExecRecord rec;
  REQUIRE(protocol::from_record(v, rec));
  CHECK(rec.local);
  // Rounds later nothing older is written over it.
  n.connect();
  n.rounds_pass();
  REQUIRE(store.get("x/" + t, &v).ok());
  REQUIRE(protocol::from_record(v, rec));
  CHECK(rec.local);
}

TEST_CASE("node core: a result finished while disconnected is sent after the welcome") {
  storage::MemoryStore store;
  Node n(store);
  n.connect();
  n.receive(protocol::Job{{assignment("j1", 1)}});
  n.start();
  n.core.on_disconnected();
  n.core.job_finished("j1", done_result());
  CHECK(n.flush().empty());
  auto results = of_type<protocol::Result>(n.connect());
  REQUIRE(results.size() == 1);
  REQUIRE(results[0].reports.size() == 1);
  CHECK(results[0].reports[0].ticket == "j1");
  CHECK(results[0].reports[0].has_result);
}

TEST_CASE("node core: once the proxy acknowledges a result, the node forgets its run") {
  storage::MemoryStore store;
  Node n(store);
  n.connect();
  n.receive(protocol::Job{{assignment("j1", 1)}});
  n.start();
  n.core.job_finished("j1", done_result("slept 10"));
  n.flush();
  n.rounds_pass();  // its records are on disk
  // Not the job's result until the proxy accepted it.
  CHECK_FALSE(n.core.lookup("j1", kNow).has_result);
  std::string v;
  REQUIRE(store.get("x/j1", &v).ok());
  REQUIRE(store.get("d/j1", &v).ok());
  n.receive(protocol::Ack{AckKind::kResults, {"j1"}, {}});
  // The proxy holds it now, and answers for it: nothing is kept here.
  CHECK(store.get("x/j1", &v).is_not_found());
  CHECK(store.get("d/j1", &v).is_not_found());
  CHECK(n.core.lookup("j1", kNow).state == JobState::kUnknown);
  // Delivered: not listed as finished-undelivered, nor resent.
  CHECK(n.core.hello().finished.empty());
  CHECK(of_type<protocol::Result>(n.reconnect()).empty());
}

TEST_CASE("node core: a superseded result is forgotten") {
  storage::MemoryStore store;
  Node n(store);
  n.connect();
  n.receive(protocol::Job{{assignment("j1", 1)}});
  n.start();
  n.core.job_finished("j1", done_result("mine"));
  n.flush();
  n.rounds_pass();
  std::string stored;
  REQUIRE(store.get("x/j1", &stored).ok());
  n.receive(protocol::Ack{AckKind::kResults, {}, {"j1"}});
  auto r = n.core.lookup("j1", kNow);
  CHECK_FALSE(r.has_result);
  CHECK(r.state == JobState::kUnknown);
  CHECK(n.core.hello().finished.empty());
  CHECK(n.core.hello().held.empty());
  std::string v;
  CHECK(store.get("x/j1", &v).is_not_found());
  CHECK(store.get("d/j1", &v).is_not_found());
  CHECK(of_type<protocol::Result>(n.reconnect()).empty());
}

TEST_CASE("node core: a RESULT for an origin ticket is stored and acknowledged") {
  storage::MemoryStore store;
  Node n(store);
  std::string t = n.submit();
  n.connect();
  n.receive(protocol::Ack{AckKind::kSubmitted, {t}, {}});

  protocol::JobReport rep = proxy_report(t, "node-b", 2, "slept 10 on b");

  int before = store.synced_writes();
  auto out = n.receive(protocol::Result{{rep}});
  CHECK(store.synced_writes() == before + 1);
  auto acks = of_type<protocol::Ack>(out);
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].kind == AckKind::kResults);
  CHECK(acks[0].tickets == std::vector<std::string>{t});

  auto ev = n.core.take_events();
  REQUIRE(ev.reports.size() == 1);
  CHECK(ev.reports[0].ticket == t);

  auto r = n.core.lookup(t, kNow);
  CHECK(r.state == JobState::kDone);
  CHECK(r.has_result);
  CHECK(r.node == "node-b");
  CHECK(r.attempts == 2);
  CHECK(r.result.text == "slept 10 on b");
  CHECK(n.core.getall(kNow).at(0).state == JobState::kDone);

  // Sent again (the ack was lost): acknowledged again, the first result stays.
  rep.result.text = "other";
  out = n.receive(protocol::Result{{rep}});
  REQUIRE(of_type<protocol::Ack>(out).size() == 1);
  CHECK(n.core.lookup(t, kNow).result.text == "slept 10 on b");
}

namespace {

// The shell's turns around a result from the proxy (NodeServer::flush):
// a commit that is not synced, or one made synced by a barrier (the ACK
// timer's). Each returns what leaves after it.
std::vector<protocol::Message> unsynced_turn(Node& n) {
  REQUIRE_FALSE(n.core.staged().commit_syncs());
  REQUIRE(n.core.staged().commit().ok());
  n.core.committed(false);
  return n.core.take_outbox();
}
std::vector<protocol::Message> barrier_turn(Node& n) {
  n.core.staged().require_barrier();
  REQUIRE(n.core.staged().commit_syncs());
  REQUIRE(n.core.staged().commit().ok());
  n.core.committed(true);
  return n.core.take_outbox();
}
// `count` jobs submitted through `n`, which then joins and has them
// acknowledged by the proxy.
std::vector<std::string> acknowledged_jobs(Node& n, int count) {
  std::vector<std::string> t;
  for (int i = 0; i < count; ++i) t.push_back(n.submit());
  n.connect();
  n.receive(protocol::Ack{AckKind::kSubmitted, t, {}});
  n.core.take_events();
  return t;
}
protocol::Result result_from_b(const std::string& t) {
  return protocol::Result{{proxy_report(t, "node-b", 1, "slept")}};
}
// A job submitted through a joined node, acknowledged by the proxy, whose
// result from node-b has just come (stored, not yet committed).
struct OneResultStored {
  storage::MemoryStore store;
  Node n{store};
  std::string t = acknowledged_jobs(n, 1).at(0);
  OneResultStored() { n.core.on_message(result_from_b(t)); }
};

}  // namespace

TEST_CASE("node core: a proxy's result is shown after an unsynced write, and acknowledged after a synced one") {
  storage::MemoryStore store;
  Node n(store);
  auto t = acknowledged_jobs(n, 2);
  const int before = store.synced_writes();
  // The shell's first turn: r/ written, not synced; the waiting clients are
  // answered from the reports; no ACK yet.
  n.core.on_message(result_from_b(t[0]));
  CHECK_FALSE(n.core.wants_sync());  // not for this turn's commit
  auto out = unsynced_turn(n);
  CHECK(n.core.wants_sync());  // for the next one
  CHECK(of_type<protocol::Ack>(out).empty());
  CHECK(store.synced_writes() == before);
  CHECK(n.core.take_events().reports.at(0).ticket == t[0]);
  CHECK(n.core.lookup(t[0], kNow).result.text == "slept");
  // The next turn brings another result (a submission's synced commit
  // would release the ACK too): both ride one synced commit, a barrier even
  // with nothing else staged, then leave in one ACK.
  const int second = store.synced_writes();
  n.core.on_message(result_from_b(t[1]));
  auto acks = of_type<protocol::Ack>(barrier_turn(n));
  CHECK(store.synced_writes() == second + 1);
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].tickets == t);
  CHECK_FALSE(n.core.wants_sync());
}

TEST_CASE_FIXTURE(OneResultStored, "node core: the same result again is not acknowledged before the first is synced") {
  unsynced_turn(n);
  n.core.on_message(result_from_b(t));
  CHECK(of_type<protocol::Ack>(unsynced_turn(n)).empty());
  auto acks = of_type<protocol::Ack>(barrier_turn(n));
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].tickets == std::vector<std::string>{t, t});
}

namespace {
// The shell's write made on a thread of its own (NodeServer::flush): begun,
// lifted as a flight, and later landed or failed. The tests stage more in
// between, as the event loop does while the write is made.
struct FlightTurn {
  Node& n;
  bool synced;
  const storage::WriteBatch::Ops* ops = nullptr;
  explicit FlightTurn(Node& node) : n(node), synced(node.core.staged().commit_syncs()) {
    n.core.begin_commit();
    ops = &n.core.staged().lift_in_place();
  }
  // What leaves once it lands: the ACK it allowed.
  std::vector<protocol::Message> land(storage::MemoryStore& store) {
    REQUIRE(store.write_ops(*ops, synced).ok());
    n.core.staged().landed();
    n.core.committed(synced);
    return n.core.take_synced_acks();
  }
  void fail() {
    n.core.staged().unlift(synced);
    n.core.commit_failed();
  }
};
}  // namespace

TEST_CASE("node core: a write in flight acknowledges the results it stores, not those stored while it is made") {
  storage::MemoryStore store;
  Node n(store);
  auto t = acknowledged_jobs(n, 2);
  n.core.on_message(result_from_b(t[0]));
  n.core.staged().require_barrier();  // a submission's synced commit would do the same
  FlightTurn flight(n);
  CHECK(flight.synced);
  // Meanwhile the next result is stored in the next stage.
  n.core.on_message(result_from_b(t[1]));
  auto acks = of_type<protocol::Ack>(flight.land(store));
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].tickets == std::vector<std::string>{t[0]});
  // The second waits for a synced commit of its own.
  CHECK(of_type<protocol::Ack>(unsynced_turn(n)).empty());
  CHECK(n.core.wants_sync());
  acks = of_type<protocol::Ack>(barrier_turn(n));
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].tickets == std::vector<std::string>{t[1]});
}

TEST_CASE("node core: a failed write in flight gives its results back, acknowledged in order after the retry") {
  storage::MemoryStore store;
  Node n(store);
  auto t = acknowledged_jobs(n, 2);
  n.core.on_message(result_from_b(t[0]));
  n.core.staged().require_barrier();
  FlightTurn flight(n);
  n.core.on_message(result_from_b(t[1]));
  flight.fail();
  // Both staged again, the sync still owed: one commit writes and
  // acknowledges them, the first first.
  CHECK(n.core.staged().commit_syncs());
  REQUIRE(n.core.staged().commit().ok());
  n.core.committed(true);
  auto acks = of_type<protocol::Ack>(n.core.take_outbox());
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].tickets == t);
  CHECK(n.core.lookup(t[0], kNow).result.text == "slept");
}

TEST_CASE_FIXTURE(OneResultStored, "node core: a link that drops while a write holding results is made acknowledges none of them, not even on the next connection, and makes the next commit synced") {
  n.core.staged().require_barrier();
  FlightTurn flight(n);
  REQUIRE(flight.synced);
  n.core.on_disconnected();
  // The next commit is synced: the same result, offered after the WELCOME,
  // is acknowledged at once, so what was written for it must be durable.
  CHECK(n.core.staged().commit_syncs());
  // The node is welcomed again (that turn's commit is the barrier) before
  // the write lands: what the write held for the old connection is
  // acknowledged on neither.
  const int before = store.synced_writes();
  CHECK(of_type<protocol::Ack>(n.connect()).empty());
  CHECK(store.synced_writes() == before + 1);
  CHECK(flight.land(store).empty());
  CHECK_FALSE(n.core.wants_sync());
}

TEST_CASE_FIXTURE(OneResultStored, "node core: the same result again while a write holding it is made is acknowledged only after that write") {
  FlightTurn flight(n);  // not synced: the first result alone
  // Offered again (its ACK was slow): nothing new to store, but its ACK
  // must not overtake the one that waits for the write.
  n.core.on_message(result_from_b(t));
  CHECK(of_type<protocol::Ack>(n.core.take_outbox()).empty());
  CHECK(flight.land(store).empty());
  auto acks = of_type<protocol::Ack>(barrier_turn(n));
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].tickets == std::vector<std::string>{t, t});
}

TEST_CASE("node core: tickets issued under a counter mark staged while a write is made do not leave early when that write lands") {
  storage::MemoryStore store;
  Node n(store);
  n.connect();
  // A write begins before the first submission of this process.
  FlightTurn flight(n);
  // Its counter block is reserved now (m/counter), in the next stage.
  n.core.submit(sleep_spec(), 0);
  CHECK(n.core.take_early().empty());
  flight.land(store);
  // The mark is still in the stage: a restart now could issue this
  // counter again, so the job waits for the write that holds the mark.
  CHECK(n.core.take_early().empty());
  REQUIRE(n.core.staged().commit().ok());
  n.core.committed(true);
  REQUIRE(of_type<protocol::Submit>(n.core.take_outbox()).size() == 1);
  // Later tickets, under the mark now durable, leave early again.
  n.core.submit(sleep_spec(), 0);
  CHECK(of_type<protocol::Submit>(n.core.take_early()).size() == 1);
}

TEST_CASE_FIXTURE(OneResultStored, "node core: results not yet acknowledged when the link drops are acknowledged when the proxy offers them again") {
  unsynced_turn(n);
  n.core.on_disconnected();
  CHECK_FALSE(n.core.wants_sync());  // nothing to acknowledge on a closed link
  // But the next commit syncs what was written for it: the ACK of the same
  // result, offered again, leaves at once.
  const int before = store.synced_writes();
  CHECK(n.core.staged().commit_syncs());
  n.flush();
  CHECK(store.synced_writes() == before + 1);
  n.connect();
  // The proxy offers what was never acknowledged: the same result, kept.
  auto acks = of_type<protocol::Ack>(n.receive(result_from_b(t)));
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].tickets == std::vector<std::string>{t});
  CHECK(n.core.lookup(t, kNow).result.text == "slept");
}

TEST_CASE("node core: a finished job reads from its r/ record alone, owner included") {
  storage::MemoryStore store;
  std::string t;
  {
    Node n(store);
    protocol::JobSpec spec = sleep_spec();
    spec.owner = "alice";
    t = n.core.submit(spec, 0);
    n.flush();
    n.connect();
    n.receive(protocol::Ack{AckKind::kSubmitted, {t}, {}});
    n.receive(protocol::Result{{proxy_report(t, "node-b", 1, "slept on b")}});
  }
  std::string r_bytes;
  REQUIRE(store.get("r/" + t, &r_bytes).ok());
  OriginOutcome outcome;
  REQUIRE(protocol::from_record(r_bytes, outcome));
  CHECK(outcome.owner_known);
  CHECK(outcome.owner == "alice");

  // Without its o/ record (which holds the files), after a restart too.
  std::string o_bytes;
  REQUIRE(store.get("o/" + t, &o_bytes).ok());
  {
    storage::WriteBatch w;
    w.del("o/" + t);
    REQUIRE(store.write(w, true).ok());
  }
  {
    Node n(store);
    auto r = n.core.lookup(t, kNow);
    CHECK(r.state == JobState::kDone);
    CHECK(r.owner == "alice");
    REQUIRE(r.has_result);
    CHECK(r.result.text == "slept on b");
  }

  // An r/ record of version 7 has no owner: the o/ record says it.
  {
    storage::WriteBatch w;
    w.put("o/" + t, o_bytes);
    w.put("r/" + t, std::string{protocol::kRecordMarker, 7} + protocol::to_bytes_at(outcome, 7));
    REQUIRE(store.write(w, true).ok());
  }
  Node n(store);
  OriginOutcome old;
  REQUIRE(store.get("r/" + t, &r_bytes).ok());
  REQUIRE(protocol::from_record(r_bytes, old));
  CHECK_FALSE(old.owner_known);
  auto r = n.core.lookup(t, kNow);
  CHECK(r.owner == "alice");
  CHECK(r.result.text == "slept on b");
}

TEST_CASE("node core: a RESULT for another node's ticket is kept for lookups, not acked") {
  storage::MemoryStore store;
  Node n(store);
  n.connect();
  protocol::JobReport rep;
  rep.ticket = "zzz-1";
  rep.state = JobState::kDone;
  rep.has_result = true;
  rep.result = done_result("remote");
  auto out = n.receive(protocol::Result{{rep}});
  CHECK(of_type<protocol::Ack>(out).empty());
  auto r = n.core.lookup("zzz-1", kNow);
  CHECK(r.has_result);
  CHECK(r.result.text == "remote");
}

TEST_CASE("node core: WELCOME drop stops a running job and forgets it") {
  storage::MemoryStore store;
  Node n(store, options(2));
  n.connect();
  n.receive(protocol::Job{{assignment("j1"), assignment("j2")}});
  n.start();  // j1 runs, j2 too
  n.start();
  n.core.take_events();
  n.core.on_disconnected();
  n.flush();
  std::string stored;
  REQUIRE(store.get("x/j1", &stored).ok());  // written as the proxy went away
  n.connect({"j1"});
  auto ev = n.core.take_events();
  CHECK(ev.stop == std::vector<std::string>{"j1"});
  CHECK(n.core.running() == 1);
  CHECK(n.core.hello().held == std::vector<std::string>{"j2"});
  std::string v;
  CHECK(store.get("x/j1", &v).is_not_found());
  // Its end, when it comes, is ignored.
  n.core.job_finished("j1", done_result());
  CHECK(of_type<protocol::Result>(n.flush()).empty());
}

TEST_CASE("node core: WELCOME drop of a queued job removes it without a stop") {
  storage::MemoryStore store;
  Node n(store, options(1));
  n.receive(protocol::Job{{assignment("j1")}});
  REQUIRE(n.core.hello().held == std::vector<std::string>{"j1"});
  n.connect({"j1"});
  CHECK(n.core.take_events().stop.empty());
  CHECK_FALSE(n.core.next_job().has_value());
  CHECK(n.core.hello().held.empty());
}

// ---- restart -----------------------------------------------------------------

TEST_CASE("node core: recovery puts RUNNING jobs back for a re-run") {
  storage::MemoryStore store;
  {
    Node n(store, options(1));
    n.connect();
    n.receive(protocol::Job{{assignment("j1", 4), assignment("j2", 1)}});
    CHECK(n.start() == "j1");
    n.rounds_pass();
  }
  Node n(store, options(1));
  CHECK(n.core.running() == 0);
  CHECK(n.core.take_events().work);
  protocol::Hello h = n.core.hello();
  std::set<std::string> held(h.held.begin(), h.held.end());
  CHECK(held == std::set<std::string>{"j1", "j2"});
  auto a = n.core.next_job();
  REQUIRE(a);
  CHECK(a->spec.ticket == "j1");  // the interrupted job first
  CHECK(a->attempt == 4);
  CHECK_FALSE(n.core.next_job().has_value());
}

TEST_CASE("node core: recovery keeps undelivered results and resends them") {
  storage::MemoryStore store;
  {
    Node n(store, options(1));
    n.connect();
    n.receive(protocol::Job{{assignment("j1", 1)}});
    n.start();
    n.core.job_finished("j1", done_result());
    n.flush();
    n.rounds_pass();
  }
  Node n(store, options(1));
  CHECK(n.core.hello().finished == std::vector<std::string>{"j1"});
  CHECK(n.core.hello().held.empty());
  auto results = of_type<protocol::Result>(n.connect());
  REQUIRE(results.size() == 1);
  CHECK(results[0].reports.at(0).ticket == "j1");
  CHECK(results[0].reports.at(0).has_result);
}

TEST_CASE("node core: hello lists held and finished-undelivered tickets") {
  storage::MemoryStore store;
  Node n(store, options(3));
  n.connect();
  n.receive(protocol::Job{{assignment("j1"), assignment("j2"), assignment("j3")}});
  n.start();
  n.start();
  n.core.job_finished("j1", done_result());
  n.flush();
  protocol::Hello h = n.core.hello();
  CHECK(h.node_id == "node-a");
  CHECK(h.slots == 3);
  CHECK(h.client_address == "127.0.0.1:9000");
  CHECK(h.version == protocol::kProtocolVersion);
  std::set<std::string> held(h.held.begin(), h.held.end());
  CHECK(held == std::set<std::string>{"j2", "j3"});
  CHECK(h.finished == std::vector<std::string>{"j1"});

  n.receive(protocol::Ack{AckKind::kResults, {"j1"}, {}});
  CHECK(n.core.hello().finished.empty());
}

TEST_CASE("node core: stable_node_id prefers the configured id, else keeps one") {
  storage::MemoryStore store;
  CHECK(NodeCore::stable_node_id(store, "given") == "given");
  std::string made = NodeCore::stable_node_id(store, "");
  CHECK_FALSE(made.empty());
  CHECK(NodeCore::stable_node_id(store, "") == made);
}

}  // namespace jc::node

namespace jc::node {

TEST_CASE("node core: a job offered again after it finished keeps its first result") {
  storage::MemoryStore store;
  Node n(store);
  n.connect();
  n.receive(protocol::Job{{assignment("j1", 1)}});
  REQUIRE(n.start() == "j1");
  n.core.job_finished("j1", done_result("first"));
  n.flush();
  n.receive(protocol::Job{{assignment("j1", 2)}});
  CHECK_FALSE(n.core.next_job().has_value());
  auto h = n.core.hello();
  CHECK(std::find(h.held.begin(), h.held.end(), "j1") == h.held.end());
  CHECK(std::find(h.finished.begin(), h.finished.end(), "j1") != h.finished.end());
  // What it offers the proxy is the first run's result.
  auto results = of_type<protocol::Result>(n.reconnect());
  REQUIRE(results.size() == 1);
  REQUIRE(results[0].reports.size() == 1);
  CHECK(results[0].reports[0].result.text == "first");
  CHECK(results[0].reports[0].result.attempt == 1);
}

}  // namespace jc::node

namespace jc::node {

namespace {
// The proxy away past the grace period: `t` runs here and ends "mine".
void run_locally(Node& n, const std::string& t) {
  n.core.set_local_mode(true);
  REQUIRE(n.start() == t);
  auto mine = done_result("mine");
  mine.start_ms = 5;
  n.core.job_finished(t, mine);
  n.flush();
}
}  // namespace

TEST_CASE("node core: a local run of a job never sent to the proxy shows at once, pinned there") {
  storage::MemoryStore store;
  Node n(store);
  std::string t = n.submit();  // the proxy was away: never sent
  run_locally(n, t);
  CHECK(n.core.lookup(t, kNow).result.text == "mine");
  // Back: the proxy learns it was run here and shown, and takes no other run.
  auto out = n.connect();
  auto submits = of_type<protocol::Submit>(out);
  REQUIRE(submits.size() == 1);
  CHECK(submits[0].local == std::vector<std::string>{t});
  CHECK(submits[0].local_finished == std::vector<std::string>{t});
  // Once sent, it is no longer "never sent", after a restart too.
  std::string mark;
  REQUIRE(store.get("u/" + t, &mark).ok());
  CHECK(mark.empty());
}

TEST_CASE("node core: a job the proxy gave its own origin, then went away, runs there once") {
  storage::MemoryStore store;
  Node n(store);
  n.connect();
  std::string t = n.submit();  // sent, not acknowledged
  protocol::Assignment a = assignment(t, 1, "node-a");
  n.receive(protocol::Job{{a}});  // sent before the proxy's commit
  REQUIRE(n.start() == t);
  CHECK(n.core.running() == 1);
  n.core.on_disconnected();
  n.core.set_local_mode(true);  // claims the node's unacknowledged jobs
  CHECK(n.core.running() == 1);
  CHECK_FALSE(n.core.next_job().has_value());  // not queued a second time
  n.core.job_finished(t, done_result("once"));
  n.flush();
  CHECK(n.core.running() == 0);
  // Back: the proxy is told it ran here.
  auto submits = of_type<protocol::Submit>(n.connect());
  REQUIRE(submits.size() == 1);
  CHECK(submits[0].local == std::vector<std::string>{t});
}

TEST_CASE("node core: a local run of a job the proxy may have shows only with the proxy's result") {
  storage::MemoryStore store;
  Node n(store);
  n.connect();
  std::string t = n.submit();  // sent, its ACK lost: the proxy may have run it elsewhere
  n.core.on_disconnected();
  run_locally(n, t);
  CHECK_FALSE(n.core.lookup(t, kNow).has_result);
  auto out = n.connect();
  auto submits = of_type<protocol::Submit>(out);
  REQUIRE(submits.size() == 1);
  CHECK(submits[0].local_finished.empty());
  // The proxy had the job all along and another node's result won.
  protocol::JobReport theirs = proxy_report(t, "node-b", 1, "theirs");
  theirs.result.start_ms = 3;
  n.receive(protocol::Result{{theirs}});
  n.receive(protocol::Ack{protocol::AckKind::kResults, {}, {t}});
  auto r = n.core.lookup(t, kNow);
  CHECK(r.has_result);
  CHECK(r.result.text == "theirs");
  CHECK(r.result.node == "node-b");
}

TEST_CASE("node core: a result shown is never replaced by another (the transition is refused)") {
  storage::MemoryStore store;
  Node n(store);
  n.connect();
  std::string t = n.submit();
  n.receive(protocol::Ack{protocol::AckKind::kSubmitted, {t}, {}});
  n.receive(protocol::Result{{proxy_report(t, "node-b", 1, "first")}});
  auto out = n.receive(protocol::Result{{proxy_report(t, "node-c", 2, "second")}});
  CHECK(n.core.lookup(t, kNow).result.text == "first");
  // Acknowledged all the same, so it is not offered again.
  auto acks = of_type<protocol::Ack>(out);
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].tickets == std::vector<std::string>{t});
}

TEST_CASE("node core: a job running at a restart goes back to QUEUED there, then runs again") {
  storage::MemoryStore store;
  {
    Node n(store);
    n.connect();
    n.receive(protocol::Job{{assignment("j1")}});
    REQUIRE(n.start() == "j1");
    n.rounds_pass();
  }
  Node again(store);
  std::string bytes;
  REQUIRE(store.get("x/j1", &bytes).ok());
  ExecRecord rec;
  REQUIRE(protocol::from_record(bytes, rec));
  CHECK(rec.state == JobState::kQueued);
  CHECK(again.start() == "j1");
}

TEST_CASE("node core: an x/ record of an earlier build that says RUNNING runs again") {
  storage::MemoryStore store;
  ExecRecord running;
  running.spec = assignment("j0").spec;
  running.state = JobState::kRunning;
  storage::WriteBatch b;
  b.put("x/j0", protocol::to_record(running));
  REQUIRE(store.write(b, true).ok());
  {
    Node n(store);
    n.connect();
    n.receive(protocol::Job{{assignment("j1")}});
    n.rounds_pass();
  }
  Node again(store);
  std::string bytes;
  ExecRecord rec;
  REQUIRE(store.get("x/j0", &bytes).ok());
  REQUIRE(protocol::from_record(bytes, rec));
  CHECK(rec.state == JobState::kQueued);  // written back as queued at the restart
  CHECK(again.start() == "j0");
  CHECK(again.start() == "j1");
}


TEST_CASE("node core: the shape of an issued ticket") {
  CHECK(jc::node::NodeCore::issued_shape("47bxam-1-t5NJX4HV2e-"));
  CHECK(jc::node::NodeCore::issued_shape("k3x9qa-42-Vd0Q2bN_x7e"));
  CHECK_FALSE(jc::node::NodeCore::issued_shape("UNKNOWN-1"));
  CHECK_FALSE(jc::node::NodeCore::issued_shape("NOPE-7"));
  CHECK_FALSE(jc::node::NodeCore::issued_shape("abc-x1-Vd0Q2bN_x7e"));
  CHECK_FALSE(jc::node::NodeCore::issued_shape("abc-1-short"));
  CHECK_FALSE(jc::node::NodeCore::issued_shape("-1-Vd0Q2bN_x7e"));
}

// ---- the one switch: what the shell is told to do ---------------------------

TEST_CASE("node core: a CHALLENGE is answered with a HELLO that proves CLUSTER_SECRET") {
  storage::MemoryStore store;
  NodeOptions o = options();
  o.secret = "s3cret";
  Node n(store, o);
  LinkActions act = n.core.on_message(protocol::Challenge{"nonce-1"});
  REQUIRE(act.hello.has_value());
  CHECK(act.hello->node_id == "node-a");
  CHECK(protocol::verify_join_proof("s3cret", "nonce-1", "node-a", act.hello->auth));
  CHECK_FALSE(protocol::verify_join_proof("other", "nonce-1", "node-a", act.hello->auth));
  CHECK(n.flush().empty());  // it waits for no write and goes by no outbox
}

TEST_CASE("node core: WELCOME and stats replies reach the shell as they came") {
  storage::MemoryStore store;
  Node n(store);
  protocol::Welcome refused;
  refused.reason = "this proxy does not lead";
  refused.leader = "127.0.0.1:1";
  refused.proxies = {"127.0.0.1:1", "127.0.0.1:2"};
  LinkActions act = n.core.on_message(refused);
  REQUIRE(act.welcome.has_value());
  CHECK_FALSE(act.welcome->accepted);
  CHECK(act.welcome->leader == "127.0.0.1:1");
  CHECK_FALSE(n.core.connected());
  protocol::Welcome w = welcome();
  w.heartbeat_ms = 250;
  act = n.core.on_message(w);
  REQUIRE(act.welcome.has_value());
  CHECK(act.welcome->accepted);
  CHECK(act.welcome->heartbeat_ms == 250);
  CHECK(n.core.connected());
  protocol::StatsReply reply;
  reply.id = 7;
  act = n.core.on_message(reply);
  REQUIRE(act.stats.has_value());
  CHECK(act.stats->id == 7);
}

TEST_CASE("node core: CANCEL ends a queued job here and hands a running one to the shell") {
  storage::MemoryStore store;
  Node n(store, options(1));
  n.connect();
  n.receive(protocol::Job{{assignment("p-1-aaaaaaaaaaa"), assignment("p-2-aaaaaaaaaaa")}});
  CHECK(n.start() == "p-1-aaaaaaaaaaa");
  LinkActions act =
      n.core.on_message(protocol::Cancel{{"p-1-aaaaaaaaaaa", "p-2-aaaaaaaaaaa"}, ""}, kNow);
  // The running one is the executor's to kill; the queued one is CANCELLED now.
  CHECK(act.cancel == std::vector<std::string>{"p-1-aaaaaaaaaaa"});
  auto out = n.flush();
  auto results = of_type<protocol::Result>(out);
  REQUIRE(results.size() == 1);
  REQUIRE(results[0].reports.size() == 1);
  CHECK(results[0].reports[0].ticket == "p-2-aaaaaaaaaaa");
  CHECK(results[0].reports[0].state == JobState::kCancelled);
  CHECK(results[0].reports[0].result.end_ms == kNow);
  CHECK(n.core.running() == 1);
}

}  // namespace jc::node
