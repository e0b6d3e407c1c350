// Unit tests of client/input_reader.h: command lines pass through, a
// here-document comes whole, counted sections are read as exact bytes
// (however the stream is cut), and counts that cannot be honoured break the
// input instead of turning file content into commands.
#include "client/input_reader.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace jc::client {
namespace {

// What the reader framed, as one line each: "line X", "too long",
// "heredoc <run line> [too long] |<body>|", "broken <message>".
struct Framed {
  InputReader reader;
  std::vector<std::string> items;

  void feed(std::string_view data) {
    reader.feed(data, [&](InputReader::Item item) {
      if (auto* l = std::get_if<InputReader::Line>(&item)) {
        items.push_back("line " + std::string(l->text));
      } else if (std::holds_alternative<InputReader::TooLongLine>(item)) {
        items.push_back("too long");
      } else if (auto* h = std::get_if<InputReader::Heredoc>(&item)) {
        items.push_back("heredoc " + std::string(h->run_line) + (h->too_long ? " too long" : "") +
                        " |" + std::string(h->body) + "|");
      } else {
        items.push_back("broken " + std::get<InputReader::Broken>(item).message);
      }
    });
  }
  // The same input, one byte at a time.
  void feed_bytewise(std::string_view data) {
    for (char c : data) feed(std::string_view(&c, 1));
  }
};

}  // namespace

TEST_CASE("input reader: command lines pass through, a here-document comes whole") {
  Framed f;
  f.feed("stats\r\nrun cat <<END\n@@ stdin\nhi\nEND\n1500\n");
  CHECK(f.items == std::vector<std::string>{"line stats", "heredoc run cat <<END |@@ stdin\nhi\n|",
                                            "line 1500"});
  CHECK_FALSE(f.reader.has_partial());
}

TEST_CASE("input reader: a counted section is its bytes, whatever they hold, however cut") {
  const std::string content = "END\n@@ case\r\n" + std::string(100'000, 'x') + "\nstats\n";
  const std::string input = "run <<END\n@@ file f " + std::to_string(content.size()) + "\n" +
                            content + "@@ command\ncat f\nEND\nstatus abc\n";
  const std::string body =
      "@@ file f " + std::to_string(content.size()) + "\n" + content + "@@ command\ncat f\n";
  Framed whole, bytewise;
  whole.feed(input);
  bytewise.feed_bytewise(input);
  std::vector<std::string> expected{"heredoc run <<END |" + body + "|", "line status abc"};
  CHECK(whole.items == expected);
  CHECK(bytewise.items == expected);
}

TEST_CASE("input reader: a section counted past the limit breaks the input, and nothing is read") {
  Framed f;
  f.feed("run <<END\n@@ stdin 99999999999\nEND\ncancel abc\n");
  REQUIRE(f.items.size() == 1);
  CHECK(f.items[0].rfind("broken a here-document section of 99999999999 bytes", 0) == 0);
  CHECK(f.reader.broken());
  f.feed("stats\n");
  CHECK(f.items.size() == 1);
}

TEST_CASE("input reader: a body over the limit is read to its end and reported too long") {
  Framed f;
  std::string big(kMaxHeredocBytes, 'y');
  f.feed("run <<END\n@@ file big " + std::to_string(big.size()) + "\n" + big + "@@ command\n");
  f.feed("cat big\nEND\nstats\n");
  CHECK(f.items == std::vector<std::string>{"heredoc run <<END too long ||", "line stats"});
}

TEST_CASE("input reader: a long line in a here-document makes it too long, not a command") {
  Framed f;
  f.feed("run <<END\n@@ command\n" + std::string(kMaxLineBytes + 1, 'z') + "\nEND\n");
  CHECK(f.items == std::vector<std::string>{"heredoc run <<END too long ||"});
  Framed outside;
  outside.feed(std::string(kMaxLineBytes + 1, 'z') + "\nstats\n");
  CHECK(outside.items == std::vector<std::string>{"too long", "line stats"});
}

TEST_CASE("input reader: an open here-document is partial and names its terminator") {
  Framed f;
  f.feed("run <<DONE\n@@ command 4\nec");
  CHECK(f.items.empty());
  CHECK(f.reader.has_partial());
  CHECK(f.reader.open_heredoc() == "DONE");
  f.feed("ho\nDONE\n");
  CHECK(f.items == std::vector<std::string>{"heredoc run <<DONE |@@ command 4\necho\n|"});
  CHECK_FALSE(f.reader.open_heredoc());
}

TEST_CASE("input reader: a run line that opens no here-document is a line") {
  Framed f;
  f.feed("run echo '<<x'\nrun --bad <<END\nEND\n");
  CHECK(f.items ==
        std::vector<std::string>{"line run echo '<<x'", "line run --bad <<END", "line END"});
}

}  // namespace jc::client
