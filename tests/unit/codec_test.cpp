// Unit tests of protocol/codec.h: framing, decoding of bad input, archives.
#include "protocol/codec.h"

#include <doctest/doctest.h>

#include <boost/crc.hpp>
#include <cstdint>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <variant>

namespace jc::protocol {
namespace {

// ---- field-by-field comparisons -------------------------------------------

void check_same(const Limits& a, const Limits& b) {
  CHECK(a.timeout_ms == b.timeout_ms);
  CHECK(a.cpu_ms == b.cpu_ms);
  CHECK(a.memory_mb == b.memory_mb);
  CHECK(a.output_kb == b.output_kb);
}

void check_same(const JobSpec& a, const JobSpec& b) {
  CHECK(a.ticket == b.ticket);
  CHECK(a.kind == b.kind);
  CHECK(a.sleep_ms == b.sleep_ms);
  CHECK(a.command == b.command);
  CHECK(a.stdin_data == b.stdin_data);
  check_same(a.limits, b.limits);
  CHECK(a.origin == b.origin);
  CHECK(a.submitted_ms == b.submitted_ms);
  CHECK(a.priority == b.priority);
  CHECK(a.not_before_ms == b.not_before_ms);
  CHECK(a == b);  // and every other field: expected output, files, check, cases
}

void check_same(const JobResult& a, const JobResult& b) {
  CHECK(a.state == b.state);
  CHECK(a.node == b.node);
  CHECK(a.attempt == b.attempt);
  CHECK(a.text == b.text);
  CHECK(a.exit_code == b.exit_code);
  CHECK(a.signal == b.signal);
  CHECK(a.stdout_data == b.stdout_data);
  CHECK(a.stderr_data == b.stderr_data);
  CHECK(a.stdout_truncated == b.stdout_truncated);
  CHECK(a.stderr_truncated == b.stderr_truncated);
  CHECK(a.start_ms == b.start_ms);
  CHECK(a.end_ms == b.end_ms);
  CHECK(a.cpu_ms == b.cpu_ms);
  CHECK(a.peak_kb == b.peak_kb);
  CHECK(a.verdict == b.verdict);
  CHECK(a == b);  // and every other field: cases, passed, is_run
}

void check_same(const JobReport& a, const JobReport& b) {
  CHECK(a.ticket == b.ticket);
  CHECK(a.state == b.state);
  CHECK(a.node == b.node);
  CHECK(a.attempts == b.attempts);
  CHECK(a.queue_position == b.queue_position);
  CHECK(a.estimated_wait_ms == b.estimated_wait_ms);
  CHECK(a.has_result == b.has_result);
  check_same(a.result, b.result);
}

template <class T>
void check_same_list(const std::vector<T>& a, const std::vector<T>& b) {
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) check_same(a[i], b[i]);
}

// ---- sample values with every field away from its default ------------------

JobSpec sample_spec(const std::string& ticket) {
  JobSpec s;
  s.ticket = ticket;
  s.kind = JobKind::kRun;
  s.sleep_ms = 123456789012ULL;
  s.command = "echo 'hi'; printf '\\0' | wc -c";
  s.stdin_data = std::string("line1\nline2\0binary\xff", 19);
  s.limits = Limits{1500, 2500, 64, 128};
  s.origin = "node-a";
  s.submitted_ms = 1'700'000'000'123;
  s.priority = -7;
  s.not_before_ms = 1'700'000'999'000;
  s.has_expected = true;
  s.expected = "42\n";
  s.files = {FileSpec{"main.py", "print(42)\n"}, FileSpec{"data.txt", std::string("a\0b", 3)}};
  s.check = "python3 -m py_compile main.py";
  s.cases = {TestCase{"one", "1\n", true, "1\n"}, TestCase{"two", "", false, ""}};
  return s;
}

JobResult sample_result() {
  JobResult r;
  r.state = JobState::kTimeout;
  r.node = "node-b";
  r.attempt = 3;
  r.text = "Job timed out";
  r.exit_code = -1;
  r.signal = 9;
  r.stdout_data = std::string("out\0put", 7);
  r.stderr_data = "err";
  r.stdout_truncated = true;
  r.stderr_truncated = true;
  r.start_ms = 1000;
  r.end_ms = 2000;
  r.cpu_ms = 333;
  r.peak_kb = 4096;
  r.verdict = "TLE";
  CaseResult c;
  c.name = "case-1";
  c.verdict = "WRONG_ANSWER";
  c.exit_code = 1;
  c.signal = 0;
  c.wall_ms = 12;
  c.cpu_ms = 7;
  c.peak_kb = 2048;
  c.stdout_data = "41\n";
  c.stderr_data = std::string("warn\0", 5);
  c.stdout_truncated = true;
  r.cases = {c, CaseResult{}};
  r.passed = 1;
  r.is_run = true;
  return r;
}

JobReport sample_report(const std::string& ticket) {
  JobReport r;
  r.ticket = ticket;
  r.state = JobState::kTimeout;
  r.node = "node-b";
  r.attempts = 3;
  r.queue_position = 17;
  r.estimated_wait_ms = 4200;
  r.has_result = true;
  r.result = sample_result();
  return r;
}

// Encodes `value` as a frame, decodes it, and returns the decoded alternative.
template <class T>
T round_trip(const T& value) {
  Message m = value;
  std::string frame = encode(m);
  REQUIRE(frame.size() >= kFrameHeaderBytes);
  CHECK(static_cast<std::uint8_t>(frame[4]) == kProtocolVersion);
  CHECK(static_cast<std::size_t>(static_cast<std::uint8_t>(frame[5])) == m.index());
  DecodeResult r = decode(frame);
  auto* done = std::get_if<Complete>(&r);
  REQUIRE(done != nullptr);
  CHECK(done->consumed == frame.size());
  REQUIRE(std::holds_alternative<T>(done->message));
  return std::get<T>(done->message);
}

std::uint32_t crc_of(std::string_view bytes) {
  boost::crc_32_type crc;
  crc.process_bytes(bytes.data(), bytes.size());
  return crc.checksum();
}

void append_u32(std::string& out, std::uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

// A frame built by hand: header with the given fields, then the payload.
std::string make_frame(std::uint8_t type, std::string_view payload, std::uint32_t crc,
                       std::uint8_t version = kProtocolVersion) {
  std::string out;
  append_u32(out, static_cast<std::uint32_t>(payload.size()));
  out.push_back(static_cast<char>(version));
  out.push_back(static_cast<char>(type));
  append_u32(out, crc);
  out.append(payload);
  return out;
}

bool is_error(const DecodeResult& r) { return std::holds_alternative<DecodeError>(r); }
bool is_need_more(const DecodeResult& r) { return std::holds_alternative<NeedMore>(r); }
std::string error_of(const DecodeResult& r) {
  auto* e = std::get_if<DecodeError>(&r);
  return e ? e->reason : std::string();
}

std::string sample_frame() {
  Hello h;
  h.node_id = "node-a";
  h.slots = 4;
  h.held = {"t1", "t2"};
  return encode(h);
}

}  // namespace

// ---- round trips of every message ----------------------------------------

TEST_CASE("codec: Hello round-trips with every field") {
  Hello h;
  h.version = 9;
  h.node_id = "node-a";
  h.slots = 12;
  h.client_address = "10.0.0.1:4000";
  h.held = {"abc-1", "abc-2"};
  h.finished = {"abc-3"};
  h.auth = "proof";
  Hello d = round_trip(h);
  CHECK(d.version == 9);
  CHECK(d.node_id == h.node_id);
  CHECK(d.slots == 12);
  CHECK(d.client_address == h.client_address);
  CHECK(d.held == h.held);
  CHECK(d.finished == h.finished);
  CHECK(d.auth == "proof");
}

TEST_CASE("codec: Welcome round-trips with every field") {
  Welcome w;
  w.accepted = true;
  w.reason = "because";
  w.proxy_id = "proxy-7";
  w.drop = {"x-1", "x-2", "x-3"};
  Welcome d = round_trip(w);
  CHECK(d.accepted);
  CHECK(d.reason == "because");
  CHECK(d.proxy_id == "proxy-7");
  CHECK(d.drop == w.drop);
}

TEST_CASE("codec: Submit round-trips its job specs") {
  Submit s;
  s.jobs = {sample_spec("t-1"), sample_spec("t-2")};
  s.jobs[1].kind = JobKind::kSleep;
  s.jobs[1].sleep_ms = 5;
  Submit d = round_trip(s);
  check_same_list(d.jobs, s.jobs);
}

TEST_CASE("codec: a Submit that came in a frame keeps each spec's bytes as its record") {
  Submit s;
  s.jobs = {sample_spec("t-1"), sample_spec("t-2")};
  s.jobs[1].kind = JobKind::kSleep;
  s.jobs[1].sleep_ms = 5;
  CHECK(s.spec_records.empty());  // made here: nothing received
  Submit d = round_trip(s);
  REQUIRE(d.spec_records.size() == 2);
  for (std::size_t i = 0; i < 2; ++i) {
    // The same bytes as encoding the spec anew, and they read back as it.
    CHECK(d.spec_records[i] == to_record(s.jobs[i]));
    JobSpec back;
    REQUIRE(from_record(d.spec_records[i], back));
    CHECK(back == s.jobs[i]);
  }
  // Never written: a decoded Submit encodes as the one it came from.
  CHECK(encode(Message{d}) == encode(Message{s}));
}

TEST_CASE("codec: a Submit given its jobs' bytes writes them, the frame it would be without them") {
  Submit s;
  s.jobs = {sample_spec("t-1"), sample_spec("t-2"), sample_spec("t-3")};
  s.jobs[1].kind = JobKind::kSleep;
  s.jobs[1].sleep_ms = 5;
  s.local = {"t-2"};
  s.first = true;
  const std::string plain = encode(Message{s});
  Submit given = s;
  // The second's bytes are not given: it is encoded, the others copied.
  given.spec_bytes = {to_bytes(s.jobs[0]), "", to_bytes(s.jobs[2])};
  CHECK(encode(Message{given}) == plain);
  // Bytes that differ from the job are what goes out: they are not encoded anew.
  JobSpec other = sample_spec("t-9");
  given.spec_bytes[0] = to_bytes(other);
  Submit d = round_trip(given);
  REQUIRE(d.jobs.size() == 3);
  CHECK(d.jobs[0] == other);
  CHECK(d.jobs[1] == s.jobs[1]);
  CHECK(d.jobs[2] == s.jobs[2]);
  CHECK(d.local == s.local);
  CHECK(d.first);
  CHECK(d.spec_bytes.empty());  // never loaded
}

TEST_CASE("codec: Ack round-trips kind, tickets and superseded") {
  Ack a;
  a.kind = AckKind::kResults;
  a.tickets = {"a", "b"};
  a.superseded = {"c"};
  Ack d = round_trip(a);
  CHECK(d.kind == AckKind::kResults);
  CHECK(d.tickets == a.tickets);
  CHECK(d.superseded == a.superseded);
}

TEST_CASE("codec: Job round-trips assignments with attempts") {
  Job j;
  j.jobs = {Assignment{sample_spec("t-1"), 4}, Assignment{sample_spec("t-2"), 2}};
  Job d = round_trip(j);
  REQUIRE(d.jobs.size() == 2);
  check_same(d.jobs[0].spec, j.jobs[0].spec);
  check_same(d.jobs[1].spec, j.jobs[1].spec);
  CHECK(d.jobs[0].attempt == 4);
  CHECK(d.jobs[1].attempt == 2);
}

TEST_CASE("codec: an assignment sent as its spec's bytes is the same frame, and comes with them") {
  Job plain;
  plain.jobs = {Assignment{sample_spec("t-1"), 3}};
  Job given = plain;
  given.jobs[0].spec_bytes = to_bytes(plain.jobs[0].spec);
  CHECK(encode(Message{given}) == encode(Message{plain}));
  // Bytes given are written as they are, whatever the spec says.
  Job other = plain;
  other.jobs[0].spec_bytes = to_bytes(sample_spec("t-2"));
  Job d = round_trip(other);
  REQUIRE(d.jobs.size() == 1);
  CHECK(d.jobs[0].spec.ticket == "t-2");
  CHECK(d.jobs[0].attempt == 3);
  // Loaded, the bytes are kept: the running node's record is made of them.
  CHECK(round_trip(plain).jobs[0].spec_bytes == to_bytes(plain.jobs[0].spec));
}

TEST_CASE("codec: Info round-trips every counter") {
  Info i;
  i.queued = 3;
  i.running = 4;
  i.free_slots = 5;
  i.finished_total = 1ULL << 40;
  i.pending_forward = 6;
  Info d = round_trip(i);
  CHECK(d.queued == 3);
  CHECK(d.running == 4);
  CHECK(d.free_slots == 5);
  CHECK(d.finished_total == (1ULL << 40));
  CHECK(d.pending_forward == 6);
}

TEST_CASE("codec: RequestOfRes round-trips its tickets") {
  RequestOfRes r;
  r.tickets = {"one", "two", "three"};
  CHECK(round_trip(r).tickets == r.tickets);
}

TEST_CASE("codec: Result round-trips full reports") {
  Result r;
  r.reports = {sample_report("t-1"), sample_report("t-2")};
  r.reports[1].state = JobState::kQueued;
  r.reports[1].has_result = false;
  Result d = round_trip(r);
  check_same_list(d.reports, r.reports);
}

TEST_CASE("codec: ResReq round-trips reports and requests") {
  ResReq r;
  r.reports = {sample_report("t-9")};
  r.requests = {"t-10", "t-11"};
  ResReq d = round_trip(r);
  check_same_list(d.reports, r.reports);
  CHECK(d.requests == r.requests);
}

TEST_CASE("codec: StatsRequest round-trips its id") {
  StatsRequest s;
  s.id = 0xDEADBEEFCAFEULL;
  CHECK(round_trip(s).id == 0xDEADBEEFCAFEULL);
}

TEST_CASE("codec: StatsReply round-trips the cluster picture") {
  StatsReply s;
  s.id = 77;
  NodeStats n;
  n.node_id = "node-a";
  n.address = "127.0.0.1:7000";
  n.connected = true;
  n.slots = 8;
  n.assigned = 7;
  n.running = 6;
  n.queued = 5;
  n.finished = 1234567890123ULL;
  n.last_heard_ms = -42;
  s.stats.nodes = {n, n};
  s.stats.nodes[1].node_id = "node-b";
  s.stats.nodes[1].connected = false;
  s.stats.queue_length = 11;
  s.stats.running = 12;
  s.stats.submitted_total = 13;
  s.stats.finished_total = 14;
  s.stats.redispatched_total = 15;
  StatsReply d = round_trip(s);
  CHECK(d.id == 77);
  REQUIRE(d.stats.nodes.size() == 2);
  for (std::size_t i = 0; i < 2; ++i) {
    const auto& a = d.stats.nodes[i];
    const auto& b = s.stats.nodes[i];
    CHECK(a.node_id == b.node_id);
    CHECK(a.address == b.address);
    CHECK(a.connected == b.connected);
    CHECK(a.slots == b.slots);
    CHECK(a.assigned == b.assigned);
    CHECK(a.running == b.running);
    CHECK(a.queued == b.queued);
    CHECK(a.finished == b.finished);
    CHECK(a.last_heard_ms == b.last_heard_ms);
  }
  CHECK(d.stats.queue_length == 11);
  CHECK(d.stats.running == 12);
  CHECK(d.stats.submitted_total == 13);
  CHECK(d.stats.finished_total == 14);
  CHECK(d.stats.redispatched_total == 15);
}

TEST_CASE("codec: message_name names every alternative") {
  CHECK(message_name(Hello{}) == "HELLO");
  CHECK(message_name(RequestOfRes{}) == "REQUEST_OF_RES");
  CHECK(message_name(StatsReply{}) == "STATS_REPLY");
  // Every alternative has a name of its own.
  std::set<std::string_view> names;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (names.insert(message_name(Message(std::in_place_index<I>))), ...);
  }
  (std::make_index_sequence<std::variant_size_v<Message>>{});
  CHECK(names.size() == std::variant_size_v<Message>);
  CHECK_FALSE(names.count(""));
}

