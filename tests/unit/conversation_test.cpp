// The client protocol's pure handler (client/conversation.h) and the policy
// of reads that wait for the proxy (client/lookups.h), without sockets: a
// fake node answers when each test says so.
#include <doctest/doctest.h>

#include <deque>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "client/conversation.h"
#include "client/lookups.h"

namespace jc::client {
namespace {

using protocol::JobReport;
using protocol::JobState;

constexpr TimeMs kNow = 1'800'000'000'000;

// A node that keeps every request until the test answers it.
struct FakeNode : Backend {
  std::vector<protocol::JobSpec> submitted;
  std::deque<std::function<void(const std::string&)>> submit_done;
  std::vector<LookupRequest> lookups;
  std::deque<LookupDone> lookup_done;
  std::vector<std::pair<std::string, std::string>> cancels;  // ticket, requester
  bool connected = true;
  bool full = false;
  std::size_t queued = 0, queue_limit = 1000;  // queue_full() past queue_limit
  bool drained = false;
  protocol::ClientTokens tokens_;
  JobLimits limits_;

  void submit(protocol::JobSpec spec, std::function<void(const std::string&)> done) override {
    submitted.push_back(std::move(spec));
    submit_done.push_back(std::move(done));
  }
  void lookup(LookupRequest request, LookupDone done) override {
    lookups.push_back(std::move(request));
    lookup_done.push_back(std::move(done));
  }
  void cancel(const std::string& ticket, const std::string& requester, LookupDone done) override {
    cancels.emplace_back(ticket, requester);
    lookup_done.push_back(std::move(done));
  }
  void getall(std::function<void(const std::vector<protocol::GetAllEntry>&)> done) override {
    done({});
  }
  void stats(std::function<void(const protocol::ClusterStats&, bool)> done) override {
    done({}, connected);
  }
  void drain() override { drained = true; }
  bool proxy_connected() const override { return connected; }
  bool storage_full() const override { return full; }
  bool queue_full(std::size_t adding) const override { return queued + adding > queue_limit; }
  std::uint64_t max_queue() const override { return queue_limit; }
  const protocol::ClientTokens& tokens() const override { return tokens_; }
  const JobLimits& limits() const override { return limits_; }
  TimeMs now() const override { return kNow; }
  std::set<std::string> offers{"label:gpu"};
  bool offered(const std::string& need) const override { return offers.count(need) > 0; }
  bool available(const std::string& need) const override { return offers.count(need) > 0; }

