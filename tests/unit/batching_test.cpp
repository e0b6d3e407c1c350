// Unit tests of protocol/batching.h: batches split to stay within a frame,
// nothing lost or reordered, other messages untouched.
#include "protocol/batching.h"

#include <doctest/doctest.h>

#include "protocol/codec.h"

namespace jc::protocol {
namespace {

JobReport big_report(const std::string& ticket, std::size_t bytes) {
  JobReport r;
  r.ticket = ticket;
  r.state = JobState::kDone;
  r.has_result = true;
  r.result.is_run = true;
  r.result.stdout_data.assign(bytes / 2, 'o');
  r.result.stderr_data.assign(bytes - bytes / 2, 'e');
  return r;
}

JobSpec spec_of(const std::string& ticket, std::size_t file_bytes) {
  JobSpec s;
  s.ticket = ticket;
  s.kind = JobKind::kRun;
  s.command = "cat data";
  s.files.push_back({"data", std::string(file_bytes, 'x')});
  return s;
}

}  // namespace

TEST_CASE("batching: results that add up past a frame go in several, in order, each within it") {
  Result batch;
  for (int i = 0; i < 5; ++i) batch.reports.push_back(big_report("t" + std::to_string(i), 32 << 20));
  auto pieces = split_batch(Message(std::move(batch)));
  REQUIRE(pieces.size() == 5);  // each 32 MiB report alone: over the 16 MiB budget
  int next = 0;
  for (const auto& p : pieces) {
    const auto& r = std::get<Result>(p);
    for (const auto& report : r.reports) CHECK(report.ticket == "t" + std::to_string(next++));
    CHECK(encode(p).size() < kMaxFrameBytes);
  }
  CHECK(next == 5);
}

TEST_CASE("batching: small items share a message up to the budget") {
  Result batch;
  for (int i = 0; i < 100; ++i) batch.reports.push_back(big_report("t" + std::to_string(i), 1 << 20));
  auto pieces = split_batch(Message(std::move(batch)), 16 << 20);
  CHECK(pieces.size() == 7);  // 15 reports of a little over 1 MiB per 16 MiB
  std::size_t total = 0;
  for (const auto& p : pieces) {
    total += std::get<Result>(p).reports.size();
    CHECK(approx_size(std::get<Result>(p).reports.front()) < (16u << 20));
  }
  CHECK(total == 100);
}

TEST_CASE("batching: RES_REQ keeps its requests in the first piece") {
  ResReq m;
  m.reports = {big_report("a", 12 << 20), big_report("b", 12 << 20)};
  m.requests = {"x", "y"};
  auto pieces = split_batch(Message(std::move(m)));
  REQUIRE(pieces.size() == 2);
  CHECK(std::get<ResReq>(pieces[0]).requests == std::vector<std::string>{"x", "y"});
  CHECK(std::get<ResReq>(pieces[1]).requests.empty());
  CHECK(std::get<ResReq>(pieces[1]).reports[0].ticket == "b");
  // An empty RES_REQ (the heartbeat) stays one message.
  CHECK(split_batch(Message(ResReq{})).size() == 1);
}

TEST_CASE("batching: SUBMIT pieces keep `first` and the local tickets of their own jobs") {
  Submit m;
  m.first = true;
  for (int i = 0; i < 40; ++i) m.jobs.push_back(spec_of("j" + std::to_string(i), 1 << 20));
  m.local = {"j3", "j39"};
  auto pieces = split_batch(Message(std::move(m)));
  REQUIRE(pieces.size() == 3);
  std::vector<std::string> locals;
  std::size_t jobs = 0;
  for (const auto& p : pieces) {
    const auto& s = std::get<Submit>(p);
    CHECK(s.first);
    jobs += s.jobs.size();
    for (const auto& t : s.local) {
      locals.push_back(t);
      bool own = false;
      for (const auto& j : s.jobs) own = own || j.ticket == t;
      CHECK(own);
    }
    CHECK(encode(p).size() < kMaxFrameBytes);
  }
  CHECK(jobs == 40);
  CHECK(locals == std::vector<std::string>{"j3", "j39"});
}

TEST_CASE("batching: SUBMIT pieces carry each job's given bytes with it") {
  Submit m;
  for (int i = 0; i < 40; ++i) m.jobs.push_back(spec_of("j" + std::to_string(i), 1 << 20));
  // Bytes for the first 30 jobs, but for the 5th: pieces write what they were given.
  for (int i = 0; i < 30; ++i) m.spec_bytes.push_back(i == 5 ? "" : to_bytes(m.jobs[i]));
  Submit whole = m;
  whole.spec_bytes.clear();
  std::vector<std::string> plain;
  for (const auto& p : split_batch(Message(whole))) plain.push_back(encode(p));
  auto pieces = split_batch(Message(std::move(m)));
  REQUIRE(pieces.size() == plain.size());
  std::size_t given = 0;
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    const auto& s = std::get<Submit>(pieces[i]);
    CHECK(s.spec_bytes.size() <= s.jobs.size());
    for (std::size_t k = 0; k < s.spec_bytes.size(); ++k) {
      if (!s.spec_bytes[k].empty()) {
        CHECK(s.spec_bytes[k] == to_bytes(s.jobs[k]));  // its own job's, in place
        ++given;
      }
    }
    CHECK(encode(pieces[i]) == plain[i]);
  }
  CHECK(given == 29);
}