// ---- framing -----------------------------------------------------------

TEST_CASE("codec: encode appends to an existing buffer") {
  std::string out = "prefix";
  encode(Info{}, out);
  CHECK(out.substr(0, 6) == "prefix");
  auto r = decode(std::string_view(out).substr(6));
  REQUIRE(std::holds_alternative<Complete>(r));
  CHECK(std::get<Complete>(r).consumed == out.size() - 6);
}

TEST_CASE("codec: two frames back-to-back decode one at a time") {
  Info first;
  first.queued = 1;
  RequestOfRes second;
  second.tickets = {"abc"};
  std::string a = encode(first);
  std::string b = encode(second);
  std::string both = a + b;

  auto r1 = decode(both);
  REQUIRE(std::holds_alternative<Complete>(r1));
  const auto& c1 = std::get<Complete>(r1);
  CHECK(c1.consumed == a.size());
  REQUIRE(std::holds_alternative<Info>(c1.message));
  CHECK(std::get<Info>(c1.message).queued == 1);

  auto r2 = decode(std::string_view(both).substr(c1.consumed));
  REQUIRE(std::holds_alternative<Complete>(r2));
  const auto& c2 = std::get<Complete>(r2);
  CHECK(c2.consumed == b.size());
  REQUIRE(std::holds_alternative<RequestOfRes>(c2.message));
  CHECK(std::get<RequestOfRes>(c2.message).tickets == std::vector<std::string>{"abc"});
}

