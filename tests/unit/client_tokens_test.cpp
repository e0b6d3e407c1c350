// CLIENT_TOKENS parsing and checking, without files or sockets.
#include <doctest/doctest.h>

#include <stdexcept>

#include "protocol/client_tokens.h"

using jc::protocol::ClientTokens;

TEST_CASE("client tokens: a name per token, found by its token only") {
  auto t = ClientTokens::parse(
      "# comment\n\nalice:aaaaaaaaaaaaaaaa1\r\n bob : bbbbbbbbbbbbbbbb2 \n", "tokens");
  CHECK(t.enabled());
  CHECK(t.size() == 2);
  CHECK(t.authenticate("aaaaaaaaaaaaaaaa1") == std::optional<std::string>("alice"));
  CHECK(t.authenticate("bbbbbbbbbbbbbbbb2") == std::optional<std::string>("bob"));
  CHECK_FALSE(t.authenticate("aaaaaaaaaaaaaaaa"));
  CHECK_FALSE(t.authenticate(""));
  CHECK_FALSE(t.authenticate("alice"));
  t.set_admins("bob, ");
  CHECK(t.is_admin("bob"));
  CHECK_FALSE(t.is_admin("alice"));
  CHECK(jc::protocol::may_access(t, std::string("alice"), "alice"));
  CHECK_FALSE(jc::protocol::may_access(t, std::string("alice"), "bob"));
  CHECK_FALSE(jc::protocol::may_access(t, std::string("alice"), ""));
  CHECK(jc::protocol::may_access(t, std::string("bob"), "alice"));
  CHECK_FALSE(jc::protocol::may_access(t, std::nullopt, "alice"));
  CHECK(jc::protocol::may_access(ClientTokens{}, std::nullopt, "alice"));
}

TEST_CASE("client tokens: bad lines are refused by line number, never quoting the token") {
  auto fails = [](const std::string& text, const std::string& want) {
    try {
      ClientTokens::parse(text, "f");
    } catch (const std::invalid_argument& e) {
      std::string what = e.what();
      INFO(what);
      CHECK(what.find(want) != std::string::npos);
      CHECK(what.find("secretsecret") == std::string::npos);
      return;
    }
    FAIL("accepted: " << text);
  };
  fails("alice\n", "f line 1: expected name:token");
  fails("alice:secretsecret\n", "shorter than 16");
  fails("a b:secretsecretsecret\n", "the name must be");
  fails("a:secretsecretsecret1\na:secretsecretsecret2\n", "line 2: the name 'a' appears twice");
  fails("a:secretsecretsecret1\nb:secretsecretsecret1\n", "also another name's token");
  fails("# only a comment\n", "no name:token line");
  auto t = ClientTokens::parse("a:secretsecretsecret1\n", "f");
  CHECK_THROWS_WITH_AS(t.set_admins("b"), doctest::Contains("'b' has no token"),
                       std::invalid_argument);
}
