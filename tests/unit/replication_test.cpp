// The replicated proxies' state machine: log entries (changes) and snapshots
// as bytes, ReplicatedStore over a MemoryStore, and three of them on the Raft
// library's deterministic fixture (raft/fixture.h) through the same glue the
// proxies use, under kills, cuts, depositions and snapshots.
#include <doctest/doctest.h>

#include <random>

#include "replication/fsm_glue.h"
#include "reverse_proxy/replicated_store.h"

extern "C" {
#include <raft/fixture.h>
}

using jc::proxy::Change;
using jc::proxy::ReplicatedStore;
using jc::storage::MemoryStore;

namespace {

std::map<std::string, std::string> contents(MemoryStore& store) {
  std::map<std::string, std::string> out;
  store.scan("", [&](std::string_view k, std::string_view v) {
    if (k != ReplicatedStore::kAppliedKey) out.emplace(k, v);
    return true;
  });
  return out;
}

Change some_change(std::mt19937& rng, int n) {
  Change c;
  c.time_ms = 1000 + n;
  std::uniform_int_distribution<int> key(0, 40), op(0, 3), len(0, 300);
  for (int i = 0; i < 1 + n % 5; ++i) {
    std::string k = "a/k" + std::to_string(key(rng));
    if (op(rng) == 0) {
      c.writes.del(k);
    } else {
      c.writes.put(k, std::string(static_cast<std::size_t>(len(rng)), static_cast<char>('a' + n % 26)));
    }
  }
  return c;
}

}  // namespace

TEST_CASE("replication: a change goes through bytes and back, and damaged bytes are refused") {
  Change c;
  c.time_ms = 1796000000123;
  c.writes.put("a/t-1-x", std::string("\0value\xff", 7));
  c.writes.del("n/n1/t-2-y");
  c.writes.put("", "");
  // Format 2 (compressed) is what this build writes; format 1 is what
  // earlier builds wrote, and logs may still hold it.
  for (bool compressed : {true, false}) {
    CAPTURE(compressed);
    std::string bytes =
        compressed ? jc::proxy::encode_change(c) : jc::proxy::encode_plain_change(c);
    CHECK(static_cast<std::uint8_t>(bytes[0]) == (compressed ? Change::kCompressed : Change::kPlain));
    Change back;
    REQUIRE(jc::proxy::decode_change(bytes, back));
    CHECK(back.time_ms == c.time_ms);
    CHECK(back.writes.ops() == c.writes.ops());
    for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
      CHECK_FALSE(jc::proxy::decode_change(bytes.substr(0, cut), back));
    }
    CHECK_FALSE(jc::proxy::decode_change(bytes + "x", back));
    std::string newer = bytes;
    newer[0] = static_cast<char>(Change::kCompressed + 1);
    CHECK_FALSE(jc::proxy::decode_change(newer, back));
  }
}

TEST_CASE("replication: a compressed change is much smaller than its records, and a bomb is refused") {
  Change c;
  for (int i = 0; i < 2000; ++i) {
    std::string ticket = fmt::format("t{:04}-{}-abcdefghij", i, i * 7);
    c.writes.put("a/" + ticket, "{\"ticket\":\"" + ticket + "\",\"kind\":\"sleep\",\"ms\":0}");
  }
  std::string plain = jc::proxy::encode_plain_change(c);
  std::string packed = jc::proxy::encode_change(c);
  CHECK(packed.size() * 4 < plain.size());
  // Every size, around the decoder's first buffer and its growth.
  for (std::size_t n : {0u, 1u, 100u, 65535u, 65536u, 65537u, 70000u, 300000u, 3000000u}) {
    Change sized;
    sized.writes.put("k", std::string(n, 'v'));
    Change again;
    REQUIRE(jc::proxy::decode_change(jc::proxy::encode_change(sized), again));
    CHECK(again.writes.ops() == sized.writes.ops());
  }
  Change back;
  REQUIRE(jc::proxy::decode_change(packed, back));
  CHECK(back.writes.ops() == c.writes.ops());
  // A frame that claims to expand to a terabyte is refused from its header,
  // before anything is allocated.
  std::string bomb = {static_cast<char>(Change::kCompressed), '\x28', '\xb5', '\x2f', '\xfd',
                      '\xe0'};  // zstd's magic; one segment, an 8-byte content size
  for (int i = 0; i < 8; ++i) bomb.push_back(i == 5 ? '\x01' : '\0');  // 2^40, little-endian
  bomb += std::string(16, '\0');
  CHECK_FALSE(jc::proxy::decode_change(bomb, back));
  // Compressed bytes taken for format 1 are refused too.
  std::string not_a_change = packed;
  not_a_change[0] = static_cast<char>(Change::kPlain);
  CHECK_FALSE(jc::proxy::decode_change(not_a_change, back));
}