TEST_CASE("codec: truncated frame needs more bytes") {
  std::string frame = sample_frame();
  for (std::size_t n = 0; n < frame.size(); ++n) {
    CAPTURE(n);
    CHECK(is_need_more(decode(std::string_view(frame).substr(0, n))));
  }
  CHECK(std::holds_alternative<Complete>(decode(frame)));
}

TEST_CASE("codec: declared length above max_frame is refused from the header alone") {
  std::string header = make_frame(0, "", 0);
  header[0] = 0;
  header[1] = 0;
  header[2] = 0x03;
  header[3] = static_cast<char>(0xE9);  // 1001 bytes
  REQUIRE(header.size() == kFrameHeaderBytes);
  CHECK(is_error(decode(header, 1000)));
  CHECK(error_of(decode(header, 1000)).find("1001") != std::string::npos);
  // At the limit it only waits for the payload.
  CHECK(is_need_more(decode(header, 1001)));

  // The default limit: a 4 GB frame is refused without its payload.
  std::string huge = make_frame(0, "", 0);
  huge[0] = huge[1] = huge[2] = huge[3] = static_cast<char>(0xFF);
  CHECK(is_error(decode(huge)));
}

TEST_CASE("codec: a real frame larger than max_frame is refused") {
  std::string frame = sample_frame();
  std::size_t payload = frame.size() - kFrameHeaderBytes;
  CHECK(is_error(decode(frame, payload - 1)));
  CHECK(std::holds_alternative<Complete>(decode(frame, payload)));
}

