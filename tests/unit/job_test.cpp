// Unit tests of protocol/job.h and protocol/job_json.h: the one job state
// machine, row by row, the one JSON shape of a job, and the sentence a
// finished sleep shows.
#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <vector>

#include "protocol/archive.h"
#include "protocol/codec.h"
#include "protocol/job.h"
#include "protocol/job_json.h"

TEST_CASE("job json: one shape, queued and final") {
  jc::protocol::JobReport q;
  q.ticket = "t-1";
  q.state = jc::protocol::JobState::kQueued;
  q.priority = 5;
  q.not_before_ms = 1'000;
  q.queue_position = 3;
  auto j = jc::protocol::job_json(q);
  CHECK(j["ticket"] == "t-1");
  CHECK(j["state"] == "QUEUED");
  CHECK(j["node"].is_null());
  CHECK(j["priority"] == 5);
  CHECK(j["not_before"] == "1970-01-01T00:00:01.000Z");
  CHECK(j["queue_position"] == 3);
  CHECK_FALSE(j.contains("result"));
  jc::protocol::JobReport d = q;
  d.state = jc::protocol::JobState::kDone;
  d.node = "n1";
  d.has_result = true;
  d.result.text = "ok";
  d.result.start_ms = 10;
  d.result.end_ms = 25;
  auto f = jc::protocol::job_json(d);
  CHECK(f["node"] == "n1");
  CHECK(f["result"] == "ok");
  CHECK(f["wall_ms"] == 15);
  CHECK_FALSE(f.contains("priority"));
}

TEST_CASE("job states: every row of the one state machine") {
  using jc::protocol::JobEvent;
  using jc::protocol::JobState;
  using jc::protocol::next_state;
  const std::vector<JobState> states = {JobState::kQueued,    JobState::kRunning, JobState::kDone,
                                        JobState::kFailed,    JobState::kTimeout,
                                        JobState::kCancelled, JobState::kUnknown,
                                        JobState::kExpired};
  auto is_final = [](JobState s) { return jc::protocol::is_final(s); };
  // The whole table, written out: what each (state, event) gives.
  auto expected = [&](JobState from, JobEvent e, JobState outcome) -> std::optional<JobState> {
    if (is_final(from) || from == JobState::kUnknown || from == JobState::kExpired) {
      return std::nullopt;  // final stays final; unknown and expired are no job's state
    }
    switch (e) {
      case JobEvent::kDispatch:
        return from == JobState::kQueued ? std::optional(JobState::kRunning) : std::nullopt;
      case JobEvent::kFinish:
        return is_final(outcome) ? std::optional(outcome) : std::nullopt;
      case JobEvent::kNodeLost:
        return from == JobState::kRunning ? std::optional(JobState::kQueued) : std::nullopt;
      case JobEvent::kGiveUp:
        return JobState::kFailed;
      case JobEvent::kCancel:
        return from == JobState::kQueued ? std::optional(JobState::kCancelled) : std::nullopt;
    }
    return std::nullopt;
  };
  int rows = 0;
  for (JobState from : states) {
    for (JobEvent e : {JobEvent::kDispatch, JobEvent::kNodeLost, JobEvent::kGiveUp,
                       JobEvent::kCancel}) {
      INFO("from ", static_cast<int>(from), " event ", static_cast<int>(e));
      CHECK(next_state(from, e) == expected(from, e, JobState::kDone));
      ++rows;
    }
    for (JobState outcome : states) {
      INFO("from ", static_cast<int>(from), " finish as ", static_cast<int>(outcome));
      CHECK(next_state(from, JobEvent::kFinish, outcome) ==
            expected(from, JobEvent::kFinish, outcome));
      ++rows;
    }
  }
  CHECK(rows == 96);  // 8 states: 4 events each, and a finish with each of 8 outcomes
  // The rows the proxy relies on, spelled out.
  CHECK(next_state(JobState::kQueued, JobEvent::kDispatch) == JobState::kRunning);
  CHECK(next_state(JobState::kRunning, JobEvent::kNodeLost) == JobState::kQueued);
  CHECK(next_state(JobState::kRunning, JobEvent::kFinish, JobState::kTimeout) ==
        JobState::kTimeout);
  CHECK(next_state(JobState::kQueued, JobEvent::kFinish, JobState::kDone) == JobState::kDone);
  CHECK_FALSE(next_state(JobState::kDone, JobEvent::kFinish, JobState::kFailed));
  CHECK_FALSE(next_state(JobState::kRunning, JobEvent::kDispatch));
  CHECK_FALSE(next_state(JobState::kRunning, JobEvent::kCancel));
}

