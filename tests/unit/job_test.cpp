// Unit tests of protocol/job.h and protocol/job_json.h: the one job state
// machine, row by row, and the one JSON shape of a job.
#include <doctest/doctest.h>

#include <optional>
#include <vector>

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