TEST_CASE("codec: wrong version byte is a decode error") {
  std::string frame = sample_frame();
  frame[4] = static_cast<char>(kProtocolVersion + 1);
  auto r = decode(frame);
  REQUIRE(is_error(r));
  CHECK(error_of(r).find("version") != std::string::npos);
  // Refused from the header, before the payload arrives.
  CHECK(is_error(decode(std::string_view(frame).substr(0, kFrameHeaderBytes))));
}

TEST_CASE("codec: unknown type byte is a decode error") {
  std::string frame = sample_frame();
  frame[5] = static_cast<char>(std::variant_size_v<Message>);
  auto r = decode(frame);
  REQUIRE(is_error(r));
  CHECK(error_of(r).find("type") != std::string::npos);
  frame[5] = static_cast<char>(0xFF);
  CHECK(is_error(decode(frame)));
  CHECK(is_error(decode(std::string_view(frame).substr(0, kFrameHeaderBytes))));
}

TEST_CASE("codec: flipped payload byte fails the checksum") {
  std::string frame = sample_frame();
  for (std::size_t i = kFrameHeaderBytes; i < frame.size(); ++i) {
    std::string bad = frame;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    CAPTURE(i);
    auto r = decode(bad);
    REQUIRE(is_error(r));
    CHECK(error_of(r).find("checksum") != std::string::npos);
  }
}

