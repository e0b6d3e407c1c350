// Unit tests of client/command.h: the client command parser and LineReader.
#include "client/command.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "tests/unit/command_helpers.h"

namespace jc::client {
namespace {

template <class T>
T as(const Command& c) {
  REQUIRE(std::holds_alternative<T>(c));
  return std::get<T>(c);
}

using test::contains;
using test::error_of;

// Feeds chunks to a reader and collects what it reports.
struct Collector {
  LineReader reader;
  std::vector<std::string> lines;
  int too_long = 0;

  explicit Collector(std::size_t max = kMaxLineBytes) : reader(max) {}
  void feed(std::string_view data) {
    reader.feed(
        data, [&](std::string_view line) { lines.emplace_back(line); }, [&] { ++too_long; });
  }
};

}  // namespace

// ---- sleep ---------------------------------------------------------------

TEST_CASE("command: a bare number is a sleep job") {
  CHECK(as<CmdSleep>(parse_command("1500")).ms == 1500);
  CHECK(as<CmdSleep>(parse_command("0")).ms == 0);
  CHECK(as<CmdSleep>(parse_command("  42 \r")).ms == 42);
  CHECK(as<CmdSleep>(parse_command("86400000")).ms == kMaxSleepMs);
}

TEST_CASE("command: sleep <ms> is a sleep job") {
  CHECK(as<CmdSleep>(parse_command("sleep 5")).ms == 5);
  CHECK(as<CmdSleep>(parse_command("SLEEP\t250")).ms == 250);
}

TEST_CASE("command: a sleep above one day is refused") {
  std::string msg = error_of("86400001");
  CHECK(contains(msg, "86400000"));
  CHECK(contains(msg, "86400001"));
  CHECK(contains(error_of("sleep 86400001"), "sleep takes milliseconds"));
  // Beyond 64 bits.
  CHECK(contains(error_of("99999999999999999999999"), "sleep takes milliseconds"));
}

TEST_CASE("command: a negative sleep is refused") {
  std::string msg = error_of("sleep -5");
  CHECK(contains(msg, "sleep takes milliseconds"));
  CHECK(contains(msg, "-5"));
  CHECK(contains(error_of("-5"), "-5"));
}

TEST_CASE("command: a number with trailing junk is refused") {
  CHECK(contains(error_of("12abc"), "12abc"));
  std::string msg = error_of("sleep 12abc");
  CHECK(contains(msg, "sleep takes milliseconds"));
  CHECK(contains(msg, "12abc"));
  CHECK(contains(error_of("sleep 1.5"), "1.5"));
  CHECK(contains(error_of("sleep 5 6"), "sleep takes milliseconds"));
}

TEST_CASE("command: sleep without a number is refused") {
  CHECK(contains(error_of("sleep"), "missing milliseconds"));
}

// ---- results -------------------------------------------------------------

TEST_CASE("command: r<ticket> and R<ticket> look up a result") {
  CHECK(as<CmdResult>(parse_command("rabc-12")).ticket == "abc-12");
  CHECK(as<CmdResult>(parse_command("Rabc_12")).ticket == "abc_12");
  CHECK(as<CmdResult>(parse_command("r0")).ticket == "0");
}

TEST_CASE("command: r <ticket> with a space looks up a result") {
  CHECK(as<CmdResult>(parse_command("r abc-12")).ticket == "abc-12");
  CHECK(as<CmdResult>(parse_command("R  xyz")).ticket == "xyz");
}

TEST_CASE("command: r with a missing or malformed ticket is refused") {
  CHECK(contains(error_of("r"), "missing ticket"));
  CHECK(contains(error_of("rab/c"), "malformed ticket"));
  CHECK(contains(error_of("r ab!c"), "malformed ticket"));
  CHECK(contains(error_of("r" + std::string(33, 'a')), "malformed ticket"));
  CHECK(contains(error_of("r abc def"), "unexpected"));
}

TEST_CASE("command: run is a run job, not a result lookup") {
  CHECK(as<CmdRun>(parse_command("run echo hello world")).command == "echo hello world");
  CHECK(as<CmdRun>(parse_command("RUN ls")).command == "ls");
  CHECK(contains(error_of("run"), "missing command"));
  CHECK(contains(error_of("run   "), "missing command"));
}

// ---- tickets -------------------------------------------------------------

TEST_CASE("command: status takes one well-formed ticket") {
  CHECK(as<CmdStatus>(parse_command("status abc-1")).ticket == "abc-1");
  CHECK(as<CmdStatus>(parse_command("STATUS abc-1")).ticket == "abc-1");
  CHECK(contains(error_of("status"), "missing ticket"));
  CHECK(contains(error_of("status    "), "missing ticket"));
  CHECK(contains(error_of("status a.b"), "malformed ticket"));
  CHECK(contains(error_of("status abc 5"), "unexpected"));
}

TEST_CASE("command: wait with and without seconds") {
  auto w = as<CmdWait>(parse_command("wait abc-1"));
  CHECK(w.ticket == "abc-1");
  CHECK_FALSE(w.seconds.has_value());
  w = as<CmdWait>(parse_command("wait abc-1 2.5"));
  CHECK(w.ticket == "abc-1");
  REQUIRE(w.seconds.has_value());
  CHECK(*w.seconds == doctest::Approx(2.5));
  w = as<CmdWait>(parse_command("Wait abc-1 0"));
  REQUIRE(w.seconds.has_value());
  CHECK(*w.seconds == 0.0);
  w = as<CmdWait>(parse_command("wait abc-1 86400"));
  REQUIRE(w.seconds.has_value());
  CHECK(*w.seconds == doctest::Approx(kMaxWaitSeconds));
}

TEST_CASE("command: wait with bad seconds or tickets is refused") {
  CHECK(contains(error_of("wait"), "missing ticket"));
  CHECK(contains(error_of("wait a+b"), "malformed ticket"));
  for (const char* bad : {"wait abc -1", "wait abc x", "wait abc 5s", "wait abc 86401",
                          "wait abc nan", "wait abc inf", "wait abc 1 2"}) {
    CAPTURE(bad);
    CHECK(contains(error_of(bad), "wait takes SECONDS"));
  }
}

TEST_CASE("command: cancel takes one well-formed ticket") {
  CHECK(as<CmdCancel>(parse_command("cancel abc-1")).ticket == "abc-1");
  CHECK(contains(error_of("cancel"), "missing ticket"));
  CHECK(contains(error_of("cancel abc/1"), "malformed ticket"));
  CHECK(contains(error_of("cancel abc 1"), "unexpected"));
}

// ---- keywords ------------------------------------------------------------

TEST_CASE("command: keywords are case-insensitive") {
  CHECK(std::holds_alternative<CmdGetAll>(parse_command("GETALL")));
  CHECK(std::holds_alternative<CmdGetAll>(parse_command("getall")));
  CHECK(std::holds_alternative<CmdHelp>(parse_command("Help")));
  CHECK(std::holds_alternative<CmdExit>(parse_command("QUIT")));
  CHECK(std::holds_alternative<CmdExit>(parse_command("exit")));
  CHECK(std::holds_alternative<CmdStats>(parse_command("sTaTs")));
}

TEST_CASE("command: keywords without arguments refuse arguments") {
  CHECK(contains(error_of("getall now"), "no arguments"));
  CHECK(contains(error_of("help me"), "no arguments"));
  CHECK(contains(error_of("quit 1"), "no arguments"));
}

TEST_CASE("command: format json, text, and anything else") {
  CHECK(as<CmdFormat>(parse_command("format json")).json);
  CHECK(as<CmdFormat>(parse_command("FORMAT JSON")).json);
  CHECK_FALSE(as<CmdFormat>(parse_command("format text")).json);
  CHECK_FALSE(as<CmdFormat>(parse_command("Format Text")).json);
  CHECK(contains(error_of("format xml"), "json or text"));
  CHECK(contains(error_of("format"), "json or text"));
}

TEST_CASE("command: empty and whitespace lines are empty commands") {
  for (const char* line : {"", " ", "\t", "\r", "  \t \r\n"}) {
    CAPTURE(line);
    CHECK(std::holds_alternative<CmdEmpty>(parse_command(line)));
  }
}

TEST_CASE("command: an unknown command points to help") {
  std::string msg = error_of("frobnicate now");
  CHECK(contains(msg, "frobnicate"));
  CHECK(contains(msg, "help"));
  CHECK(contains(error_of("?"), "help"));
}

TEST_CASE("command: help lists the commands") {
  const auto& lines = help_lines();
  REQUIRE_FALSE(lines.empty());
  for (const char* kw : {"sleep", "run", "r<ticket>", "status", "wait", "cancel", "getall", "stats",
                         "format", "help", "exit"}) {
    CAPTURE(kw);
    bool found = false;
    for (const auto& l : lines) found = found || contains(l, kw);
    CHECK(found);
  }
}

// ---- LineReader ----------------------------------------------------------

TEST_CASE("line reader: splits on LF and CRLF") {
  Collector c;
  c.feed("one\ntwo\r\nthree\n");
  CHECK(c.lines == std::vector<std::string>{"one", "two", "three"});
  CHECK_FALSE(c.reader.has_partial());
  CHECK(c.too_long == 0);
}

TEST_CASE("line reader: empty lines are delivered") {
  Collector c;
  c.feed("\n\r\na\n");
  CHECK(c.lines == std::vector<std::string>{"", "", "a"});
}

TEST_CASE("line reader: keeps a partial line across feeds") {
  Collector c;
  c.feed("hel");
  CHECK(c.lines.empty());
  CHECK(c.reader.has_partial());
  c.feed("lo wor");
  CHECK(c.lines.empty());
  c.feed("ld\r");
  CHECK(c.lines.empty());
  CHECK(c.reader.has_partial());
  c.feed("\nnext");
  CHECK(c.lines == std::vector<std::string>{"hello world"});
  CHECK(c.reader.has_partial());
  c.feed("\n");
  CHECK(c.lines == std::vector<std::string>{"hello world", "next"});
  CHECK_FALSE(c.reader.has_partial());
}

TEST_CASE("line reader: one byte at a time gives the same lines") {
  Collector c;
  std::string data = "sleep 5\r\nr abc\n\nstats\n";
  for (char ch : data) c.feed(std::string_view(&ch, 1));
  CHECK(c.lines == std::vector<std::string>{"sleep 5", "r abc", "", "stats"});
  CHECK_FALSE(c.reader.has_partial());
}

TEST_CASE("line reader: a line at the limit is delivered") {
  Collector c(8);
  c.feed("12345678\n");
  c.feed("1234");
  c.feed("5678\n");
  CHECK(c.lines == std::vector<std::string>{"12345678", "12345678"});
  CHECK(c.too_long == 0);
}

TEST_CASE("line reader: a too long line in one chunk is reported once and skipped") {
  Collector c(8);
  c.feed("0123456789abcdef\nok\n");
  CHECK(c.too_long == 1);
  CHECK(c.lines == std::vector<std::string>{"ok"});
  CHECK_FALSE(c.reader.has_partial());
}

TEST_CASE("line reader: a too long line over many chunks is reported once and skipped") {
  Collector c(8);
  c.feed("01234");
  CHECK(c.reader.has_partial());
  c.feed("56789");
  CHECK(c.too_long == 1);
  CHECK(c.reader.has_partial());
  for (int i = 0; i < 10; ++i) c.feed("more bytes of the same long line");
  CHECK(c.too_long == 1);
  CHECK(c.lines.empty());
  CHECK(c.reader.has_partial());
  c.feed("end\r\nnext\n");
  CHECK(c.too_long == 1);
  CHECK(c.lines == std::vector<std::string>{"next"});
  CHECK_FALSE(c.reader.has_partial());
}

TEST_CASE("line reader: each too long line is reported once") {
  Collector c(4);
  c.feed("aaaaaaaa\nok\nbbbbbbbbbb\nfine\n");
  CHECK(c.too_long == 2);
  CHECK(c.lines == std::vector<std::string>{"ok", "fine"});
}

TEST_CASE("command: --priority and --delay for sleep and run") {
  auto sleep = std::get<CmdSleep>(parse_command("sleep --priority 7 --delay 2500 100"));
  CHECK(sleep.ms == 100);
  CHECK(sleep.schedule.priority == 7);
  CHECK(sleep.schedule.delay_ms == 2500);
  auto neg = std::get<CmdSleep>(parse_command("sleep --priority=-100 5"));
  CHECK(neg.schedule.priority == -100);
  CHECK(std::get<CmdSleep>(parse_command("250")).schedule.priority == 0);
  auto run = std::get<CmdRun>(parse_command("run --priority 3 --delay=10 echo hi"));
  CHECK(run.options.schedule.priority == 3);
  CHECK(run.options.schedule.delay_ms == 10);
  CHECK(run.command == "echo hi");
  CHECK(contains(error_of("sleep --priority 101 5"), "--priority takes a whole number from -100"));
  CHECK(contains(error_of("sleep --delay 2592000001 5"), "--delay takes milliseconds from 0"));
  CHECK(contains(error_of("sleep --delay -1 5"), "--delay takes milliseconds"));
  CHECK(contains(error_of("sleep --soon 5"), "unknown option --soon"));
  CHECK(contains(error_of("sleep --priority 1"), "missing milliseconds"));
  CHECK(contains(error_of("run --priority x echo"), "--priority takes a whole number"));
}

}  // namespace jc::client