TEST_CASE("replication: the leader applies its own entry from its writes, only if the bytes match") {
  MemoryStore store;
  ReplicatedStore machine(store);
  REQUIRE(machine.open().ok());
  Change mine;
  mine.writes.put("a/one", "1");
  std::string entry = jc::proxy::encode_change(mine);
  // The writes kept carry a marker the entry's bytes do not: where it
  // lands shows which of the two was applied.
  jc::storage::WriteBatch kept = mine.writes;
  kept.put("x/marker", "kept");
  machine.expect(1, entry, kept);
  REQUIRE(machine.apply(1, entry).ok());
  std::string v;
  CHECK(store.get("x/marker", &v).ok());
  // Another leader's entry at the index expected: decoded from its bytes.
  Change theirs;
  theirs.writes.put("a/two", "2");
  machine.expect(2, entry, kept);
  REQUIRE(machine.apply(2, jc::proxy::encode_change(theirs)).ok());
  CHECK(store.get("a/two", &v).ok());
  jc::storage::WriteBatch unmark;
  unmark.del("x/marker");
  REQUIRE(store.write(unmark, false).ok());
  // Expectations older than the entry applied are dropped; forgotten ones
  // are not used.
  machine.expect(3, entry, kept);
  machine.expect(4, entry, kept);
  machine.forget_expected();
  REQUIRE(machine.apply(3, entry).ok());
  CHECK(store.get("x/marker", &v).is_not_found());
  machine.expect(5, entry, kept);
  machine.expect(6, entry, kept);
  REQUIRE(machine.apply(6, entry).ok());
  CHECK(store.get("x/marker", &v).ok());
  CHECK(machine.applied() == 6);
}

TEST_CASE("replication: an entry is framed to a multiple of 8 bytes and unframed exactly") {
  for (std::size_t n : {0u, 1u, 7u, 8u, 9u, 1000u}) {
    std::string payload(n, 'p');
    std::string framed(jc::replication::framed_size(n), '?');
    CHECK(framed.size() % 8 == 0);
    jc::replication::frame_entry(framed.data(), payload);
    struct raft_buffer buf {
      framed.data(), framed.size()
    };
    auto back = jc::replication::unframe(&buf);
    REQUIRE(back);
    CHECK(*back == payload);
    struct raft_buffer short_buf {
      framed.data(), 7
    };
    CHECK_FALSE(jc::replication::unframe(&short_buf));
  }
}

TEST_CASE("replication: a store applies entries once, in order, and a snapshot replaces it") {
  MemoryStore store;
  ReplicatedStore machine(store);
  REQUIRE(machine.open().ok());
  Change c1;
  c1.writes.put("a/one", "1");
  Change c2;
  c2.writes.put("a/two", "2");
  c2.writes.del("a/one");
  REQUIRE(machine.apply(1, jc::proxy::encode_change(c1)).ok());
  REQUIRE(machine.apply(2, jc::proxy::encode_change(c2)).ok());
  // Again after a restart: skipped (its store has it).
  ReplicatedStore again(store);
  REQUIRE(again.open().ok());
  CHECK(again.applied() == 2);
  REQUIRE(again.apply(1, jc::proxy::encode_change(c1)).ok());
  CHECK(contents(store) == std::map<std::string, std::string>{{"a/two", "2"}});
  // An entry that is not a change is an error, never skipped.
  CHECK_FALSE(again.apply(3, "garbage").ok());
  CHECK(again.applied() == 2);

  // A snapshot of another store at index 10 replaces everything.
  MemoryStore other;
  jc::storage::WriteBatch b;
  b.put("f/done", "result");
  b.put("meta/format", "5");
  REQUIRE(other.write(b, false).ok());
  auto view = other.read_view();
  std::string snap = jc::proxy::encode_snapshot(10, *view);
  CHECK(jc::proxy::decode_snapshot(snap) == std::optional<jc::replication::Index>(10));
  CHECK_FALSE(jc::proxy::decode_snapshot(snap.substr(0, snap.size() - 1)));
  REQUIRE(again.restore(snap).ok());
  CHECK(again.applied() == 10);
  CHECK(contents(store) == contents(other));
  // An older snapshot (a restart after it) changes nothing.
  auto older = jc::proxy::encode_snapshot(5, *store.read_view());
  jc::storage::WriteBatch later;
  later.put("a/later", "x");
  REQUIRE(store.write(later, false).ok());
  REQUIRE(again.restore(older).ok());
  CHECK(again.applied() == 10);
  CHECK(contents(store).count("a/later") == 1);
}