TEST_CASE("codec: flipped checksum byte is a decode error") {
  std::string frame = sample_frame();
  frame[7] = static_cast<char>(frame[7] ^ 0x40);
  CHECK(is_error(decode(frame)));
}

TEST_CASE("codec: garbage payload with a correct checksum is a decode error") {
  SUBCASE("too short for a Hello") {
    std::string payload = "abc";
    auto r = decode(make_frame(0, payload, crc_of(payload)));
    REQUIRE(is_error(r));
    CHECK(error_of(r).find("malformed") != std::string::npos);
  }
  SUBCASE("all 0xFF: absurd string length in a Hello") {
    std::string payload(16, static_cast<char>(0xFF));
    CHECK(is_error(decode(make_frame(0, payload, crc_of(payload)))));
  }
  SUBCASE("empty payload for an Ack") { CHECK(is_error(decode(make_frame(3, "", crc_of(""))))); }
  SUBCASE("text for a Submit") {
    std::string payload = "this is not an archive";
    CHECK(is_error(decode(make_frame(2, payload, crc_of(payload)))));
  }
}

TEST_CASE("codec: a hand-built frame with a correct checksum decodes") {
  // Same construction as the garbage case, with a real payload: proves the
  // hand-built header matches the grammar.
  Info i;
  i.running = 3;
  std::string payload = to_bytes(i);
  auto r = decode(make_frame(5, payload, crc_of(payload)));
  REQUIRE(std::holds_alternative<Complete>(r));
  REQUIRE(std::holds_alternative<Info>(std::get<Complete>(r).message));
  CHECK(std::get<Info>(std::get<Complete>(r).message).running == 3);
}