  // Answers the oldest lookup still open.
  void answer(const JobReport& r, bool unreachable = false) {
    REQUIRE(!lookup_done.empty());
    auto done = std::move(lookup_done.front());
    lookup_done.pop_front();
    done(r, unreachable);
  }
};

struct Client {
  explicit Client(FakeNode& node, std::string peer = "127.0.0.1:5555")
      : conversation(
            node, std::move(peer), [] { return std::shared_ptr<void>(); }, [this] { ++wakes; }) {}
  Conversation conversation;
  int wakes = 0;
  std::string out;
  // Sends `lines` and returns everything answered so far.
  const std::string& say(std::string_view lines) {
    conversation.feed(lines);
    return read();
  }
  const std::string& read() {
    out += conversation.take_output();
    return out;
  }
};

JobReport done_report(const std::string& t) {
  JobReport r;
  r.ticket = t;
  r.state = JobState::kDone;
  r.node = "n2";
  r.attempts = 1;
  r.has_result = true;
  r.result.state = JobState::kDone;
  r.result.text = "Executed Job[" + t + "] for 50 milliseconds";
  return r;
}

JobReport running_report(const std::string& t) {
  JobReport r;
  r.ticket = t;
  r.state = JobState::kRunning;
  r.node = "n2";
  r.attempts = 1;
  return r;
}

}  // namespace

TEST_CASE("conversation: the lines after a wait are carried out once it has answered") {
  FakeNode node;
  Client c(node);
  // The pipeline: printf 'wait T\nstatus T\nrT\n' | nc
  c.say("wait T\nstatus T\nrT\n");
  REQUIRE(node.lookups.size() == 1);  // status and r wait for the wait
  CHECK(node.lookups[0].wait);
  CHECK(c.out.empty());
  node.answer(done_report("T"));
  // Now status and r are asked, and answered as final: never RUNNING again.
  REQUIRE(node.lookups.size() == 3);
  CHECK_FALSE(node.lookups[1].wait);
  node.answer(done_report("T"));
  node.answer(done_report("T"));
  CHECK(c.read() ==
        "Result: Executed Job[T] for 50 milliseconds\n"
        "Status: T DONE node=n2 attempt=1\n"
        "Result: Executed Job[T] for 50 milliseconds\n");
}

TEST_CASE("conversation: submits pipeline at once and their replies keep their order") {
  FakeNode node;
  Client c(node);
  c.say("10\nsleep 20\nsleep --priority 5 --delay 1000 30\n");
  REQUIRE(node.submitted.size() == 3);  // all three asked for before any is stored
  CHECK(node.submitted[2].priority == 5);
  CHECK(node.submitted[2].not_before_ms == kNow + 1000);
  // Stored out of order: the replies still leave in order.
  node.submit_done[2]("t3");
  node.submit_done[0]("t1");
  CHECK(c.read() == "Ticket ID: t1\n");
  node.submit_done[1]("t2");
  CHECK(c.read() == "Ticket ID: t1\nTicket ID: t2\nTicket ID: t3\n");
}

TEST_CASE("conversation: a wait's timed-out answer, then submits after it, in order") {
  FakeNode node;
  Client c(node);
  c.say("wait T 2\n5\n");
  CHECK(node.submitted.empty());  // accepted after the wait, as the protocol says
  node.answer(running_report("T"));
  REQUIRE(node.submitted.size() == 1);
  node.submit_done[0]("t9");
  CHECK(c.read() == "Result has not been executed yet, come back later.\nTicket ID: t9\n");
}

TEST_CASE("conversation: a full disk refuses submits and answers reads") {
  FakeNode node;
  node.full = true;
  Client c(node);
  c.say("10\nrun echo hi\nrX\n");
  CHECK(node.submitted.empty());
  node.answer(done_report("X"));
  CHECK(c.read() ==
        "ERR storage full, try again later\nERR storage full, try again later\n"
        "Result: Executed Job[X] for 50 milliseconds\n");
}

TEST_CASE("conversation: a full queue (MAX_QUEUE) refuses submits and answers reads") {
  FakeNode node;
  node.queued = node.queue_limit;
  Client c(node);
  c.say("10\nrun echo hi\nrX\n");
  CHECK(node.submitted.empty());
  node.answer(done_report("X"));
  CHECK(c.read() ==
        "ERR queue is full, try again later\nERR queue is full, try again later\n"
        "Result: Executed Job[X] for 50 milliseconds\n");
  node.queued = node.queue_limit - 1;  // room again
  c.say("10\n");
  CHECK(node.submitted.size() == 1);
}

TEST_CASE("conversation: run jobs get the node's limits, and asking above one is an error") {
  FakeNode node;
  node.limits_.maxima.memory_mb = 512;
  Client c(node);
  c.say("run --memory 1024 echo hi\nrun echo hi\n");
  REQUIRE(node.submitted.size() == 1);
  CHECK(node.submitted[0].limits.memory_mb == node.limits_.defaults.memory_mb);
  CHECK(node.submitted[0].limits.cpu_ms == node.submitted[0].limits.timeout_ms);
  CHECK(c.read() ==
        "ERR --memory 1024 MB is above this node's maximum of 512 MB (JOB_MAX_MEMORY_MB)\n");
}

TEST_CASE("conversation: with CLIENT_TOKENS, auth first, and others' jobs are unknown") {
  FakeNode node;
  node.tokens_ = protocol::ClientTokens::parse("ann:ann-token-0123456789\nbob:bob-token-0123456789\n",
                                               "test");
  Client c(node);
  c.say("rT\n");
  CHECK(c.out == "ERR auth required: send auth <token> first\n");
  CHECK(node.lookups.empty());
  c.say("auth ann-token-0123456789\nrT\ncancel T\n");
  JobReport bobs = done_report("T");
  bobs.owner = "bob";
  node.answer(bobs);
  node.answer(bobs);
  CHECK(node.cancels.at(0) == std::make_pair(std::string("T"), std::string("ann")));
  CHECK(c.read() ==
        "ERR auth required: send auth <token> first\nOK auth ann\nERR unknown ticket 'T'\n"
        "ERR unknown ticket 'T'\n");
}

TEST_CASE("conversation: cancel without the proxy says so at once") {
  FakeNode node;
  node.connected = false;
  Client c(node);
  CHECK(c.say("cancel T\n") == "ERR cannot cancel now: the proxy is unreachable; try again\n");
  CHECK(node.cancels.empty());
}

TEST_CASE("conversation: exit answers, ends, and what follows is ignored") {
  FakeNode node;
  Client c(node);
  c.say("exit\n10\n");
  CHECK(c.out == "Come back later to check your results.\n");
  CHECK(node.submitted.empty());
  CHECK(c.conversation.finished());
  CHECK(c.conversation.stopped_reading());
}

TEST_CASE("conversation: after the client's EOF every command read is still answered") {
  FakeNode node;
  Client c(node);
  c.say("wait T\nrT\n");
  c.conversation.end_of_input();
  CHECK_FALSE(c.conversation.finished());
  node.answer(done_report("T"));
  CHECK_FALSE(c.conversation.finished());  // r is still owed
  node.answer(done_report("T"));
  c.read();
  CHECK(c.conversation.finished());
  CHECK(c.wakes == 2);
}

TEST_CASE("conversation: an answer after the connection closed is dropped") {
  FakeNode node;
  Client c(node);
  c.say("rT\n");
  c.conversation.close();
  node.answer(done_report("T"));
  CHECK(c.read().empty());
  CHECK(c.wakes == 0);
}

TEST_CASE("conversation: drain is for loopback peers, and a here-document cut by EOF says so") {
  FakeNode node;
  Client far(node, "10.0.0.7:4000");
  CHECK(far.say("drain\n").rfind("ERR drain is accepted only from this machine", 0) == 0);
  CHECK_FALSE(node.drained);
  Client near(node);
  CHECK(near.say("drain\n").rfind("OK draining", 0) == 0);
  CHECK(node.drained);
  Client doc(node);
  doc.say("run <<END\necho hi\n");
  doc.conversation.end_of_input();
  CHECK(doc.read() == "ERR the connection ended inside the here-document (no line 'END')\n");
}

TEST_CASE("conversation: a client too far ahead of its replies is not read from") {
  FakeNode node;
  Client c(node);
  std::string lines;
  for (std::size_t i = 0; i < Conversation::kMaxPendingReplies; ++i) lines += "rT\n";
  c.say(lines);
  CHECK(c.conversation.backlogged(0));
  CHECK_FALSE(c.conversation.idle());
}

// ---- the lookup book ---------------------------------------------------------

namespace {

struct View {
  std::map<std::string, JobReport> known;  // what the node itself knows
  bool connected = true;
  bool joined = true;
  NodeView get() {
    NodeView v;
    v.connected = connected;
    v.ever_joined = joined;
    v.local = [this](const std::string& t) {
      if (auto it = known.find(t); it != known.end()) return it->second;
      JobReport r;
      r.ticket = t;
      return r;
    };
    v.unforwarded = [](const std::string&) { return false; };
    return v;
  }
};

struct Answers {
  std::vector<std::pair<JobReport, bool>> got;
  LookupDone done() {
    return [this](const JobReport& r, bool unreachable) { got.emplace_back(r, unreachable); };
  }
};

const std::string kIssued = "ab12cd-7-AAAAAAAAAAA";

}  // namespace

TEST_CASE("lookups: a final result known here answers at once, without the proxy") {
  LookupBook book;
  View view;
  view.known["T"] = done_report("T");
  Answers a;
  auto fx = book.start({"T", false, std::nullopt, false}, a.done(), view.get());
  REQUIRE(a.got.size() == 1);
  CHECK(a.got[0].first.state == JobState::kDone);
  CHECK(fx.ask.empty());
  CHECK(fx.arm.empty());
}

TEST_CASE("lookups: r asks the proxy once and answers with its report") {
  LookupBook book;
  View view;
  Answers a;
  auto fx = book.start({"T", false, std::nullopt, false}, a.done(), view.get());
  CHECK(fx.ask == std::vector<std::string>{"T"});
  REQUIRE(fx.arm.size() == 1);
  CHECK(fx.arm[0].second == LookupBook::kProxyAnswerTimeoutMs);
  auto second = book.start({"T", false, std::nullopt, false}, a.done(), view.get());
  CHECK(second.ask.empty());  // one question per ticket
  auto done = book.on_report(running_report("T"), view.get(), kNow);
  CHECK(a.got.size() == 2);
  CHECK(done.disarm.size() == 2);
  CHECK(book.size() == 0);
}

TEST_CASE("lookups: a ticket shaped as nodes issue them is asked again before it is unknown") {
  LookupBook book;
  View view;
  Answers a;
  book.start({kIssued, false, std::nullopt, false}, a.done(), view.get());
  JobReport unknown;
  unknown.ticket = kIssued;
  book.on_report(unknown, view.get(), kNow);
  CHECK(a.got.empty());  // may still be on its way from the node that gave it
  CHECK(book.asking_again() == std::vector<std::string>{kIssued});
  book.on_report(unknown, view.get(), kNow + LookupBook::kUnknownGraceMs);
  REQUIRE(a.got.size() == 1);
  CHECK(a.got[0].first.state == JobState::kUnknown);
  // Any other ticket is unknown at the first answer.
  book.start({"plain", false, std::nullopt, false}, a.done(), view.get());
  unknown.ticket = "plain";
  book.on_report(unknown, view.get(), kNow);
  CHECK(a.got.size() == 2);
}

TEST_CASE("lookups: a wait's grace for a ticket nobody knows yet counts again after the proxy is lost") {
  LookupBook book;
  View view;
  Answers a;
  book.start({kIssued, true, std::nullopt, false}, a.done(), view.get());
  JobReport unknown;
  unknown.ticket = kIssued;
  book.on_report(unknown, view.get(), kNow);
  // The node loses the proxy (a failover: the node that gave the ticket may
  // be looking for the new leader too) and is back much later.
  view.connected = false;
  book.on_proxy_lost(view.get());
  view.connected = true;
  CHECK(book.tickets() == std::vector<std::string>{kIssued});  // asked again on the join
  book.on_report(unknown, view.get(), kNow + 3 * LookupBook::kUnknownGraceMs);
  CHECK(a.got.empty());
  book.on_report(unknown, view.get(), kNow + 4 * LookupBook::kUnknownGraceMs);
  REQUIRE(a.got.size() == 1);
  CHECK(a.got[0].first.state == JobState::kUnknown);
}

TEST_CASE("lookups: while the proxy says the ticket's node is away, a wait waits on and r cannot "
          "check it") {
  LookupBook book;
  View view;
  Answers w, r;
  book.start({kIssued, true, std::nullopt, false}, w.done(), view.get());
  book.start({kIssued, false, std::nullopt, false}, r.done(), view.get());
  JobReport away;
  away.ticket = kIssued;
  away.node = "n1";  // the proxy has not received it, and n1, whose tickets look like it, is away
  book.on_report(away, view.get(), kNow);
  REQUIRE(r.got.size() == 1);
  CHECK(r.got[0].first.state == JobState::kUnknown);
  CHECK(r.got[0].first.node.empty());
  CHECK(r.got[0].second);  // "cannot check now", not "unknown ticket"
  // The wait asks again for as long as that lasts: its grace does not run.
  book.on_report(away, view.get(), kNow + 10 * LookupBook::kUnknownGraceMs);
  CHECK(w.got.empty());
  CHECK(book.asking_again() == std::vector<std::string>{kIssued});
  // n1 is back and has sent it.
  book.on_report(done_report(kIssued), view.get(), kNow + 11 * LookupBook::kUnknownGraceMs);
  REQUIRE(w.got.size() == 1);
  CHECK(w.got[0].first.state == JobState::kDone);
}

TEST_CASE("lookups: a wait with seconds for a ticket whose node is away says it cannot be checked") {
  LookupBook book;
  View view;
  Answers w;
  auto fx = book.start({kIssued, true, 2.0, false}, w.done(), view.get());
  REQUIRE(fx.arm.size() == 1);
  JobReport away;
  away.ticket = kIssued;
  away.node = "n1";
  book.on_report(away, view.get(), kNow);
  book.on_timeout(fx.arm[0].first, view.get());
  REQUIRE(w.got.size() == 1);
  CHECK(w.got[0].first.state == JobState::kUnknown);
  CHECK(w.got[0].second);
}

TEST_CASE("lookups: a wait whose seconds run out answers what the proxy last said") {
  LookupBook book;
  View view;
  Answers a;
  auto fx = book.start({"T", true, 2.0, false}, a.done(), view.get());
  REQUIRE(fx.arm.size() == 1);
  CHECK(fx.arm[0].second == 2000);
  book.on_report(running_report("T"), view.get(), kNow);
  CHECK(a.got.empty());  // a wait answers only a final result
  book.on_timeout(fx.arm[0].first, view.get());
  REQUIRE(a.got.size() == 1);
  CHECK(a.got[0].first.state == JobState::kRunning);
  CHECK_FALSE(a.got[0].second);
}

TEST_CASE("lookups: losing the proxy answers r from what the node alone may say") {
  LookupBook book;
  View view;
  view.known["T"] = running_report("T");  // a state another node may be past
  Answers r, w;
  book.start({"T", false, std::nullopt, false}, r.done(), view.get());
  book.start({"T", true, std::nullopt, false}, w.done(), view.get());
  view.connected = false;
  book.on_proxy_lost(view.get());
  REQUIRE(r.got.size() == 1);
  CHECK(r.got[0].first.state == JobState::kUnknown);  // "cannot check now"
  CHECK(r.got[0].second);
  CHECK(w.got.empty());  // a wait keeps waiting
}

TEST_CASE("lookups: before the first join an unknown ticket waits for it") {
  LookupBook book;
  View view;
  view.connected = false;
  view.joined = false;
  Answers a;
  auto fx = book.start({"T", false, std::nullopt, false}, a.done(), view.get());
  CHECK(a.got.empty());
  CHECK(fx.ask.empty());  // asked when the node joins (tickets())
  CHECK(book.tickets() == std::vector<std::string>{"T"});
}

TEST_CASE("conversation: a counted here-document behind a wait stays whole and its bytes data") {
  FakeNode node;
  Client c(node);
  // A file whose lines would be commands, and the terminator, if they were
  // read as lines.
  const std::string file = "cancel T\nEND\ndrain\n";
  c.say("wait T\nrun <<END\n@@ file f " + std::to_string(file.size()) + "\n" + file +
        "@@ command\ncat f\nEND\nstatus T\n");
  CHECK(node.submitted.empty());
  CHECK(node.cancels.empty());
  node.answer(done_report("T"));
  REQUIRE(node.submitted.size() == 1);
  REQUIRE(node.submitted[0].files.size() == 1);
  CHECK(node.submitted[0].files[0].content == file);
  CHECK(node.cancels.empty());
  CHECK_FALSE(node.drained);
  CHECK(node.lookups.size() == 2);  // the wait, then status after the here-document
}

TEST_CASE("conversation: before auth a here-document is one refused command, not many") {
  FakeNode node;
  node.tokens_ = protocol::ClientTokens::parse("alice:0123456789abcdef0123\n", "");
  Client c(node);
  std::string out = c.say("run <<END\n@@ command\nstats\nEND\n");
  CHECK(out == "ERR auth required: send auth <token> first\n");
  CHECK(node.submitted.empty());
}

TEST_CASE("conversation: a section counted past the limit is answered, then the connection ends") {
  FakeNode node;
  Client c(node);
  std::string out = c.say("stats\nrun <<END\n@@ stdin 5000000\nEND\ncancel T\n");
  CHECK(out.find("ERR a here-document section of 5000000 bytes is over the limit") !=
        std::string::npos);
  CHECK(c.conversation.stopped_reading());
  CHECK(c.conversation.finished());
  CHECK(node.cancels.empty());
}

}  // namespace jc::client