TEST_CASE("batching: a SUBMIT of jobs as bytes alone splits into frames the proxy reads as those jobs") {
  // A node's new submissions: no decoded specs, only their bytes.
  Submit m;
  m.first = true;
  std::vector<JobSpec> specs;
  for (int i = 0; i < 40; ++i) {
    specs.push_back(spec_of("j" + std::to_string(i), 1 << 20));
    m.spec_bytes.push_back(to_bytes(specs.back()));
  }
  auto pieces = split_batch(Message(std::move(m)));
  REQUIRE(pieces.size() == 3);
  std::vector<JobSpec> read;
  for (const auto& p : pieces) {
    CHECK(std::get<Submit>(p).first);
    std::string frame = encode(p);
    CHECK(frame.size() < kMaxFrameBytes);
    auto got = decode(frame);
    REQUIRE(std::holds_alternative<Complete>(got));
    const auto& s = std::get<Submit>(std::get<Complete>(got).message);
    CHECK(s.first);
    CHECK(s.spec_records.size() == s.jobs.size());
    read.insert(read.end(), s.jobs.begin(), s.jobs.end());
  }
  CHECK(read == specs);  // every job, once, in order
  // Under the budget it stays one message, read the same.
  Submit small;
  small.spec_bytes = {to_bytes(spec_of("a", 10)), to_bytes(spec_of("b", 10))};
  auto one = split_batch(Message(small));
  REQUIRE(one.size() == 1);
  auto got = decode(encode(one[0]));
  REQUIRE(std::holds_alternative<Complete>(got));
  const auto& s = std::get<Submit>(std::get<Complete>(got).message);
  REQUIRE(s.jobs.size() == 2);
  CHECK(s.jobs[0].ticket == "a");
  CHECK(s.jobs[1].ticket == "b");
}

TEST_CASE("batching: JOB batches split, other messages pass unchanged") {
  Job m;
  for (int i = 0; i < 20; ++i) m.jobs.push_back({spec_of("j" + std::to_string(i), 1 << 20), 1});
  CHECK(split_batch(Message(std::move(m))).size() == 2);
  auto info = split_batch(Message(Info{3, 2, 1, 9, 0}));
  REQUIRE(info.size() == 1);
  CHECK(std::get<Info>(info[0]).finished_total == 9);
}

}  // namespace jc::protocol