TEST_CASE("codec: random bytes never throw or crash the decoder") {
  std::mt19937 gen(20240601);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> len(0, 80);
  std::size_t completes = 0;
  for (int iter = 0; iter < 2000; ++iter) {
    std::string bytes(static_cast<std::size_t>(len(gen)), '\0');
    for (char& c : bytes) c = static_cast<char>(byte(gen));
    // Every other input gets a plausible header, so that the checks past the
    // header are reached too.
    if (iter % 2 == 1 && bytes.size() >= kFrameHeaderBytes) {
      std::uint32_t n = static_cast<std::uint32_t>(bytes.size() - kFrameHeaderBytes);
      bytes[0] = bytes[1] = 0;
      bytes[2] = static_cast<char>(n >> 8);
      bytes[3] = static_cast<char>(n);
      bytes[4] = static_cast<char>(kProtocolVersion);
      bytes[5] = static_cast<char>(byte(gen) % std::variant_size_v<Message>);
    }
    CAPTURE(iter);
    DecodeResult r;
    CHECK_NOTHROW(r = decode(bytes, 1024));
    if (auto* c = std::get_if<Complete>(&r)) {
      ++completes;
      CHECK(c->consumed <= bytes.size());
    }
  }
  // Without the right CRC nothing should ever decode.
  CHECK(completes == 0);
}

TEST_CASE("codec: mutated valid frames never throw") {
  std::mt19937 gen(7);
  Submit s;
  s.jobs = {sample_spec("t-1"), sample_spec("t-2")};
  std::string frame = encode(s);
  std::uniform_int_distribution<std::size_t> pos(0, frame.size() - 1);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int iter = 0; iter < 2000; ++iter) {
    std::string bad = frame;
    bad[pos(gen)] = static_cast<char>(byte(gen));
    bad.resize(pos(gen) + 1);
    CAPTURE(iter);
    CHECK_NOTHROW(decode(bad));
  }
}

// ---- values and log samples ----------------------------------------------

TEST_CASE("codec: to_bytes/from_bytes round-trip a JobSpec") {
  JobSpec spec = sample_spec("abc-42");
  std::string bytes = to_bytes(spec);
  JobSpec back;
  REQUIRE(from_bytes(bytes, back));
  check_same(back, spec);
}

TEST_CASE("codec: to_bytes/from_bytes round-trip a JobReport") {
  JobReport r = sample_report("abc-43");
  JobReport back;
  REQUIRE(from_bytes(to_bytes(r), back));
  check_same(back, r);
}

TEST_CASE("codec: from_bytes of garbage returns false") {
  JobSpec spec;
  CHECK_FALSE(from_bytes("", spec));
  CHECK_FALSE(from_bytes("\x01\x02", spec));
  CHECK_FALSE(from_bytes(std::string(16, static_cast<char>(0xFF)), spec));
  // A truncated archive of a real value.
  std::string bytes = to_bytes(sample_spec("abc-44"));
  CHECK_FALSE(from_bytes(std::string_view(bytes).substr(0, bytes.size() / 2), spec));
}

