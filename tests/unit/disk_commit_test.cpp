// A single proxy's commit (DiskCommit, reverse_proxy/commit_path.h): a
// large write is made on the writer thread while the event loop goes on;
// what was staged meanwhile waits for it and goes in the next write; what
// the write made durable is acknowledged only once it has landed; a write
// that fails there is staged again under what came since and retried, its
// acknowledgements first.
#include <doctest/doctest.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include "common/log.h"
#include "net/storage_retry.h"
#include "protocol/messages.h"
#include "reverse_proxy/commit_path.h"
#include "reverse_proxy/http_api.h"
#include "reverse_proxy/proxy_core.h"
#include "storage/store.h"

namespace jc {
namespace {

using namespace std::chrono_literals;

// A store whose next write fails while it still says it takes writes: a
// disk that fills up during the write. Locked, as LevelDB is inside: the
// writer thread writes while the loop reads.
class FlakyStore : public storage::MemoryStore {
 public:
  Status get(std::string_view key, std::string* value) override {
    std::lock_guard lock(mu_);
    return MemoryStore::get(key, value);
  }
  Status write_ops(const storage::WriteBatch::Ops& ops, bool sync) override {
    std::lock_guard lock(mu_);
    ++writes;
    if (fail_next.exchange(false)) return Status::IoError("disk full during the write");
    return MemoryStore::write_ops(ops, sync);
  }
  std::atomic<bool> fail_next{false};
  std::atomic<int> writes{0};

 private:
  std::mutex mu_;
};

protocol::Submit submit_of(const std::string& prefix, int jobs) {
  protocol::Submit s;
  for (int i = 0; i < jobs; ++i) {
    protocol::JobSpec spec;
    spec.kind = protocol::JobKind::kSleep;
    spec.sleep_ms = 1000;
    spec.ticket = prefix + std::to_string(i);
    spec.origin = "node-a";
    s.jobs.push_back(std::move(spec));
  }
  return s;
}

// The tickets acknowledged as submitted, in the order the ACKs left.
std::vector<std::string> acked(const std::vector<proxy::Outgoing>& sent) {
  std::vector<std::string> out;
  for (const auto& o : sent) {
    if (const auto* ack = std::get_if<protocol::Ack>(&o.message)) {
      if (ack->kind == protocol::AckKind::kSubmitted) {
        out.insert(out.end(), ack->tickets.begin(), ack->tickets.end());
      }
    }
  }
  return out;
}

protocol::Hello hello(const std::string& node) {
  protocol::Hello h;
  h.node_id = node;
  h.slots = 2;
  h.client_address = "127.0.0.1:7000";
  return h;
}

proxy::ProxyOptions options() {
  proxy::ProxyOptions o;
  o.proxy_id = "proxy-test";
  o.prefetch = 0;
  o.node_timeout_ms = 5000;
  return o;
}

// node-a joined; turns committed by DiskCommit with its writer thread, its
// landings posted to `io`, which the test runs.
struct Proxy {
  Proxy()
      : core(store, options()),
        retry(io, log::get("test"), [this] { retried = true; }),
        commit(
            store,
            [this](std::vector<proxy::Outgoing> out) {
              for (auto& o : out) sent.push_back(std::move(o));
            },
            0, retry, {}, {},
            proxy::DiskCommit::Background{
                [this](std::function<void()> f) { boost::asio::post(io, std::move(f)); },
                [this] { commit.flush(core); }}) {
    REQUIRE(core.recover(0).ok());
    REQUIRE(core.on_hello(hello("node-a"), "peer-a", 0).accepted);
    REQUIRE(core.staged().commit().ok());
    core.take_outbox();
    store.writes = 0;  // from here on
    synced_before = store.synced_writes();
  }
  int synced() const { return store.synced_writes() - synced_before; }
  void submit(const std::string& prefix, int jobs) {
    core.on_message("node-a", submit_of(prefix, jobs), 1);
    commit.flush(core);
  }
  // Runs the loop until `done` or a 10-second deadline.
  template <class Done>
  bool run_until(Done done) {
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      io.restart();
      io.run_for(10ms);
    }
    return done();
  }
  bool stored(const std::string& key) {
    std::string value;
    return store.get(key, &value).ok();
  }

