// RESULT_TTL (protocol/retention.h) in both cores, and the record versions
// that let the new field be read from records written before it.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "cluster_node/node_core.h"
#include "protocol/codec.h"
#include "protocol/retention.h"
#include "reverse_proxy/proxy_core.h"
#include "storage/store.h"
#include "tests/support/node_turn.h"

namespace jc {
namespace {

using protocol::JobState;

constexpr TimeMs kTtl = 60'000;
constexpr TimeMs kT0 = 1'800'000'000'000;  // a wall clock in 2027

protocol::Retention retention() { return protocol::Retention{kTtl}; }

std::size_t keys_with(storage::MemoryStore& store, std::string_view prefix) {
  std::size_t n = 0;
  store.scan(prefix, [&](std::string_view, std::string_view) {
    ++n;
    return true;
  });
  return n;
}

// Results the proxy's n/ records say are owed (a record holds a batch of
// tickets, one per line; a record of an earlier build, "", its key's one).
std::size_t notices_in(storage::MemoryStore& store) {
  std::size_t n = 0;
  store.scan("n/", [&](std::string_view, std::string_view value) {
    n += value.empty() ? 1 : static_cast<std::size_t>(std::count(value.begin(), value.end(), '\n'));
    return true;
  });
  return n;
}

// ---- the pure parts --------------------------------------------------------

TEST_CASE("retention: a job expires RESULT_TTL after its final time, never with 0") {
  protocol::Retention r{kTtl};
  CHECK_FALSE(r.expired(kT0, kT0 + kTtl - 1));
  CHECK(r.expired(kT0, kT0 + kTtl));
  CHECK_FALSE(r.expired(0, kT0));  // final time not known: kept
  protocol::Retention forever{0};
  CHECK_FALSE(forever.expired(kT0, kT0 + 100 * kTtl));
  CHECK(protocol::Retention{60000}.sweep_period_ms() == 6000);
  CHECK(protocol::Retention{5000}.sweep_period_ms() == 1000);
  CHECK(protocol::Retention{300}.sweep_period_ms() == 300);
  CHECK(protocol::Retention{protocol::kDefaultResultTtlMs}.sweep_period_ms() == 60000);
  CHECK(protocol::Retention{5000}.compact_period_ms() == 5000);
  CHECK(protocol::Retention{protocol::kDefaultResultTtlMs}.compact_period_ms() == 60000);
}

TEST_CASE("retention: tickets as nodes issue them give prefix and counter") {
  auto p = protocol::parse_ticket("ab12cd-42-AAAAAAAAAAA");
  REQUIRE(p);
  CHECK(p->prefix == "ab12cd");
  CHECK(p->counter == 42);
  CHECK(p->random == "AAAAAAAAAAA");
  CHECK_FALSE(protocol::parse_ticket("ab12cd-042-AAAAAAAAAAA"));  // another spelling of 42
  CHECK_FALSE(protocol::parse_ticket("ab12cd-42-AAAA"));         // random part too short
  CHECK_FALSE(protocol::parse_ticket("ab12cd-4x-AAAAAAAAAAA"));  // counter not digits
  CHECK_FALSE(protocol::parse_ticket("-42-AAAAAAAAAAA"));
  CHECK_FALSE(protocol::parse_ticket("ab12cd--AAAAAAAAAAA"));
  CHECK_FALSE(protocol::parse_ticket("t1"));
  CHECK_FALSE(protocol::parse_ticket("ab-99999999999999999999-AAAAAAAAAAA"));  // > 64 bits
}

TEST_CASE("retention: expiry keys sort by time and give back time and rest") {
  std::string a = protocol::expiry_key(999, "o/t1");
  std::string b = protocol::expiry_key(kT0, "o/t0");
  CHECK(a < b);
  auto parsed = protocol::parse_expiry_key(b);
  REQUIRE(parsed);
  CHECK(parsed->first == kT0);
  CHECK(parsed->second == "o/t0");
  CHECK_FALSE(protocol::parse_expiry_key("e/12/o/t"));
  CHECK_FALSE(protocol::parse_expiry_key("f/0000000000000012/t"));
}

TEST_CASE("retention: emptied ranges merge per key space and compact once a period") {
  protocol::CompactionPlan plan;
  plan.add({{"f/b", "f/c"}, {"e/1", "e/2"}});
  auto first = plan.due(kT0, 60000);
  CHECK(first.size() == 2);
  CHECK(plan.due(kT0 + 1, 60000).empty());  // nothing new
  plan.add({{"f/a", "f/b"}});
  plan.add({{"f/x", "f/y"}});
  CHECK(plan.due(kT0 + 59999, 60000).empty());  // not yet
  auto later = plan.due(kT0 + 60000, 60000);
  REQUIRE(later.size() == 1);
  CHECK(later[0] == std::make_pair(std::string("f/a"), std::string("f/y")));
}

// ---- record versions -------------------------------------------------------

proxy::JobRecord finished_record() {
  proxy::JobRecord rec;
  rec.spec.ticket = "ab12cd-1-AAAAAAAAAAA";
  rec.spec.origin = "node-a";
  rec.state = JobState::kDone;
  rec.node = "node-b";
  rec.result.text = "slept";
  rec.result.end_ms = kT0;
  return rec;
}

TEST_CASE("records: today's version round-trips with its header and new field") {
  proxy::JobRecord rec = finished_record();
  rec.result.final_ms = kT0 + 5;
  std::string bytes = protocol::to_record(rec);
  CHECK(bytes[0] == protocol::kRecordMarker);
  CHECK(static_cast<unsigned char>(bytes[1]) == protocol::kRecordVersion);
  proxy::JobRecord back;
  REQUIRE(protocol::from_record(bytes, back));
  CHECK(back.result.final_ms == kT0 + 5);
  CHECK(back.result.text == "slept");
}

TEST_CASE("records: a version-4 record (no header, no final_ms) still reads") {
  // Version 4 wrote the same fields without final_ms and pinned, the last
  // two bytes of a record whose result ends its version-4 fields (a zero
  // varint and false).
  proxy::JobRecord rec = finished_record();
  std::string v5 = protocol::to_bytes_at(rec, 5);
  REQUIRE(v5.substr(v5.size() - 2) == std::string(2, '\0'));
  std::string v4 = v5.substr(0, v5.size() - 2);
  REQUIRE(static_cast<unsigned char>(v4[0]) < 0x80);  // a ticket's length, never the marker
  proxy::JobRecord back;
  REQUIRE(protocol::from_record(v4, back));
  CHECK(back.result.text == "slept");
  CHECK(back.result.final_ms == 0);
  CHECK(back.result.final_time() == kT0);  // counted from its end
  // Read as today's version it would be bytes short.
  CHECK_FALSE(protocol::from_bytes(v4, back));
}

TEST_CASE("records: a later version, or a truncated header, is refused, not misread") {
  proxy::JobRecord rec = finished_record();
  std::string bytes = protocol::to_record(rec);
  std::string later = bytes;
  later[1] = static_cast<char>(protocol::kRecordVersion + 1);
  proxy::JobRecord back;
  CHECK_FALSE(protocol::from_record(later, back));
  CHECK_FALSE(protocol::from_record(bytes.substr(0, 1), back));
  std::string older = bytes;
  older[1] = 4;  // version 4 never had a header
  CHECK_FALSE(protocol::from_record(older, back));
}

TEST_CASE("storage: a format-4 store is accepted and marked 5, others are refused") {
  storage::MemoryStore store;
  storage::WriteBatch b;
  b.put(std::string(storage::kFormatKey), "4");
  b.put("a/t1", "x");
  REQUIRE(store.write(b, true).ok());
  std::string found;
  REQUIRE(storage::check_format(store, &found).ok());
  CHECK(found == "4");
  std::string now;
  REQUIRE(store.get(storage::kFormatKey, &now).ok());
  CHECK(now == storage::kStorageFormat);
  REQUIRE(storage::check_format(store, &found).ok());
  CHECK(found == "5");
}

// ---- the proxy -------------------------------------------------------------

const std::string kA1 = "aaaaaa-1-AAAAAAAAAAA";
const std::string kA2 = "aaaaaa-2-AAAAAAAAAAA";
const std::string kA3 = "aaaaaa-3-AAAAAAAAAAA";

struct Proxy {
  explicit Proxy(storage::MemoryStore& store) : core(store, opts()) {
    REQUIRE(core.recover(kT0).ok());
    flush();
  }
  static proxy::ProxyOptions opts() {
    proxy::ProxyOptions o;
    o.prefetch = 0;
    o.prefetch_ms = 0;
    o.retention = retention();
    return o;
  }
  std::vector<proxy::Outgoing> flush() {
    REQUIRE(core.staged().commit().ok());
    return core.take_outbox();
  }
  std::vector<proxy::Outgoing> message(const std::string& node, protocol::Message m, TimeMs now) {
    core.on_message(node, std::move(m), now);
    return flush();
  }
  void join(const std::string& id, TimeMs now) {
    protocol::Hello h;
    h.node_id = id;
    h.slots = 4;
    REQUIRE(core.on_hello(h, "peer", now).accepted);
    flush();
  }
  // `node` asks what the proxy knows of `ticket` at `now`.
  protocol::JobReport ask(const std::string& node, const std::string& ticket, TimeMs now) {
    for (auto& o : message(node, protocol::RequestOfRes{{ticket}}, now)) {
      if (auto* r = std::get_if<protocol::Result>(&o.message); r && !r->reports.empty()) {
        return r->reports[0];
      }
    }
    FAIL("no answer");
    return {};
  }
  // Submits `tickets` from node "a" and has node "a" run and finish them at `now`.
  void run(const std::vector<std::string>& tickets, TimeMs now) {
    protocol::Submit s;
    for (const auto& t : tickets) {
      protocol::JobSpec spec;
      spec.ticket = t;
      spec.origin = "a";
      s.jobs.push_back(spec);
    }
    s.first = true;
    message("a", s, now);
    core.dispatch(now);
    flush();
    protocol::Result results;
    for (const auto& t : tickets) {
      protocol::JobReport r;
      r.ticket = t;
      r.state = JobState::kDone;
      r.has_result = true;
      r.result.state = JobState::kDone;
      r.result.attempt = 1;
      r.result.end_ms = now - 1;
      r.result.text = "slept";
      results.reports.push_back(r);
    }
    message("a", results, now);
  }
  // Node "a" joins, runs `tickets` at kT0, and a sweep at their expiry removes them.
  void run_and_expire(const std::vector<std::string>& tickets) {
    join("a", kT0);
    run(tickets, kT0);
    core.sweep(kT0 + kTtl);
    flush();
  }
  proxy::ProxyCore core;
};

TEST_CASE("proxy retention: a result is kept RESULT_TTL after it is final, then gone") {
  storage::MemoryStore store;
  Proxy p(store);
  p.join("a", kT0);
  p.run({kA1}, kT0);
  auto rec = p.core.find_job(kA1);
  REQUIRE(rec);
  CHECK(rec->result.final_ms == kT0);  // the proxy's time, not the node's end
  CHECK(p.ask("a", kA1, kT0 + kTtl - 1).state == JobState::kDone);
  // Expired at once, before any sweep: every process answers from the same moment.
  CHECK(p.ask("a", kA1, kT0 + kTtl).state == JobState::kExpired);
  CHECK_FALSE(p.core.find_job(kA1));
  CHECK(p.core.expired(kA1));
  REQUIRE(keys_with(store, "f/") == 1);
  REQUIRE(keys_with(store, "e/") == 1);
}

TEST_CASE("proxy retention: a read with its own clock sees expiry though no call brought that time") {
  storage::MemoryStore store;
  Proxy p(store);
  p.join("a", kT0);
  p.run({kA1}, kT0);
  // The last call brought kT0; the HTTP status page reads at its own, later time,
  // as a node that already answered "expired" did.
  CHECK(p.core.find_job(kA1, kT0 + kTtl - 1));
  CHECK_FALSE(p.core.find_job(kA1, kT0 + kTtl));
  CHECK(p.core.expired(kA1, kT0 + kTtl));
  // An earlier clock never takes a read back before the latest call's time.
  p.ask("a", kA1, kT0 + kTtl);
  CHECK_FALSE(p.core.find_job(kA1, kT0));
}

// Node "a" joins and runs kA1 and kA2, finished at kT0, then kA3, 1 s later.
void finish_three(Proxy& p) {
  p.join("a", kT0);
  p.run({kA1, kA2}, kT0);
  p.run({kA3}, kT0 + 1000);
}

TEST_CASE("proxy retention: a sweep skips what an earlier sweep's write in flight removes") {
  storage::MemoryStore store;
  Proxy p(store);
  finish_three(p);
  auto swept = p.core.sweep(kT0 + kTtl);
  CHECK(swept.removed == 2);
  // Its removals are being written (a single proxy's writer thread, a
  // replicated proxy's log entry): the store still has them.
  const storage::WriteBatch::Ops& ops = p.core.staged().lift_in_place();
  REQUIRE(keys_with(store, "e/") == 2);
  CHECK(p.core.sweep(kT0 + kTtl).removed == 0);
  REQUIRE(store.write_ops(ops, true).ok());
  p.core.staged().landed();
  CHECK(keys_with(store, "e/") == 1);
  CHECK(p.core.sweep(kT0 + kTtl).removed == 0);
  CHECK(p.core.sweep(kT0 + 1000 + kTtl).removed == 1);
}

TEST_CASE("proxy retention: the sweep removes records and index, and remembers") {
  storage::MemoryStore store;
  Proxy p(store);
  finish_three(p);
  // Node "a" never acknowledged the results: their notices wait too.
  REQUIRE(notices_in(store) == 3);
  // The two finished together share an index entry.
  REQUIRE(keys_with(store, "e/") == 2);

  auto early = p.core.sweep(kT0 + kTtl - 1);
  p.flush();
  CHECK(early.removed == 0);
  auto swept = p.core.sweep(kT0 + kTtl);
  p.flush();
  CHECK(swept.removed == 2);
  CHECK_FALSE(swept.more);
  CHECK(swept.compact.size() == 3);  // the index's range, the records' and the specs'
  CHECK(keys_with(store, "f/") == 1);
  CHECK(keys_with(store, "s/") == 1);
  CHECK(keys_with(store, "e/") == 1);
  // Node "a" has not acknowledged them: it will be told they expired.
  CHECK(notices_in(store) == 3);
  std::string mark;
  REQUIRE(store.get("w/aaaaaa", &mark).ok());
  CHECK(mark == "2");
  CHECK(p.core.expired_total() == 2);

  // Gone from the store, still known as expired; the third still there.
  CHECK(p.ask("a", kA1, kT0 + kTtl).state == JobState::kExpired);
  CHECK(p.ask("a", kA3, kT0 + kTtl).state == JobState::kDone);
  // A ticket of another prefix, or above the mark, is unknown, not expired.
  CHECK(p.ask("a", "bbbbbb-1-AAAAAAAAAAA", kT0 + kTtl).state == JobState::kUnknown);
  CHECK(p.ask("a", "aaaaaa-9-AAAAAAAAAAA", kT0 + kTtl).state == JobState::kUnknown);

  // After a restart too.
  Proxy again(store);
  again.join("a", kT0 + kTtl);
  CHECK(again.ask("a", kA2, kT0 + kTtl).state == JobState::kExpired);
}

TEST_CASE("proxy retention: an origin that missed the result is told it expired, then forgotten") {
  storage::MemoryStore store;
  Proxy p(store);
  p.run_and_expire({kA1});
  REQUIRE(notices_in(store) == 1);
  // The periodic exchange tells the origin; its acknowledgement ends it.
  for (int round = 0; round < 40; ++round) p.core.exchange_results(kT0 + kTtl + round);
  bool told = false;
  for (auto& o : p.flush()) {
    if (auto* m = std::get_if<protocol::ResReq>(&o.message)) {
      for (const auto& r : m->reports) told = told || (r.ticket == kA1 && r.state == JobState::kExpired);
    }
  }
  CHECK(told);
  p.message("a", protocol::Ack{protocol::AckKind::kResults, {kA1}, {}}, kT0 + kTtl + 50);
  CHECK(notices_in(store) == 0);
}

TEST_CASE("proxy retention: a pinned job counts from when its node showed the result") {
  storage::MemoryStore store;
  Proxy p(store);
  p.join("a", kT0);
  protocol::Submit s;
  protocol::JobSpec spec;
  spec.ticket = kA1;
  spec.origin = "a";
  s.jobs.push_back(spec);
  s.local = {kA1};
  s.local_finished = {kA1};
  p.message("a", s, kT0 + 5000);
  protocol::JobReport r;
  r.ticket = kA1;
  r.state = JobState::kDone;
  r.has_result = true;
  r.result.state = JobState::kDone;
  r.result.attempt = 1;
  r.result.end_ms = kT0;  // shown by node "a" then, while the proxy was away
  p.message("a", protocol::Result{{r}}, kT0 + 5000);
  auto rec = p.core.find_job(kA1);
  REQUIRE(rec);
  CHECK(rec->result.final_ms == kT0);
  CHECK(p.ask("a", kA1, kT0 + kTtl).state == JobState::kExpired);
}

TEST_CASE("proxy retention: a node resending an expired job does not queue it again") {
  storage::MemoryStore store;
  Proxy p(store);
  p.run_and_expire({kA1});
  protocol::Submit again;
  protocol::JobSpec spec;
  spec.ticket = kA1;
  spec.origin = "a";
  again.jobs.push_back(spec);
  again.first = false;  // sent on an earlier connection, its ACK lost
  auto out = p.message("a", again, kT0 + kTtl + 1);
  bool acked = false;
  for (auto& o : out) {
    if (auto* a = std::get_if<protocol::Ack>(&o.message)) {
      acked = a->tickets == std::vector<std::string>{kA1};
    }
  }
  CHECK(acked);
  CHECK(p.core.queue_length() == 0);
  CHECK(p.ask("a", kA1, kT0 + kTtl + 1).state == JobState::kExpired);
}

TEST_CASE("proxy retention: RESULT_TTL=0 keeps everything") {
  storage::MemoryStore store;
  auto o = Proxy::opts();
  o.retention.ttl_ms = 0;
  proxy::ProxyCore core(store, o);
  REQUIRE(core.recover(kT0).ok());
  CHECK(core.sweep(kT0 + 1000 * kTtl).removed == 0);
}

TEST_CASE("proxy retention: finished records from before the index enter it at start") {
  storage::MemoryStore store;
  proxy::JobRecord rec = finished_record();
  rec.spec.ticket = kA1;
  storage::WriteBatch b;
  std::string v5 = protocol::to_bytes_at(rec, 5);
  b.put("f/" + kA1, v5.substr(0, v5.size() - 2));  // version 4 (see above)
  REQUIRE(store.write(b, true).ok());
  Proxy p(store);
  CHECK(keys_with(store, "e/") == 1);
  auto swept = p.core.sweep(kT0 + kTtl);  // from its end (kT0)
  p.flush();
  CHECK(swept.removed == 1);
  CHECK(keys_with(store, "f/") == 0);
}

// ---- the node --------------------------------------------------------------

struct Node {
  explicit Node(storage::MemoryStore& store) : core(store, opts()) {
    REQUIRE(core.recover().ok());
    flush();
  }
  static node::NodeOptions opts() {
    node::NodeOptions o;
    o.node_id = "node-a";
    o.slots = 2;
    o.retention = retention();
    return o;
  }
  std::vector<protocol::Message> flush() { return test::node_turn(core); }
  void receive(protocol::Message m) {
    core.on_message(std::move(m));
    flush();
  }
  void connect(TimeMs proxy_ttl = kTtl) {
    protocol::Welcome w;
    w.accepted = true;
    w.result_ttl_ms = proxy_ttl;
    receive(w);
  }
  node::NodeCore core;
};

protocol::JobReport proxy_result(const std::string& ticket, TimeMs final_ms) {
  protocol::JobReport r;
  r.ticket = ticket;
  r.state = JobState::kDone;
  r.node = "node-b";
  r.has_result = true;
  r.result.state = JobState::kDone;
  r.result.node = "node-b";
  r.result.attempt = 1;
  r.result.text = "slept";
  r.result.end_ms = final_ms - 3;
  r.result.final_ms = final_ms;
  return r;
}

TEST_CASE("node retention: its clients' jobs expire with the proxy's final time") {
  storage::MemoryStore store;
  Node n(store);
  n.connect();
  protocol::JobSpec spec;
  std::string t1 = n.core.submit(spec, kT0);
  std::string t2 = n.core.submit(spec, kT0);
  n.flush();
  n.receive(protocol::Ack{protocol::AckKind::kSubmitted, {t1, t2}, {}});
  n.receive(protocol::Result{{proxy_result(t1, kT0 + 10), proxy_result(t2, kT0 + 5000)}});

  CHECK(n.core.lookup(t1, kT0 + 10 + kTtl - 1).state == JobState::kDone);
  CHECK(n.core.lookup(t1, kT0 + 10 + kTtl).state == JobState::kExpired);
  CHECK(n.core.getall(kT0 + 10 + kTtl).size() == 1);

  auto swept = n.core.sweep(kT0 + 10 + kTtl);
  n.flush();
  CHECK(swept.removed == 1);
  CHECK(keys_with(store, "o/") == 1);
  CHECK(keys_with(store, "r/") == 1);  // what became of t2; t1's went with it
  CHECK(keys_with(store, "e/") == 1);
  // Gone, and still answered as expired, after a restart too; t2 stays.
  CHECK(n.core.lookup(t1, kT0 + 10 + kTtl).state == JobState::kExpired);
  Node again(store);
  CHECK(again.core.lookup(t1, kT0 + 10 + kTtl).state == JobState::kExpired);
  CHECK(again.core.lookup(t2, kT0 + 10 + kTtl).state == JobState::kDone);
  // Counters go on: no ticket is handed out twice (after a restart they
  // go on from m/counter, reserved ahead of those handed out).
  std::string t3 = again.core.submit(spec, kT0 + kTtl);
  auto p3 = protocol::parse_ticket(t3);
  REQUIRE(p3);
  CHECK(p3->counter > 2);
  CHECK(again.core.lookup(t3, kT0 + 10 + kTtl).state == JobState::kQueued);
}

TEST_CASE("node retention: results of one commit and final time share an index entry") {
  storage::MemoryStore store;
  Node n(store);
  n.connect();
  protocol::JobSpec spec;
  std::string t1 = n.core.submit(spec, kT0);
  std::string t2 = n.core.submit(spec, kT0);
  std::string t3 = n.core.submit(spec, kT0);
  n.flush();
  bool t2_first = false;
  SUBCASE("the entry's own job is done with first") {}
  SUBCASE("the entry's own job must stay") { t2_first = true; }
  // t2's acknowledgement is still to come: it stays past its time.
  n.receive(protocol::Ack{protocol::AckKind::kSubmitted, {t1, t3}, {}});
  protocol::Result r;
  if (t2_first) r.reports.push_back(proxy_result(t2, kT0 + 10));
  r.reports.push_back(proxy_result(t1, kT0 + 10));
  if (!t2_first) r.reports.push_back(proxy_result(t2, kT0 + 10));
  r.reports.push_back(proxy_result(t3, kT0 + 20));
  n.receive(r);
  CHECK(keys_with(store, "e/") == 2);

  auto swept = n.core.sweep(kT0 + 20 + kTtl);
  n.flush();
  CHECK(swept.removed == 2);  // t1 and t3
  CHECK(keys_with(store, "o/") == 1);
  CHECK(keys_with(store, "e/") == 1);  // t2's, looked at again
  CHECK(n.core.lookup(t2, kT0 + 20 + kTtl).state == JobState::kExpired);

  n.receive(protocol::Ack{protocol::AckKind::kSubmitted, {t2}, {}});
  swept = n.core.sweep(kT0 + 20 + kTtl);
  n.flush();
  CHECK(swept.removed == 1);
  CHECK(keys_with(store, "o/") == 0);
  CHECK(keys_with(store, "r/") == 0);
  CHECK(keys_with(store, "e/") == 0);
}

TEST_CASE("node retention: a result leaves the job's o/ record as accepted and is its r/ record") {
  storage::MemoryStore store;
  Node n(store);
  n.connect();
  protocol::JobSpec spec;
  spec.kind = protocol::JobKind::kRun;
  spec.command = "cat data";
  spec.files = {{"data", std::string(10000, 'x')}};  // a judge's test data
  std::string t = n.core.submit(spec, kT0);
  n.flush();
  std::string accepted;
  REQUIRE(store.get("o/" + t, &accepted).ok());
  n.receive(protocol::Ack{protocol::AckKind::kSubmitted, {t}, {}});
  n.receive(protocol::Result{{proxy_result(t, kT0 + 10)}});
  std::string after;
  REQUIRE(store.get("o/" + t, &after).ok());
  CHECK(after == accepted);  // never rewritten
  std::string outcome;
  REQUIRE(store.get("r/" + t, &outcome).ok());
  CHECK(outcome.size() < 200);
  CHECK(n.core.lookup(t, kT0 + 20).result.text == "slept");
  Node again(store);
  CHECK(again.core.lookup(t, kT0 + 20).state == JobState::kDone);
  CHECK(again.core.getall(kT0 + 20).at(0).state == JobState::kDone);
  // The same result again (the proxy resends until acknowledged) writes nothing.
  again.connect();
  again.receive(protocol::Result{{proxy_result(t, kT0 + 10)}});
  std::string outcome_again;
  REQUIRE(store.get("r/" + t, &outcome_again).ok());
  CHECK(outcome_again == outcome);
}

TEST_CASE("node retention: an o/ record of an earlier build that holds its result still reads") {
  storage::MemoryStore store;
  node::OriginRecord old;
  old.spec.ticket = "abcdef-1-AAAAAAAAAAA";
  old.spec.origin = "node-a";
  old.state = JobState::kDone;
  old.has_result = true;
  old.result = proxy_result(old.spec.ticket, kT0 + 10).result;
  old.attempts = 1;
  storage::WriteBatch b;
  b.put("o/" + old.spec.ticket, protocol::to_record(old));
  REQUIRE(store.write(b, true).ok());
  Node n(store);
  auto r = n.core.lookup(old.spec.ticket, kT0 + 20);
  CHECK(r.state == JobState::kDone);
  CHECK(r.result.text == "slept");
  CHECK(n.core.getall(kT0 + 20).at(0).state == JobState::kDone);
}

TEST_CASE("node retention: a job run here is kept until delivered however old, then dropped") {
  storage::MemoryStore store;
  Node n(store);
  n.connect();
  protocol::Assignment a;
  a.spec.ticket = kA1;
  a.spec.origin = "node-z";
  a.attempt = 1;
  n.receive(protocol::Job{{a}});
  REQUIRE(n.core.next_job());
  protocol::JobResult r;
  r.state = JobState::kDone;
  r.end_ms = kT0;
  n.core.job_finished(kA1, r);
  n.flush();
  n.core.age_records();  // a whole round later its records are written
  n.core.age_records();
  n.flush();
  // Not yet acknowledged by the proxy: kept however old.
  CHECK(n.core.sweep(kT0 + 10 * kTtl).removed == 0);
  n.flush();
  CHECK(keys_with(store, "x/") == 1);
  n.receive(protocol::Ack{protocol::AckKind::kResults, {kA1}, {}});
  CHECK(keys_with(store, "x/") == 0);
  CHECK(keys_with(store, "e/") == 0);
}

TEST_CASE("node retention: a delivered run kept by an earlier build expires with the index") {
  storage::MemoryStore store;
  node::ExecRecord rec;
  rec.spec.ticket = kA1;
  rec.state = JobState::kDone;
  rec.delivered = true;
  rec.result.state = JobState::kDone;
  rec.result.end_ms = kT0;
  std::string v5 = protocol::to_bytes_at(rec, 5);
  storage::WriteBatch b;
  // Version 4: its result without final_ms (a zero varint before the last two bools).
  b.put("x/" + kA1, v5.substr(0, v5.size() - 3) + v5.substr(v5.size() - 2));
  REQUIRE(store.write(b, true).ok());
  Node n(store);
  CHECK(keys_with(store, "e/") == 1);
  CHECK(n.core.lookup(kA1, kT0 + 1).state == JobState::kDone);
  CHECK(n.core.lookup(kA1, kT0 + kTtl).state == JobState::kExpired);
  CHECK(n.core.sweep(kT0 + kTtl).removed == 1);
  n.flush();
  CHECK(keys_with(store, "x/") == 0);
}

TEST_CASE("node retention: a result without a final time is counted from the first sweep, and blocks nothing") {
  storage::MemoryStore store;
  {
    Node n(store);
    n.connect();
    protocol::JobSpec spec;
    std::string t1 = n.core.submit(spec, kT0);
    std::string t2 = n.core.submit(spec, kT0);
    n.flush();
    n.receive(protocol::Ack{protocol::AckKind::kSubmitted, {t1, t2}, {}});
    // t1: a result of an earlier build, cancelled while queued: no time at all.
    auto old = proxy_result(t1, kT0);
    old.result.end_ms = 0;
    old.result.final_ms = 0;
    n.receive(protocol::Result{{old, proxy_result(t2, kT0)}});
  }
  Node n(store);
  auto first = n.core.sweep(kT0 + kTtl);
  n.flush();
  CHECK(first.removed == 1);  // t2, behind t1's entry at time 0
  CHECK(keys_with(store, "o/") == 1);
  CHECK(n.core.sweep(kT0 + kTtl + kTtl - 1).removed == 0);
  n.flush();
  CHECK(n.core.sweep(kT0 + 2 * kTtl).removed == 1);
  n.flush();
  CHECK(keys_with(store, "o/") == 0);
  CHECK(keys_with(store, "e/") == 0);
}

TEST_CASE("node retention: a job that expired while the node was away is forgotten when told") {
  storage::MemoryStore store;
  Node n(store);
  n.connect();
  protocol::JobSpec spec;
  std::string t = n.core.submit(spec, kT0);
  n.flush();
  n.receive(protocol::Ack{protocol::AckKind::kSubmitted, {t}, {}});
  protocol::JobReport expired;
  expired.ticket = t;
  expired.state = JobState::kExpired;
  n.core.on_message(protocol::ResReq{{expired}, {}});
  auto out = n.flush();
  CHECK(keys_with(store, "o/") == 0);
  CHECK(n.core.lookup(t, kT0 + 1).state == JobState::kExpired);
  bool acked = false;
  for (auto& m : out) {
    if (auto* a = std::get_if<protocol::Ack>(&m)) acked = a->tickets == std::vector<std::string>{t};
  }
  CHECK(acked);
}

TEST_CASE("node retention: a node follows the proxy's RESULT_TTL when its own differs") {
  storage::MemoryStore store;
  Node n(store);
  n.connect(2 * kTtl);
  CHECK(n.core.retention().ttl_ms == 2 * kTtl);
  n.receive(protocol::Result{{proxy_result(kA2, kT0)}});
  CHECK(n.core.lookup(kA2, kT0 + kTtl).state == JobState::kDone);  // not at its own TTL
  CHECK(n.core.lookup(kA2, kT0 + 2 * kTtl).state == JobState::kExpired);
  // And the proxy says its own in every WELCOME.
  storage::MemoryStore proxy_store;
  Proxy p(proxy_store);
  protocol::Hello h;
  h.node_id = "a";
  h.slots = 1;
  CHECK(p.core.on_hello(h, "peer", kT0).result_ttl_ms == kTtl);
}

TEST_CASE("node retention: others' results fetched for clients expire from the cache") {
  storage::MemoryStore store;
  Node n(store);
  n.connect();
  n.receive(protocol::Result{{proxy_result(kA2, kT0)}});
  CHECK(n.core.lookup(kA2, kT0 + kTtl - 1).state == JobState::kDone);
  CHECK(n.core.lookup(kA2, kT0 + kTtl).state == JobState::kExpired);
  n.core.sweep(kT0 + kTtl);
  // Gone from memory: the proxy is asked (and says it expired).
  CHECK(n.core.lookup(kA2, kT0 + kTtl).state == JobState::kUnknown);
}

}  // namespace
}  // namespace jc