TEST_CASE("codec: from_bytes refuses trailing bytes and a bool that is not 0 or 1") {
  std::string bytes = to_bytes(sample_spec("abc-45"));
  JobSpec spec;
  CHECK_FALSE(from_bytes(bytes + "x", spec));
  // A TestCase: name (length 0), stdin (length 0), has_expected, expected
  // (length 0), a byte each.
  TestCase c;
  std::string encoded = to_bytes(c);
  REQUIRE(encoded == std::string(4, '\0'));
  encoded[2] = 2;
  CHECK_FALSE(from_bytes(encoded, c));
  encoded[2] = 1;
  CHECK(from_bytes(encoded, c));
  CHECK(c.has_expected);
}

TEST_CASE("codec: integers are varints, signed ones zigzag-mapped") {
  Info info;  // five integer fields
  info.queued = 300;
  std::string bytes = to_bytes(info);
  CHECK(bytes == std::string("\xac\x02\x00\x00\x00\x00", 6));
  info.finished_total = std::numeric_limits<std::uint64_t>::max();
  bytes = to_bytes(info);
  CHECK(bytes.size() == 2 + 1 + 1 + 10 + 1);
  Info back;
  REQUIRE(from_bytes(bytes, back));
  CHECK(back.queued == 300);
  CHECK(back.finished_total == std::numeric_limits<std::uint64_t>::max());

  JobReport r;  // ticket, state, node, attempts, then queue_position (-1) ...
  r.queue_position = -1;
  r.estimated_wait_ms = std::numeric_limits<std::int64_t>::min();
  JobReport r_back;
  REQUIRE(from_bytes(to_bytes(r), r_back));
  CHECK(r_back.queue_position == -1);
  CHECK(r_back.estimated_wait_ms == std::numeric_limits<std::int64_t>::min());
  CHECK(to_bytes(r)[4] == '\x01');  // zigzag(-1) = 1
}

TEST_CASE("codec: a varint too large for its field, or too long, is refused") {
  Info back;
  // queued is 32 bits: 2^32 does not fit.
  CHECK_FALSE(from_bytes(std::string("\x80\x80\x80\x80\x10\x00\x00\x00\x00", 9), back));
  // Eleven continuation bytes.
  CHECK_FALSE(from_bytes(std::string(11, '\x80') + std::string(5, '\0'), back));
  // Ends inside a varint.
  CHECK_FALSE(from_bytes(std::string("\x80", 1), back));
  // Ten bytes whose last carries more than the 64th bit: refused, whether
  // the payload has room after it or ends there (two ways of reading).
  const std::string over = std::string(9, '\xff') + '\x02';
  const std::string max = std::string(9, '\xff') + '\x01';
  for (const std::string& after : {std::string(), std::string(5, '\0')}) {
    std::uint64_t v = 0;
    const std::string refused_bytes = over + after, max_bytes = max + after,
                      two_bytes = std::string("\xac\x02", 2) + after;  // 300
    InArchive refused(refused_bytes);
    CHECK_THROWS_AS(refused >> v, DecodeFailure);
    InArchive largest(max_bytes);
    largest >> v;
    CHECK(v == std::numeric_limits<std::uint64_t>::max());
    CHECK(largest.remaining() == after.size());
    InArchive two(two_bytes);
    two >> v;
    CHECK(v == 300);
  }
}

TEST_CASE("codec: escape_sample escapes non-printable bytes") {
  CHECK(escape_sample("hello world") == "hello world");
  CHECK(escape_sample(std::string("a\0b", 3)) == "a\\x00b");
  CHECK(escape_sample("tab\there\r\n") == "tab\\x09here\\x0d\\x0a");
  CHECK(escape_sample("\x7f\xff") == "\\x7f\\xff");
  CHECK(escape_sample("back\\slash") == "back\\x5cslash");
}

TEST_CASE("codec: escape_sample cuts long input with an ellipsis") {
  CHECK(escape_sample("abcdefgh", 4) == "abcd...");
  CHECK(escape_sample("abcd", 4) == "abcd");
  CHECK(escape_sample(std::string(100, 'x')).size() == 32 + 3);
}

}  // namespace jc::protocol