TEST_CASE("replication: three stores on the Raft fixture stay identical through kills, new "
          "leaders and snapshots") {
  constexpr unsigned kServers = 3;
  static struct raft_fixture f;  // large; zeroed (initialize() leaves fields as they were)
  f = {};
  REQUIRE(raft_fixture_initialize(&f) == 0);
  std::vector<std::unique_ptr<MemoryStore>> stores;
  std::vector<std::unique_ptr<ReplicatedStore>> machines;
  std::vector<std::unique_ptr<jc::replication::FsmGlue>> glue;
  for (unsigned i = 0; i < kServers; ++i) {
    stores.push_back(std::make_unique<MemoryStore>());
    machines.push_back(std::make_unique<ReplicatedStore>(*stores.back()));
    glue.push_back(std::make_unique<jc::replication::FsmGlue>());
    jc::replication::init_glue(*glue.back(), *machines.back(), false);
    REQUIRE(raft_fixture_grow(&f, &glue.back()->fsm) == 0);
  }
  // Once all are grown: growing may move the servers.
  for (unsigned i = 0; i < kServers; ++i) {
    glue[i]->raft = raft_fixture_get(&f, i);
    // Small, so that snapshots and InstallSnapshot happen within the test.
    raft_set_snapshot_threshold(raft_fixture_get(&f, i), 16);
    raft_set_snapshot_trailing(raft_fixture_get(&f, i), 4);
    raft_set_pre_vote(raft_fixture_get(&f, i), true);  // as the proxies run
  }
  struct raft_configuration conf;
  REQUIRE(raft_fixture_configuration(&f, kServers, &conf) == 0);
  REQUIRE(raft_fixture_bootstrap(&f, &conf) == 0);
  raft_configuration_close(&conf);
  REQUIRE(raft_fixture_start(&f) == 0);
  REQUIRE(raft_fixture_step_until_has_leader(&f, 10000));

  MemoryStore reference;
  std::mt19937 rng(13);
  int proposed = 0;
  // Proposes one change to the leader and steps until every live server
  // applied it; the change then is committed, and goes to the reference.
  auto propose = [&] {
    REQUIRE_MESSAGE(raft_fixture_step_until_has_leader(&f, 30000), "no leader before change " << proposed);
    unsigned leader = raft_fixture_leader_index(&f);
    struct raft* r = raft_fixture_get(&f, leader);
    Change c = some_change(rng, proposed++);
    std::string entry = jc::proxy::encode_change(c);
    struct raft_buffer buf;
    buf.len = jc::replication::framed_size(entry.size());
    buf.base = raft_malloc(buf.len);
    jc::replication::frame_entry(static_cast<char*>(buf.base), entry);
    auto* req = new struct raft_apply;
    REQUIRE(raft_apply(r, req, &buf, 1, [](struct raft_apply* q, int, void*) { delete q; }) == 0);
    raft_index index = raft_last_index(r);
    for (unsigned i = 0; i < kServers; ++i) {
      if (!raft_fixture_alive(&f, i)) continue;
      REQUIRE_MESSAGE(raft_fixture_step_until_applied(&f, i, index, 10000),
                      "server " << i << " did not apply " << index);
    }
    REQUIRE(reference.write(c.writes, false).ok());
  };
  auto follower_of = [&](unsigned leader) { return (leader + 1) % kServers; };

  for (int i = 0; i < 20; ++i) propose();
  // A follower dies; the log moves past its snapshot threshold; it returns.
  unsigned away = follower_of(raft_fixture_leader_index(&f));
  raft_fixture_kill(&f, away);
  for (int i = 0; i < 40; ++i) propose();
  raft_fixture_revive(&f, away);
  // The leader is deposed twice; the others elect; entries go on.
  for (int round = 0; round < 2; ++round) {
    raft_fixture_depose(&f);
    for (int i = 0; i < 10; ++i) propose();
  }
  // (Cuts of the network are tested with real processes in network
  // namespaces, integration/partition_test.cpp: the fixture's disconnect
  // left this cluster of 0.15 without any leader.)
  propose();

  raft_index last = raft_last_index(raft_fixture_get(&f, raft_fixture_leader_index(&f)));
  for (unsigned i = 0; i < kServers; ++i) {
    REQUIRE_MESSAGE(raft_fixture_step_until_applied(&f, i, last, 20000),
                    "server " << i << " did not catch up to " << last);
  }
  auto expected = contents(reference);
  CHECK(expected.size() > 5);
  for (unsigned i = 0; i < kServers; ++i) {
    CHECK_MESSAGE(contents(*stores[i]) == expected, "server " << i << " differs");
  }
  std::uint64_t snapshots = 0, restored = 0;
  for (unsigned i = 0; i < kServers; ++i) {
    snapshots += glue[i]->snapshots_taken;
    restored += machines[i]->snapshots_restored();
  }
  CHECK(snapshots > 0);
  CHECK(restored > 0);  // the server away caught up from one
  raft_fixture_close(&f);
}