  boost::asio::io_context io;
  FlakyStore store;
  proxy::ProxyCore core;
  bool retried = false;
  int synced_before = 0;
  net::StorageRetry retry;
  std::vector<proxy::Outgoing> sent;
  proxy::DiskCommit commit;  // last: its writer stops before the rest goes
};

TEST_CASE("disk commit: a large write is made off the loop, and what came meanwhile waits for it") {
  Proxy p;
  p.submit("a", 100);  // a hundred specs: a write for the writer thread
  CHECK(p.commit.writing());
  CHECK(acked(p.sent).empty());  // nothing acknowledged before it lands
  // The loop goes on: a second submission is staged and read back (from
  // the stage) while the first is being written.
  p.submit("b", 3);
  CHECK(p.core.find_job("b0").has_value());
  CHECK(p.core.find_job("a99").has_value());

  // The first lands: its ACK leaves, then the second is committed (small:
  // in place) and acknowledged after it.
  REQUIRE(p.run_until([&] { return acked(p.sent).size() == 103; }));
  auto tickets = acked(p.sent);
  CHECK(tickets.front() == "a0");
  CHECK(tickets[99] == "a99");
  CHECK(tickets[100] == "b0");
  CHECK_FALSE(p.commit.writing());
  CHECK(p.store.writes.load() == 2);
  CHECK(p.synced() == 2);
  CHECK(p.stored("s/a0"));
  CHECK(p.stored("s/b2"));
}

TEST_CASE("disk commit: a write that fails on the writer thread is retried, its ACKs first") {
  Proxy p;
  p.store.fail_next = true;
  p.submit("a", 100);
  CHECK(p.commit.writing());
  p.submit("b", 3);
  // It fails: nothing is acknowledged, everything stays readable, and a
  // retry is armed.
  REQUIRE(p.run_until([&] { return !p.commit.writing(); }));
  CHECK(acked(p.sent).empty());
  CHECK(p.commit.failing());
  CHECK_FALSE(p.stored("s/a0"));
  CHECK(p.core.find_job("a0").has_value());
  CHECK(p.core.find_job("b2").has_value());
  // The retry commits both, and the first submission's ACK leaves first.
  REQUIRE(p.run_until([&] { return p.retried; }));
  p.commit.flush(p.core);
  REQUIRE(p.run_until([&] { return acked(p.sent).size() == 103; }));
  CHECK(acked(p.sent).front() == "a0");
  CHECK(acked(p.sent).back() == "b2");
  CHECK(p.stored("s/a0"));
  CHECK(p.stored("s/b2"));
  CHECK_FALSE(p.commit.failing());
}

TEST_CASE("disk commit: stopping waits for the write in flight and commits the rest in place") {
  Proxy p;
  p.submit("a", 100);
  p.submit("b", 100);  // staged while the first is written
  CHECK(p.commit.writing());
  p.commit.flush_at_stop(p.core);  // the loop never runs again
  CHECK_FALSE(p.commit.writing());
  CHECK(p.store.writes.load() == 2);
  CHECK(acked(p.sent).size() == 200);
  CHECK(p.stored("s/a99"));
  CHECK(p.stored("s/b99"));
  // The first write's landing, posted to the loop, finds nothing left to do.
  p.io.restart();
  p.io.poll();
  CHECK(acked(p.sent).size() == 200);
}

TEST_CASE("disk commit: no JOB overtakes a WELCOME that waits for the write in flight") {
  Proxy p;
  // node-b joins in the turn of a large submission: its WELCOME leaves
  // once that write lands.
  p.core.on_message("node-a", submit_of("a", 100), 1);
  REQUIRE(p.core.on_hello(hello("node-b"), "peer-b", 1).accepted);
  p.commit.flush(p.core);
  REQUIRE(p.commit.writing());
  // A dispatch round while it is written gives node-b jobs too.
  p.core.dispatch(2);
  p.commit.flush(p.core);
  auto first = [&](auto is) {
    for (std::size_t i = 0; i < p.sent.size(); ++i) {
      if (p.sent[i].node_id == "node-b" && is(p.sent[i].message)) return i;
    }
    return p.sent.size();
  };
  auto first_job = [&] {
    return first(
        [](const protocol::Message& m) { return std::holds_alternative<protocol::Job>(m); });
  };
  auto first_welcome = [&] {
    return first(
        [](const protocol::Message& m) { return std::holds_alternative<protocol::Welcome>(m); });
  };
  CHECK(first_job() == p.sent.size());  // held back, while node-a's went
  REQUIRE(p.run_until([&] { return first_job() < p.sent.size(); }));
  CHECK(first_welcome() < first_job());
}

TEST_CASE("disk commit: the proxy's HTTP shows a result only once it is durable") {
  FlakyStore store;
  proxy::ProxyCore core(store, options());
  REQUIRE(core.recover(0).ok());
  REQUIRE(core.on_hello(hello("node-a"), "peer-a", 0).accepted);
  core.on_message("node-a", submit_of("t", 1), 1);
  core.dispatch(1);
  REQUIRE(core.staged().commit().ok());
  protocol::JobReport r;
  r.ticket = "t0";
  r.state = protocol::JobState::kDone;
  r.node = "node-a";
  r.attempts = 1;
  r.has_result = true;
  r.result.state = protocol::JobState::kDone;
  r.result.node = "node-a";
  r.result.attempt = 1;
  r.result.text = "slept";
  core.on_message("node-a", protocol::Result{{r}}, 2);

  protocol::ClientTokens tokens;
  proxy::RoundHistogram rounds;
  proxy::History history;
  auto job = [&] {
    auto reply = proxy::handle_http("GET", "/api/jobs/t0", "", tokens, &core, rounds, history, 3);
    REQUIRE(reply.status == 200);
    return reply.body;
  };
  // The dashboard's list of recent jobs (the cluster's state).
  auto listed = [&] {
    auto reply = proxy::handle_http("GET", "/api/state", "", tokens, &core, rounds, history, 3);
    REQUIRE(reply.status == 200);
    return reply.body.find("\"t0\"") != std::string::npos;
  };
  // Staged, then being written: running, no result, not listed.
  CHECK(job().find("\"RUNNING\"") != std::string::npos);
  CHECK(job().find("slept") == std::string::npos);
  CHECK_FALSE(listed());
  const storage::WriteBatch::Ops& ops = core.staged().lift_in_place();
  CHECK(job().find("\"RUNNING\"") != std::string::npos);
  CHECK(job().find("slept") == std::string::npos);
  CHECK_FALSE(listed());
  // Durable: the result.
  REQUIRE(store.write_ops(ops, true).ok());
  core.staged().landed();
  CHECK(job().find("\"DONE\"") != std::string::npos);
  CHECK(job().find("slept") != std::string::npos);
  CHECK(listed());
}

}  // namespace
}  // namespace jc
