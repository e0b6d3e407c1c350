// Unit tests of runner/protections.h: the names results and stats show.
#include "runner/protections.h"

#include <doctest/doctest.h>

namespace jc::runner {

TEST_CASE("protections: all of them read full, none reads none, else the list in order") {
  Protections all{true, true, true, true, true, true, true, true};
  CHECK(all.full());
  CHECK(all.describe() == "full");
  CHECK(Protections{}.describe() == "none");
  Protections some;
  some.cgroup = true;
  some.user = true;
  some.net = true;
  CHECK(some.describe() == "user,net,cgroup");
  CHECK_FALSE(some.full());
}

TEST_CASE("protections: what describe() writes parses back, unknown words do not") {
  for (const char* text :
       {"full", "none", "user", "user,fs,pid,ipc,uts,net", "cgroup", "user,cgroup,seccomp"}) {
    Protections p;
    REQUIRE(parse_protections(text, p));
    CHECK(p.describe() == text);
  }
  Protections p;
  CHECK_FALSE(parse_protections("user,teleport", p));
  CHECK_FALSE(parse_protections("", p));
}

}  // namespace jc::runner
