// A single proxy's commit that waits a moment for the results of the jobs it
// just sent (CommitHold, DiskCommit): the decisions alone, then a whole
// submit-dispatch-result exchange through DiskCommit with a real core.
#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "common/log.h"
#include "net/storage_retry.h"
#include "protocol/messages.h"
#include "reverse_proxy/commit_path.h"
#include "reverse_proxy/proxy_core.h"
#include "storage/store.h"

namespace jc {
namespace {

using proxy::CommitHold;
using Decision = CommitHold::Decision;
using namespace std::chrono_literals;

protocol::JobSpec sleep_spec(const std::string& ticket, const std::string& origin) {
  protocol::JobSpec s;
  s.kind = protocol::JobKind::kSleep;
  s.sleep_ms = 0;
  s.ticket = ticket;
  s.origin = origin;
  return s;
}

protocol::Hello hello(const std::string& id) {
  protocol::Hello h;
  h.node_id = id;
  h.slots = 2;
  h.client_address = "127.0.0.1:7000";
  return h;
}

protocol::JobReport done(const std::string& ticket, const std::string& node) {
  protocol::JobReport r;
  r.ticket = ticket;
  r.state = protocol::JobState::kDone;
  r.node = node;
  r.attempts = 1;
  r.has_result = true;
  r.result.state = protocol::JobState::kDone;
  r.result.node = node;
  r.result.attempt = 1;
  r.result.text = "slept";
  return r;
}

template <class T>
std::size_t count_to(const std::vector<proxy::Outgoing>& out, const std::string& node) {
  std::size_t n = 0;
  for (const auto& o : out) n += o.node_id == node && std::holds_alternative<T>(o.message);
  return n;
}

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

TEST_CASE("commit hold: a 0-ms job's submit and result share one synced write") {
  boost::asio::io_context io;
  storage::MemoryStore store;
  proxy::ProxyOptions options;
  options.proxy_id = "proxy-test";
  options.prefetch = 0;
  options.node_timeout_ms = 5000;
  proxy::ProxyCore core(store, options);
  REQUIRE(core.recover(0).ok());
  REQUIRE(core.on_hello(hello("origin"), "peer-o", 0).accepted);
  REQUIRE(core.staged().commit().ok());
  core.take_outbox();

  net::StorageRetry retry(io, log::get("test"), [] {});
  std::vector<proxy::Outgoing> sent;
  std::vector<CommitHold::Clock::duration> later;
  proxy::DiskCommit commit(
      store,
      [&](std::vector<proxy::Outgoing> out) {
        for (auto& o : out) sent.push_back(std::move(o));
      },
      0, retry, 500ms, [&](CommitHold::Clock::duration d) { later.push_back(d); });
  const int synced_before = store.synced_writes();

  protocol::Submit s;
  s.jobs = {sleep_spec("t1", "origin")};
  core.on_message("origin", s, 1);
  core.dispatch(1);
  commit.flush(core);
  // JOB left; the ACK waits with the stage, and a flush is arranged.
  CHECK(count_to<protocol::Job>(sent, "origin") == 1);
  CHECK(count_to<protocol::Ack>(sent, "origin") == 0);
  CHECK(later.size() == 1);
  CHECK(store.synced_writes() == synced_before);
  std::string spec;
  CHECK_FALSE(store.get("s/t1", &spec).ok());

  SUBCASE("the result comes within the hold: one synced write for both") {
    core.on_message("origin", protocol::Result{{done("t1", "origin")}}, 2);
    commit.flush(core);
    CHECK(store.synced_writes() == synced_before + 1);
    CHECK(store.get("s/t1", &spec).ok());
    std::string finished;
    CHECK(store.get("f/t1", &finished).ok());
    CHECK(count_to<protocol::Ack>(sent, "origin") == 2);  // the submission's, the result's
    CHECK(count_to<protocol::Result>(sent, "origin") == 1);
    REQUIRE(core.find_job("t1").has_value());
    CHECK(core.find_job("t1")->state == protocol::JobState::kDone);
  }
  SUBCASE("the job outlasts the hold: the arranged flush commits the submission") {
    // The hold is 500 ms: the flush that flush_later arranges comes after it.
    auto deadline = CommitHold::Clock::now() + 10s;
    while (store.synced_writes() == synced_before && CommitHold::Clock::now() < deadline) {
      std::this_thread::sleep_for(20ms);
      commit.flush(core);
    }
    CHECK(store.synced_writes() == synced_before + 1);
    CHECK(store.get("s/t1", &spec).ok());
    CHECK(count_to<protocol::Ack>(sent, "origin") == 1);
    CHECK(count_to<protocol::Result>(sent, "origin") == 0);
  }
  SUBCASE("the proxy stops during the hold: the stage is committed") {
    commit.flush_at_stop(core);
    CHECK(store.synced_writes() == synced_before + 1);
    CHECK(store.get("s/t1", &spec).ok());
    CHECK(count_to<protocol::Ack>(sent, "origin") == 1);
  }
}

TEST_CASE("commit hold: without it, the submission's commit is synced at once") {
  boost::asio::io_context io;
  storage::MemoryStore store;
  proxy::ProxyOptions options;
  options.proxy_id = "proxy-test";
  options.prefetch = 0;
  proxy::ProxyCore core(store, options);
  REQUIRE(core.recover(0).ok());
  REQUIRE(core.on_hello(hello("origin"), "peer-o", 0).accepted);
  REQUIRE(core.staged().commit().ok());
  core.take_outbox();
  net::StorageRetry retry(io, log::get("test"), [] {});
  std::vector<proxy::Outgoing> sent;
  proxy::DiskCommit commit(
      store,
      [&](std::vector<proxy::Outgoing> out) {
        for (auto& o : out) sent.push_back(std::move(o));
      },
      0, retry);
  const int synced_before = store.synced_writes();
  protocol::Submit s;
  s.jobs = {sleep_spec("t1", "origin")};
  core.on_message("origin", s, 1);
  core.dispatch(1);
  commit.flush(core);
  CHECK(store.synced_writes() == synced_before + 1);
  CHECK(count_to<protocol::Ack>(sent, "origin") == 1);
  core.on_message("origin", protocol::Result{{done("t1", "origin")}}, 2);
  commit.flush(core);
  CHECK(store.synced_writes() == synced_before + 2);  // two fsyncs in a row
}

}  // namespace jc
