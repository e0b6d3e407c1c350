// common/time.h: the result's time text, cached per second.
#include "common/time.h"

#include <doctest/doctest.h>

#include <string>

namespace jc {

TEST_CASE("time text: UTC with milliseconds, the same within a second and across seconds") {
  // 2026-12-06 04:13:10.007 UTC
  constexpr TimeMs t = 1796530390007;
  CHECK(format_time(t) == "2026-12-06 04:13:10.007");
  CHECK(std::string(time_text(t + 992).view()) == "2026-12-06 04:13:10.999");
  CHECK(std::string(time_text(t + 993).view()) == "2026-12-06 04:13:11.000");
  CHECK(std::string(time_text(t).view()) == "2026-12-06 04:13:10.007");  // back: computed again
  CHECK(format_time(0) == "1970-01-01 00:00:00.000");
  CHECK(format_time(-1) == "1969-12-31 23:59:59.999");
  CHECK(format_time(951782400123) == "2000-02-29 00:00:00.123");
}

}  // namespace jc