TEST_CASE("job states: advance moves a state or says which row refused it") {
  using jc::protocol::JobEvent;
  using jc::protocol::JobState;
  JobState s = JobState::kQueued;
  CHECK_FALSE(jc::protocol::advance(s, JobEvent::kDispatch));
  CHECK(s == JobState::kRunning);
  CHECK_FALSE(jc::protocol::advance(s, JobEvent::kFinish, JobState::kTimeout));
  CHECK(s == JobState::kTimeout);
  auto refused = jc::protocol::advance(s, JobEvent::kFinish, JobState::kDone);
  REQUIRE(refused);
  CHECK(*refused == "refused transition from=TIMEOUT event=finish outcome=DONE");
  CHECK(s == JobState::kTimeout);
}

namespace {

// A finished 20-ms sleep as a node's executor reports it (version 9).
jc::protocol::JobResult finished_sleep() {
  jc::protocol::JobResult r;
  r.state = jc::protocol::JobState::kDone;
  r.node = "n1";
  r.sleep_ms = 20;
  r.start_ms = 1796640000000;  // 2026-12-07 10:40:00.000 UTC
  r.end_ms = 1796640000021;
  return r;
}

// `r` as a version-8 record: what an earlier build stored.
std::string version8_record(const jc::protocol::JobResult& r) {
  std::string out;
  jc::protocol::append_record_header(out, 8);
  jc::protocol::OutArchive ar(out, 8);
  ar << r;
  ar.flush();
  return out;
}

}  // namespace

TEST_CASE("shown text: a finished sleep's sentence is made where it is shown, from its fields") {
  using namespace jc::protocol;
  const std::string ticket = "p1-7-AbCdEfGhIjK";
  const std::string sentence = "Executed Job[p1-7-AbCdEfGhIjK] for 20 milliseconds from "
                               "2026-12-07 10:40:00.000 to 2026-12-07 10:40:00.021 on node n1";
  JobResult r = finished_sleep();
  CHECK(r.text.empty());
  CHECK(shown_text(r, ticket) == sentence);

  // Stored and sent without it: the record holds no sentence, and the
  // copy read back shows the same one (the times are UTC on every node).
  std::string record = to_record(r);
  CHECK(record.find("Executed") == std::string::npos);
  JobResult back;
  REQUIRE(from_record(record, back));
  CHECK(back == r);
  CHECK(shown_text(back, ticket) == sentence);

  // Through a frame, as RESULT carries it.
  JobReport report;
  report.ticket = ticket;
  report.state = JobState::kDone;
  report.has_result = true;
  report.result = r;
  JobReport sent;
  REQUIRE(from_bytes(to_bytes(report), sent));
  CHECK(shown_text(sent.result, sent.ticket) == sentence);
  CHECK(job_json(sent)["result"] == sentence);
}

TEST_CASE("shown text: results with a text of their own show it, records of version 8 included") {
  using namespace jc::protocol;
  // An earlier build stored the sentence itself; it reads as it was.
  JobResult old;
  old.state = JobState::kDone;
  old.node = "n2";
  old.text = "Executed Job[p1-3-AbCdEfGhIjK] for 5 milliseconds from x to y on node n2";
  JobResult back;
  REQUIRE(from_record(version8_record(old), back));
  CHECK(back.sleep_ms == -1);
  CHECK(shown_text(back, "p1-3-AbCdEfGhIjK") == old.text);

  // A cancelled sleep, a proxy's "gave up", a run job: their text as given.
  JobResult cancelled = finished_sleep();
  cancelled.state = JobState::kCancelled;
  cancelled.sleep_ms = -1;
  cancelled.text = "cancelled after 3 of 20 milliseconds";
  CHECK(shown_text(cancelled, "t") == cancelled.text);
  JobResult run;
  run.is_run = true;
  run.text = "exit 0";
  CHECK(shown_text(run, "t") == "exit 0");
  CHECK(shown_text(JobResult{}, "t").empty());
}
